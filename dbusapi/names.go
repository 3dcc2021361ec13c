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
