package network

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/netwarden/netwarden/netfilter"
)

// Well-known ports of the services a network's host side offers its guests.
const (
	portDNS      = 53
	portDHCPv4   = 67  // DHCPv4 server
	portBOOTPC   = 68  // DHCPv4 client
	portTFTP     = 69  // TFTP server
	portDHCPv6C  = 546 // DHCPv6 client
	portDHCPv6S  = 547 // DHCPv6 server
	natPortFirst = 1024
	natPortLast  = 65535
)

// Destinations a NAT network never masquerades: link-local multicast (IPv4
// and IPv6) and the IPv4 limited broadcast, which never leave the link;
// masquerading them would change the source port of DHCP replies, which
// strict clients refuse.
var (
	localMulticastIPv4 = netip.MustParsePrefix("224.0.0.0/24")
	localMulticastIPv6 = netip.MustParsePrefix("ff02::/16")
	localBroadcastIPv4 = netip.MustParsePrefix("255.255.255.255/32")
)

// FirewallRules returns the rules a running network needs for its guests
// to reach the host's DHCP, DNS and TFTP service, each other, and (nat,
// route) the outside world, with the meaning of libvirt 9.0's network
// driver:
//
//   - General rules, whatever the network's addresses: IPv4 DHCP (67 in,
//     68 out, tcp and udp), DNS (53 in and out, tcp and udp; also with
//     <dns enable='no'>, as in libvirt), TFTP (69 udp in and out) when the
//     first IPv4 <ip> serving DHCP or TFTP has <tftp>, forwarding to and
//     from the bridge rejected, forwarding across the bridge accepted. The
//     IPv6 counterparts (reject, cross; DNS and DHCPv6 547 in / 546 out
//     only with an IPv6 address) come with an IPv6 <ip> or <network
//     ipv6='yes'>.
//   - Per <ip>: nat masquerades IPv4 (and IPv6 with <nat ipv6='yes'>)
//     and routes IPv6 otherwise; route routes. A forward dev restricts the
//     forwarding and NAT rules to that interface.
//   - The IPv4 checksum fill of DHCP replies when an IPv4 <ip> has DHCP
//     ranges or hosts.
//
// Within each family and hook the rules are in evaluation order. Networks
// without rules of their own return nil, nil: open, bridge, and the modes
// without a bridge of ours (private, vepa, passthrough, hostdev). The
// bridge must be named (the daemon fills in a generated virbrN first).
// An error means libvirt would refuse to start the network: an <ip>
// without a usable prefix, or a NAT port range that is not start < end.
func FirewallRules(n *Network) (*netfilter.NetworkRules, error) {
	if n == nil {
		return nil, errors.New("network firewall rules: no network")
	}
	mode := ForwardNone
	if n.Forward != nil {
		mode = n.Forward.Mode
	}
	switch mode {
	case ForwardNone, ForwardNAT, ForwardRoute:
	default:
		return nil, nil
	}
	if n.Bridge.Name == "" {
		return nil, fmt.Errorf("network %q: firewall rules: the bridge has no name yet", n.Name)
	}
	b := &fwBuilder{bridge: n.Bridge.Name}
	if mode != ForwardNone && len(n.Forward.Interfaces) > 0 {
		b.forwardDev = n.Forward.Interfaces[0]
	}
	b.generalIPv4(n)
	b.generalIPv6(n)
	for i := range n.IPs {
		if err := b.ipSpecific(n, mode, &n.IPs[i]); err != nil {
			return nil, fmt.Errorf("network %q: firewall rules for <ip address='%s'>: %w", n.Name, n.IPs[i].Address, err)
		}
	}
	b.checksum(n)
	// libvirt inserts every rule at the head of its chain, so a chain is
	// evaluated in the reverse of the order the rules were added. The
	// builder follows libvirt's order of adding; reversing the whole list
	// reverses each (family, hook) group and keeps the groups apart.
	slices.Reverse(b.rules)
	return &netfilter.NetworkRules{Network: n.Name, Bridge: n.Bridge.Name, Rules: b.rules}, nil
}

// fwBuilder collects a network's rules in the order libvirt adds them
// (each at the head of its chain).
type fwBuilder struct {
	bridge     string
	forwardDev string // "" for any outside interface
	rules      []netfilter.NetRule
}

