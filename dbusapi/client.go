package dbusapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Client calls netwardend's API over a bus connection; the netwarden
// command is built on it. A call to a daemon that is not running starts
// it through D-Bus activation, where the activation file is installed.
//
// Every method takes a context bounding the call and returns the
// daemon's *dbus.Error wrapped, so that ErrorNameOf (or errors.As with a
// dbus.Error) finds its name.
type Client struct {
	conn *dbus.Conn
	obj  dbus.BusObject
}

// NewClient returns a client of the daemon reached over conn.
func NewClient(conn *dbus.Conn) *Client {
	return &Client{conn: conn, obj: conn.Object(BusName, ObjectPath)}
}

// NWFilter is what the API says about a filter: its object and the
// properties of org.netwarden1.NWFilter.
type NWFilter struct {
	// Path is the filter's object.
	Path dbus.ObjectPath
	// Name and UUID identify the filter.
	Name, UUID string
	// BuiltIn is true while the built-in definition is in force.
	BuiltIn bool
}

// NWFilterBinding is what the API says about a binding: its object and
// the properties of org.netwarden1.NWFilterBinding.
type NWFilterBinding struct {
	// Path is the binding's object.
	Path dbus.ObjectPath
	// PortDev is the port the binding filters.
	PortDev string
	// FilterName is the filter bound to the port.
	FilterName string
	// Mode is how the port is filtered ("enforce", or the fail-closed
	// mode the daemon reports with a Reason).
	Mode string
	// Reason says why the filter is not enforced as written, "" if it is.
	Reason string
	// LearnedAddresses are the addresses learned for the port (IP
	// address learning), empty when none.
	LearnedAddresses []string
}

// ErrorNameOf returns the D-Bus error name err carries ("" if it is not
// a D-Bus error): one of the Error* names of this package, or a name of
// the bus itself such as org.freedesktop.DBus.Error.ServiceUnknown.
func ErrorNameOf(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dep *dbus.Error
	if errors.As(err, &dep) && dep != nil {
		return dep.Name
	}
	return ""
}

// ErrorMessageOf returns the message of the D-Bus error err carries, ""
// if it has none or is not a D-Bus error.
func ErrorMessageOf(err error) string {
	var de dbus.Error
	if !errors.As(err, &de) {
		var dep *dbus.Error
		if !errors.As(err, &dep) || dep == nil {
			return ""
		}
		de = *dep
	}
	if len(de.Body) > 0 {
		if s, ok := de.Body[0].(string); ok {
			return s
		}
	}
	return ""
}

// call calls a method of the object at path and stores the reply.
func (c *Client) call(ctx context.Context, path dbus.ObjectPath, method string, args []any, out ...any) error {
	call := c.conn.Object(BusName, path).CallWithContext(ctx, method, 0, args...)
	if call.Err != nil {
		return fmt.Errorf("%s: %w", method, call.Err)
	}
	if len(out) == 0 {
		return nil
	}
	if err := call.Store(out...); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// Version returns the daemon's version (the Manager's Version property).
func (c *Client) Version(ctx context.Context) (string, error) {
	var v dbus.Variant
	err := c.obj.CallWithContext(ctx, propertiesInterface+".Get", 0, ManagerInterface, "Version").Store(&v)
	if err != nil {
		return "", fmt.Errorf("get %s.Version: %w", ManagerInterface, err)
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("get %s.Version: got %s, want a string", ManagerInterface, v.Signature())
	}
	return s, nil
}

// Status is what the Manager's properties say of the daemon.
type Status struct {
	// Version and Backend are the daemon's version and kernel backend.
	Version, Backend string
	// StatefulFiltering is how rules needing connection tracking are
	// enforced.
	StatefulFiltering string
	// FirewalldRunning says whether firewalld is on the bus.
	FirewalldRunning bool
	// LastFirewallReapply is when the last re-apply completed; zero
	// when none has.
	LastFirewallReapply time.Time
	// Restores counts re-applies that repaired damaged kernel state.
	Restores uint64
}

// Status reads the Manager's properties in one GetAll.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var all map[string]dbus.Variant
	if err := c.obj.CallWithContext(ctx, propertiesInterface+".GetAll", 0, ManagerInterface).Store(&all); err != nil {
		return Status{}, fmt.Errorf("get the properties of %s: %w", ManagerInterface, err)
	}
	var st Status
	st.Version, _ = all["Version"].Value().(string)
	st.Backend, _ = all["Backend"].Value().(string)
	st.StatefulFiltering, _ = all["StatefulFiltering"].Value().(string)
	st.FirewalldRunning, _ = all["FirewalldRunning"].Value().(bool)
	if us, _ := all["LastFirewallReapply"].Value().(uint64); us != 0 {
		st.LastFirewallReapply = time.UnixMicro(int64(us))
	}
	st.Restores, _ = all["Restores"].Value().(uint64)
	return st, nil
}

