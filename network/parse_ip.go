// Parsing of the addressing side of a network: <dns>, <ip> with DHCP,
// and <route>.

package network

import (
	"fmt"
	"net/netip"
	"strings"
)

func (p *parser) dns(n *xmlNode) (*DNS, error) {
	if err := p.attrs(n, false, "enable", "forwardPlainNames"); err != nil {
		return nil, err
	}
	d := &DNS{}
	var err error
	if d.Enable, err = p.tristate(n, "enable"); err != nil {
		return nil, err
	}
	if d.ForwardPlainNames, err = p.tristate(n, "forwardPlainNames"); err != nil {
		return nil, err
	}
	for _, c := range n.children {
		if d.Enable == No {
			return nil, p.fail(c, "", "", "<dns enable='no'> cannot have records or forwarders")
		}
		switch c.name {
		case "forwarder":
			if err := p.attrs(c, true, "addr", "domain"); err != nil {
				return nil, err
			}
			var fw DNSForwarder
			if fw.Addr, err = p.addr(c, "addr", false); err != nil {
				return nil, err
			}
			if v, ok := c.attr("domain"); ok {
				if err := checkDNSName(v); err != nil {
					return nil, p.fail(c, "domain", v, err.Error())
				}
				fw.Domain = v
			}
			if !fw.Addr.IsValid() && fw.Domain == "" {
				return nil, p.fail(c, "", "", "a forwarder needs addr, domain or both")
			}
			d.Forwarders = append(d.Forwarders, fw)
		case "txt":
			if err := p.attrs(c, true, "name", "value"); err != nil {
				return nil, err
			}
			name, err := p.required(c, "name")
			if err != nil {
				return nil, err
			}
			if err := checkDNSName(name); err != nil {
				return nil, p.fail(c, "name", name, err.Error())
			}
			value, err := p.required(c, "value")
			if err != nil {
				return nil, err
			}
			if err := checkPlainText(value); err != nil {
				return nil, p.fail(c, "value", value, err.Error())
			}
			d.TXTs = append(d.TXTs, DNSTXT{Name: name, Value: value})
		case "srv":
			s, err := p.srv(c)
			if err != nil {
				return nil, err
			}
			d.SRVs = append(d.SRVs, *s)
		case "host":
			if err := p.attrs(c, false, "ip"); err != nil {
				return nil, err
			}
			h := DNSHost{}
			if h.IP, err = p.addr(c, "ip", true); err != nil {
				return nil, err
			}
			for _, hn := range c.children {
				if hn.name != "hostname" {
					return nil, p.fail(hn, "", "", "unknown element inside <host> (it holds <hostname>)")
				}
				name, err := p.text(hn)
				if err != nil {
					return nil, err
				}
				if err := checkDNSName(name); err != nil {
					return nil, &ValidationError{Network: p.name, Element: "hostname", Value: name, Reason: err.Error(), Line: hn.line}
				}
				h.Hostnames = append(h.Hostnames, name)
			}
			if len(h.Hostnames) == 0 {
				return nil, p.fail(c, "", "", "a DNS host needs at least one <hostname>")
			}
			d.Hosts = append(d.Hosts, h)
		default:
			return nil, p.fail(c, "", "", "unknown element inside <dns> (it holds <forwarder>, <txt>, <srv> and <host>)")
		}
	}
	if d.Enable == Absent && d.ForwardPlainNames == Absent && len(n.children) == 0 {
		return nil, nil
	}
	return d, nil
}