func (b *fwBuilder) add(r netfilter.NetRule) { b.rules = append(b.rules, r) }

// serviceIn accepts traffic from the network's guests to a port of the host.
func (b *fwBuilder) serviceIn(fam netfilter.Family, proto string, port uint16) {
	b.add(netfilter.NetRule{Hook: netfilter.HookInput, Family: fam, InIface: b.bridge,
		Protocol: proto, DstPort: port, Verdict: netfilter.NetAccept})
}

// serviceOut accepts traffic from the host to a port of the guests.
func (b *fwBuilder) serviceOut(fam netfilter.Family, proto string, port uint16) {
	b.add(netfilter.NetRule{Hook: netfilter.HookOutput, Family: fam, OutIface: b.bridge,
		Protocol: proto, DstPort: port, Verdict: netfilter.NetAccept})
}

// isolate rejects forwarding to and from the bridge unless a later rule
// allows it, and accepts forwarding between the bridge's ports.
func (b *fwBuilder) isolate(fam netfilter.Family) {
	b.add(netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: fam, InIface: b.bridge, Verdict: netfilter.NetReject})
	b.add(netfilter.NetRule{Hook: netfilter.HookForwardIn, Family: fam, OutIface: b.bridge, Verdict: netfilter.NetReject})
	b.add(netfilter.NetRule{Hook: netfilter.HookForwardCross, Family: fam, InIface: b.bridge, OutIface: b.bridge, Verdict: netfilter.NetAccept})
}

// dhcpOrTFTPIPv4 returns the first IPv4 <ip> that serves DHCP (ranges or
// hosts) or, with tftp, TFTP; nil when there is none.
func dhcpOrTFTPIPv4(n *Network, tftp bool) *IP {
	for i := range n.IPs {
		ip := &n.IPs[i]
		if ip.IsIPv6() {
			continue
		}
		if ip.DHCP != nil && (len(ip.DHCP.Ranges) > 0 || len(ip.DHCP.Hosts) > 0) || tftp && ip.TFTPRoot != "" {
			return ip
		}
	}
	return nil
}

// generalIPv4 adds the IPv4 rules of every network with a bridge of ours,
// whatever its addresses (libvirt adds them even without an IPv4 <ip>).
func (b *fwBuilder) generalIPv4(n *Network) {
	const v4 = netfilter.IPv4
	b.serviceIn(v4, "tcp", portDHCPv4)
	b.serviceIn(v4, "udp", portDHCPv4)
	b.serviceOut(v4, "tcp", portBOOTPC)
	b.serviceOut(v4, "udp", portBOOTPC)
	b.serviceIn(v4, "tcp", portDNS)
	b.serviceIn(v4, "udp", portDNS)
	b.serviceOut(v4, "tcp", portDNS)
	b.serviceOut(v4, "udp", portDNS)
	// Only the first <ip> serving DHCP or TFTP counts, as in libvirt:
	// <tftp> on a later <ip> than the DHCP one opens no port.
	if ip := dhcpOrTFTPIPv4(n, true); ip != nil && ip.TFTPRoot != "" {
		b.serviceIn(v4, "udp", portTFTP)
		b.serviceOut(v4, "udp", portTFTP)
	}
	b.isolate(v4)
}

// generalIPv6 adds the IPv6 rules of a network with an IPv6 address, or
// with ipv6='yes' (guests talk IPv6 among themselves, nothing more).
func (b *fwBuilder) generalIPv6(n *Network) {
	const v6 = netfilter.IPv6
	hasIPv6 := slices.ContainsFunc(n.IPs, func(ip IP) bool { return ip.IsIPv6() })
	if !hasIPv6 && !n.IPv6 {
		return
	}
	b.isolate(v6)
	if !hasIPv6 {
		return
	}
	b.serviceIn(v6, "tcp", portDNS)
	b.serviceIn(v6, "udp", portDNS)
	b.serviceOut(v6, "tcp", portDNS)
	b.serviceOut(v6, "udp", portDNS)
	b.serviceIn(v6, "udp", portDHCPv6S)
	b.serviceOut(v6, "udp", portDHCPv6C)
}

