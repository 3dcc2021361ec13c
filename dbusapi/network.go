package dbusapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
)

// The network and port objects are served like the filter objects (see
// objects.go): one handler per interface for the whole subtree below
// NetworkPathPrefix, which reads the path of each call and asks the
// Manager. A network's ports are below its object, at
// NetworkPortPath(network UUID, port UUID).

// ListNetworks returns the objects of the networks that flags select
// (see MatchNetwork; 0 selects all).
func (o *managerObject) ListNetworks(sender dbus.Sender, msg dbus.Message, flags uint32) ([]dbus.ObjectPath, *dbus.Error) {
	var paths []dbus.ObjectPath
	derr := o.s.call(callerOf(sender, msg), polkit.ActionNetworkRead, func(ctx context.Context) error {
		if err := checkFlags(flags, listNetworksAll); err != nil {
			return err
		}
		ns, err := o.s.m.Networks(ctx)
		if err != nil {
			return err
		}
		paths = []dbus.ObjectPath{}
		for _, n := range ns {
			if MatchNetwork(n, flags) {
				paths = append(paths, NetworkPath(n.UUID))
			}
		}
		return nil
	})
	return paths, derr
}

// NetworkDefineXML defines or redefines a persistent network and
// returns its object. libvirt-dbus's call has no flags argument, nor has
// this one.
func (o *managerObject) NetworkDefineXML(sender dbus.Sender, msg dbus.Message, xml string) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkManage, func(ctx context.Context) (details, error) {
		return o.s.networkXMLDetails(ctx, xml), nil
	}, func(ctx context.Context) error {
		before := o.s.networksByUUID(ctx)
		n, created, err := o.s.m.DefineNetwork(ctx, xml)
		if err != nil {
			return err
		}
		path = NetworkPath(n.UUID)
		if old, ok := before[path]; ok && !created {
			o.s.networkPropertiesChanged(old, n)
		} else {
			o.s.networkAdded(n)
		}
		o.s.networkEvent(path, NetworkEventDefined)
		return nil
	})
	return path, derr
}

// NetworkCreateXML creates and starts a transient network and returns
// its object. libvirt-dbus's call has no flags argument, nor has this
// one.
func (o *managerObject) NetworkCreateXML(sender dbus.Sender, msg dbus.Message, xml string) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkManage, func(ctx context.Context) (details, error) {
		return o.s.networkXMLDetails(ctx, xml), nil
	}, func(ctx context.Context) error {
		before := o.s.networksByUUID(ctx)
		n, err := o.s.m.CreateNetwork(ctx, xml)
		if err != nil {
			return err
		}
		path = NetworkPath(n.UUID)
		if old, ok := before[path]; ok {
			o.s.networkPropertiesChanged(old, n)
		} else {
			o.s.networkAdded(n)
		}
		o.s.networkEvent(path, NetworkEventStarted)
		return nil
	})
	return path, derr
}

// NetworkLookupByName returns the object of the network called name.
func (o *managerObject) NetworkLookupByName(sender dbus.Sender, msg dbus.Message, name string) (dbus.ObjectPath, *dbus.Error) {
	var n Network
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkRead, func(ctx context.Context) (details, error) {
		var err error
		if n, err = o.s.m.LookupNetwork(ctx, name); err != nil {
			return details{}.add(polkit.DetailNetworkName, name), err
		}
		return networkDetails(n), nil
	}, noop)
	if derr != nil {
		return "", derr
	}
	return NetworkPath(n.UUID), nil
}

// NetworkLookupByUUID returns the object of the network with the given
// UUID (any case).
func (o *managerObject) NetworkLookupByUUID(sender dbus.Sender, msg dbus.Message, uuid string) (dbus.ObjectPath, *dbus.Error) {
	var n Network
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkRead, func(ctx context.Context) (details, error) {
		var err error
		if n, err = o.s.m.LookupNetworkByUUID(ctx, uuid); err != nil {
			return details{}.add(polkit.DetailNetworkUUID, strings.ToLower(uuid)), err
		}
		return networkDetails(n), nil
	}, noop)
	if derr != nil {
		return "", derr
	}
	return NetworkPath(n.UUID), nil
}

