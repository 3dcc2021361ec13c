// Package dbusapi is netwardend's D-Bus API: the objects it exports on the
// system bus, their introspection data and error names, the signals, the
// authorization of every call, the bus name it owns, and a small client.
//
// The daemon exports its objects first and takes its name second, so that
// the objects exist the moment a client sees the name:
//
//	srv, err := dbusapi.Export(conn, core, dbusapi.Options{Logger: log}) // core implements dbusapi.Manager
//	if err != nil { … }
//	defer srv.Unexport()
//	if err := dbusapi.RequestName(ctx, conn); err != nil {
//		var taken *dbusapi.NameTakenError
//		if errors.As(err, &taken) { … another daemon runs: taken.Owner, taken.PID }
//	}
//
// # Objects
//
// The API is modelled on libvirt-dbus: flat, libvirt XML strings in and
// out, libvirt-dbus's method names, argument orders and flag values where
// it has the call.
//
//	/org/netwarden1                          org.netwarden1.Manager, org.freedesktop.DBus.ObjectManager
//	  ListNWFilters(u flags) → ao            NWFilterDefineXML(s xml) → o
//	  NWFilterLookupByName(s) → o            NWFilterLookupByUUID(s) → o
//	  ListNWFilterBindings(u flags) → ao     NWFilterBindingCreateXML(s xml, u flags) → o
//	  NWFilterBindingLookupByPortDev(s) → o
//	  signals NWFilterEvent(o, i), NWFilterBindingEvent(o, i); property Version (s)
//	/org/netwarden1/nwfilter/_<uuid, '-' → '_'>          org.netwarden1.NWFilter
//	  GetXMLDesc(u flags) → s, Undefine(); properties Name, UUID (s), BuiltIn (b)
//	/org/netwarden1/nwfilter_binding/<escaped port>     org.netwarden1.NWFilterBinding
//	  GetXMLDesc(u flags) → s, Delete(); properties PortDev, FilterName, Mode, Reason (s)
//	  (on the manager also) ListNetworks(u flags) → ao, NetworkDefineXML(s) → o,
//	  NetworkCreateXML(s) → o, NetworkLookupByName(s) → o, NetworkLookupByUUID(s) → o;
//	  signal NetworkEvent(o, i)
//	/org/netwarden1/network/_<uuid, '-' → '_'>           org.netwarden1.Network
//	  Create(), Destroy(), Undefine(), GetXMLDesc(u flags) → s,
//	  GetDHCPLeases(s mac, u flags) → a(sxisssuss), ListPorts(u) → ao,
//	  PortCreateXML(s, u flags) → o, PortLookupByUUID(s) → o;
//	  properties Name, UUID, Bridge, Status (s), Active, Persistent (b), Autostart (b, writable)
//	/org/netwarden1/network/_<uuid>/port/_<port uuid>   org.netwarden1.NetworkPort
//	  GetXMLDesc(u flags) → s, Delete(); properties UUID, Dev, MAC, FilterName (s), Network (o)
//
// Every object also implements org.freedesktop.DBus.Introspectable,
// org.freedesktop.DBus.Peer and org.freedesktop.DBus.Properties. The
// filter and binding objects are served by one handler per subtree that
// asks the Manager at every call, so an object exists exactly while its
// filter or binding does; a call on a path that stands for nothing fails
// with org.freedesktop.DBus.Error.UnknownObject. A port name becomes a
// path element as systemd's sd_bus_path_encode makes it ("vnet0" stays,
// every byte other than a letter or a non-leading digit becomes _xx).
// The committed descriptions in interfaces/ (installed to
// /usr/share/dbus-1/interfaces) are checked against the code by the
// package's tests.
//
// Flags: no flags are defined for ListNWFilters, ListNWFilterBindings,
// ListPorts, GetDHCPLeases and the filters', bindings' and ports'
// GetXMLDesc (as in libvirt); NWFilterBindingCreateXML accepts 1
// (libvirt's VIR_NWFILTER_BINDING_CREATE_VALIDATE, a no-op since every
// document is validated), PortCreateXML 2 (VIR_NETWORK_PORT_CREATE_VALIDATE,
// likewise), a network's GetXMLDesc 1 (VIR_NETWORK_XML_INACTIVE), and
// ListNetworks libvirt's virConnectListAllNetworks flags (ListNetworks*).
// Unknown flags are an InvalidArgument error.
//
// Events use libvirt's lifecycle numbers: NWFilterEvent 0 defined (also
// on redefinition), 1 undefined; NWFilterBindingEvent 0 created, 1
// deleted; NetworkEvent 0 defined, 1 undefined, 2 started, 3 stopped.
// A network object emits PropertiesChanged for Active, Persistent,
// Autostart and Bridge after the calls that change them. The
// ObjectManager emits InterfacesAdded and InterfacesRemoved
// for the objects (with their netwarden interface only), and a filter
// object emits PropertiesChanged for BuiltIn when a definition overrides
// a built-in or an override is undefined (the built-in's object stays;
// NWFilterEvent 1 and then 0 report that).
//
// # Authorization
//
// Every call except Introspect, Peer and the Manager's properties, and
// every property write, is authorised by an Authorizer, by default
// polkitd (PolkitAuthorizer) for the caller's system-bus-name, before it
// changes anything. Each kind of object has a read action (listing,
// lookups, GetXMLDesc, GetDHCPLeases, property reads) and a manage
// action (define, create, start, destroy, undefine, delete, setting
// Autostart): org.netwarden1.network.read and .network.manage for
// networks and their ports, org.netwarden1.nwfilter.read and
// .nwfilter.manage for filters, org.netwarden1.binding.read and
// .binding.manage for bindings. GetManagedObjects lists the kinds the
// caller may read.
//
// Each check carries polkit details naming its object as libvirt's
// polkit access driver does, for rules.d rules (action.lookup):
// network_name and network_uuid (network calls), plus port_uuid (port
// calls), nwfilter_name and nwfilter_uuid (filter calls),
// nwfilter_binding_portdev and nwfilter_binding_filter (binding calls).
// A call naming an object that does not exist carries what it names; a
// definition or creation carries what its XML says (read with the
// daemon's own parser); a list carries none.
//
// A call with the message flag ALLOW_INTERACTIVE_AUTHORIZATION lets
// polkitd ask an authentication agent (AllowUserInteraction), and may
// wait DefaultInteractiveAuthTimeout for it; otherwise a check waits at
// most DefaultAuthTimeout. Calls are served concurrently: a slow check
// holds up only its own call.
//
// When polkitd cannot answer (not activatable, no owner, an error, or no
// answer in time) root is allowed and everyone else refused, reads
// included; the first such answer is logged. A refusal is
// org.freedesktop.DBus.Error.AccessDenied with a message naming the
// action.
//
// # Errors
//
// Errors are named from the Manager's typed errors (ErrorName), never
// from their text: org.netwarden1.Error.InvalidArgument, NotFound, InUse,
// Exists, NotSupported and Failed; see the Error* constants.
//
// The package holds no state of the daemon and makes no decisions about
// filters: it translates between D-Bus and the Manager interface that the
// daemon core implements.
package dbusapi