// ipSpecific adds the forwarding (and NAT) rules of one <ip>.
func (b *fwBuilder) ipSpecific(n *Network, mode ForwardMode, ip *IP) error {
	var masquerade bool
	switch mode {
	case ForwardNAT:
		// IPv6 is routed, not masqueraded, unless <nat ipv6='yes'>.
		masquerade = !ip.IsIPv6() || n.Forward.NAT != nil && n.Forward.NAT.IPv6 == Yes
	case ForwardRoute:
	default:
		return nil
	}
	if ip.PrefixLen() <= 0 {
		return fmt.Errorf("no usable prefix or netmask")
	}
	subnet := ip.Subnet()
	if !subnet.IsValid() {
		return fmt.Errorf("prefix %d does not fit the address", ip.PrefixLen())
	}
	fam := netfilter.IPv4
	if ip.IsIPv6() {
		fam = netfilter.IPv6
	}
	b.add(netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: fam, Src: subnet,
		InIface: b.bridge, OutIface: b.forwardDev, Verdict: netfilter.NetAccept})
	b.add(netfilter.NetRule{Hook: netfilter.HookForwardIn, Family: fam, Dst: subnet,
		InIface: b.forwardDev, OutIface: b.bridge, Related: masquerade, Verdict: netfilter.NetAccept})
	if !masquerade {
		return nil
	}
	return b.masquerade(n.Forward.NAT, fam, subnet)
}

// masquerade adds the NAT rules of one subnet, in libvirt's order of
// adding: masquerade any protocol, then udp and tcp with the source port
// range, then the exemptions.
func (b *fwBuilder) masquerade(nat *NAT, fam netfilter.Family, subnet netip.Prefix) error {
	var addrs, ports netfilter.NATRange
	ports.PortStart, ports.PortEnd = natPortFirst, natPortLast
	if nat != nil {
		// The address range is IPv4 (the parser insists); libvirt applies
		// it only to subnets of its family and masquerades the others.
		if fam == netfilter.IPv4 && nat.AddressStart.Is4() {
			addrs.AddrStart, addrs.AddrEnd = nat.AddressStart, nat.AddressEnd
			if !addrs.AddrEnd.IsValid() {
				addrs.AddrEnd = addrs.AddrStart
			}
		}
		if nat.PortStart != 0 || nat.PortEnd != 0 {
			if nat.PortStart == 0 || nat.PortStart >= nat.PortEnd {
				return fmt.Errorf("invalid NAT port range %d-%d (libvirt needs start < end)", nat.PortStart, nat.PortEnd)
			}
			ports.PortStart, ports.PortEnd = nat.PortStart, nat.PortEnd
		}
	}
	withPorts := addrs
	withPorts.PortStart, withPorts.PortEnd = ports.PortStart, ports.PortEnd
	for _, proto := range []string{"", "udp", "tcp"} {
		r := netfilter.NetRule{Hook: netfilter.HookNAT, Family: fam, OutIface: b.forwardDev,
			Protocol: proto, Src: subnet, Dst: subnet, NotDst: true, Verdict: netfilter.NetMasquerade, NAT: addrs}
		if proto != "" {
			r.NAT = withPorts
		}
		b.add(r)
	}
	exempt := []netip.Prefix{localMulticastIPv6}
	if fam == netfilter.IPv4 {
		exempt = []netip.Prefix{localBroadcastIPv4, localMulticastIPv4}
	}
	for _, dst := range exempt {
		b.add(netfilter.NetRule{Hook: netfilter.HookNAT, Family: fam, OutIface: b.forwardDev,
			Src: subnet, Dst: dst, Verdict: netfilter.NetReturn})
	}
	return nil
}

// checksum adds the checksum fill of DHCP replies to the guests when the
// network serves DHCPv4 (some guests drop replies whose checksum the host
// left to offloading).
func (b *fwBuilder) checksum(n *Network) {
	if dhcpOrTFTPIPv4(n, false) == nil {
		return
	}
	b.add(netfilter.NetRule{Hook: netfilter.HookMangle, Family: netfilter.IPv4, OutIface: b.bridge,
		Protocol: "udp", DstPort: portBOOTPC, Verdict: netfilter.NetChecksumFill})
}