// networksByUUID returns the networks by object path, to compare with
// after a change; nil if they cannot be read (the change then reports
// its network as new).
func (s *Server) networksByUUID(ctx context.Context) map[dbus.ObjectPath]Network {
	ns, err := s.m.Networks(ctx)
	if err != nil {
		return nil
	}
	m := make(map[dbus.ObjectPath]Network, len(ns))
	for _, n := range ns {
		m[NetworkPath(n.UUID)] = n
	}
	return m
}

// lookupNetworkAt returns the network whose object is path, or an
// UnknownObject error.
func (s *Server) lookupNetworkAt(ctx context.Context, path dbus.ObjectPath) (Network, error) {
	kind, uuid, _ := parseNetworkPath(path)
	if kind != networkObject {
		return Network{}, notFoundAt(path)
	}
	return s.lookupNetworkByPath(ctx, uuid, path)
}

// lookupNetworkByPath returns the network with the given UUID if its
// object is path, else an UnknownObject error.
func (s *Server) lookupNetworkByPath(ctx context.Context, uuid string, path dbus.ObjectPath) (Network, error) {
	n, err := s.m.LookupNetworkByUUID(ctx, uuid)
	if ErrorName(err) == ErrorNotFound || err == nil && NetworkPath(n.UUID) != path {
		return Network{}, notFoundAt(path)
	}
	return n, err
}

// lookupPortAt returns the port whose object is path, or an
// UnknownObject error.
func (s *Server) lookupPortAt(ctx context.Context, path dbus.ObjectPath) (Port, error) {
	kind, netUUID, portUUID := parseNetworkPath(path)
	if kind != networkPortObject {
		return Port{}, notFoundAt(path)
	}
	n, err := s.lookupNetworkByPath(ctx, netUUID, NetworkPath(netUUID))
	if err != nil {
		if ErrorName(err) == ErrorUnknownObject {
			return Port{}, notFoundAt(path)
		}
		return Port{}, err
	}
	p, err := s.m.LookupPort(ctx, n.Name, portUUID)
	if ErrorName(err) == ErrorNotFound || err == nil && portPath(n, p) != path {
		return Port{}, notFoundAt(path)
	}
	return withNetwork(n, p), err
}

// networkAt returns a resolver for the network at path, which it stores
// in *n.
func (s *Server) networkAt(path dbus.ObjectPath, n *Network) resolver {
	return func(ctx context.Context) (details, error) {
		var err error
		if *n, err = s.lookupNetworkAt(ctx, path); err != nil {
			_, uuid, _ := parseNetworkPath(path)
			return details{}.add(polkit.DetailNetworkUUID, uuid), err
		}
		return networkDetails(*n), nil
	}
}

// portAt returns a resolver for the port at path, which it stores in *p.
func (s *Server) portAt(path dbus.ObjectPath, p *Port) resolver {
	return func(ctx context.Context) (details, error) {
		var err error
		if *p, err = s.lookupPortAt(ctx, path); err != nil {
			_, netUUID, portUUID := parseNetworkPath(path)
			return details{}.add(polkit.DetailNetworkUUID, netUUID).add(polkit.DetailPortUUID, portUUID), err
		}
		return portDetails(*p), nil
	}
}

// portPath returns the object of port p of network n.
func portPath(n Network, p Port) dbus.ObjectPath {
	return NetworkPortPath(n.UUID, p.UUID)
}

// withNetwork returns p with its network's name and UUID filled in from
// n, which the port's object and properties are made of.
func withNetwork(n Network, p Port) Port {
	p.Network, p.NetworkUUID = n.Name, n.UUID
	return p
}

// networkSpecAt is networkSpec for the network whose object is path,
// with Autostart writable.
func (s *Server) networkSpecAt(n Network, path dbus.ObjectPath) ifaceSpec {
	return networkSpec(n, func(c caller, autostart bool) *dbus.Error {
		var n Network
		return s.callOn(c, polkit.ActionNetworkManage, s.networkAt(path, &n), func(ctx context.Context) error {
			if err := s.m.SetNetworkAutostart(ctx, n.Name, autostart); err != nil {
				return err
			}
			s.networkChanged(ctx, n)
			return nil
		})
	})
}

