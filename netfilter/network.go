package netfilter

import (
	"fmt"
	"net/netip"
	"strings"
)

// NetworkRules is the firewall of one virtual network: what a bridge in
// nat, route or isolated mode needs so that its guests reach the host's
// DHCP and DNS service, each other, and (nat, route) the outside world.
// The network layer produces it from network XML with the meaning of
// libvirt's network driver; backends render it in their own tables.
// An open network, or one using an existing host bridge, has none.
type NetworkRules struct {
	// Network is the network's name, for comments and object names.
	Network string
	// Bridge is the network's bridge interface.
	Bridge string
	// Rules are the network's rules. Within one Hook and Family they are
	// in evaluation order; across hooks the order does not matter.
	Rules []NetRule
}

// NetHook says where a network rule applies. The names follow libvirt's
// private chains, which hold the same rules for the iptables backend.
type NetHook uint8

// Network rule hooks.
const (
	// HookInput: traffic to the host (libvirt's LIBVIRT_INP, reached
	// from INPUT).
	HookInput NetHook = iota + 1
	// HookOutput: traffic from the host (LIBVIRT_OUT, from OUTPUT).
	HookOutput
	// HookForwardOut: forwarded traffic leaving a network (LIBVIRT_FWO).
	HookForwardOut
	// HookForwardIn: forwarded traffic entering a network (LIBVIRT_FWI).
	HookForwardIn
	// HookForwardCross: forwarded traffic between two ports of one
	// bridge (LIBVIRT_FWX). Forwarding evaluates FWX, then FWI, then FWO.
	HookForwardCross
	// HookNAT: source NAT after routing (nat table LIBVIRT_PRT).
	HookNAT
	// HookMangle: packet mangling after routing (mangle table
	// LIBVIRT_PRT: the DHCP checksum fill).
	HookMangle
)

var netHookNames = [...]string{
	HookInput:        "input",
	HookOutput:       "output",
	HookForwardOut:   "forward-out",
	HookForwardIn:    "forward-in",
	HookForwardCross: "forward-cross",
	HookNAT:          "nat",
	HookMangle:       "mangle",
}

// String names the hook.
func (h NetHook) String() string {
	if int(h) < len(netHookNames) && netHookNames[h] != "" {
		return netHookNames[h]
	}
	return fmt.Sprintf("hook(%d)", uint8(h))
}

// Family is an IP family of a network rule.
type Family uint8

// IP families.
const (
	// IPv4 rules (iptables).
	IPv4 Family = 4
	// IPv6 rules (ip6tables).
	IPv6 Family = 6
)

// String returns "ipv4" or "ipv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// NetVerdict is what a network rule does with a matching packet.
type NetVerdict uint8

// Network rule verdicts.
const (
	// NetAccept lets the packet pass this hook.
	NetAccept NetVerdict = iota + 1
	// NetReject refuses it with an ICMP error (port unreachable, as
	// iptables' REJECT does by default).
	NetReject
	// NetReturn leaves the network's rules for this hook without a
	// verdict (used to exempt broadcast and multicast from NAT).
	NetReturn
	// NetMasquerade rewrites the source to the outgoing interface's
	// address, or to the NAT range when one is set.
	NetMasquerade
	// NetChecksumFill fills in a missing checksum (libvirt's
	// CHECKSUM --checksum-fill). Backends that cannot do it skip the
	// rule and say so in their rendering.
	NetChecksumFill
)

var netVerdictNames = [...]string{
	NetAccept:       "accept",
	NetReject:       "reject",
	NetReturn:       "return",
	NetMasquerade:   "masquerade",
	NetChecksumFill: "checksum-fill",
}

// String names the verdict.
func (v NetVerdict) String() string {
	if int(v) < len(netVerdictNames) && netVerdictNames[v] != "" {
		return netVerdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// NATRange is the translation a NetMasquerade rule applies: a range of
// source addresses (SNAT) and/or of source ports. Zero fields are
// unrestricted.
type NATRange struct {
	// AddrStart and AddrEnd bound the source addresses; both invalid
	// means the outgoing interface's address (masquerade).
	AddrStart, AddrEnd netip.Addr
	// PortStart and PortEnd bound the source ports; 0 means any.
	PortStart, PortEnd uint16
}

// NetRule is one rule of a network's firewall.
type NetRule struct {
	// Hook is where the rule applies.
	Hook NetHook
	// Family is the rule's IP family.
	Family Family
	// InIface and OutIface match the input and output interface; ""
	// matches any.
	InIface, OutIface string
	// Protocol is "tcp" or "udp", "" for any.
	Protocol string
	// DstPort matches the destination port (with Protocol); 0 for any.
	DstPort uint16
	// Src and Dst match the source and destination address; an invalid
	// prefix matches any.
	Src, Dst netip.Prefix
	// NotDst inverts the Dst match.
	NotDst bool
	// Related: the rule matches only packets of established or related
	// connections (conntrack ESTABLISHED,RELATED).
	Related bool
	// Verdict is what the rule does.
	Verdict NetVerdict
	// NAT is the translation of a NetMasquerade rule.
	NAT NATRange
}

// String renders the rule on one line, the form golden files hold:
//
//	ipv4 forward-in oif=virbr0 dst=192.168.122.0/24 related accept
func (r *NetRule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Family, r.Hook)
	if r.InIface != "" {
		fmt.Fprintf(&b, " iif=%s", r.InIface)
	}
	if r.OutIface != "" {
		fmt.Fprintf(&b, " oif=%s", r.OutIface)
	}
	if r.Protocol != "" {
		fmt.Fprintf(&b, " proto=%s", r.Protocol)
	}
	if r.DstPort != 0 {
		fmt.Fprintf(&b, " dport=%d", r.DstPort)
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src=%s", r.Src)
	}
	if r.Dst.IsValid() {
		if r.NotDst {
			fmt.Fprintf(&b, " dst!=%s", r.Dst)
		} else {
			fmt.Fprintf(&b, " dst=%s", r.Dst)
		}
	}
	if r.Related {
		b.WriteString(" related")
	}
	b.WriteByte(' ')
	b.WriteString(r.Verdict.String())
	if n := r.NAT; n.AddrStart.IsValid() {
		fmt.Fprintf(&b, " to=%s-%s", n.AddrStart, n.AddrEnd)
	}
	if n := r.NAT; n.PortStart != 0 {
		fmt.Fprintf(&b, " ports=%d-%d", n.PortStart, n.PortEnd)
	}
	return b.String()
}

// String renders the network's rules one per line, grouped by family
// and hook in a fixed order, each group in evaluation order.
func (n *NetworkRules) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "network %s bridge %s\n", n.Network, n.Bridge)
	for _, fam := range []Family{IPv4, IPv6} {
		for h := HookInput; h <= HookMangle; h++ {
			for i := range n.Rules {
				if r := &n.Rules[i]; r.Family == fam && r.Hook == h {
					b.WriteString("  ")
					b.WriteString(r.String())
					b.WriteByte('\n')
				}
			}
		}
	}
	return b.String()
}