// ListNWFilters calls Manager.ListNWFilters: the objects of all filters,
// built-ins included. flags must be 0.
func (c *Client) ListNWFilters(ctx context.Context, flags uint32) ([]dbus.ObjectPath, error) {
	var paths []dbus.ObjectPath
	return paths, c.call(ctx, ObjectPath, ManagerInterface+".ListNWFilters", []any{flags}, &paths)
}

// NWFilterDefineXML calls Manager.NWFilterDefineXML: defines or
// redefines a filter and returns its object.
func (c *Client) NWFilterDefineXML(ctx context.Context, xml string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NWFilterDefineXML", []any{xml}, &p)
}

// NWFilterLookupByName calls Manager.NWFilterLookupByName.
func (c *Client) NWFilterLookupByName(ctx context.Context, name string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NWFilterLookupByName", []any{name}, &p)
}

// NWFilterLookupByUUID calls Manager.NWFilterLookupByUUID.
func (c *Client) NWFilterLookupByUUID(ctx context.Context, uuid string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NWFilterLookupByUUID", []any{uuid}, &p)
}

// LookupNWFilter finds a filter as virsh does: by UUID when s has the
// form of one (and such a filter exists), else by name.
func (c *Client) LookupNWFilter(ctx context.Context, s string) (dbus.ObjectPath, error) {
	if looksLikeUUID(s) {
		p, err := c.NWFilterLookupByUUID(ctx, s)
		if err == nil || ErrorNameOf(err) != ErrorNotFound {
			return p, err
		}
	}
	return c.NWFilterLookupByName(ctx, s)
}

// looksLikeUUID reports whether s is 36 characters of hex digits with
// dashes at the UUID positions.
func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case '0' <= r && r <= '9', 'a' <= r && r <= 'f', 'A' <= r && r <= 'F':
		default:
			return false
		}
	}
	return true
}

// NWFilterGetXMLDesc calls GetXMLDesc on a filter object. flags must be 0.
func (c *Client) NWFilterGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error) {
	var s string
	return s, c.call(ctx, path, NWFilterInterface+".GetXMLDesc", []any{flags}, &s)
}

// NWFilterUndefine calls Undefine on a filter object.
func (c *Client) NWFilterUndefine(ctx context.Context, path dbus.ObjectPath) error {
	return c.call(ctx, path, NWFilterInterface+".Undefine", nil)
}

// NWFilter reads the properties of a filter object.
func (c *Client) NWFilter(ctx context.Context, path dbus.ObjectPath) (NWFilter, error) {
	var props map[string]dbus.Variant
	if err := c.call(ctx, path, propertiesInterface+".GetAll", []any{NWFilterInterface}, &props); err != nil {
		return NWFilter{}, err
	}
	return nwfilterFromProps(path, props), nil
}

