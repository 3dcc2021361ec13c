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
)

// The standard interfaces the manager object implements.
const (
	introspectableInterface = "org.freedesktop.DBus.Introspectable"
	peerInterface           = "org.freedesktop.DBus.Peer"
	propertiesInterface     = "org.freedesktop.DBus.Properties"
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
)
