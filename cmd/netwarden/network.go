package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/polkit"
)

const (
	netHelp     = "network name or uuid"
	netFileHelp = "file containing an XML network description, or - for standard input"
	portHelp    = "network port uuid"
	portFile    = "file containing an XML network port description, or - for standard input"
	netMissing  = "no network with that name or UUID"
	portMissing = "no port with that UUID on the network"
)

// networkVerbs are the net-* commands, in the order of the help.
func networkVerbs() []verb {
	netOpt := option{name: "network", kind: optData, required: true, help: netHelp, arg: "NAME|UUID"}
	return []verb{
		{name: "net-list", summary: "list networks",
			desc: "Lists the networks, sorted by name, as a table of Name, State (active or inactive), Autostart and Persistent. Without options only active networks are listed.",
			opts: []option{{name: "inactive", kind: optBool, help: "list inactive networks"},
				{name: "all", kind: optBool, help: "list inactive & active networks"},
				{name: "persistent", kind: optBool, help: "list persistent networks"},
				{name: "transient", kind: optBool, help: "list transient networks"},
				{name: "autostart", kind: optBool, help: "list networks with autostart enabled"},
				{name: "no-autostart", kind: optBool, help: "list networks with autostart disabled"}},
			run: netList},
		{name: "net-define", summary: "define an inactive persistent virtual network or modify an existing persistent one from an XML file",
			desc: "Defines a persistent network from libvirt network XML, or changes the definition of the network of the same name or UUID. A running network goes on with its live definition until it is restarted.",
			opts: []option{{name: "file", kind: optData, required: true, help: netFileHelp, arg: "FILE"},
				{name: "validate", kind: optBool, help: "accepted for virsh compatibility; every definition is validated"}},
			run: netDefine},
		{name: "net-create", summary: "create a network from an XML file",
			desc: "Creates and starts a transient network from libvirt network XML; it is gone when it is destroyed.",
			opts: []option{{name: "file", kind: optData, required: true, help: netFileHelp, arg: "FILE"},
				{name: "validate", kind: optBool, help: "accepted for virsh compatibility; every definition is validated"}},
			run: netCreate},
		{name: "net-start", summary: "start a (previously defined) inactive network",
			desc: "Starts an inactive persistent network: its bridge, addresses, firewall rules and dnsmasq.",
			opts: []option{netOpt}, run: netStart},
		{name: "net-destroy", summary: "destroy (stop) a network",
			desc: "Stops an active network. A transient network is gone afterwards; a persistent one stays defined.",
			opts: []option{netOpt}, run: netDestroy},
		{name: "net-undefine", summary: "undefine a persistent network",
			desc: "Removes the persistent definition of a network. An active network goes on running as a transient one until it is destroyed.",
			opts: []option{netOpt}, run: netUndefine},
		{name: "net-autostart", summary: "autostart a network",
			desc: "Makes a persistent network start with the daemon, or with --disable no longer.",
			opts: []option{netOpt, {name: "disable", kind: optBool, help: "disable autostarting"}}, run: netAutostart},
		{name: "net-dumpxml", summary: "network information in XML",
			desc: "Prints the network's XML to standard output: the live definition of an active network, or with --inactive the persistent one. It can be given to net-define as it is.",
			opts: []option{netOpt, {name: "inactive", kind: optBool, help: "show inactive defined XML"}}, run: netDumpXML},
		{name: "net-edit", summary: "edit XML configuration for a network",
			desc: "Opens the network's persistent XML in an editor ($VISUAL, else $EDITOR, else vi) on a temporary copy and defines the result when the editor exits. A refused result is handled as by nwfilter-edit: on a terminal the question \"Try again? [y,n,f,?]\", else failure with nothing changed.",
			opts: []option{netOpt}, run: netEdit},
		{name: "net-info", summary: "network information",
			desc: "Prints the network's Name, UUID, Active, Persistent, Autostart and Bridge, as virsh does.",
			opts: []option{netOpt}, run: netInfo},
		{name: "net-uuid", summary: "convert a network name to network UUID",
			desc: "Prints the network's UUID.",
			opts: []option{{name: "network", kind: optData, required: true, help: "network name", arg: "NAME"}}, run: netUUID},
		{name: "net-name", summary: "convert a network UUID to network name",
			desc: "Prints the network's name.",
			opts: []option{{name: "network", kind: optData, required: true, help: "network uuid", arg: "UUID"}}, run: netName},
		{name: "net-dhcp-leases", summary: "print lease info for a given network",
			desc: "Prints the network's current DHCP leases as virsh's table: Expiry Time (local time), MAC address, Protocol (ipv4 or ipv6), IP address (with the prefix length), Hostname and Client ID or DUID; \"-\" where a lease has none.",
			opts: []option{netOpt, {name: "mac", kind: optString, help: "MAC address", arg: "MAC"}}, run: netDHCPLeases},
		{name: "net-port-list", summary: "list network ports",
			desc: "Lists the ports of a network by UUID.",
			opts: []option{netOpt}, run: netPortList},
		{name: "net-port-create", summary: "create a network port from an XML file",
			desc: "Creates a port on an active network from libvirt network-port XML: the interface is plugged into the network and its filter, if any, is enforced before the command returns.",
			opts: []option{netOpt, {name: "file", kind: optData, required: true, help: portFile, arg: "FILE"},
				{name: "validate", kind: optBool, help: "validate the XML (libvirt's VALIDATE flag; every document is validated anyway)"}},
			run: netPortCreate},
		{name: "net-port-delete", summary: "delete the specified network port",
			desc: "Deletes a port of a network and everything made for it.",
			opts: []option{netOpt, {name: "port", kind: optData, required: true, help: portHelp, arg: "PORTUUID"}}, run: netPortDelete},
		{name: "net-port-dumpxml", summary: "network port information in XML",
			desc: "Prints the port's network-port XML to standard output.",
			opts: []option{netOpt, {name: "port", kind: optData, required: true, help: portHelp, arg: "PORTUUID"}}, run: netPortDumpXML},
	}
}