// NWFilters returns every filter with its properties, sorted by name
// (case-insensitively, as virsh sorts), in one call
// (ObjectManager.GetManagedObjects).
func (c *Client) NWFilters(ctx context.Context) ([]NWFilter, error) {
	objs, err := c.managedObjects(ctx)
	if err != nil {
		return nil, err
	}
	var fs []NWFilter
	for path, ifaces := range objs {
		if props, ok := ifaces[NWFilterInterface]; ok {
			fs = append(fs, nwfilterFromProps(path, props))
		}
	}
	slices.SortFunc(fs, func(a, b NWFilter) int { return compareFold(a.Name, b.Name) })
	return fs, nil
}

// ListNWFilterBindings calls Manager.ListNWFilterBindings. flags must be
// 0.
func (c *Client) ListNWFilterBindings(ctx context.Context, flags uint32) ([]dbus.ObjectPath, error) {
	var paths []dbus.ObjectPath
	return paths, c.call(ctx, ObjectPath, ManagerInterface+".ListNWFilterBindings", []any{flags}, &paths)
}

// NWFilterBindingCreateXML calls Manager.NWFilterBindingCreateXML:
// creates a binding, returning its object once the kernel enforces it.
// flags: 0 or BindingCreateValidate.
func (c *Client) NWFilterBindingCreateXML(ctx context.Context, xml string, flags uint32) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NWFilterBindingCreateXML", []any{xml, flags}, &p)
}

// NWFilterBindingLookupByPortDev calls
// Manager.NWFilterBindingLookupByPortDev.
func (c *Client) NWFilterBindingLookupByPortDev(ctx context.Context, port string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NWFilterBindingLookupByPortDev", []any{port}, &p)
}

// NWFilterBindingGetXMLDesc calls GetXMLDesc on a binding object. flags
// must be 0.
func (c *Client) NWFilterBindingGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error) {
	var s string
	return s, c.call(ctx, path, NWFilterBindingInterface+".GetXMLDesc", []any{flags}, &s)
}

// NWFilterBindingDelete calls Delete on a binding object.
func (c *Client) NWFilterBindingDelete(ctx context.Context, path dbus.ObjectPath) error {
	return c.call(ctx, path, NWFilterBindingInterface+".Delete", nil)
}

// NWFilterBinding reads the properties of a binding object.
func (c *Client) NWFilterBinding(ctx context.Context, path dbus.ObjectPath) (NWFilterBinding, error) {
	var props map[string]dbus.Variant
	if err := c.call(ctx, path, propertiesInterface+".GetAll", []any{NWFilterBindingInterface}, &props); err != nil {
		return NWFilterBinding{}, err
	}
	return bindingFromProps(path, props), nil
}

// NWFilterBindings returns every binding with its properties, sorted by
// port (case-insensitively, as virsh sorts), in one call.
func (c *Client) NWFilterBindings(ctx context.Context) ([]NWFilterBinding, error) {
	objs, err := c.managedObjects(ctx)
	if err != nil {
		return nil, err
	}
	var bs []NWFilterBinding
	for path, ifaces := range objs {
		if props, ok := ifaces[NWFilterBindingInterface]; ok {
			bs = append(bs, bindingFromProps(path, props))
		}
	}
	slices.SortFunc(bs, func(a, b NWFilterBinding) int { return compareFold(a.PortDev, b.PortDev) })
	return bs, nil
}

