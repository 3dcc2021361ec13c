package network

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Parse parses and validates a network document (libvirt's <network> XML)
// and returns its typed form with libvirt's defaults applied and every
// value in canonical form. Any problem — malformed XML, an unknown element
// or attribute, a value of the wrong type or family or out of range, a
// missing required attribute, an element that libvirt would ignore or drop,
// settings that contradict each other — is reported as a *ValidationError
// naming the element, attribute, value and reason. Documents larger than
// MaxInputSize are refused.
//
// Parse does not assign a UUID or a bridge name and does not look at the
// host (whether interfaces exist, whether subnets collide with other
// networks); those belong to the daemon.
func Parse(data []byte) (*Network, error) {
	root, err := readXMLTree(data)
	if err != nil {
		return nil, err
	}
	p := &parser{}
	return p.network(root)
}

type parser struct {
	name string // the network's name once known, for errors
}

func (p *parser) fail(n *xmlNode, attr, value, reason string) *ValidationError {
	return &ValidationError{Network: p.name, Element: n.name, Attr: attr, Value: value, Reason: reason, Line: n.line}
}

// attrs checks an element's attributes against the allowed names, that
// none is repeated and, with empty, that it has no text and no children.
func (p *parser) attrs(n *xmlNode, empty bool, allowed ...string) error {
	if n.dup != nil {
		return p.fail(n, n.dup.Name.Local, n.dup.Value, "attribute given more than once")
	}
	for _, a := range n.attrs {
		if !slices.Contains(allowed, a.Name.Local) {
			var reason string
			switch {
			case a.Name.Local == "connections":
				reason = "connections is run-time state written by libvirt, not part of a definition"
			case len(allowed) == 0:
				reason = fmt.Sprintf("<%s> has no attributes", n.name)
			default:
				reason = fmt.Sprintf("unknown attribute of <%s> (it has %s)", n.name, strings.Join(allowed, ", "))
			}
			return p.fail(n, a.Name.Local, a.Value, reason)
		}
	}
	if n.hasText() {
		return p.fail(n, "", strings.TrimSpace(n.text.String()), fmt.Sprintf("unexpected text inside <%s>", n.name))
	}
	if empty && len(n.children) > 0 {
		return p.fail(n.children[0], "", "", fmt.Sprintf("unexpected element inside <%s>", n.name))
	}
	return nil
}

// required returns a required attribute.
func (p *parser) required(n *xmlNode, attr string) (string, error) {
	v, ok := n.attr(attr)
	if !ok {
		return "", p.fail(n, attr, "", "missing required attribute")
	}
	return v, nil
}

func (p *parser) tristate(n *xmlNode, attr string) (Tristate, error) {
	v, ok := n.attr(attr)
	switch {
	case !ok:
		return Absent, nil
	case v == "yes":
		return Yes, nil
	case v == "no":
		return No, nil
	}
	return Absent, p.fail(n, attr, v, "must be 'yes' or 'no'")
}

// addr reads an address attribute; a missing one is an error when required.
func (p *parser) addr(n *xmlNode, attr string, required bool) (netip.Addr, error) {
	v, ok := n.attr(attr)
	if !ok {
		if required {
			return netip.Addr{}, p.fail(n, attr, "", "missing required attribute")
		}
		return netip.Addr{}, nil
	}
	a, err := parseAddr(v)
	if err != nil {
		return netip.Addr{}, p.fail(n, attr, v, err.Error())
	}
	return a, nil
}

// text returns the text of an element that holds only text.
func (p *parser) text(n *xmlNode) (string, error) {
	switch {
	case n.dup != nil:
		return "", p.fail(n, n.dup.Name.Local, n.dup.Value, fmt.Sprintf("<%s> has no attributes", n.name))
	case len(n.attrs) > 0:
		return "", p.fail(n, n.attrs[0].Name.Local, n.attrs[0].Value, fmt.Sprintf("<%s> has no attributes", n.name))
	case len(n.children) > 0:
		return "", p.fail(n.children[0], "", "", fmt.Sprintf("unexpected element inside <%s>", n.name))
	}
	return n.text.String(), nil
}

// singles are the child elements of <network> that may appear once.
var singles = []string{"name", "uuid", "metadata", "forward", "bridge", "mtu", "mac", "domain", "dns",
	"bandwidth", "vlan", "port", "virtualport"}

func (p *parser) network(root *xmlNode) (*Network, error) {
	if root.name != "network" {
		return nil, p.fail(root, "", "", "root element must be <network>")
	}
	net := &Network{}
	one := map[string]*xmlNode{}
	var ips, routes, groups, options []*xmlNode
	for _, c := range root.children {
		switch {
		case slices.Contains(singles, c.name):
			if one[c.name] != nil {
				return nil, p.fail(c, "", "", fmt.Sprintf("more than one <%s> (libvirt uses only the first)", c.name))
			}
			one[c.name] = c
		case c.name == "ip":
			ips = append(ips, c)
		case c.name == "route":
			routes = append(routes, c)
		case c.name == "portgroup":
			groups = append(groups, c)
		case c.name == "dnsmasq:options":
			options = append(options, c)
		default:
			return nil, p.fail(c, "", "", "unknown element inside <network>")
		}
	}
	if n := one["name"]; n == nil {
		return nil, p.fail(root, "", "", "missing required element <name>")
	} else {
		name, err := p.text(n)
		if err != nil {
			return nil, err
		}
		if err := checkNetworkName(name); err != nil {
			return nil, &ValidationError{Element: "name", Value: name, Reason: err.Error(), Line: n.line}
		}
		net.Name, p.name = name, name
	}
	if err := p.attrs(root, false, "ipv6", "trustGuestRxFilters"); err != nil {
		return nil, err
	}
	ipv6, err := p.tristate(root, "ipv6")
	if err != nil {
		return nil, err
	}
	net.IPv6 = ipv6 == Yes
	if net.TrustGuestRxFilters, err = p.tristate(root, "trustGuestRxFilters"); err != nil {
		return nil, err
	}
	if n := one["uuid"]; n != nil {
		text, err := p.text(n)
		if err != nil {
			return nil, err
		}
		if net.UUID, err = parseUUID(strings.TrimSpace(text)); err != nil {
			return nil, &ValidationError{Network: p.name, Element: "uuid", Value: text, Reason: err.Error(), Line: n.line}
		}
	}
	if n := one["metadata"]; n != nil {
		if err := p.attrs(n, false); err != nil {
			return nil, err
		}
		if err := checkMetadata(n.raw); err != nil {
			return nil, p.fail(n, "", "", err.Error())
		}
		net.Metadata = n.raw
		if net.Metadata == nil {
			net.Metadata = []byte{}
		}
	}
	if n := one["forward"]; n != nil {
		if net.Forward, err = p.forward(n); err != nil {
			return nil, err
		}
	}
	mode := net.ForwardMode()
	if err := p.bridge(one["bridge"], mode, net); err != nil {
		return nil, err
	}
	if n := one["mtu"]; n != nil {
		if err := p.attrs(n, true, "size"); err != nil {
			return nil, err
		}
		v, err := p.required(n, "size")
		if err != nil {
			return nil, err
		}
		size, err := parseDecimal(v, 16)
		if err != nil || size < 68 {
			return nil, p.fail(n, "size", v, "MTU must be a number in 68..65535")
		}
		if !mode.HasBridge() {
			return nil, p.fail(n, "", "", fmt.Sprintf("an MTU is only allowed in isolated, nat, route and open mode, not with forward mode='%s'", mode))
		}
		net.MTU = uint16(size)
	}
	if n := one["mac"]; n != nil {
		if err := p.attrs(n, true, "address"); err != nil {
			return nil, err
		}
		v, err := p.required(n, "address")
		if err != nil {
			return nil, err
		}
		if net.MAC, err = parseMAC(v); err != nil {
			return nil, p.fail(n, "address", v, err.Error())
		}
	}
	if n := one["domain"]; n != nil {
		if err := p.attrs(n, true, "name", "localOnly"); err != nil {
			return nil, err
		}
		v, err := p.required(n, "name")
		if err != nil {
			return nil, err
		}
		if err := checkDNSName(v); err != nil {
			return nil, p.fail(n, "name", v, err.Error())
		}
		d := &Domain{Name: v}
		if d.LocalOnly, err = p.tristate(n, "localOnly"); err != nil {
			return nil, err
		}
		net.Domain = d
	}
	if n := one["dns"]; n != nil {
		if net.DNS, err = p.dns(n); err != nil {
			return nil, err
		}
	}
	if n := one["vlan"]; n != nil {
		if net.VLAN, err = p.vlan(n); err != nil {
			return nil, err
		}
	}
	if n := one["bandwidth"]; n != nil {
		if net.Bandwidth, err = p.bandwidth(n); err != nil {
			return nil, err
		}
	}
	if n := one["port"]; n != nil {
		if err := p.attrs(n, true, "isolated"); err != nil {
			return nil, err
		}
		if net.PortIsolated, err = p.tristate(n, "isolated"); err != nil {
			return nil, err
		}
	}
	dhcp4, dhcp6 := false, false
	for _, n := range ips {
		ip, err := p.ip(n)
		if err != nil {
			return nil, err
		}
		if ip.DHCP != nil {
			seen := &dhcp4
			if ip.IsIPv6() {
				seen = &dhcp6
			}
			if *seen {
				return nil, p.fail(n, "", "", "DHCP is supported for only one <ip> of each family (dnsmasq serves one subnet per family)")
			}
			*seen = true
		}
		net.IPs = append(net.IPs, *ip)
	}
	if (mode == ForwardNAT || mode == ForwardRoute || mode == ForwardOpen) && len(net.IPs) == 0 {
		return nil, p.fail(one["forward"], "mode", string(mode), fmt.Sprintf("forward mode='%s' needs an <ip> address on the network", mode))
	}
	for _, n := range routes {
		r, err := p.route(n)
		if err != nil {
			return nil, err
		}
		if !reachable(r.Gateway, net.IPs) {
			return nil, p.fail(n, "gateway", r.Gateway.String(), "the gateway is not inside the subnet of any <ip> of the network")
		}
		net.Routes = append(net.Routes, *r)
	}
	if n := one["virtualport"]; n != nil {
		if mode.HasBridge() {
			name := "isolated"
			if mode != ForwardNone {
				name = string(mode)
			}
			return nil, p.fail(n, "", "", fmt.Sprintf("<virtualport> is not supported in %s mode", name))
		}
		if net.VirtualPort, err = p.virtualPort(n); err != nil {
			return nil, err
		}
		if net.VirtualPort == nil || net.VirtualPort.Type == "" {
			return nil, p.fail(n, "type", "", "a network's <virtualport> needs a type (only a portgroup's may leave it out)")
		}
	}
	defaultGroup := ""
	for _, n := range groups {
		g, err := p.portGroup(n)
		if err != nil {
			return nil, err
		}
		for _, h := range net.PortGroups {
			if h.Name == g.Name {
				return nil, p.fail(n, "name", g.Name, "more than one <portgroup> with this name")
			}
		}
		if g.Default {
			if defaultGroup != "" {
				return nil, p.fail(n, "default", "yes", fmt.Sprintf("portgroup %q is already the default; only one may be", defaultGroup))
			}
			defaultGroup = g.Name
		}
		net.PortGroups = append(net.PortGroups, *g)
	}
	for _, n := range options {
		if err := p.attrs(n, false); err != nil {
			return nil, err
		}
		for _, c := range n.children {
			if c.name != "dnsmasq:option" {
				return nil, p.fail(c, "", "", "unknown element inside <dnsmasq:options> (it holds <dnsmasq:option value='…'/>)")
			}
			if err := p.attrs(c, true, "value"); err != nil {
				return nil, err
			}
			v, err := p.required(c, "value")
			if err != nil {
				return nil, err
			}
			if v == "" {
				return nil, p.fail(c, "value", v, "empty dnsmasq option")
			}
			if err := checkPlainText(v); err != nil {
				return nil, p.fail(c, "value", v, err.Error())
			}
			net.DnsmasqOptions = append(net.DnsmasqOptions, v)
		}
	}
	return net, nil
}

// ForwardMode returns the network's forward mode, ForwardNone when it is
// isolated.
func (n *Network) ForwardMode() ForwardMode {
	if n.Forward == nil {
		return ForwardNone
	}
	return n.Forward.Mode
}

func (p *parser) bridge(n *xmlNode, mode ForwardMode, net *Network) error {
	net.Bridge = Bridge{STP: true}
	if n == nil {
		return nil
	}
	b := &net.Bridge
	if err := p.attrs(n, true, "name", "zone", "stp", "delay", "macTableManager"); err != nil {
		return err
	}
	if v, ok := n.attr("name"); ok {
		if err := checkIfName(v); err != nil {
			return p.fail(n, "name", v, "bridge "+err.Error())
		}
		if !mode.HasBridge() && mode != ForwardBridge {
			return p.fail(n, "name", v, fmt.Sprintf("a bridge name is not allowed in %s mode", mode))
		}
		if mode == ForwardBridge && net.Forward != nil && (len(net.Forward.Interfaces) > 0 || net.Forward.PF != "") {
			return p.fail(n, "name", v, "a network with forward mode='bridge' has a bridge name or a forward dev, not both")
		}
		b.Name = v
	}
	if v, ok := n.attr("zone"); ok {
		if err := checkZoneName(v); err != nil {
			return p.fail(n, "zone", v, err.Error())
		}
		if !mode.HasBridge() {
			return p.fail(n, "zone", v, fmt.Sprintf("a firewalld zone is only allowed in isolated, nat, route and open mode, not in %s mode", mode))
		}
		b.Zone = v
	}
	if v, ok := n.attr("stp"); ok {
		switch v {
		case "on":
		case "off":
			b.STP = false
		default:
			return p.fail(n, "stp", v, "must be 'on' or 'off'")
		}
		if !mode.HasBridge() {
			return p.fail(n, "stp", v, fmt.Sprintf("stp is only allowed in isolated, nat, route and open mode, not in %s mode", mode))
		}
	}
	if v, ok := n.attr("delay"); ok {
		d, err := parseDecimal(v, 64)
		if err != nil || d > MaxBridgeDelay {
			return p.fail(n, "delay", v, fmt.Sprintf("forward delay must be a number of seconds in 0..%d", MaxBridgeDelay))
		}
		if !mode.HasBridge() {
			return p.fail(n, "delay", v, fmt.Sprintf("delay is only allowed in isolated, nat, route and open mode, not in %s mode", mode))
		}
		b.Delay = d
	}
	if v, ok := n.attr("macTableManager"); ok {
		if v != "kernel" && v != "libvirt" {
			return p.fail(n, "macTableManager", v, "must be 'kernel' or 'libvirt'")
		}
		if !mode.HasBridge() && mode != ForwardBridge {
			return p.fail(n, "macTableManager", v, fmt.Sprintf("macTableManager is not allowed in %s mode", mode))
		}
		b.MACTableManager = v
	}
	return nil
}