// netReadFailure and netManageFailure describe failed reading and
// changing calls on networks.
func netReadFailure(doing, missing string) failure {
	return failure{doing: doing, denied: "read networks", action: polkit.ActionNetworkRead, missing: missing}
}

func netManageFailure(doing, denied, missing string) failure {
	return failure{doing: doing, denied: denied, action: polkit.ActionNetworkManage, missing: missing}
}

// lookupNetwork finds a network by name or UUID, and reads it.
func (s *session) lookupNetwork(c api, arg string) (dbusapi.NetworkObject, error) {
	ctx, cancel := s.callContext()
	defer cancel()
	doing := fmt.Sprintf("failed to get network '%s'", arg)
	p, err := c.LookupNetwork(ctx, arg)
	if err != nil {
		return dbusapi.NetworkObject{}, fail(netReadFailure(doing, netMissing), err)
	}
	n, err := c.Network(ctx, p)
	if err != nil {
		return dbusapi.NetworkObject{}, fail(netReadFailure(doing, netMissing), err)
	}
	return n, nil
}

// lookupPort finds a port of a network by UUID.
func (s *session) lookupPort(c api, n dbusapi.NetworkObject, uuid string) (dbus.ObjectPath, error) {
	ctx, cancel := s.callContext()
	defer cancel()
	p, err := c.NetworkPortLookupByUUID(ctx, n.Path, uuid)
	if err != nil {
		return "", fail(netReadFailure(fmt.Sprintf("failed to get network port '%s'", uuid), portMissing), err)
	}
	return p, nil
}