// compareFold orders case-insensitively, then by bytes.
func compareFold(a, b string) int {
	if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func (c *Client) managedObjects(ctx context.Context) (map[dbus.ObjectPath]map[string]map[string]dbus.Variant, error) {
	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	return objs, c.call(ctx, ObjectPath, objectManagerInterface+".GetManagedObjects", nil, &objs)
}

func nwfilterFromProps(path dbus.ObjectPath, props map[string]dbus.Variant) NWFilter {
	f := NWFilter{Path: path}
	f.Name, _ = props["Name"].Value().(string)
	f.UUID, _ = props["UUID"].Value().(string)
	f.BuiltIn, _ = props["BuiltIn"].Value().(bool)
	return f
}

func bindingFromProps(path dbus.ObjectPath, props map[string]dbus.Variant) NWFilterBinding {
	b := NWFilterBinding{Path: path}
	b.PortDev, _ = props["PortDev"].Value().(string)
	b.FilterName, _ = props["FilterName"].Value().(string)
	b.Mode, _ = props["Mode"].Value().(string)
	b.Reason, _ = props["Reason"].Value().(string)
	b.LearnedAddresses, _ = props["LearnedAddresses"].Value().([]string)
	return b
}

// NetworkObject is what the API says about a network: its object and
// the properties of org.netwarden1.Network.
type NetworkObject struct {
	// Path is the network's object.
	Path dbus.ObjectPath
	Network
}

// NetworkPort is what the API says about a network port: its object and
// the properties of org.netwarden1.NetworkPort.
type NetworkPort struct {
	// Path is the port's object.
	Path dbus.ObjectPath
	// Network is the object of the port's network.
	Network dbus.ObjectPath
	// UUID identifies the port.
	UUID string
	// Dev is the port's interface on the host.
	Dev string
	// MAC is the guest's MAC address.
	MAC string
	// FilterName is the bound filter, "" when none.
	FilterName string
}

// ListNetworks calls Manager.ListNetworks: the objects of the networks
// flags select (ListNetworks* flags, 0 for all).
func (c *Client) ListNetworks(ctx context.Context, flags uint32) ([]dbus.ObjectPath, error) {
	var paths []dbus.ObjectPath
	return paths, c.call(ctx, ObjectPath, ManagerInterface+".ListNetworks", []any{flags}, &paths)
}

// NetworkDefineXML calls Manager.NetworkDefineXML: defines or redefines
// a persistent network and returns its object.
func (c *Client) NetworkDefineXML(ctx context.Context, xml string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NetworkDefineXML", []any{xml}, &p)
}

// NetworkCreateXML calls Manager.NetworkCreateXML: creates and starts a
// transient network and returns its object.
func (c *Client) NetworkCreateXML(ctx context.Context, xml string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NetworkCreateXML", []any{xml}, &p)
}

// NetworkLookupByName calls Manager.NetworkLookupByName.
func (c *Client) NetworkLookupByName(ctx context.Context, name string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NetworkLookupByName", []any{name}, &p)
}

// NetworkLookupByUUID calls Manager.NetworkLookupByUUID.
func (c *Client) NetworkLookupByUUID(ctx context.Context, uuid string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, ObjectPath, ManagerInterface+".NetworkLookupByUUID", []any{uuid}, &p)
}

// LookupNetwork finds a network as virsh does: by UUID when s has the
// form of one (and such a network exists), else by name.
func (c *Client) LookupNetwork(ctx context.Context, s string) (dbus.ObjectPath, error) {
	if looksLikeUUID(s) {
		p, err := c.NetworkLookupByUUID(ctx, s)
		if err == nil || ErrorNameOf(err) != ErrorNotFound {
			return p, err
		}
	}
	return c.NetworkLookupByName(ctx, s)
}

// Network reads the properties of a network object.
func (c *Client) Network(ctx context.Context, path dbus.ObjectPath) (NetworkObject, error) {
	var props map[string]dbus.Variant
	if err := c.call(ctx, path, propertiesInterface+".GetAll", []any{NetworkInterface}, &props); err != nil {
		return NetworkObject{}, err
	}
	return networkFromProps(path, props), nil
}

// Networks returns every network with its properties, sorted by name
// (case-insensitively, as virsh sorts), in one call.
func (c *Client) Networks(ctx context.Context) ([]NetworkObject, error) {
	objs, err := c.managedObjects(ctx)
	if err != nil {
		return nil, err
	}
	var ns []NetworkObject
	for path, ifaces := range objs {
		if props, ok := ifaces[NetworkInterface]; ok {
			ns = append(ns, networkFromProps(path, props))
		}
	}
	slices.SortFunc(ns, func(a, b NetworkObject) int { return compareFold(a.Name, b.Name) })
	return ns, nil
}

