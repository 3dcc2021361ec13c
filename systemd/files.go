package systemd

import _ "embed"

// Unit is the systemd unit netwardend.service, installed to
// /lib/systemd/system.
//
//go:embed netwardend.service
var Unit []byte

// SocketUnit is the socket unit netwardend.socket, installed next to Unit:
// a netlink socket of link events that systemd keeps while the daemon
// restarts.
//
//go:embed netwardend.socket
var SocketUnit []byte

// BusActivation is the D-Bus activation file org.netwarden1.service,
// installed to /usr/share/dbus-1/system-services. Its Exec= names
// /usr/sbin/netwardend (make install substitutes its SBINDIR) with an
// idle timeout; tests that activate a binary elsewhere write their own
// file (see lab.Bus.AddService).
//
//go:embed org.netwarden1.service
var BusActivation []byte
