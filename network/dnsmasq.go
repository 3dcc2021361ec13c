// dnsmasq configuration: the files that make dnsmasq serve a network's
// DHCP, DNS and router advertisements, with the option set libvirt 9.0
// writes (src/network/bridge_driver.c, networkDnsmasqConfContents).

package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DnsmasqPaths are the files a network's dnsmasq configuration names.
// They are parameters, not derived here, so the daemon chooses them under
// its state directory and tests compare configurations independently of
// where the files live. Every path must be absolute.
type DnsmasqPaths struct {
	// HostsFile is dhcp-hostsfile: the static DHCP hosts
	// (DnsmasqFiles.HostsFile). Named only when the network serves DHCP.
	HostsFile string
	// AddnHostsFile is addn-hosts: the DNS host records
	// (DnsmasqFiles.AddnHosts). Named only when DNS is enabled.
	AddnHostsFile string
	// PIDFile is pid-file, "" for none (dnsmasq then writes no PID file;
	// libvirt's own test data is generated that way).
	PIDFile string
	// LeaseFile is dhcp-leasefile, "" to leave it out. libvirt leaves it
	// out because it runs dnsmasq with --leasefile-ro and its lease helper
	// as --dhcp-script; netwarden has no lease helper and lets dnsmasq
	// keep its leases in this file. Without it dnsmasq uses its
	// compiled-in default (/var/lib/misc/dnsmasq.leases), shared by every
	// dnsmasq on the host, so the daemon always sets it.
	LeaseFile string
}

// DnsmasqOptions describe the dnsmasq that will run the configuration.
// The zero value is a current dnsmasq (2.64 or later: bind-dynamic,
// ra-param, DHCPv6 and router advertisements), which is what libvirt's
// test data assumes.
type DnsmasqOptions struct {
	// BindInterfaces is for a dnsmasq without --bind-dynamic: it then
	// listens with bind-interfaces on each of the network's addresses
	// (listen-address), as libvirt does. Unlike libvirt, netwarden does
	// not refuse public addresses in that mode (libvirt does for a dnsmasq
	// without SO_BINDTODEVICE, CVE-2012-3411): no dnsmasq that old runs
	// on a supported system.
	BindInterfaces bool
	// NoRAParam is for a dnsmasq without --ra-param: an isolated network
	// then cannot announce a zero router lifetime.
	NoRAParam bool
}

// DnsmasqFiles is what DnsmasqConfig generates: the text of the three
// files, to be written to the paths given in DnsmasqPaths.
type DnsmasqFiles struct {
	// Config is the configuration file, one option per line, passed to
	// dnsmasq with --conf-file.
	Config string
	// HostsFile is the dhcp-hostsfile: one static DHCP host per line,
	// "mac,ip,name[,lease]" for IPv4, "id:duid,name,[ip][,lease]" for
	// IPv6 (the parts that are given). It is written even when empty, so
	// that hosts can be added while dnsmasq runs (SIGHUP rereads it).
	HostsFile string
	// AddnHosts is the addn-hosts file in /etc/hosts format: one line per
	// address of <dns><host>, "ip\tname\t…\t" (libvirt's trailing tab
	// included). Written even when empty, like HostsFile.
	AddnHosts string
}

// DnsmasqError says why a network's dnsmasq configuration cannot be
// generated: a value that cannot be written safely, or a network dnsmasq
// cannot serve. Test for it with errors.As.
type DnsmasqError struct {
	// Network is the network's name.
	Network string
	// What names the part of the network concerned (an option or element).
	What string
	// Value is the offending value, "" when there is none.
	Value string
	// Reason says what is wrong.
	Reason string
}

