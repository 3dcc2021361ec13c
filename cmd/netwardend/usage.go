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
and exits with status 0. SIGHUP makes it check that the kernel still
enforces every network's and binding's rules and restore what is
missing. Bridges, rules and dnsmasq's leases stay in place while no
daemon runs; the next one adopts them.

With --idle-timeout it also stops by itself, with status 0, once no
network is active, no binding exists and no call has come for that long.
D-Bus activation (without systemd, the activation file's Exec= line,
which passes --idle-timeout=120s) starts it again on the next call.

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
        to it once it owns org.netwarden1 and has adopted the networks and
        bindings it found and applied their rules, RELOADING=1 on SIGHUP
        (READY=1 when done), WATCHDOG=1 while WATCHDOG_USEC asks for it,
        and STOPPING=1 when it begins to shut down. Without it nothing is
        sent.
  WATCHDOG_USEC, WATCHDOG_PID
        Set by systemd for WatchdogSec=: netwardend pings every half of
        that period, as long as its engine answers.
  LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
        Sockets passed by socket activation (netwardend.socket). A netlink
        route socket (ListenNetlink=route 1) is taken as the source of link
        events, which systemd buffers while no daemon runs; any other
        socket is logged and closed.

Exit status:
  0     Stopped cleanly by SIGTERM or SIGINT or after --idle-timeout,
        or --help or --version.
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
  /lib/systemd/system/netwardend.socket
        The netlink socket that keeps link events while the daemon
        restarts.
`)
	io.WriteString(w, b.String())
}

// argNames names the argument of each option that takes one, as --help
// shows it.
var argNames = map[string]string{
	"config-dir":   "DIR",
	"state-dir":    "DIR",
	"backend":      "NAME",
	"log-level":    "LEVEL",
	"idle-timeout": "DURATION",
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
