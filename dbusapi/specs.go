package dbusapi

import (
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// in and out make introspection arguments.
func in(name, typ string) introspect.Arg {
	return introspect.Arg{Name: name, Type: typ, Direction: "in"}
}
func out(name, typ string) introspect.Arg {
	return introspect.Arg{Name: name, Type: typ, Direction: "out"}
}

// docString documents a method, signal or property in introspection,
// as libvirt-dbus does.
func docString(text string) []introspect.Annotation {
	return []introspect.Annotation{{Name: "org.gtk.GDBus.DocString", Value: text}}
}

// managerSpec is the introspection and property table of
// ManagerInterface. Its methods are those of managerObject; a test
// checks that the two agree.
func managerSpec(m Manager) ifaceSpec {
	return ifaceSpec{
		name: ManagerInterface,
		methods: []introspect.Method{
			{Name: "ListNWFilters", Args: []introspect.Arg{in("flags", "u"), out("nwfilters", "ao")},
				Annotations: docString("The filters' objects (built-ins included). flags must be 0.")},
			{Name: "NWFilterDefineXML", Args: []introspect.Arg{in("xml", "s"), out("nwfilter", "o")},
				Annotations: docString("Defines or redefines a filter from libvirt nwfilter XML; needs org.netwarden1.nwfilter.manage.")},
			{Name: "NWFilterLookupByName", Args: []introspect.Arg{in("name", "s"), out("nwfilter", "o")}},
			{Name: "NWFilterLookupByUUID", Args: []introspect.Arg{in("uuid", "s"), out("nwfilter", "o")}},
			{Name: "ListNWFilterBindings", Args: []introspect.Arg{in("flags", "u"), out("bindings", "ao")},
				Annotations: docString("The bindings' objects. flags must be 0.")},
			{Name: "NWFilterBindingCreateXML", Args: []introspect.Arg{in("xml", "s"), in("flags", "u"), out("binding", "o")},
				Annotations: docString("Creates a binding from libvirt nwfilter-binding XML and enforces it before returning; flags: 0 or 1 (VALIDATE); needs org.netwarden1.binding.manage.")},
			{Name: "NWFilterBindingLookupByPortDev", Args: []introspect.Arg{in("portdev", "s"), out("binding", "o")}},
			{Name: "ListNetworks", Args: []introspect.Arg{in("flags", "u"), out("networks", "ao")},
				Annotations: docString("The networks' objects, filtered by flags as libvirt's virConnectListAllNetworks: 1 INACTIVE, 2 ACTIVE, 4 PERSISTENT, 8 TRANSIENT, 16 AUTOSTART, 32 NO_AUTOSTART; 0 lists all.")},
			{Name: "NetworkDefineXML", Args: []introspect.Arg{in("xml", "s"), out("network", "o")},
				Annotations: docString("Defines or redefines a persistent network from libvirt network XML (an active network's live state is kept); needs org.netwarden1.network.manage.")},
			{Name: "NetworkCreateXML", Args: []introspect.Arg{in("xml", "s"), out("network", "o")},
				Annotations: docString("Creates and starts a transient network from libvirt network XML; needs org.netwarden1.network.manage.")},
			{Name: "NetworkLookupByName", Args: []introspect.Arg{in("name", "s"), out("network", "o")}},
			{Name: "NetworkLookupByUUID", Args: []introspect.Arg{in("uuid", "s"), out("network", "o")}},
			doctorMethod,
		},
		signals: []introspect.Signal{
			{Name: "NWFilterEvent", Args: []introspect.Arg{{Name: "nwfilter", Type: "o"}, {Name: "event", Type: "i"}},
				Annotations: docString("event: 0 defined, 1 undefined.")},
			{Name: "NWFilterBindingEvent", Args: []introspect.Arg{{Name: "binding", Type: "o"}, {Name: "event", Type: "i"}},
				Annotations: docString("event: 0 created, 1 deleted.")},
			{Name: "NetworkEvent", Args: []introspect.Arg{{Name: "network", Type: "o"}, {Name: "event", Type: "i"}},
				Annotations: docString("event: 0 defined, 1 undefined, 2 started, 3 stopped (libvirt's lifecycle values).")},
		},
		props: []property{
			readOnlyProperty("Version", emitsConst, m.Version),
			readOnlyProperty("Backend", emitsConst, m.Backend),
			// Set once, when the engine has started; no signal.
			readOnlyProperty("StatefulFiltering", emitsFalse, m.StatefulFiltering),
			readOnlyProperty("FirewalldRunning", emitsTrue, m.FirewalldRunning),
			readOnlyProperty("LastFirewallReapply", emitsTrue, func() uint64 {
				t := m.LastFirewallReapply()
				if t.IsZero() {
					return 0
				}
				return uint64(t.UnixMicro())
			}),
			readOnlyProperty("Restores", emitsTrue, m.Restores),
		},
	}
}

// objectManagerSpec is org.freedesktop.DBus.ObjectManager on the
// manager object.
var objectManagerSpec = ifaceSpec{
	name: objectManagerInterface,
	methods: []introspect.Method{{Name: "GetManagedObjects", Args: []introspect.Arg{
		out("object_paths_interfaces_and_properties", "a{oa{sa{sv}}}"),
	}}},
	signals: []introspect.Signal{
		{Name: "InterfacesAdded", Args: []introspect.Arg{
			{Name: "object_path", Type: "o"}, {Name: "interfaces_and_properties", Type: "a{sa{sv}}"},
		}},
		{Name: "InterfacesRemoved", Args: []introspect.Arg{
			{Name: "object_path", Type: "o"}, {Name: "interfaces", Type: "as"},
		}},
	},
}

// nwfilterSpec is the table of NWFilterInterface for one filter. Its
// methods are those of nwfilterObjects.
func nwfilterSpec(f Filter) ifaceSpec {
	return ifaceSpec{
		name: NWFilterInterface,
		methods: []introspect.Method{
			{Name: "GetXMLDesc", Args: []introspect.Arg{in("flags", "u"), out("xml", "s")},
				Annotations: docString("The filter's libvirt XML. flags must be 0.")},
			{Name: "Undefine", Annotations: docString("Removes the definition (a built-in it overrode comes back); needs org.netwarden1.nwfilter.manage.")},
		},
		props: []property{
			readOnlyProperty("Name", emitsConst, func() string { return f.Name }),
			readOnlyProperty("UUID", emitsConst, func() string { return f.UUID }),
			readOnlyProperty("BuiltIn", emitsTrue, func() bool { return f.BuiltIn }),
		},
	}
}

// nwfilterBindingSpec is the table of NWFilterBindingInterface for one
// binding. Its methods are those of bindingObjects.
func nwfilterBindingSpec(b Binding) ifaceSpec {
	return ifaceSpec{
		name: NWFilterBindingInterface,
		methods: []introspect.Method{
			{Name: "GetXMLDesc", Args: []introspect.Arg{in("flags", "u"), out("xml", "s")},
				Annotations: docString("The binding's libvirt XML. flags must be 0.")},
			{Name: "Delete", Annotations: docString("Removes the binding; the port is unfiltered afterwards. Needs org.netwarden1.binding.manage.")},
		},
		props: []property{
			readOnlyProperty("PortDev", emitsConst, func() string { return b.PortDev }),
			readOnlyProperty("FilterName", emitsConst, func() string { return b.FilterName }),
			readOnlyProperty("Mode", emitsFalse, func() string { return b.Mode }),
			readOnlyProperty("Reason", emitsFalse, func() string { return b.Reason }),
			readOnlyProperty("LearnedAddresses", emitsTrue, func() []string {
				if b.LearnedAddresses == nil {
					return []string{}
				}
				return b.LearnedAddresses
			}),
		},
	}
}

// networkSpec is the table of NetworkInterface for one network. Its
// methods are those of networkObjects. setAutostart, if not nil, serves
// writes of Autostart; the property is writable either way, so that
// every table of the interface says the same.
func networkSpec(n Network, setAutostart func(c caller, autostart bool) *dbus.Error) ifaceSpec {
	autostart := readOnlyProperty("Autostart", emitsTrue, func() bool { return n.Autostart })
	autostart.set = func(c caller, v any) *dbus.Error {
		if setAutostart == nil {
			return dbus.NewError(ErrorPropertyReadOnly, []any{"property Autostart cannot be set here"})
		}
		return setAutostart(c, v.(bool))
	}
	return ifaceSpec{
		name: NetworkInterface,
		methods: []introspect.Method{
			{Name: "Create", Annotations: docString("Starts the (inactive, defined) network; needs org.netwarden1.network.manage.")},
			{Name: "Destroy", Annotations: docString("Stops the network; a transient network is gone afterwards. Needs org.netwarden1.network.manage.")},
			{Name: "Undefine", Annotations: docString("Removes the persistent definition; an active network goes on as a transient one. Needs org.netwarden1.network.manage.")},
			{Name: "GetXMLDesc", Args: []introspect.Arg{in("flags", "u"), out("xml", "s")},
				Annotations: docString("The network's libvirt XML: the live definition, or with flags 1 (INACTIVE) the persistent one.")},
			{Name: "GetDHCPLeases", Args: []introspect.Arg{in("mac", "s"), in("flags", "u"), out("leases", "a(sxisssuss)")},
				Annotations: docString("The current DHCP leases, only those of mac unless it is empty; each is (iface, expirytime, type, mac, iaid, ipaddr, prefix, hostname, clientid) as in libvirt-dbus, type 0 IPv4, 1 IPv6. flags must be 0.")},
			{Name: "ListPorts", Args: []introspect.Arg{in("flags", "u"), out("ports", "ao")},
				Annotations: docString("The objects of the network's ports. flags must be 0.")},
			{Name: "PortCreateXML", Args: []introspect.Arg{in("xml", "s"), in("flags", "u"), out("port", "o")},
				Annotations: docString("Creates a port from libvirt network-port XML, plugged and filtered before returning; flags: 0 or 2 (VALIDATE); needs org.netwarden1.network.manage.")},
			{Name: "PortLookupByUUID", Args: []introspect.Arg{in("uuid", "s"), out("port", "o")}},
		},
		props: []property{
			readOnlyProperty("Name", emitsConst, func() string { return n.Name }),
			readOnlyProperty("UUID", emitsConst, func() string { return n.UUID }),
			readOnlyProperty("Active", emitsTrue, func() bool { return n.Active }),
			readOnlyProperty("Persistent", emitsTrue, func() bool { return n.Persistent }),
			autostart,
			readOnlyProperty("Bridge", emitsTrue, func() string { return n.Bridge }),
			// Changes as the network's children do; read it again.
			readOnlyProperty("Status", emitsFalse, func() string { return n.Status }),
		},
	}
}

// networkPortSpec is the table of NetworkPortInterface for one port. Its
// methods are those of portObjects.
func networkPortSpec(p Port) ifaceSpec {
	return ifaceSpec{
		name: NetworkPortInterface,
		methods: []introspect.Method{
			{Name: "GetXMLDesc", Args: []introspect.Arg{in("flags", "u"), out("xml", "s")},
				Annotations: docString("The port's libvirt network-port XML. flags must be 0.")},
			{Name: "Delete", Annotations: docString("Removes the port and everything made for it (interface, filter binding, DHCP lease). Needs org.netwarden1.network.manage.")},
		},
		props: []property{
			readOnlyProperty("UUID", emitsConst, func() string { return p.UUID }),
			readOnlyProperty("Network", emitsConst, func() dbus.ObjectPath { return NetworkPath(p.NetworkUUID) }),
			readOnlyProperty("Dev", emitsConst, func() string { return p.Dev }),
			readOnlyProperty("MAC", emitsConst, func() string { return p.MAC }),
			readOnlyProperty("FilterName", emitsConst, func() string { return p.FilterName }),
		},
	}
}

// propertyValues returns the current values of an interface's
// properties, as GetAll and ObjectManager report them.
func propertyValues(spec ifaceSpec) map[string]dbus.Variant {
	out := make(map[string]dbus.Variant, len(spec.props))
	for _, p := range spec.props {
		out[p.name] = dbus.MakeVariantWithSignature(p.get(), p.signature)
	}
	return out
}
