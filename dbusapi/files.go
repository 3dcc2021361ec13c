package dbusapi

import _ "embed"

// BusPolicy is the D-Bus policy file that lets root own org.netwarden1 and
// anyone call it. It is installed to /usr/share/dbus-1/system.d as
// org.netwarden1.conf; tests give it to their private bus.
//
//go:embed org.netwarden1.conf
var BusPolicy []byte
