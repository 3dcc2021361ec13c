package dbusapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// Manager is the daemon core as the API sees it: filters and bindings as
// XML in and out. Calls arrive on D-Bus goroutines, concurrently: an
// implementation must be safe for that. Every method other than Version
// ends when ctx does; a failed change must leave the state as it was.
//
// Errors are told apart by type and kind, never by text: the policy
// package's typed errors, and ErrNotFound, ErrExists, ErrInUse and
// ErrInvalidArgument (see Mark); anything else is reported as Failed.
type Manager interface {
	// Version returns the daemon's version, served as the read-only,
	// constant Version property.
	Version() string
	// Backend returns the name of the kernel backend (nftables), served
	// as the constant Backend property.
	Backend() string
	// StatefulFiltering returns how rules that need connection tracking
	// are enforced ("br_netfilter" or "bridge"; "" while starting),
	// served as the StatefulFiltering property.
	StatefulFiltering() string
	// FirewalldRunning reports whether firewalld owns its bus name,
	// served as the FirewalldRunning property (PropertiesChanged).
	FirewalldRunning() bool
	// LastFirewallReapply is when the last re-apply completed (after a
	// firewalld reload or restart, a change to netwarden's tables by
	// someone else, or SIGHUP); zero before the first. Served as the
	// LastFirewallReapply property in microseconds since the epoch
	// (PropertiesChanged), so clients can wait for it to advance.
	LastFirewallReapply() time.Time
	// Restores counts the re-applies that found netwarden's kernel
	// state damaged and restored it, served as the Restores property
	// (PropertiesChanged).
	Restores() uint64

	// Filters returns every filter in force (built-ins included),
	// sorted by name.
	Filters(ctx context.Context) ([]Filter, error)
	// LookupFilter returns the filter called name, or ErrNotFound.
	LookupFilter(ctx context.Context, name string) (Filter, error)
	// LookupFilterByUUID returns the filter with the given UUID, or
	// ErrNotFound.
	LookupFilterByUUID(ctx context.Context, uuid string) (Filter, error)
	// DefineFilter defines or redefines a filter from nwfilter XML and
	// reports whether its name was new. A Filter with a Name returned
	// together with an error means the definition was stored but could
	// not be enforced.
	DefineFilter(ctx context.Context, xml string) (f Filter, created bool, err error)
	// UndefineFilter removes the user's definition of name.
	UndefineFilter(ctx context.Context, name string) error

	// Bindings returns every binding, sorted by port.
	Bindings(ctx context.Context) ([]Binding, error)
	// LookupBinding returns the binding of port, or ErrNotFound.
	LookupBinding(ctx context.Context, port string) (Binding, error)
	// CreateBinding creates and enforces a binding from
	// nwfilter-binding XML.
	CreateBinding(ctx context.Context, xml string) (Binding, error)
	// DeleteBinding removes the binding of port.
	DeleteBinding(ctx context.Context, port string) error

	NetworkManager
	Doctorer
}

// Filter is what the API shows of one filter.
type Filter struct {
	// Name and UUID identify the filter.
	Name, UUID string
	// BuiltIn is true when the shipped definition is in force (not a
	// user's definition, nor a user's override of a built-in).
	BuiltIn bool
	// XML is the definition in libvirt's nwfilter XML.
	XML string
}

// Binding is what the API shows of one filter binding.
type Binding struct {
	// PortDev is the port's interface name.
	PortDev string
	// FilterName is the bound filter.
	FilterName string
	// Mode is how the port is filtered: "enforce", "drop-all" or
	// "learning" (only what address learning needs passes).
	Mode string
	// Reason explains drop-all; "" otherwise.
	Reason string
	// LearnedAddresses are the addresses learned for the filter's $IP
	// and $IPV6 (CTRL_IP_LEARNING any or dhcp), sorted.
	LearnedAddresses []string
	// XML is the binding in libvirt's nwfilter-binding XML.
	XML string
}