const (
	srvServiceChars  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+/*"
	maxSRVServiceLen = 512 - 30
)

func (p *parser) srv(c *xmlNode) (*DNSSRV, error) {
	if err := p.attrs(c, true, "service", "protocol", "domain", "target", "port", "priority", "weight"); err != nil {
		return nil, err
	}
	s := &DNSSRV{}
	var err error
	if s.Service, err = p.required(c, "service"); err != nil {
		return nil, err
	}
	if s.Service == "" || len(s.Service) > maxSRVServiceLen || strings.Trim(s.Service, srvServiceChars) != "" {
		return nil, p.fail(c, "service", s.Service, fmt.Sprintf("service must be 1..%d letters, digits or _-+/*", maxSRVServiceLen))
	}
	if s.Protocol, err = p.required(c, "protocol"); err != nil {
		return nil, err
	}
	if s.Protocol != "tcp" && s.Protocol != "udp" {
		return nil, p.fail(c, "protocol", s.Protocol, "must be 'tcp' or 'udp'")
	}
	for _, a := range []struct {
		attr string
		to   *string
	}{{"domain", &s.Domain}, {"target", &s.Target}} {
		if v, ok := c.attr(a.attr); ok {
			if err := checkDNSName(v); err != nil {
				return nil, p.fail(c, a.attr, v, err.Error())
			}
			*a.to = v
		}
	}
	for _, a := range []struct {
		attr string
		to   *uint16
		min  uint64
	}{{"port", &s.Port, 1}, {"priority", &s.Priority, 0}, {"weight", &s.Weight, 0}} {
		v, ok := c.attr(a.attr)
		if !ok {
			continue
		}
		x, err := parseDecimal(v, 16)
		if err != nil || x < a.min {
			return nil, p.fail(c, a.attr, v, fmt.Sprintf("must be a number in %d..65535", a.min))
		}
		if s.Target == "" {
			return nil, p.fail(c, a.attr, v, "a port, priority or weight needs a target")
		}
		*a.to = uint16(x)
	}
	return s, nil
}

func (p *parser) ip(n *xmlNode) (*IP, error) {
	if err := p.attrs(n, false, "address", "netmask", "prefix", "family", "localPtr"); err != nil {
		return nil, err
	}
	ip := &IP{}
	var err error
	if ip.Address, err = p.addr(n, "address", true); err != nil {
		return nil, err
	}
	v, hasFamily := n.attr("family")
	if hasFamily && v != "ipv4" && v != "ipv6" {
		return nil, p.fail(n, "family", v, "must be 'ipv4' or 'ipv6'")
	}
	ip.Family = v
	if err := p.checkFamily(n, "address", ip.Family, ip.Address); err != nil {
		return nil, err
	}
	if ip.Netmask, err = p.addr(n, "netmask", false); err != nil {
		return nil, err
	}
	if ip.Netmask.IsValid() {
		if ip.Address.Is6() {
			return nil, p.fail(n, "netmask", ip.Netmask.String(), "IPv6 takes a prefix, not a netmask")
		}
		l, err := maskLen(ip.Netmask)
		if err != nil {
			return nil, p.fail(n, "netmask", ip.Netmask.String(), err.Error())
		}
		if l == 0 {
			return nil, p.fail(n, "netmask", ip.Netmask.String(), "a netmask of length 0 is not a network")
		}
	}
	if v, ok := n.attr("prefix"); ok {
		max := uint64(32)
		if ip.Address.Is6() {
			max = 128
		}
		x, err := parseDecimal(v, 8)
		if err != nil || x < 1 || x > max {
			return nil, p.fail(n, "prefix", v, fmt.Sprintf("prefix must be a number in 1..%d (libvirt ignores 0)", max))
		}
		if ip.Netmask.IsValid() {
			return nil, p.fail(n, "prefix", v, "give a netmask or a prefix, not both")
		}
		ip.Prefix = int(x)
	}
	if ip.PrefixLen() == 0 {
		return nil, p.fail(n, "address", ip.Address.String(), "no netmask or prefix, and the address has no class to take a default from")
	}
	if ip.LocalPtr, err = p.tristate(n, "localPtr"); err != nil {
		return nil, err
	}
	var tftp, dhcp bool
	for _, c := range n.children {
		switch c.name {
		case "tftp":
			if tftp {
				return nil, p.fail(c, "", "", "more than one <tftp>")
			}
			tftp = true
			if err := p.attrs(c, true, "root"); err != nil {
				return nil, err
			}
			root, err := p.required(c, "root")
			if err != nil {
				return nil, err
			}
			if !strings.HasPrefix(root, "/") {
				return nil, p.fail(c, "root", root, "the TFTP root must be an absolute path")
			}
			if err := checkPlainText(root); err != nil {
				return nil, p.fail(c, "root", root, err.Error())
			}
			if ip.IsIPv6() {
				return nil, p.fail(c, "", "", "<tftp> is only supported for IPv4")
			}
			ip.TFTPRoot = root
		case "dhcp":
			if dhcp {
				return nil, p.fail(c, "", "", "more than one <dhcp>")
			}
			dhcp = true
			if ip.DHCP, err = p.dhcp(c, ip); err != nil {
				return nil, err
			}
		default:
			return nil, p.fail(c, "", "", "unknown element inside <ip> (it holds <tftp> and <dhcp>)")
		}
	}
	return ip, nil
}

// checkFamily checks an address against a family attribute as libvirt
// does: without family the address must be IPv4.
func (p *parser) checkFamily(n *xmlNode, attr, family string, a netip.Addr) error {
	switch {
	case family == "" && !a.Is4():
		return p.fail(n, attr, a.String(), "an IPv6 address needs family='ipv6'")
	case family == "ipv4" && !a.Is4():
		return p.fail(n, attr, a.String(), "not an IPv4 address, but family='ipv4'")
	case family == "ipv6" && !a.Is6():
		return p.fail(n, attr, a.String(), "not an IPv6 address, but family='ipv6'")
	}
	return nil
}

func (p *parser) dhcp(n *xmlNode, ip *IP) (*DHCP, error) {
	if err := p.attrs(n, false); err != nil {
		return nil, err
	}
	d := &DHCP{}
	subnet := ip.Subnet()
	inSubnet := func(c *xmlNode, attr string, a netip.Addr) error {
		if a.Is6() != ip.Address.Is6() {
			return p.fail(c, attr, a.String(), fmt.Sprintf("not of the family of the network's address %s", ip.Address))
		}
		if !subnet.Contains(a) {
			return p.fail(c, attr, a.String(), fmt.Sprintf("not inside the network %s", subnet))
		}
		return nil
	}
	for _, c := range n.children {
		switch c.name {
		case "range":
			if err := p.attrs(c, false, "start", "end"); err != nil {
				return nil, err
			}
			r := DHCPRange{}
			var err error
			if r.Start, err = p.addr(c, "start", true); err != nil {
				return nil, err
			}
			if r.End, err = p.addr(c, "end", true); err != nil {
				return nil, err
			}
			if err := inSubnet(c, "start", r.Start); err != nil {
				return nil, err
			}
			if err := inSubnet(c, "end", r.End); err != nil {
				return nil, err
			}
			if r.End.Less(r.Start) {
				return nil, p.fail(c, "end", r.End.String(), fmt.Sprintf("the range is reversed: end is before start %s", r.Start))
			}
			if tooLarge(r.Start, r.End) {
				return nil, p.fail(c, "end", r.End.String(), fmt.Sprintf("the range from %s is larger than libvirt allows: start and end may differ only in their last 16 bits", r.Start))
			}
			if r.Start.Is4() && subnet.Bits() < 31 {
				if r.Start == subnet.Addr() {
					return nil, p.fail(c, "start", r.Start.String(), "the range includes the network address")
				}
				if r.End == lastAddr(subnet) {
					return nil, p.fail(c, "end", r.End.String(), "the range includes the broadcast address")
				}
			}
			if r.Lease, err = p.lease(c); err != nil {
				return nil, err
			}
			d.Ranges = append(d.Ranges, r)
		case "host":
			h, err := p.dhcpHost(c, ip)
			if err != nil {
				return nil, err
			}
			if err := inSubnet(c, "ip", h.IP); err != nil {
				return nil, err
			}
			for _, o := range d.Hosts {
				if o.IP == h.IP {
					return nil, p.fail(c, "ip", h.IP.String(), "another static host has this address (dnsmasq refuses to start)")
				}
			}
			d.Hosts = append(d.Hosts, *h)
		case "bootp":
			if d.Bootp != nil {
				return nil, p.fail(c, "", "", "more than one <bootp>")
			}
			if err := p.attrs(c, true, "file", "server"); err != nil {
				return nil, err
			}
			if ip.IsIPv6() {
				return nil, p.fail(c, "", "", "<bootp> is only supported for IPv4")
			}
			b := &Bootp{}
			var err error
			if b.File, err = p.required(c, "file"); err != nil {
				return nil, err
			}
			if b.File == "" {
				return nil, p.fail(c, "file", "", "the boot file name is empty")
			}
			if err := checkPlainText(b.File); err != nil {
				return nil, p.fail(c, "file", b.File, err.Error())
			}
			if b.Server, err = p.addr(c, "server", false); err != nil {
				return nil, err
			}
			if b.Server.IsValid() && !b.Server.Is4() {
				return nil, p.fail(c, "server", b.Server.String(), "the boot server must be an IPv4 address")
			}
			d.Bootp = b
		default:
			return nil, p.fail(c, "", "", "unknown element inside <dhcp> (it holds <range>, <host> and <bootp>)")
		}
	}
	if len(d.Ranges) == 0 && len(d.Hosts) == 0 && d.Bootp == nil {
		return nil, nil
	}
	return d, nil
}

// reachable reports whether a gateway lies inside the subnet of one of
// the network's addresses of its family.
func reachable(gw netip.Addr, ips []IP) bool {
	for i := range ips {
		if ips[i].Address.Is6() == gw.Is6() && ips[i].Subnet().Contains(gw) {
			return true
		}
	}
	return false
}

// tooLarge reports whether a range spans more than libvirt's limit: the
// addresses may differ only in their last two bytes.
func tooLarge(start, end netip.Addr) bool {
	a, b := start.As16(), end.As16()
	return [14]byte(a[:14]) != [14]byte(b[:14])
}

// lastAddr returns the last address of an IPv4 prefix (its broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (p *parser) dhcpHost(c *xmlNode, ip *IP) (*DHCPHost, error) {
	if err := p.attrs(c, false, "mac", "id", "name", "ip"); err != nil {
		return nil, err
	}
	h := &DHCPHost{}
	var err error
	if v, ok := c.attr("mac"); ok {
		if ip.IsIPv6() {
			return nil, p.fail(c, "mac", v, "IPv6 static hosts are identified by id (a DUID) or name, not mac")
		}
		if h.MAC, err = parseMAC(v); err != nil {
			return nil, p.fail(c, "mac", v, err.Error())
		}
	}
	if v, ok := c.attr("id"); ok {
		if !ip.IsIPv6() {
			return nil, p.fail(c, "id", v, "IPv4 static hosts are identified by mac or name, not id")
		}
		if err := checkDUID(v); err != nil {
			return nil, p.fail(c, "id", v, err.Error())
		}
		h.ID = v
	}
	if v, ok := c.attr("name"); ok {
		if err := checkDNSName(v); err != nil {
			return nil, p.fail(c, "name", v, "host name: "+err.Error())
		}
		if !isAlnum(v[0]) {
			return nil, p.fail(c, "name", v, "a host name must start with a letter or a digit")
		}
		h.Name = v
	}
	if h.MAC == "" && h.ID == "" && h.Name == "" {
		if ip.IsIPv6() {
			return nil, p.fail(c, "", "", "an IPv6 static host needs id or name")
		}
		return nil, p.fail(c, "", "", "an IPv4 static host needs mac or name")
	}
	if h.IP, err = p.addr(c, "ip", true); err != nil {
		return nil, err
	}
	if h.Lease, err = p.lease(c); err != nil {
		return nil, err
	}
	return h, nil
}

// lease reads the optional <lease> child of a range or host; no other
// children are allowed.
func (p *parser) lease(n *xmlNode) (*Lease, error) {
	var l *Lease
	for _, c := range n.children {
		if c.name != "lease" {
			return nil, p.fail(c, "", "", fmt.Sprintf("unknown element inside <%s> (it holds <lease>)", n.name))
		}
		if l != nil {
			return nil, p.fail(c, "", "", "more than one <lease>")
		}
		if err := p.attrs(c, true, "expiry", "unit"); err != nil {
			return nil, err
		}
		v, err := p.required(c, "expiry")
		if err != nil {
			return nil, err
		}
		x, err := parseDecimal(v, 64)
		if err != nil {
			return nil, p.fail(c, "expiry", v, err.Error())
		}
		l = &Lease{Expiry: x, Unit: Minutes}
		if u, ok := c.attr("unit"); ok {
			switch LeaseUnit(u) {
			case Seconds, Minutes, Hours:
				l.Unit = LeaseUnit(u)
			default:
				return nil, p.fail(c, "unit", u, "must be 'seconds', 'minutes' or 'hours'")
			}
		}
		if x == 0 {
			l.Unit = ""
			continue
		}
		if x > MaxLeaseSeconds || l.Seconds() > MaxLeaseSeconds {
			return nil, p.fail(c, "expiry", v, fmt.Sprintf("lease time is longer than %d seconds (dnsmasq's limit)", uint64(MaxLeaseSeconds)))
		}
		if l.Seconds() < 120 {
			return nil, p.fail(c, "expiry", v, "the shortest lease is 2 minutes (dnsmasq's limit); 0 is infinite")
		}
	}
	return l, nil
}

func (p *parser) route(n *xmlNode) (*Route, error) {
	if err := p.attrs(n, true, "family", "address", "netmask", "prefix", "gateway", "metric"); err != nil {
		return nil, err
	}
	r := &Route{}
	v, ok := n.attr("family")
	if ok && v != "ipv4" && v != "ipv6" {
		return nil, p.fail(n, "family", v, "must be 'ipv4' or 'ipv6'")
	}
	r.Family = v
	var err error
	if r.Address, err = p.addr(n, "address", true); err != nil {
		return nil, err
	}
	if err := p.checkFamily(n, "address", r.Family, r.Address); err != nil {
		return nil, err
	}
	if r.Gateway, err = p.addr(n, "gateway", true); err != nil {
		return nil, err
	}
	if r.Gateway.Is6() != r.Address.Is6() {
		return nil, p.fail(n, "gateway", r.Gateway.String(), "the gateway is not of the route's family")
	}
	if r.Netmask, err = p.addr(n, "netmask", false); err != nil {
		return nil, err
	}
	if r.Netmask.IsValid() {
		if r.Address.Is6() {
			return nil, p.fail(n, "netmask", r.Netmask.String(), "IPv6 takes a prefix, not a netmask")
		}
		if _, err := maskLen(r.Netmask); err != nil {
			return nil, p.fail(n, "netmask", r.Netmask.String(), err.Error())
		}
	}
	if v, ok := n.attr("prefix"); ok {
		max := uint64(32)
		if r.Address.Is6() {
			max = 128
		}
		x, err := parseDecimal(v, 8)
		if err != nil || x > max {
			return nil, p.fail(n, "prefix", v, fmt.Sprintf("prefix must be a number in 0..%d", max))
		}
		if r.Netmask.IsValid() {
			return nil, p.fail(n, "prefix", v, "give a netmask or a prefix, not both")
		}
		r.Prefix, r.HasPrefix = int(x), true
	}
	if pfx, _ := r.Address.Prefix(r.PrefixLen()); pfx.Addr() != r.Address {
		return nil, p.fail(n, "address", r.Address.String(), fmt.Sprintf("not a network address for prefix %d (that would be %s)", r.PrefixLen(), pfx.Addr()))
	}
	if v, ok := n.attr("metric"); ok {
		x, err := parseDecimal(v, 32)
		if err != nil || x == 0 {
			return nil, p.fail(n, "metric", v, "metric must be a number in 1..4294967295 (libvirt ignores 0)")
		}
		r.Metric = uint32(x)
	}
	return r, nil
}