// networkAdded announces a new network object.
func (s *Server) networkAdded(n Network) {
	s.signal(ObjectPath, objectManagerInterface+".InterfacesAdded", NetworkPath(n.UUID),
		map[string]map[string]dbus.Variant{NetworkInterface: propertyValues(networkSpec(n, nil))})
}

// networkEvent emits the Manager's NetworkEvent.
func (s *Server) networkEvent(path dbus.ObjectPath, event int32) {
	s.signal(ObjectPath, ManagerInterface+".NetworkEvent", path, event)
}

// networkChanged announces what became of network before after a
// change: InterfacesRemoved if it is gone (with its ports'), else
// PropertiesChanged for the properties that changed.
func (s *Server) networkChanged(ctx context.Context, before Network) {
	path := NetworkPath(before.UUID)
	after, err := s.m.LookupNetworkByUUID(ctx, before.UUID)
	switch {
	case ErrorName(err) == ErrorNotFound:
		s.signal(ObjectPath, objectManagerInterface+".InterfacesRemoved", path, []string{NetworkInterface})
	case err != nil:
		s.log.Warn("cannot read a changed network; no PropertiesChanged", "network", before.Name, "error", err)
	default:
		s.networkPropertiesChanged(before, after)
	}
}

// networkPropertiesChanged emits PropertiesChanged for the properties
// of the network that differ between before and after, if any.
func (s *Server) networkPropertiesChanged(before, after Network) {
	var names []string
	if before.Active != after.Active {
		names = append(names, "Active")
	}
	if before.Persistent != after.Persistent {
		names = append(names, "Persistent")
	}
	if before.Autostart != after.Autostart {
		names = append(names, "Autostart")
	}
	if before.Bridge != after.Bridge {
		names = append(names, "Bridge")
	}
	if len(names) == 0 {
		return
	}
	p := &properties{path: NetworkPath(after.UUID), ifaces: []ifaceSpec{networkSpec(after, nil)}, emit: s.emit}
	if err := p.changed(NetworkInterface, names...); err != nil {
		s.log.Warn("cannot emit signal", "path", p.path, "signal", "PropertiesChanged", "error", err)
	}
}

// portsGone emits InterfacesRemoved for the ports of before that no
// longer exist (after their network stopped).
func (s *Server) portsGone(ctx context.Context, n Network, before []Port) {
	for _, p := range before {
		if _, err := s.m.LookupPort(ctx, n.Name, p.UUID); ErrorName(err) == ErrorNotFound {
			s.signal(ObjectPath, objectManagerInterface+".InterfacesRemoved", portPath(n, p), []string{NetworkPortInterface})
		}
	}
}

// networkObjects serves NetworkInterface on every network object, like
// nwfilterObjects.
type networkObjects struct {
	s *Server
}

// Create starts the network (libvirt's virNetworkCreate).
func (o *networkObjects) Create(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	var n Network
	return o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkManage, o.s.networkAt(callPath(msg), &n), func(ctx context.Context) error {
		if err := o.s.m.StartNetwork(ctx, n.Name); err != nil {
			return err
		}
		o.s.networkChanged(ctx, n)
		o.s.networkEvent(NetworkPath(n.UUID), NetworkEventStarted)
		return nil
	})
}

// Destroy stops the network; a transient network is gone afterwards.
func (o *networkObjects) Destroy(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	var n Network
	return o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkManage, o.s.networkAt(callPath(msg), &n), func(ctx context.Context) error {
		ports, _ := o.s.m.Ports(ctx, n.Name)
		if err := o.s.m.DestroyNetwork(ctx, n.Name); err != nil {
			return err
		}
		o.s.portsGone(ctx, n, ports)
		o.s.networkChanged(ctx, n)
		o.s.networkEvent(NetworkPath(n.UUID), NetworkEventStopped)
		return nil
	})
}

// Undefine removes the network's persistent definition.
func (o *networkObjects) Undefine(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	var n Network
	return o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkManage, o.s.networkAt(callPath(msg), &n), func(ctx context.Context) error {
		if err := o.s.m.UndefineNetwork(ctx, n.Name); err != nil {
			return err
		}
		o.s.networkChanged(ctx, n)
		o.s.networkEvent(NetworkPath(n.UUID), NetworkEventUndefined)
		return nil
	})
}