// NetworkCreate calls Create on a network object: starts it.
func (c *Client) NetworkCreate(ctx context.Context, path dbus.ObjectPath) error {
	return c.call(ctx, path, NetworkInterface+".Create", nil)
}

// NetworkDestroy calls Destroy on a network object: stops it.
func (c *Client) NetworkDestroy(ctx context.Context, path dbus.ObjectPath) error {
	return c.call(ctx, path, NetworkInterface+".Destroy", nil)
}

// NetworkUndefine calls Undefine on a network object.
func (c *Client) NetworkUndefine(ctx context.Context, path dbus.ObjectPath) error {
	return c.call(ctx, path, NetworkInterface+".Undefine", nil)
}

// NetworkSetAutostart sets a network's Autostart property.
func (c *Client) NetworkSetAutostart(ctx context.Context, path dbus.ObjectPath, autostart bool) error {
	return c.call(ctx, path, propertiesInterface+".Set", []any{NetworkInterface, "Autostart", dbus.MakeVariant(autostart)})
}

// NetworkGetXMLDesc calls GetXMLDesc on a network object; flags: 0 or
// NetworkXMLInactive.
func (c *Client) NetworkGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error) {
	var s string
	return s, c.call(ctx, path, NetworkInterface+".GetXMLDesc", []any{flags}, &s)
}

// NetworkGetDHCPLeases calls GetDHCPLeases on a network object: its
// leases, those of mac only unless it is "". flags must be 0.
func (c *Client) NetworkGetDHCPLeases(ctx context.Context, path dbus.ObjectPath, mac string, flags uint32) ([]Lease, error) {
	var ls []Lease
	return ls, c.call(ctx, path, NetworkInterface+".GetDHCPLeases", []any{mac, flags}, &ls)
}

// NetworkListPorts calls ListPorts on a network object. flags must be 0.
func (c *Client) NetworkListPorts(ctx context.Context, path dbus.ObjectPath, flags uint32) ([]dbus.ObjectPath, error) {
	var paths []dbus.ObjectPath
	return paths, c.call(ctx, path, NetworkInterface+".ListPorts", []any{flags}, &paths)
}

// NetworkPortCreateXML calls PortCreateXML on a network object: creates
// a port and returns its object. flags: 0 or PortCreateValidate.
func (c *Client) NetworkPortCreateXML(ctx context.Context, path dbus.ObjectPath, xml string, flags uint32) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, path, NetworkInterface+".PortCreateXML", []any{xml, flags}, &p)
}

// NetworkPortLookupByUUID calls PortLookupByUUID on a network object.
func (c *Client) NetworkPortLookupByUUID(ctx context.Context, path dbus.ObjectPath, uuid string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	return p, c.call(ctx, path, NetworkInterface+".PortLookupByUUID", []any{uuid}, &p)
}

// NetworkPort reads the properties of a port object.
func (c *Client) NetworkPort(ctx context.Context, path dbus.ObjectPath) (NetworkPort, error) {
	var props map[string]dbus.Variant
	if err := c.call(ctx, path, propertiesInterface+".GetAll", []any{NetworkPortInterface}, &props); err != nil {
		return NetworkPort{}, err
	}
	return portFromProps(path, props), nil
}

// NetworkPorts returns the ports of the network at path with their
// properties, sorted by UUID, in one call (GetManagedObjects).
func (c *Client) NetworkPorts(ctx context.Context, network dbus.ObjectPath) ([]NetworkPort, error) {
	objs, err := c.managedObjects(ctx)
	if err != nil {
		return nil, err
	}
	var ps []NetworkPort
	for path, ifaces := range objs {
		if props, ok := ifaces[NetworkPortInterface]; ok {
			if p := portFromProps(path, props); p.Network == network {
				ps = append(ps, p)
			}
		}
	}
	slices.SortFunc(ps, func(a, b NetworkPort) int { return strings.Compare(a.UUID, b.UUID) })
	return ps, nil
}