// Error renders the error, e.g. `network "default": dnsmasq tftp-root="/a,b": …`.
func (e *DnsmasqError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "network %q: dnsmasq %s", e.Network, e.What)
	if e.Value != "" {
		fmt.Fprintf(&b, "=%q", e.Value)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// DnsmasqNeeded reports whether the network needs a dnsmasq at all, by
// libvirt's rule: it has an address on its bridge, and it serves DHCP on
// one of them or has DNS enabled. (DnsmasqConfig works either way.)
func DnsmasqNeeded(n *Network) bool {
	if !n.forwardMode().HasBridge() || len(n.IPs) == 0 {
		return false
	}
	for i := range n.IPs {
		if servesDHCP(&n.IPs[i]) {
			return true
		}
	}
	return dnsEnabled(n)
}

// forwardMode returns the network's forward mode (ForwardNone when isolated).
func (n *Network) forwardMode() ForwardMode {
	if n.Forward == nil {
		return ForwardNone
	}
	return n.Forward.Mode
}

// servesDHCP reports whether dnsmasq serves DHCP on an <ip>: it has a
// range or a static host (a <bootp> alone does not count, as in libvirt).
func servesDHCP(ip *IP) bool {
	return ip.DHCP != nil && (len(ip.DHCP.Ranges) > 0 || len(ip.DHCP.Hosts) > 0)
}

// dnsEnabled reports whether the network's DNS server is on (the default).
func dnsEnabled(n *Network) bool {
	return n.DNS == nil || n.DNS.Enable != No
}

// DnsmasqConfig generates the dnsmasq configuration of a network that has
// a bridge (isolated, nat, route or open), its static DHCP hosts file and
// its DNS hosts file. The options are libvirt 9.0's, in libvirt's order;
// where netwarden differs the difference is documented at the option.
//
// It does not start dnsmasq or write any file, and it adds nothing that
// belongs on dnsmasq's command line: the caller runs dnsmasq with
// --conf-file (and, supervised, --keep-in-foreground). Unlike libvirt it
// passes no --dhcp-script (libvirt's lease helper) and no --leasefile-ro:
// leases stay in DnsmasqPaths.LeaseFile.
//
// Every value is checked before it is written: none may hold a control
// character (a line break would start a second option); a value with
// characters dnsmasq's configuration reader interprets (a quote, a
// backslash, a '#' that would start a comment, a field-separating comma,
// surrounding spaces) is written quoted, or refused where quoting would
// change its meaning. The <dnsmasq:option> lines are written as given
// (checked for control characters only): passing options through is
// their purpose, and only the administrator who defines networks can
// set them.
func DnsmasqConfig(n *Network, paths DnsmasqPaths, opts DnsmasqOptions) (*DnsmasqFiles, error) {
	if n == nil {
		return nil, fmt.Errorf("dnsmasq config: no network")
	}
	g := &confGen{net: n.Name}
	g.generate(n, paths, opts)
	if g.err != nil {
		return nil, g.err
	}
	return &DnsmasqFiles{Config: g.conf.String(), HostsFile: g.hosts.String(), AddnHosts: g.addn.String()}, nil
}

// confGen accumulates the three files; the first error stops it.
type confGen struct {
	net               string
	conf, hosts, addn strings.Builder
	err               error
}

func (g *confGen) fail(what, value, reason string) {
	if g.err == nil {
		g.err = &DnsmasqError{Network: g.net, What: what, Value: value, Reason: reason}
	}
}

// line writes one configuration line made of already safe parts.
func (g *confGen) line(parts ...string) {
	for _, p := range parts {
		g.conf.WriteString(p)
	}
	g.conf.WriteByte('\n')
}

// valueKind says how a value may be written into dnsmasq's configuration.
type valueKind int

const (
	// field is one comma-separated field: a comma in it is quoted.
	field valueKind = iota
	// fields may hold commas that separate fields dnsmasq expects there
	// (the strings of a TXT record), as libvirt writes them; each field
	// is quoted on its own when needed.
	fields
	// path is a file name: quoted if needed, and refused if relative.
	path
)

// value checks v for option what and returns it as it must be written.
// Control characters are always refused. dnsmasq's reader strips quotes,
// turns backslash escapes inside quotes into characters, starts a comment
// at a '#' that follows white space, trims white space at both ends and
// splits fields at commas outside quotes; a value with any of those
// characters is quoted (with '"' and '\' escaped) so it reaches dnsmasq
// as it was given.
func (g *confGen) value(what, v string, kind valueKind) string {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			g.fail(what, v, "control characters (such as a line break) cannot be written into dnsmasq's configuration")
			return ""
		}
	}
	if kind == path && !strings.HasPrefix(v, "/") {
		g.fail(what, v, "not an absolute path")
		return ""
	}
	if kind == fields {
		// Each field is quoted on its own, so the commas keep
		// separating fields as they do in libvirt's output.
		parts := strings.Split(v, ",")
		for i, f := range parts {
			parts[i] = quoteConf(f, "\"\\#")
		}
		return strings.Join(parts, ",")
	}
	return quoteConf(v, "\"\\#,")
}