// networkName returns the name of the network at path, fallback if it
// cannot be read.
func (s *session) networkName(c api, path dbus.ObjectPath, fallback string) string {
	ctx, cancel := s.callContext()
	defer cancel()
	if n, err := c.Network(ctx, path); err == nil && n.Name != "" {
		return n.Name
	}
	return fallback
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func netList(s *session, c api, p parsed) error {
	// virsh: active only by default; --inactive; --all both.
	var flags uint32
	switch {
	case p.has("all"):
		flags |= dbusapi.ListNetworksActive | dbusapi.ListNetworksInactive
	case p.has("inactive"):
		flags |= dbusapi.ListNetworksInactive
	default:
		flags |= dbusapi.ListNetworksActive
	}
	for name, f := range map[string]uint32{"persistent": dbusapi.ListNetworksPersistent, "transient": dbusapi.ListNetworksTransient,
		"autostart": dbusapi.ListNetworksAutostart, "no-autostart": dbusapi.ListNetworksNoAutostart} {
		if p.has(name) {
			flags |= f
		}
	}
	ctx, cancel := s.callContext()
	defer cancel()
	ns, err := c.Networks(ctx)
	if err != nil {
		return fail(netReadFailure("failed to list networks", ""), err)
	}
	var rows [][]string
	for _, n := range ns {
		if !dbusapi.MatchNetwork(n.Network, flags) {
			continue
		}
		state := "inactive"
		if n.Active {
			state = "active"
		}
		rows = append(rows, []string{n.Name, state, yesNo(n.Autostart), yesNo(n.Persistent)})
	}
	io.WriteString(s.stdout, formatTable([]string{"Name", "State", "Autostart", "Persistent"}, rows, s.quiet))
	return nil
}

func netDefine(s *session, c api, p parsed) error {
	doc, from, err := s.readInput(p.str("file"))
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	path, err := c.NetworkDefineXML(ctx, doc)
	if err != nil {
		return fail(netManageFailure("failed to define network from "+from, "define networks", ""), err)
	}
	s.say("Network %s defined from %s\n", s.networkName(c, path, xmlName(doc)), from)
	return nil
}

func netCreate(s *session, c api, p parsed) error {
	doc, from, err := s.readInput(p.str("file"))
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	path, err := c.NetworkCreateXML(ctx, doc)
	if err != nil {
		return fail(netManageFailure("failed to create network from "+from, "create networks", ""), err)
	}
	s.say("Network %s created from %s\n", s.networkName(c, path, xmlName(doc)), from)
	return nil
}

// netChange runs one change on a network found by name or UUID.
func netChange(s *session, c api, p parsed, doing, denied, done string, call func(ctx context.Context, c api, n dbusapi.NetworkObject) error) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	if err := call(ctx, c, n); err != nil {
		return fail(netManageFailure(fmt.Sprintf("failed to %s network %s", doing, n.Name), denied, netMissing), err)
	}
	s.say("Network %s %s\n", n.Name, done)
	return nil
}

func netStart(s *session, c api, p parsed) error {
	return netChange(s, c, p, "start", "start networks", "started", func(ctx context.Context, c api, n dbusapi.NetworkObject) error {
		return c.NetworkCreate(ctx, n.Path)
	})
}

func netDestroy(s *session, c api, p parsed) error {
	return netChange(s, c, p, "destroy", "destroy networks", "destroyed", func(ctx context.Context, c api, n dbusapi.NetworkObject) error {
		return c.NetworkDestroy(ctx, n.Path)
	})
}

func netUndefine(s *session, c api, p parsed) error {
	return netChange(s, c, p, "undefine", "undefine networks", "has been undefined", func(ctx context.Context, c api, n dbusapi.NetworkObject) error {
		return c.NetworkUndefine(ctx, n.Path)
	})
}

func netAutostart(s *session, c api, p parsed) error {
	on := !p.has("disable")
	doing, done := "mark as autostarted", "marked as autostarted"
	if !on {
		doing, done = "unmark as autostarted", "unmarked as autostarted"
	}
	return netChange(s, c, p, doing, "change the autostart of networks", done, func(ctx context.Context, c api, n dbusapi.NetworkObject) error {
		return c.NetworkSetAutostart(ctx, n.Path, on)
	})
}

func netDumpXML(s *session, c api, p parsed) error {
	arg := p.str("network")
	n, err := s.lookupNetwork(c, arg)
	if err != nil {
		return err
	}
	var flags uint32
	if p.has("inactive") {
		flags |= dbusapi.NetworkXMLInactive
	}
	ctx, cancel := s.callContext()
	defer cancel()
	doc, err := c.NetworkGetXMLDesc(ctx, n.Path, flags)
	if err != nil {
		return fail(netReadFailure(fmt.Sprintf("failed to get the XML of network '%s'", arg), netMissing), err)
	}
	s.printXML(doc)
	return nil
}

func netInfo(s *session, c api, p parsed) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	line := func(k, v string) { fmt.Fprintf(s.stdout, "%-15s %s\n", k+":", v) }
	line("Name", n.Name)
	line("UUID", n.UUID)
	line("Active", yesNo(n.Active))
	line("Persistent", yesNo(n.Persistent))
	line("Autostart", yesNo(n.Autostart))
	if n.Bridge != "" {
		line("Bridge", n.Bridge)
	}
	if n.Status != "" {
		line("Status", n.Status)
	}
	return nil
}

func netUUID(s *session, c api, p parsed) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	fmt.Fprintln(s.stdout, n.UUID)
	return nil
}

func netName(s *session, c api, p parsed) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	fmt.Fprintln(s.stdout, n.Name)
	return nil
}

