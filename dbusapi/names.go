package dbusapi

import "github.com/godbus/dbus/v5"

// Names of netwardend's API.
const (
	// BusName is the well-known name netwardend owns on the system bus.
	BusName = "org.netwarden1"
	// ObjectPath is the path of the manager object.
	ObjectPath dbus.ObjectPath = "/org/netwarden1"
	// ManagerInterface is the interface of the manager object.
	ManagerInterface = "org.netwarden1.Manager"
	// NWFilterInterface is the interface of a filter object.
	NWFilterInterface = "org.netwarden1.NWFilter"
	// NWFilterBindingInterface is the interface of a filter binding
	// object.
	NWFilterBindingInterface = "org.netwarden1.NWFilterBinding"
	// NWFilterPathPrefix is the parent of every filter object; a filter's
	// object is NWFilterPath(uuid) below it.
	NWFilterPathPrefix dbus.ObjectPath = "/org/netwarden1/nwfilter"
	// NWFilterBindingPathPrefix is the parent of every binding object; a
	// binding's object is NWFilterBindingPath(port) below it.
	NWFilterBindingPathPrefix dbus.ObjectPath = "/org/netwarden1/nwfilter_binding"
	// NetworkInterface is the interface of a virtual network object.
	NetworkInterface = "org.netwarden1.Network"
	// NetworkPortInterface is the interface of a network port object.
	NetworkPortInterface = "org.netwarden1.NetworkPort"
	// NetworkPathPrefix is the parent of every network object; a
	// network's object is NetworkPath(uuid) below it, and its ports'
	// objects are NetworkPortPath(uuid, portUUID) below that.
	NetworkPathPrefix dbus.ObjectPath = "/org/netwarden1/network"
)

// The standard interfaces the exported objects implement.
const (
	introspectableInterface = "org.freedesktop.DBus.Introspectable"
	peerInterface           = "org.freedesktop.DBus.Peer"
	propertiesInterface     = "org.freedesktop.DBus.Properties"
	objectManagerInterface  = "org.freedesktop.DBus.ObjectManager"
)

// Names of the standard D-Bus errors the exported objects return, for
// clients to match a *dbus.Error's Name against.
const (
	// ErrorUnknownInterface: the object has no such interface.
	ErrorUnknownInterface = "org.freedesktop.DBus.Error.UnknownInterface"
	// ErrorUnknownProperty: the interface has no such property.
	ErrorUnknownProperty = "org.freedesktop.DBus.Error.UnknownProperty"
	// ErrorPropertyReadOnly: Set was called on a read-only property.
	ErrorPropertyReadOnly = "org.freedesktop.DBus.Error.PropertyReadOnly"
	// ErrorInvalidArgs: a value had the wrong type.
	ErrorInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs"
	// ErrorUnknownObject: there is no object at the path (the filter or
	// binding it stood for is gone).
	ErrorUnknownObject = "org.freedesktop.DBus.Error.UnknownObject"
	// ErrorAccessDenied: polkit (or, without polkitd, the root-only
	// fallback) refused the caller the action the call needs; the
	// message names the action.
	ErrorAccessDenied = "org.freedesktop.DBus.Error.AccessDenied"
)

// Names of netwardend's own errors. Every error a method returns has one
// of these names, AccessDenied or one of the standard names above;
// clients match the name, never the message.
const (
	// ErrorInvalidArgument: the XML or a flag was refused (malformed,
	// invalid, a reference cycle, an undefined filter or a missing
	// variable in a binding, undefining a built-in); the message says
	// what and where.
	ErrorInvalidArgument = "org.netwarden1.Error.InvalidArgument"
	// ErrorNotFound: no filter or binding of that name, UUID or port.
	ErrorNotFound = "org.netwarden1.Error.NotFound"
	// ErrorInUse: the filter is used by filters or bindings, which the
	// message lists.
	ErrorInUse = "org.netwarden1.Error.InUse"
	// ErrorExists: the port already has a binding, or the filter's name
	// or UUID belongs to another filter.
	ErrorExists = "org.netwarden1.Error.Exists"
	// ErrorFailed: anything else, such as the kernel refusing a change
	// or the daemon still starting; the message says what.
	ErrorFailed = "org.netwarden1.Error.Failed"
	// ErrorNotSupported: the request is valid but asks for something
	// netwardend does not implement (a network forward mode, say).
	ErrorNotSupported = "org.netwarden1.Error.NotSupported"
)