// GetXMLDesc returns the network's XML: the live definition, or with
// NetworkXMLInactive the persistent one.
func (o *networkObjects) GetXMLDesc(sender dbus.Sender, msg dbus.Message, flags uint32) (string, *dbus.Error) {
	var xml string
	var n Network
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkRead, o.s.networkAt(callPath(msg), &n), func(ctx context.Context) error {
		if err := checkFlags(flags, NetworkXMLInactive); err != nil {
			return err
		}
		var err error
		xml, err = o.s.m.NetworkXML(ctx, n.Name, flags&NetworkXMLInactive != 0)
		return err
	})
	return xml, derr
}

// GetDHCPLeases returns the network's DHCP leases, only those of mac
// unless it is "". No flags are defined (as in libvirt's
// virNetworkGetDHCPLeases).
func (o *networkObjects) GetDHCPLeases(sender dbus.Sender, msg dbus.Message, mac string, flags uint32) ([]Lease, *dbus.Error) {
	var leases []Lease
	var n Network
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkRead, o.s.networkAt(callPath(msg), &n), func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		var err error
		leases, err = o.s.m.NetworkLeases(ctx, n.Name, mac)
		if leases == nil {
			leases = []Lease{}
		}
		return err
	})
	return leases, derr
}

// ListPorts returns the objects of the network's ports. No flags are
// defined (as in libvirt's virNetworkListAllPorts).
func (o *networkObjects) ListPorts(sender dbus.Sender, msg dbus.Message, flags uint32) ([]dbus.ObjectPath, *dbus.Error) {
	var paths []dbus.ObjectPath
	var n Network
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkRead, o.s.networkAt(callPath(msg), &n), func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		ps, err := o.s.m.Ports(ctx, n.Name)
		if err != nil {
			return err
		}
		paths = make([]dbus.ObjectPath, 0, len(ps))
		for _, p := range ps {
			paths = append(paths, portPath(n, p))
		}
		return nil
	})
	return paths, derr
}

// PortCreateXML creates a port on the network and returns its object
// once it is plugged and filtered. flags: 0 or PortCreateValidate.
func (o *networkObjects) PortCreateXML(sender dbus.Sender, msg dbus.Message, xml string, flags uint32) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	var n Network
	resolve := func(ctx context.Context) (details, error) {
		d, err := o.s.networkAt(callPath(msg), &n)(ctx)
		if err != nil {
			return d, err
		}
		return portXMLDetails(n, xml), nil
	}
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkManage, resolve, func(ctx context.Context) error {
		if err := checkFlags(flags, PortCreateValidate); err != nil {
			return err
		}
		p, err := o.s.m.CreatePort(ctx, n.Name, xml)
		if err != nil {
			return err
		}
		path = portPath(n, p)
		o.s.signal(ObjectPath, objectManagerInterface+".InterfacesAdded", path,
			map[string]map[string]dbus.Variant{NetworkPortInterface: propertyValues(networkPortSpec(withNetwork(n, p)))})
		return nil
	})
	return path, derr
}

// PortLookupByUUID returns the object of the network's port with the
// given UUID (any case).
func (o *networkObjects) PortLookupByUUID(sender dbus.Sender, msg dbus.Message, uuid string) (dbus.ObjectPath, *dbus.Error) {
	var n Network
	var p Port
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkRead, func(ctx context.Context) (details, error) {
		d, err := o.s.networkAt(callPath(msg), &n)(ctx)
		if err != nil {
			return d, err
		}
		if p, err = o.s.m.LookupPort(ctx, n.Name, uuid); err != nil {
			return d.add(polkit.DetailPortUUID, strings.ToLower(uuid)), err
		}
		return portDetails(withNetwork(n, p)), nil
	}, noop)
	if derr != nil {
		return "", derr
	}
	return portPath(n, p), nil
}

// portObjects serves NetworkPortInterface on every port object.
type portObjects struct {
	s *Server
}

// GetXMLDesc returns the port's network-port XML. No flags are defined
// (as in libvirt's virNetworkPortGetXMLDesc).
func (o *portObjects) GetXMLDesc(sender dbus.Sender, msg dbus.Message, flags uint32) (string, *dbus.Error) {
	var xml string
	var p Port
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkRead, o.s.portAt(callPath(msg), &p), func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		xml = p.XML
		return nil
	})
	return xml, derr
}