// orDash is s, or "-" when it is empty, as virsh shows missing values.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func netDHCPLeases(s *session, c api, p parsed) error {
	arg := p.str("network")
	n, err := s.lookupNetwork(c, arg)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	leases, err := c.NetworkGetDHCPLeases(ctx, n.Path, p.str("mac"), 0)
	if err != nil {
		return fail(netReadFailure(fmt.Sprintf("failed to get leases info for %s", n.Name), netMissing), err)
	}
	// virsh sorts by MAC address.
	slices.SortStableFunc(leases, func(a, b dbusapi.Lease) int {
		return strings.Compare(strings.ToLower(a.MAC), strings.ToLower(b.MAC))
	})
	loc := s.loc
	if loc == nil {
		loc = time.Local
	}
	rows := make([][]string, len(leases))
	for i, l := range leases {
		proto := "ipv4"
		if l.Type == 1 {
			proto = "ipv6"
		}
		rows[i] = []string{time.Unix(l.ExpiryTime, 0).In(loc).Format("2006-01-02 15:04:05"), orDash(l.MAC), proto,
			fmt.Sprintf("%s/%d", l.IPAddr, l.Prefix), orDash(l.Hostname), orDash(l.ClientID)}
	}
	io.WriteString(s.stdout, formatTable([]string{"Expiry Time", "MAC address", "Protocol", "IP address", "Hostname", "Client ID or DUID"}, rows, s.quiet))
	return nil
}

func netPortList(s *session, c api, p parsed) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	paths, err := c.NetworkListPorts(ctx, n.Path, 0)
	if err != nil {
		return fail(netReadFailure("failed to list network ports", netMissing), err)
	}
	var uuids []string
	for _, path := range paths {
		if u, ok := dbusapi.NetworkPortUUIDOf(path); ok {
			uuids = append(uuids, u)
		}
	}
	slices.Sort(uuids)
	rows := make([][]string, len(uuids))
	for i, u := range uuids {
		rows[i] = []string{u}
	}
	io.WriteString(s.stdout, formatTable([]string{"UUID"}, rows, s.quiet))
	return nil
}

func netPortCreate(s *session, c api, p parsed) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	doc, from, err := s.readInput(p.str("file"))
	if err != nil {
		return err
	}
	var flags uint32
	if p.has("validate") {
		flags |= dbusapi.PortCreateValidate
	}
	ctx, cancel := s.callContext()
	defer cancel()
	path, err := c.NetworkPortCreateXML(ctx, n.Path, doc, flags)
	if err != nil {
		return fail(netManageFailure("failed to create network port from "+from, "create network ports", netMissing), err)
	}
	uuid, ok := dbusapi.NetworkPortUUIDOf(path)
	if !ok {
		uuid = string(path)
	}
	s.say("Network port %s created from %s\n", uuid, from)
	return nil
}

func netPortDelete(s *session, c api, p parsed) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	uuid := p.str("port")
	path, err := s.lookupPort(c, n, uuid)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	if err := c.NetworkPortDelete(ctx, path); err != nil {
		return fail(netManageFailure("failed to delete network port "+uuid, "delete network ports", portMissing), err)
	}
	s.say("Network port %s deleted\n", uuid)
	return nil
}

func netPortDumpXML(s *session, c api, p parsed) error {
	n, err := s.lookupNetwork(c, p.str("network"))
	if err != nil {
		return err
	}
	uuid := p.str("port")
	path, err := s.lookupPort(c, n, uuid)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	doc, err := c.NetworkPortGetXMLDesc(ctx, path, 0)
	if err != nil {
		return fail(netReadFailure(fmt.Sprintf("failed to get the XML of network port '%s'", uuid), portMissing), err)
	}
	s.printXML(doc)
	return nil
}

// netEdit edits a network's persistent XML in an editor, as virsh's
// net-edit does.
func netEdit(s *session, c api, p parsed) error {
	arg := p.str("network")
	n, err := s.lookupNetwork(c, arg)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	orig, err := c.NetworkGetXMLDesc(ctx, n.Path, dbusapi.NetworkXMLInactive)
	cancel()
	if err != nil {
		return fail(netReadFailure(fmt.Sprintf("failed to get the XML of network '%s'", arg), netMissing), err)
	}
	return s.editLoop("Network", n.Name, "netwarden-network-*.xml", orig, func(edited string) (string, error) {
		ctx, cancel := s.callContext()
		defer cancel()
		path, err := c.NetworkDefineXML(ctx, edited)
		if err != nil {
			return "", fail(netManageFailure("failed to define the edited network "+n.Name, "define networks", ""), err)
		}
		return s.networkName(c, path, n.Name), nil
	})
}

// xmlName returns the text of the <name> element of a network
// document, "" if it has none; a message's fallback only.
func xmlName(doc string) string {
	_, rest, ok := strings.Cut(doc, "<name>")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "</name>")
	return strings.TrimSpace(name)
}