// Events of the Manager's NWFilterEvent signal. The numbers follow
// libvirt's lifecycle events (VIR_NETWORK_EVENT_DEFINED and
// VIR_NETWORK_EVENT_UNDEFINED are 0 and 1; libvirt has no filter events
// of its own).
const (
	// NWFilterEventDefined: a filter was defined or redefined.
	NWFilterEventDefined int32 = 0
	// NWFilterEventUndefined: a filter definition was removed. When it
	// overrode a built-in, the built-in is in force again and its object
	// stays (an NWFilterEventDefined follows).
	NWFilterEventUndefined int32 = 1
)

// Events of the Manager's NWFilterBindingEvent signal, numbered like
// libvirt's lifecycle events (a binding is created and deleted, never
// defined).
const (
	// NWFilterBindingEventCreated: a binding was created.
	NWFilterBindingEventCreated int32 = 0
	// NWFilterBindingEventDeleted: a binding was deleted.
	NWFilterBindingEventDeleted int32 = 1
)

// Flags accepted by NWFilterBindingCreateXML, with libvirt's values.
const (
	// BindingCreateValidate is VIR_NWFILTER_BINDING_CREATE_VALIDATE.
	// netwardend validates every document anyway, so it changes nothing.
	BindingCreateValidate uint32 = 1
)

// Events of the Manager's NetworkEvent signal, libvirt's
// virNetworkEventLifecycleType values.
const (
	// NetworkEventDefined: a network was defined or redefined.
	NetworkEventDefined int32 = 0
	// NetworkEventUndefined: a network's persistent definition was
	// removed (an active network goes on as a transient one).
	NetworkEventUndefined int32 = 1
	// NetworkEventStarted: a network was started (or created).
	NetworkEventStarted int32 = 2
	// NetworkEventStopped: a network was stopped (a transient one is
	// gone with it).
	NetworkEventStopped int32 = 3
)

// Flags of ListNetworks, with the values of libvirt's
// virConnectListAllNetworksFlags. Within each pair, giving neither or
// both flags means no filtering on that property; 0 lists every network.
const (
	// ListNetworksInactive is VIR_CONNECT_LIST_NETWORKS_INACTIVE.
	ListNetworksInactive uint32 = 1 << 0
	// ListNetworksActive is VIR_CONNECT_LIST_NETWORKS_ACTIVE.
	ListNetworksActive uint32 = 1 << 1
	// ListNetworksPersistent is VIR_CONNECT_LIST_NETWORKS_PERSISTENT.
	ListNetworksPersistent uint32 = 1 << 2
	// ListNetworksTransient is VIR_CONNECT_LIST_NETWORKS_TRANSIENT.
	ListNetworksTransient uint32 = 1 << 3
	// ListNetworksAutostart is VIR_CONNECT_LIST_NETWORKS_AUTOSTART.
	ListNetworksAutostart uint32 = 1 << 4
	// ListNetworksNoAutostart is VIR_CONNECT_LIST_NETWORKS_NO_AUTOSTART.
	ListNetworksNoAutostart uint32 = 1 << 5

	// listNetworksAll is every ListNetworks flag.
	listNetworksAll = ListNetworksInactive | ListNetworksActive | ListNetworksPersistent |
		ListNetworksTransient | ListNetworksAutostart | ListNetworksNoAutostart
)

// NetworkXMLInactive is the flag of a network's GetXMLDesc asking for
// the persistent definition rather than the live one, libvirt's
// VIR_NETWORK_XML_INACTIVE.
const NetworkXMLInactive uint32 = 1

// PortCreateValidate is the flag of a network's PortCreateXML that
// libvirt calls VIR_NETWORK_PORT_CREATE_VALIDATE. netwardend validates
// every document anyway, so it changes nothing. libvirt's
// VIR_NETWORK_PORT_CREATE_RECLAIM (1) is not accepted.
const PortCreateValidate uint32 = 1 << 1

// MatchNetwork reports whether n is listed by ListNetworks with flags,
// as libvirt's virConnectListAllNetworks filters: within each pair of
// flags (inactive/active, persistent/transient, autostart/no-autostart)
// one of them given selects by that property.
func MatchNetwork(n Network, flags uint32) bool {
	pair := func(yes, no uint32, v bool) bool {
		if flags&(yes|no) == 0 || flags&(yes|no) == yes|no {
			return true
		}
		return v == (flags&yes != 0)
	}
	return pair(ListNetworksActive, ListNetworksInactive, n.Active) &&
		pair(ListNetworksPersistent, ListNetworksTransient, n.Persistent) &&
		pair(ListNetworksAutostart, ListNetworksNoAutostart, n.Autostart)
}