// Delete removes the port.
func (o *portObjects) Delete(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	path := callPath(msg)
	var p Port
	return o.s.callOn(callerOf(sender, msg), polkit.ActionNetworkManage, o.s.portAt(path, &p), func(ctx context.Context) error {
		if err := o.s.m.DeletePort(ctx, p.Network, p.UUID); err != nil {
			return err
		}
		o.s.signal(ObjectPath, objectManagerInterface+".InterfacesRemoved", path, []string{NetworkPortInterface})
		return nil
	})
}

// networkTreeSpec returns the netwarden interface of the object at a
// path below NetworkPathPrefix, a network or a port, with the current
// values of its properties. The node holding a network's ports has
// none: ok is false.
func (s *Server) networkTreeSpec(ctx context.Context, path dbus.ObjectPath) (spec ifaceSpec, d details, ok bool, err error) {
	kind, uuid, _ := parseNetworkPath(path)
	switch kind {
	case networkObject:
		var n Network
		d, err := s.networkAt(path, &n)(ctx)
		return s.networkSpecAt(n, path), d, true, err
	case networkPortsObject:
		var n Network
		d, err := s.networkAt(NetworkPath(uuid), &n)(ctx)
		if ErrorName(err) == ErrorUnknownObject {
			err = notFoundAt(path)
		}
		return ifaceSpec{}, d, false, err
	case networkPortObject:
		var p Port
		d, err := s.portAt(path, &p)(ctx)
		return networkPortSpec(p), d, true, err
	}
	return ifaceSpec{}, nil, false, notFoundAt(path)
}

// networkTreeChildren returns the child nodes of an object below (or
// at) NetworkPathPrefix: the networks, a network's ports node, the
// ports.
func (s *Server) networkTreeChildren(ctx context.Context, path dbus.ObjectPath) ([]string, error) {
	if path == NetworkPathPrefix {
		ns, err := s.m.Networks(ctx)
		var names []string
		for _, n := range ns {
			names = append(names, uuidLabel(n.UUID))
		}
		return names, err
	}
	kind, uuid, _ := parseNetworkPath(path)
	switch kind {
	case networkObject:
		return []string{networkPortsNode}, nil
	case networkPortsObject:
		n, err := s.lookupNetworkByPath(ctx, uuid, NetworkPath(uuid))
		if err != nil {
			return nil, err
		}
		ps, err := s.m.Ports(ctx, n.Name)
		var names []string
		for _, p := range ps {
			names = append(names, uuidLabel(p.UUID))
		}
		return names, err
	}
	return nil, nil
}

// introspectNetworkTree answers Introspect at or below
// NetworkPathPrefix.
func (s *Server) introspectNetworkTree(ctx context.Context, path dbus.ObjectPath) (string, error) {
	if path == NetworkPathPrefix {
		children, err := s.networkTreeChildren(ctx, path)
		if err != nil {
			return "", err
		}
		return introspectionXML([]ifaceSpec{introspectableSpec, peerSpec}, children...)
	}
	spec, _, ok, err := s.networkTreeSpec(ctx, path)
	if err != nil {
		return "", err
	}
	children, err := s.networkTreeChildren(ctx, path)
	if err != nil {
		return "", err
	}
	if !ok {
		return introspectionXML([]ifaceSpec{introspectableSpec, peerSpec}, children...)
	}
	return introspectionXML(append(standardSpecs(), spec), children...)
}

// managedNetworks adds the networks and their ports to the objects of
// GetManagedObjects. A network whose ports cannot be read (it vanished
// meanwhile) is listed without them.
func (s *Server) managedNetworks(ctx context.Context, objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant) error {
	ns, err := s.m.Networks(ctx)
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns {
		objs[NetworkPath(n.UUID)] = map[string]map[string]dbus.Variant{NetworkInterface: propertyValues(networkSpec(n, nil))}
		ps, err := s.m.Ports(ctx, n.Name)
		if err != nil {
			continue
		}
		for _, p := range ps {
			objs[portPath(n, p)] = map[string]map[string]dbus.Variant{NetworkPortInterface: propertyValues(networkPortSpec(withNetwork(n, p)))}
		}
	}
	return nil
}
