package dbusapi

import (
	"context"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/netwarden/netwarden/polkit"
)

// Doctorer is the part of Manager that serves the coexistence doctor.
type Doctorer interface {
	// Doctor inspects the host's other firewall tables (firewalld,
	// docker, ufw, nftables.service, iptables, iptables-legacy) and says,
	// per active network, which of them would drop its DHCP, DNS or
	// forwarded traffic and what to do. It returns the JSON of a
	// doctor.Report:
	//
	//	{"networks": [{"name", "bridge", "mode", "findings": [{"severity":
	//	  "error"|"warning"|"info", "table": "inet firewalld", "chain",
	//	  "owner", "what", "why", "fix"}]}],
	//	 "tables": ["inet firewalld (firewalld)", …], "notes": […]}
	//
	// It changes nothing.
	Doctor(ctx context.Context) (string, error)
}

// doctorMethod is Doctor's entry in managerSpec.
var doctorMethod = introspect.Method{Name: "Doctor", Args: []introspect.Arg{in("flags", "u"), out("report", "s")},
	Annotations: docString("Inspects the host's other firewall tables and says, per active network, which of them would drop its DHCP, DNS or forwarded traffic, and what to do; changes nothing. " +
		"Returns JSON: {\"networks\": [{\"name\", \"bridge\", \"mode\", \"findings\": [{\"severity\" (error, warning or info), \"table\" (e.g. \"inet firewalld\"), \"chain\", \"owner\" (firewalld, docker, ufw, iptables, nftables.service or absent), \"what\" (DHCP to host, DNS to host, DHCP replies from host, DNS replies from host, forwarded traffic out, forwarded traffic in, forwarded traffic in (replies), traffic between guests), \"why\", \"fix\"}]}], \"tables\": [the other tables inspected], \"notes\": [what could not be inspected]}. " +
		"An error finding is traffic dropped for certain, a warning traffic that may be dropped. flags must be 0. Needs org.netwarden1.network.read.")}

// Doctor serves Doctorer.Doctor.
func (o *managerObject) Doctor(sender dbus.Sender, msg dbus.Message, flags uint32) (string, *dbus.Error) {
	var report string
	derr := o.s.call(callerOf(sender, msg), polkit.ActionNetworkRead, func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		var err error
		report, err = o.s.m.Doctor(ctx)
		return err
	})
	return report, derr
}

// Doctor calls the Manager's Doctor method and returns its JSON report.
func (c *Client) Doctor(ctx context.Context) (string, error) {
	var report string
	err := c.call(ctx, ObjectPath, ManagerInterface+".Doctor", []any{uint32(0)}, &report)
	return report, err
}
