package main

import (
	"flag"
	"io"
	"strings"
)

// usage writes the manual printed by --help. The options section comes
// from the flag set, so it cannot drift from what is parsed.
func usage(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	b.WriteString(`Usage: netwardend [OPTION]...

netwardend is the netwarden system service. It gives virtual machines
libvirt-style virtual networks (bridges, DHCP and DNS through dnsmasq, NAT
and routing) and nwfilter traffic filtering, enforced with nftables or
iptables. Networks and filters are defined in libvirt's XML formats.

Clients, such as the netwarden command, reach it on the D-Bus system bus
under the name org.netwarden1 (object /org/netwarden1, interface
org.netwarden1.Manager). Requests that change something are authorised
by polkit.

It runs in the foreground and logs to standard error. It is normally
started by systemd (netwardend.service) or by D-Bus activation, and must
run as root. SIGTERM or SIGINT stop it cleanly: it gives up its bus name
and exits with status 0. SIGHUP is logged as a reload request.

Only one netwardend can run on a bus: a second one exits with status 1,
naming the connection (and process) that owns org.netwarden1.

Options:
`)
	fs.VisitAll(func(f *flag.Flag) {
		head := "  --" + f.Name
		if arg := argNames[f.Name]; arg != "" {
			head += " " + arg
		}
		b.WriteString(head + "\n")
		text := f.Usage
		if f.DefValue != "" && f.DefValue != "false" {
			// A NUL joins "Default:" to its value so wrap keeps them on
			// one line.
			text += " Default:\x00" + f.DefValue + "."
		}
		b.WriteString(wrap(text, "        ", 76))
	})
	b.WriteString(`  --help
        Print this manual and exit.

Environment:
  DBUS_SYSTEM_BUS_ADDRESS
        Address of the system bus to serve on. Default:
        unix:path=/var/run/dbus/system_bus_socket.
  NOTIFY_SOCKET
        Set by systemd for Type=notify services: netwardend sends READY=1
        to it once it owns org.netwarden1 and has exported its objects,
        and STOPPING=1 when it begins to shut down. Without it nothing is
        sent.

Exit status:
  0     Stopped cleanly by SIGTERM or SIGINT, or --help or --version.
  1     Runtime failure: the bus is unreachable, org.netwarden1 is owned
        by another connection, a directory cannot be created, or the bus
        connection or name was lost.
  2     Usage error: unknown option, bad value or stray argument.

Files:
  /etc/netwarden/
        Persistent definitions (see --config-dir).
  /run/netwarden/
        Runtime state, kept across daemon restarts (see --state-dir).
  /usr/share/dbus-1/system.d/org.netwarden1.conf
        Bus policy: root may own org.netwarden1, anyone may call it.
  /usr/share/dbus-1/system-services/org.netwarden1.service
        D-Bus activation of netwardend.
  /usr/share/polkit-1/actions/org.netwarden1.policy
        The polkit actions that authorise requests.
  /lib/systemd/system/netwardend.service
        The systemd unit.
`)
	io.WriteString(w, b.String())
}

// argNames names the argument of each option that takes one, as --help
// shows it.
var argNames = map[string]string{
	"config-dir": "DIR",
	"state-dir":  "DIR",
	"backend":    "NAME",
	"log-level":  "LEVEL",
}

// wrap fills text into lines of at most width columns, each starting with
// indent. Words joined by a NUL stay together and are printed with a
// space between them.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return strings.ReplaceAll(b.String(), "\x00", " ")
}