// quoteConf returns v quoted for dnsmasq's reader when it holds one of
// the special characters or white space at either end, else as it is.
func quoteConf(v, special string) string {
	if !strings.ContainsAny(v, special) && strings.TrimSpace(v) == v {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// hostName checks a name written into the hosts files, where dnsmasq
// splits at white space and commas and a '#' starts a comment: only DNS
// names (letters, digits, '-', '.') are accepted, as the parser ensures.
func (g *confGen) hostName(what, v string) string {
	if err := checkDNSName(v); err != nil {
		g.fail(what, v, err.Error())
		return ""
	}
	return v
}

func (g *confGen) generate(n *Network, paths DnsmasqPaths, opts DnsmasqOptions) {
	if !n.forwardMode().HasBridge() {
		g.fail("interface", "", fmt.Sprintf("a network of forward mode %q has no bridge of its own for dnsmasq to serve", n.forwardMode()))
		return
	}
	if n.Bridge.Name == "" {
		g.fail("interface", "", "the network's bridge has no name yet (the daemon chooses it before generating)")
		return
	}
	if err := checkIfName(n.Bridge.Name); err != nil {
		g.fail("interface", n.Bridge.Name, err.Error())
		return
	}
	wantDNS := dnsEnabled(n)
	var dns DNS
	if n.DNS != nil {
		dns = *n.DNS
	}

	// A comment, unlike libvirt's "virsh net-edit" advice; comments are
	// not options. %q keeps any quote in the name on this one line.
	g.line(fmt.Sprintf("## dnsmasq configuration of network %q, generated by netwarden.", n.Name))
	g.line("## Changes are overwritten: change the network definition instead.")
	// dnsmasq asks upstream servers in order, as the C library does.
	g.line("strict-order")
	if !wantDNS {
		g.line("port=0") // no DNS server at all
	}

	if wantDNS && len(dns.Forwarders) > 0 {
		noResolv := false
		for _, f := range dns.Forwarders {
			s := "server="
			if f.Domain != "" {
				s += "/" + g.hostName("server", f.Domain) + "/"
			}
			if f.Addr.IsValid() {
				s += f.Addr.String()
				// An address for every domain replaces the host's
				// resolv.conf.
				noResolv = noResolv || f.Domain == ""
			} else {
				s += "#" // the domain is resolved locally only
			}
			g.line(s)
		}
		if noResolv {
			g.line("no-resolv")
		}
	}

	if n.Domain != nil {
		d := g.hostName("domain", n.Domain.Name)
		if n.Domain.LocalOnly == Yes {
			g.line("local=/", d, "/")
		}
		g.line("domain=", d)
		g.line("expand-hosts")
	}

	if wantDNS {
		for i := range n.IPs {
			ip := &n.IPs[i]
			if ip.LocalPtr != Yes {
				continue
			}
			ptr, err := ptrDomain(ip.Subnet())
			if err != nil {
				g.fail("local", ip.Address.String(), err.Error())
				return
			}
			g.line("local=/", ptr, "/")
		}
		if dns.ForwardPlainNames == No {
			g.line("domain-needed")
			g.line("local=//") // names without a dot are never forwarded
		}
	}

	if paths.PIDFile != "" {
		g.line("pid-file=", g.value("pid-file", paths.PIDFile, path))
	}
	if paths.LeaseFile != "" {
		// netwarden's, not libvirt's: see DnsmasqPaths.LeaseFile.
		g.line("dhcp-leasefile=", g.value("dhcp-leasefile", paths.LeaseFile, path))
	}

	// dnsmasq always listens on the loopback unless told not to.
	g.line("except-interface=lo")
	if !opts.BindInterfaces {
		// With --interface and no --listen-address, bind-dynamic
		// answers only what arrives on the bridge (CVE-2012-3411).
		g.line("bind-dynamic")
		g.line("interface=", n.Bridge.Name)
	} else {
		g.line("bind-interfaces")
		for i := range n.IPs {
			g.line("listen-address=", n.IPs[i].Address.String())
		}
	}

	if n.Forward == nil {
		// Isolated: no default route (empty option 3), no upstream DNS
		// (resolv.conf would be a way out), and a zero router lifetime
		// in router advertisements.
		g.line("dhcp-option=3")
		g.line("no-resolv")
		if !opts.NoRAParam {
			g.line("ra-param=*,0,0")
		}
	}

	if wantDNS {
		for _, t := range dns.TXTs {
			g.line("txt-record=", g.hostName("txt-record", t.Name), ",", g.value("txt-record", t.Value, fields))
		}
		for _, s := range dns.SRVs {
			g.srv(s)
		}
	}

	// TFTP is served on any IPv4 address with a root, DHCP or not.
	tftp := false
	for i := range n.IPs {
		ip := &n.IPs[i]
		if !ip.Address.Is4() || ip.TFTPRoot == "" {
			continue
		}
		if !tftp {
			g.line("enable-tftp")
			tftp = true
		}
		g.line("tftp-root=", g.value("tftp-root", ip.TFTPRoot, path))
	}

	// dnsmasq serves DHCP on the first <ip> of each family that has
	// ranges or hosts; the parser refuses a second one.
	// (libvirt warns when other IPv6 addresses have no DHCP: stateful
	// router advertisements then leave them to manual configuration.)
	var v4, v6 *IP
	for i := range n.IPs {
		ip := &n.IPs[i]
		if !servesDHCP(ip) {
			continue
		}
		dst := &v4
		if ip.Address.Is6() {
			dst = &v6
		}
		if *dst != nil {
			g.fail("dhcp-range", ip.Address.String(), "DHCP is supported for only one address of each family")
			return
		}
		*dst = ip
	}

	leases := 0
	for _, ip := range []*IP{v4, v6} {
		if ip == nil {
			continue
		}
		leases += g.dhcp(ip)
	}
	if leases > 0 {
		g.line("dhcp-lease-max=", strconv.Itoa(leases))
	}

	// The DNS host records, one line per address.
	var addrs []netip.Addr
	names := map[netip.Addr][]string{}
	for _, h := range dns.Hosts {
		if !h.IP.IsValid() {
			continue
		}
		if _, ok := names[h.IP]; !ok {
			addrs = append(addrs, h.IP)
		}
		for _, name := range h.Hostnames {
			names[h.IP] = append(names[h.IP], g.hostName("dns host", name))
		}
	}
	for _, a := range addrs {
		g.addn.WriteString(a.String())
		g.addn.WriteByte('\t')
		for _, name := range names[a] {
			g.addn.WriteString(name)
			g.addn.WriteByte('\t')
		}
		g.addn.WriteByte('\n')
	}

	// Written even without static hosts, so hosts can be added at run time.
	if v4 != nil || v6 != nil {
		g.line("dhcp-hostsfile=", g.value("dhcp-hostsfile", paths.HostsFile, path))
	}
	if wantDNS {
		g.line("addn-hosts=", g.value("addn-hosts", paths.AddnHostsFile, path))
	}

	if n.MTU > 0 {
		g.line("dhcp-option=option:mtu,", strconv.Itoa(int(n.MTU)))
	}

	// Router advertisements by dnsmasq (libvirt's radvd is for a dnsmasq
	// without them): stateful with DHCPv6, else SLAAC on each IPv6
	// address.
	if v6 != nil {
		g.line("enable-ra")
	} else {
		for i := range n.IPs {
			if ip := &n.IPs[i]; ip.Address.Is6() {
				g.line("dhcp-range=", ip.Address.String(), ",ra-only")
			}
		}
	}

	// Passed through as given; only a line break could do more than
	// the option says, so control characters are refused.
	for _, o := range n.DnsmasqOptions {
		if strings.ContainsFunc(o, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			g.fail("dnsmasq:option", o, "control characters (such as a line break) cannot be written into dnsmasq's configuration")
			return
		}
		g.line(o)
	}
}

// srv writes a srv-host line: _service._protocol[.domain][,target[,port
// [,priority[,weight]]]]. An empty target or "." means the service is not
// available (RFC 2782), and then nothing follows the name. Fields are
// positional: a later field given forces the earlier ones (port 1,
// priority 0).
func (g *confGen) srv(s DNSSRV) {
	var b strings.Builder
	b.WriteString("srv-host=_")
	b.WriteString(g.srvLabel(s.Service))
	b.WriteString("._")
	b.WriteString(g.srvLabel(s.Protocol))
	if s.Domain != "" {
		b.WriteString(".")
		b.WriteString(g.hostName("srv-host", s.Domain))
	}
	if s.Target != "" && s.Target != "." {
		b.WriteString(",")
		b.WriteString(g.hostName("srv-host", s.Target))
		if s.Port != 0 || s.Priority != 0 || s.Weight != 0 {
			port := s.Port
			if port == 0 {
				port = 1
			}
			fmt.Fprintf(&b, ",%d", port)
		}
		if s.Priority != 0 || s.Weight != 0 {
			fmt.Fprintf(&b, ",%d", s.Priority)
		}
		if s.Weight != 0 {
			fmt.Fprintf(&b, ",%d", s.Weight)
		}
	}
	g.line(b.String())
}

// srvLabel checks an SRV service or protocol label ([A-Za-z0-9_+/*-], as
// the parser accepts).
func (g *confGen) srvLabel(v string) string {
	if v == "" {
		g.fail("srv-host", v, "the service and protocol are required")
		return ""
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && !strings.ContainsRune("_+/*-", rune(c)) {
			g.fail("srv-host", v, "a service or protocol may only contain ASCII letters, digits and _+/*-")
			return ""
		}
	}
	return v
}

// dhcp writes the DHCP options of one <ip> and its static hosts, and
// returns how many addresses its ranges hold.
func (g *confGen) dhcp(ip *IP) int {
	prefix := ip.PrefixLen()
	count := 0
	for _, r := range ip.DHCP.Ranges {
		var s string
		if ip.Address.Is6() {
			s = fmt.Sprintf("dhcp-range=%s,%s,%d", r.Start, r.End, prefix)
		} else {
			// dnsmasq wants an IPv4 netmask, not a prefix length.
			s = fmt.Sprintf("dhcp-range=%s,%s,%s", r.Start, r.End, netmask4(prefix))
		}
		if r.Lease != nil {
			s += "," + leaseTime(r.Lease)
		}
		g.line(s)
		c, err := rangeSize(r.Start, r.End)
		if err != nil {
			g.fail("dhcp-range", r.Start.String()+","+r.End.String(), err.Error())
			return 0
		}
		count += c
	}
	if len(ip.DHCP.Ranges) == 0 && len(ip.DHCP.Hosts) > 0 {
		// Static hosts only: a "static" range turns DHCP on.
		if ip.Address.Is6() {
			g.line(fmt.Sprintf("dhcp-range=%s,static,%d", ip.Address, prefix))
		} else {
			g.line(fmt.Sprintf("dhcp-range=%s,static", ip.Address))
		}
	}
	for _, h := range ip.DHCP.Hosts {
		g.dhcpHost(ip.Address.Is6(), h)
	}
	if ip.Address.Is4() {
		g.line("dhcp-no-override")
		g.line("dhcp-authoritative")
		if b := ip.DHCP.Bootp; b != nil && b.File != "" {
			file := g.value("dhcp-boot", b.File, field)
			if b.Server.IsValid() {
				g.line("dhcp-boot=", file, ",,", b.Server.String())
			} else {
				g.line("dhcp-boot=", file)
			}
		}
	}
	return count
}

// dhcpHost writes one line of the dhcp-hostsfile: for IPv6
// "[id:DUID,][name,][IP]", for IPv4 "MAC,IP,name", "name,IP" or "MAC,IP";
// then ",lease" when the host has its own.
func (g *confGen) dhcpHost(ipv6 bool, h DHCPHost) {
	if !h.IP.IsValid() {
		return
	}
	if h.MAC != "" && !isCanonicalMAC(h.MAC) {
		g.fail("dhcp-host", h.MAC, "not a MAC address in canonical form (aa:bb:cc:dd:ee:ff)")
		return
	}
	if h.Name == "" && (ipv6 && h.ID == "" || !ipv6 && h.MAC == "") {
		g.fail("dhcp-host", h.IP.String(), "a static host needs a name, or a MAC (IPv4) or DUID (IPv6)")
		return
	}
	name := ""
	if h.Name != "" {
		name = g.hostName("dhcp-host", h.Name)
	}
	b := &g.hosts
	if ipv6 {
		if h.ID != "" {
			if err := checkDUID(h.ID); err != nil {
				g.fail("dhcp-host id", h.ID, err.Error())
				return
			}
			b.WriteString("id:")
			b.WriteString(h.ID)
			b.WriteByte(',')
		}
		if name != "" {
			b.WriteString(name)
			b.WriteByte(',')
		}
		b.WriteByte('[')
		b.WriteString(h.IP.String())
		b.WriteByte(']')
	} else {
		switch {
		case h.MAC != "":
			b.WriteString(h.MAC)
			b.WriteByte(',')
			b.WriteString(h.IP.String())
			if name != "" {
				b.WriteByte(',')
				b.WriteString(name)
			}
		default:
			b.WriteString(name)
			b.WriteByte(',')
			b.WriteString(h.IP.String())
		}
	}
	if h.Lease != nil {
		b.WriteByte(',')
		b.WriteString(leaseTime(h.Lease))
	}
	b.WriteByte('\n')
}

// isCanonicalMAC reports whether s is a MAC address as the model keeps
// it: six lower-case, zero-padded hex bytes separated by ':'.
func isCanonicalMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// leaseTime formats a lease for dnsmasq: "infinite", or the expiry with
// the first letter of its unit ("10m", "200s", "1h").
func leaseTime(l *Lease) string {
	if l.Expiry == 0 {
		return "infinite"
	}
	unit := "m"
	switch l.Unit {
	case Seconds:
		unit = "s"
	case Hours:
		unit = "h"
	}
	return strconv.FormatUint(l.Expiry, 10) + unit
}

// netmask4 returns the IPv4 netmask of a prefix length.
func netmask4(bits int) netip.Addr {
	var v uint32
	if bits > 0 {
		v = ^uint32(0) << (32 - bits)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// rangeSize returns how many addresses a DHCP range holds. As in libvirt,
// start and end may differ only in their last 16 bits.
func rangeSize(start, end netip.Addr) (int, error) {
	if start.Is4() != end.Is4() {
		return 0, fmt.Errorf("start and end are of different families")
	}
	if tooLarge(start, end) {
		return 0, fmt.Errorf("start and end may differ only in their last 16 bits")
	}
	a, b := start.As16(), end.As16()
	s, e := int(a[14])<<8|int(a[15]), int(b[14])<<8|int(b[15])
	if e < s {
		return 0, fmt.Errorf("the range is reversed")
	}
	return e - s + 1, nil
}

// ptrDomain returns the reverse-lookup domain of a subnet
// ("122.168.192.in-addr.arpa", nibbles under ip6.arpa), which needs a
// prefix on an octet (IPv4) or nibble (IPv6) boundary.
func ptrDomain(p netip.Prefix) (string, error) {
	p = p.Masked()
	var labels []string
	if p.Addr().Is4() {
		if p.Bits()%8 != 0 {
			return "", fmt.Errorf("the PTR domain of an IPv4 network with prefix %d cannot be made automatically (the prefix must be a multiple of 8)", p.Bits())
		}
		b := p.Addr().As4()
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
		labels = append(labels, "in-addr", "arpa")
	} else {
		if p.Bits()%4 != 0 {
			return "", fmt.Errorf("the PTR domain of an IPv6 network with prefix %d cannot be made automatically (the prefix must be a multiple of 4)", p.Bits())
		}
		b := p.Addr().As16()
		for i := p.Bits()/4 - 1; i >= 0; i-- {
			nib := b[i/2] >> 4
			if i%2 == 1 {
				nib = b[i/2] & 0xf
			}
			labels = append(labels, strconv.FormatUint(uint64(nib), 16))
		}
		labels = append(labels, "ip6", "arpa")
	}
	return strings.Join(labels, "."), nil
}