// NetworkPortGetXMLDesc calls GetXMLDesc on a port object. flags must
// be 0.
func (c *Client) NetworkPortGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error) {
	var s string
	return s, c.call(ctx, path, NetworkPortInterface+".GetXMLDesc", []any{flags}, &s)
}

// NetworkPortDelete calls Delete on a port object.
func (c *Client) NetworkPortDelete(ctx context.Context, path dbus.ObjectPath) error {
	return c.call(ctx, path, NetworkPortInterface+".Delete", nil)
}

func networkFromProps(path dbus.ObjectPath, props map[string]dbus.Variant) NetworkObject {
	n := NetworkObject{Path: path}
	n.Name, _ = props["Name"].Value().(string)
	n.UUID, _ = props["UUID"].Value().(string)
	n.Active, _ = props["Active"].Value().(bool)
	n.Persistent, _ = props["Persistent"].Value().(bool)
	n.Autostart, _ = props["Autostart"].Value().(bool)
	n.Bridge, _ = props["Bridge"].Value().(string)
	n.Status, _ = props["Status"].Value().(string)
	return n
}

func portFromProps(path dbus.ObjectPath, props map[string]dbus.Variant) NetworkPort {
	p := NetworkPort{Path: path}
	p.Network, _ = props["Network"].Value().(dbus.ObjectPath)
	p.UUID, _ = props["UUID"].Value().(string)
	p.Dev, _ = props["Dev"].Value().(string)
	p.MAC, _ = props["MAC"].Value().(string)
	p.FilterName, _ = props["FilterName"].Value().(string)
	return p
}

// EventKind says which of the Manager's signals an Event is.
type EventKind int

// Kinds of Event.
const (
	// NWFilterEventKind: an NWFilterEvent (Event is NWFilterEventDefined
	// or NWFilterEventUndefined).
	NWFilterEventKind EventKind = iota
	// NWFilterBindingEventKind: an NWFilterBindingEvent (Event is
	// NWFilterBindingEventCreated or NWFilterBindingEventDeleted).
	NWFilterBindingEventKind
	// NetworkEventKind: a NetworkEvent (Event is one of the
	// NetworkEvent* values).
	NetworkEventKind
)

// Event is one lifecycle signal of the daemon.
type Event struct {
	// Kind is the signal.
	Kind EventKind
	// Object is the filter's or the binding's object.
	Object dbus.ObjectPath
	// Event is the lifecycle number the signal carried.
	Event int32
	// Name is the filter's or network's name, or the binding's port;
	// for a filter or network whose name could not be learned, its
	// UUID.
	Name string
}