// Options are Export's optional settings; the zero value is valid.
type Options struct {
	// Authorizer decides on every call but Introspect, Peer and the
	// Manager's Version; nil means a PolkitAuthorizer on the connection.
	Authorizer Authorizer
	// Logger receives what the API cannot return to a caller (signals
	// that could not be sent); nil means slog.Default().
	Logger *slog.Logger
	// CallTimeout bounds each call, authorization included (but for an
	// interactive authorization, see DefaultInteractiveAuthTimeout); zero
	// means DefaultCallTimeout.
	CallTimeout time.Duration
	// OnCall, if set, is called when an authorized call (every call
	// but Introspect, Peer and the manager object's properties) begins,
	// before authorization; the function it returns, if not nil, when
	// the call ends. The daemon uses it to tell when it is idle.
	OnCall func() (done func())
}

// DefaultCallTimeout bounds one API call when Options.CallTimeout is
// zero. It is longer than a client's usual 25 s, so that a client gives
// up first.
const DefaultCallTimeout = 60 * time.Second

// Server is netwardend's API exported on one bus connection. It is made
// by Export and ends with Unexport; it does not own the connection.
type Server struct {
	conn    *dbus.Conn
	m       Manager
	auth    Authorizer
	log     *slog.Logger
	timeout time.Duration
	onCall  func() func()
	props   *properties
	emit    emitter
	// ctx ends at Unexport, so that calls waiting for the core give up.
	ctx    context.Context
	cancel context.CancelFunc
}

// managerChildren are the child nodes of the manager object.
var managerChildren = []string{"nwfilter", "nwfilter_binding", "network"}

// export is one interface exported at one path, for a whole subtree or
// not.
type export struct {
	v       any
	path    dbus.ObjectPath
	iface   string
	subtree bool
}

