package netfilter

import (
	"errors"
	"fmt"
	"strings"
)

// Name is libvirt's name for a number in one of the vocabularies below.
type Name struct {
	Name  string
	Value uint32
}

// Names is a vocabulary of named numbers. The vocabularies are shared by
// the policy layer (which parses and formats them) and the backends
// (which turn them into packet values); they are read-only.
type Names []Name

// Vocabularies of nwfilter attribute values.
var (
	// EtherTypes are the names of protocolid and encap-protocol.
	EtherTypes = Names{{"arp", 0x0806}, {"rarp", 0x8035}, {"ipv4", 0x0800}, {"ipv6", 0x86dd}, {"vlan", 0x8100}}
	// ARPOpcodes are the names of the arp and rarp opcode attribute.
	ARPOpcodes = Names{
		{"Request", 1}, {"Reply", 2}, {"Request_Reverse", 3}, {"Reply_Reverse", 4},
		{"DRARP_Request", 5}, {"DRARP_Reply", 6}, {"DRARP_Error", 7}, {"InARP_Request", 8}, {"ARP_NAK", 9},
	}
	// IPProtocols are the names of the ip and ipv6 protocol attribute.
	IPProtocols = Names{
		{"tcp", 6}, {"udp", 17}, {"udplite", 136}, {"esp", 50}, {"ah", 51},
		{"icmp", 1}, {"igmp", 2}, {"sctp", 132}, {"icmpv6", 58},
	}
	// TCPFlags are the flag names of the tcp flags attribute, with their
	// bits in byte 13 of the TCP header.
	TCPFlags = Names{{"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04}, {"PSH", 0x08}, {"ACK", 0x10}, {"URG", 0x20}}
)

// Lookup finds a name, ignoring case as libvirt does.
func (ns Names) Lookup(s string) (uint32, bool) {
	for _, n := range ns {
		if strings.EqualFold(n.Name, s) {
			return n.Value, true
		}
	}
	return 0, false
}

// NameOf returns the name of v, if it has one.
func (ns Names) NameOf(v uint32) (string, bool) {
	for _, n := range ns {
		if n.Value == v {
			return n.Name, true
		}
	}
	return "", false
}

// String lists the names, for error messages: "arp, rarp, ipv4".
func (ns Names) String() string {
	names := make([]string, len(ns))
	for i, n := range ns {
		names[i] = n.Name
	}
	return strings.Join(names, ", ")
}

// ParseTCPFlagSet reads one side of a tcp flags value: a comma-separated
// list of TCPFlags names, or ALL or NONE.
func ParseTCPFlagSet(s string) (uint8, error) {
	switch {
	case strings.EqualFold(s, "ALL"):
		return 0x3f, nil
	case strings.EqualFold(s, "NONE"):
		return 0, nil
	case s == "":
		return 0, errors.New("empty TCP flag list (use NONE for no flags)")
	}
	var v uint8
	for _, item := range strings.Split(s, ",") {
		f, ok := TCPFlags.Lookup(item)
		if !ok {
			if strings.EqualFold(item, "ALL") || strings.EqualFold(item, "NONE") {
				return 0, errors.New("ALL and NONE cannot be combined with other TCP flags")
			}
			return 0, fmt.Errorf("unknown TCP flag %q: use SYN, ACK, URG, PSH, FIN, RST, ALL or NONE", item)
		}
		v |= uint8(f)
	}
	return v, nil
}

// ParseTCPFlags reads a tcp flags value "mask/flags" and returns the two
// bit sets: a segment matches when its flags masked with mask equal
// flags (iptables' --tcp-flags mask flags).
func ParseTCPFlags(s string) (mask, flags uint8, err error) {
	m, f, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, errors.New("must be mask/flags, e.g. SYN,ACK/SYN")
	}
	if mask, err = ParseTCPFlagSet(m); err != nil {
		return 0, 0, fmt.Errorf("mask: %w", err)
	}
	if flags, err = ParseTCPFlagSet(f); err != nil {
		return 0, 0, fmt.Errorf("flags: %w", err)
	}
	return mask, flags, nil
}