// WatchEvents subscribes to the daemon's NWFilterEvent,
// NWFilterBindingEvent and NetworkEvent signals and calls fn with each,
// in order, until fn
// returns false (WatchEvents returns nil), ctx is done (it returns
// ctx.Err()) or the connection is lost. ready, if not nil, is called
// once the subscription is in place. Filter and network names are
// learned from GetManagedObjects at the start (when the caller may read)
// and from InterfacesAdded, so an undefined filter or a destroyed
// transient network is still reported by name.
func (c *Client) WatchEvents(ctx context.Context, ready func(), fn func(Event) bool) error {
	ch := make(chan *dbus.Signal, 256)
	c.conn.Signal(ch)
	defer c.conn.RemoveSignal(ch)
	opts := []dbus.MatchOption{dbus.WithMatchSender(BusName), dbus.WithMatchObjectPath(ObjectPath)}
	if err := c.conn.AddMatchSignalContext(ctx, opts...); err != nil {
		return fmt.Errorf("subscribe to the daemon's signals: %w", err)
	}
	defer func() { _ = c.conn.RemoveMatchSignal(opts...) }()

	// The filters' names, for events of filters that are gone by the
	// time the event is handled. This call also finds out whether the
	// daemon is there at all; a caller who may not read still gets the
	// events, with names looked up as they come.
	names := map[dbus.ObjectPath]string{}
	objs, err := c.managedObjects(ctx)
	if err != nil && ErrorNameOf(err) != ErrorAccessDenied {
		return err
	}
	for path, ifaces := range objs {
		rememberName(names, path, ifaces)
	}
	if ready != nil {
		ready()
	}
	for {
		var s *dbus.Signal
		select {
		case <-ctx.Done():
			return ctx.Err()
		case s = <-ch:
		}
		if s == nil {
			return errors.New("lost the connection to the system bus")
		}
		if s.Path != ObjectPath {
			continue
		}
		switch s.Name {
		case objectManagerInterface + ".InterfacesAdded":
			var path dbus.ObjectPath
			var ifaces map[string]map[string]dbus.Variant
			if dbus.Store(s.Body, &path, &ifaces) == nil {
				rememberName(names, path, ifaces)
			}
		case ManagerInterface + ".NWFilterEvent", ManagerInterface + ".NWFilterBindingEvent", ManagerInterface + ".NetworkEvent":
			var ev Event
			if dbus.Store(s.Body, &ev.Object, &ev.Event) != nil {
				continue
			}
			switch s.Name {
			case ManagerInterface + ".NWFilterEvent":
				ev.Kind = NWFilterEventKind
				ev.Name = c.filterName(ctx, names, ev.Object)
			case ManagerInterface + ".NWFilterBindingEvent":
				ev.Kind = NWFilterBindingEventKind
				ev.Name, _ = bindingPort(ev.Object)
			default:
				ev.Kind = NetworkEventKind
				ev.Name = c.networkName(ctx, names, ev.Object)
			}
			if !fn(ev) {
				return nil
			}
		}
	}
}

// filterName returns the name of the filter at path: from names, else
// from the object (remembering it), else its UUID.
func (c *Client) filterName(ctx context.Context, names map[dbus.ObjectPath]string, path dbus.ObjectPath) string {
	if n, ok := names[path]; ok && n != "" {
		return n
	}
	if f, err := c.NWFilter(ctx, path); err == nil && f.Name != "" {
		names[path] = f.Name
		return f.Name
	}
	uuid, _ := nwfilterUUID(path)
	return uuid
}

// rememberName keeps the name of a filter or network object.
func rememberName(names map[dbus.ObjectPath]string, path dbus.ObjectPath, ifaces map[string]map[string]dbus.Variant) {
	if props, ok := ifaces[NWFilterInterface]; ok {
		names[path] = nwfilterFromProps(path, props).Name
	}
	if props, ok := ifaces[NetworkInterface]; ok {
		names[path] = networkFromProps(path, props).Name
	}
}

// networkName returns the name of the network at path: from names, else
// from the object (remembering it), else its UUID.
func (c *Client) networkName(ctx context.Context, names map[dbus.ObjectPath]string, path dbus.ObjectPath) string {
	if n, ok := names[path]; ok && n != "" {
		return n
	}
	if n, err := c.Network(ctx, path); err == nil && n.Name != "" {
		names[path] = n.Name
		return n.Name
	}
	uuid, _ := NetworkUUIDOf(path)
	return uuid
}

// NetworkUUIDOf returns the UUID a network object path stands for, and
// false if path is not a network's path.
func NetworkUUIDOf(path dbus.ObjectPath) (string, bool) {
	kind, uuid, _ := parseNetworkPath(path)
	return uuid, kind == networkObject
}

// NetworkPortUUIDOf returns the UUID of the port a port object path
// stands for, and false if path is not a port's path.
func NetworkPortUUIDOf(path dbus.ObjectPath) (string, bool) {
	kind, _, uuid := parseNetworkPath(path)
	return uuid, kind == networkPortObject
}

// NWFilterBindingPortOf returns the port a binding object path stands
// for, and false if path is not a binding's path.
func NWFilterBindingPortOf(path dbus.ObjectPath) (string, bool) { return bindingPort(path) }

// NWFilterUUIDOf returns the UUID a filter object path stands for, and
// false if path is not a filter's path.
func NWFilterUUIDOf(path dbus.ObjectPath) (string, bool) { return nwfilterUUID(path) }