// Export exports the API on conn, serving m: the manager object at
// ObjectPath, and the filter, binding, network and port objects below
// NWFilterPathPrefix, NWFilterBindingPathPrefix and NetworkPathPrefix,
// which exist exactly while their filter, binding, network or port does
// (they are looked up at every call).
// It does not take BusName: call RequestName after Export, so the
// objects are there as soon as clients can see the name.
func Export(conn *dbus.Conn, m Manager, opts Options) (*Server, error) {
	if m == nil {
		return nil, errors.New("export API: no Manager")
	}
	specs := managerObjectSpecs(m)
	xmlDoc, err := introspectionXML(specs, managerChildren...)
	if err != nil {
		return nil, fmt.Errorf("export API: %w", err)
	}
	s := &Server{conn: conn, m: m, auth: opts.Authorizer, log: opts.Logger, timeout: opts.CallTimeout, onCall: opts.OnCall, emit: conn}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.auth == nil {
		s.auth = NewPolkitAuthorizer(conn, s.log)
	}
	if s.timeout <= 0 {
		s.timeout = DefaultCallTimeout
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.props = &properties{path: ObjectPath, ifaces: specs, emit: conn}
	filters := &nwfilterObjects{s: s}
	bindings := &bindingObjects{s: s}
	for _, e := range s.exports(xmlDoc, filters, bindings) {
		var err error
		if e.subtree {
			err = conn.ExportSubtree(e.v, e.path, e.iface)
		} else {
			err = conn.Export(e.v, e.path, e.iface)
		}
		if err != nil {
			s.Unexport()
			return nil, fmt.Errorf("export %s on %s: %w", e.iface, e.path, err)
		}
	}
	// org.freedesktop.DBus.Peer is answered by the connection itself.
	return s, nil
}

// exports lists what Export exports; Unexport removes the same.
func (s *Server) exports(xmlDoc string, filters *nwfilterObjects, bindings *bindingObjects) []export {
	return []export{
		{introspect.Introspectable(xmlDoc), ObjectPath, introspectableInterface, false},
		{s.props, ObjectPath, propertiesInterface, false},
		{&managerObject{s: s}, ObjectPath, ManagerInterface, false},
		{&objectManager{s: s}, ObjectPath, objectManagerInterface, false},
		{&subtreeIntrospectable{s: s, root: NWFilterPathPrefix}, NWFilterPathPrefix, introspectableInterface, true},
		{&subtreeProperties{s: s, root: NWFilterPathPrefix}, NWFilterPathPrefix, propertiesInterface, true},
		{filters, NWFilterPathPrefix, NWFilterInterface, true},
		{&subtreeIntrospectable{s: s, root: NWFilterBindingPathPrefix}, NWFilterBindingPathPrefix, introspectableInterface, true},
		{&subtreeProperties{s: s, root: NWFilterBindingPathPrefix}, NWFilterBindingPathPrefix, propertiesInterface, true},
		{bindings, NWFilterBindingPathPrefix, NWFilterBindingInterface, true},
		{&subtreeIntrospectable{s: s, root: NetworkPathPrefix}, NetworkPathPrefix, introspectableInterface, true},
		{&subtreeProperties{s: s, root: NetworkPathPrefix}, NetworkPathPrefix, propertiesInterface, true},
		{&networkObjects{s: s}, NetworkPathPrefix, NetworkInterface, true},
		{&portObjects{s: s}, NetworkPathPrefix, NetworkPortInterface, true},
	}
}

// managerObjectSpecs are the interfaces of the manager object, in
// introspection order.
func managerObjectSpecs(m Manager) []ifaceSpec {
	return append(standardSpecs(), objectManagerSpec, managerSpec(m))
}

// Unexport removes the exported objects from the connection and makes
// calls still waiting for the core fail. Calls already being handled
// finish; later ones fail with UnknownInterface. It is safe to call more
// than once.
func (s *Server) Unexport() {
	s.cancel()
	for _, e := range s.exports("", nil, nil) {
		// Export(nil, …) only fails for an invalid path, and ours are valid.
		_ = s.conn.Export(nil, e.path, e.iface)
	}
}

// PropertiesChanged emits org.freedesktop.DBus.Properties.PropertiesChanged
// for the named properties of iface on the manager object, with their
// current values. Naming a constant property is an error.
func (s *Server) PropertiesChanged(iface string, names ...string) error {
	return s.props.changed(iface, names...)
}

// call runs one API call about no particular object (a list, say): it
// authorizes the caller for action, then runs fn, both bounded by the
// call timeout, and turns an error into the D-Bus error the caller
// receives.
func (s *Server) call(c caller, action string, fn func(ctx context.Context) error) *dbus.Error {
	return s.callOn(c, action, nil, fn)
}

// callOn runs one API call about an object: resolve (if not nil) finds
// the object and its details, then the caller is authorized for action
// with them, and only then does fn run — nothing changes before the
// caller is authorized. A refusal wins over resolve's error (so a caller
// not allowed learns nothing of what exists). All three are bounded by
// the call timeout, except the authorization of an interactive call,
// which may wait DefaultInteractiveAuthTimeout for someone to
// authenticate; fn then gets a call timeout of its own.
func (s *Server) callOn(c caller, action string, resolve resolver, fn func(ctx context.Context) error) *dbus.Error {
	if s.onCall != nil {
		if done := s.onCall(); done != nil {
			defer done()
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	var d details
	var rerr error
	if resolve != nil {
		d, rerr = resolve(ctx)
	}
	actx := ctx
	if c.interactive {
		var acancel context.CancelFunc
		actx, acancel = context.WithTimeout(s.ctx, DefaultInteractiveAuthTimeout+s.timeout)
		defer acancel()
	}
	req := AuthRequest{Sender: string(c.sender), Action: action, Details: d, Interactive: c.interactive}
	if len(req.Details) == 0 {
		req.Details = nil
	}
	if err := s.auth.Authorize(actx, req); err != nil {
		return dbusError(err)
	}
	if rerr != nil {
		return dbusError(rerr)
	}
	if c.interactive {
		// The call's own time starts after the authorization.
		fctx, fcancel := context.WithTimeout(s.ctx, s.timeout)
		defer fcancel()
		return dbusError(fn(fctx))
	}
	return dbusError(fn(ctx))
}

// signal emits a signal, logging (not returning) a failure: the change
// it reports has happened.
func (s *Server) signal(path dbus.ObjectPath, name string, values ...any) {
	if err := s.emit.Emit(path, name, values...); err != nil {
		s.log.Warn("cannot emit signal", "path", path, "signal", name, "error", err)
	}
}

// checkFlags refuses flags outside allowed, as libvirt does.
func checkFlags(flags, allowed uint32) error {
	if flags&^allowed != 0 {
		return Mark(fmt.Errorf("unsupported flags 0x%x", flags&^allowed), ErrInvalidArgument)
	}
	return nil
}
