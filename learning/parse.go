// Package learning learns the addresses of guests from their traffic, as
// libvirt's nwfilter "IP address learning" does: CTRL_IP_LEARNING=any
// takes the first address a guest uses, dhcp only what a trusted DHCP
// (or DHCPv6) server leased to it, for as long as the lease lasts.
//
// One Learner serves every learning port with one goroutine: an
// AF_PACKET socket per port, each with a classic BPF filter so only ARP,
// DHCP, DHCPv6, neighbour discovery and (for "any") the first IP packets
// reach user space, all waited on with one epoll. Frames are parsed with
// gopacket's layers (Parse, pure and fuzzed), fed to a per-port state
// machine (Port) and every change of a port's addresses is reported to
// the caller, which re-instantiates and enforces the port's filter.
package learning

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Kind is what a frame tells the learner.
type Kind uint8

// Kinds of events.
const (
	// SourceIPv4 and SourceIPv6: the guest sent an IP packet from Addr.
	SourceIPv4 Kind = iota + 1
	SourceIPv6
	// ARPSender: the guest sent an ARP packet with sender address Addr.
	ARPSender
	// NeighborAdvert: the guest advertised Addr (ICMPv6 NA target).
	NeighborAdvert
	// DHCPAck: Server leased Addr to MAC for Lifetime.
	DHCPAck
	// DHCPRelease and DHCPDecline: the guest gave Addr back.
	DHCPRelease
	DHCPDecline
	// DHCPv6Reply: Server gave Addr to the guest for Lifetime (0: the
	// address is no longer valid).
	DHCPv6Reply
	// DHCPv6Release and DHCPv6Decline: the guest gave Addr back.
	DHCPv6Release
	DHCPv6Decline
)

var kindNames = [...]string{SourceIPv4: "ipv4-source", SourceIPv6: "ipv6-source", ARPSender: "arp-sender",
	NeighborAdvert: "neighbor-advert", DHCPAck: "dhcp-ack", DHCPRelease: "dhcp-release", DHCPDecline: "dhcp-decline",
	DHCPv6Reply: "dhcpv6-reply", DHCPv6Release: "dhcpv6-release", DHCPv6Decline: "dhcpv6-decline"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Infinite is the lifetime of a lease that does not expire.
const Infinite = time.Duration(-1)

// Event is one fact a frame carries.
type Event struct {
	Kind Kind
	Addr netip.Addr
	// Server is the source address of a DHCP or DHCPv6 reply.
	Server netip.Addr
	// MAC is the client hardware address of a DHCP message.
	MAC net.HardwareAddr
	// Lifetime is a lease's duration (Infinite: no expiry).
	Lifetime time.Duration
}

// ErrMalformed marks a frame that could not be parsed; the caller counts
// it and drops the frame.
var ErrMalformed = errors.New("malformed frame")

// Limits on lease times: anything else is absurd and ignored.
const (
	minLease = time.Second
	maxLease = 10 * 365 * 24 * time.Hour
)

// Parse extracts the learning events of one Ethernet frame. fromGuest
// says the guest sent it (else it was sent to the guest). A frame of no
// interest gives no events and no error; a frame that claims to be ARP,
// DHCP, DHCPv6 or ND but is truncated or inconsistent gives an error
// wrapping ErrMalformed. Parse never panics on any input.
func Parse(frame []byte, fromGuest bool) (evs []Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			evs, err = nil, fmt.Errorf("%w: decoder panic: %v", ErrMalformed, r)
		}
	}()
	var eth layers.Ethernet
	if err := eth.DecodeFromBytes(frame, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("%w: ethernet: %v", ErrMalformed, err)
	}
	switch eth.EthernetType {
	case layers.EthernetTypeARP:
		return parseARP(eth.Payload, fromGuest)
	case layers.EthernetTypeIPv4:
		return parseIPv4(eth.Payload, fromGuest)
	case layers.EthernetTypeIPv6:
		return parseIPv6(eth.Payload, fromGuest)
	}
	return nil, nil
}

func parseARP(b []byte, fromGuest bool) ([]Event, error) {
	var arp layers.ARP
	if err := arp.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("%w: arp: %v", ErrMalformed, err)
	}
	if !fromGuest || arp.Protocol != layers.EthernetTypeIPv4 || len(arp.SourceProtAddress) != 4 {
		return nil, nil
	}
	a := netip.AddrFrom4([4]byte(arp.SourceProtAddress))
	if !usable4(a) {
		return nil, nil // an ARP probe (0.0.0.0) says nothing
	}
	return []Event{{Kind: ARPSender, Addr: a}}, nil
}

// usable4 reports whether a is an address a guest may own.
func usable4(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) && !a.IsLoopback()
}

// usable6 reports whether a is a global address a guest may own.
func usable6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsGlobalUnicast() && !a.IsLinkLocalUnicast()
}

func parseIPv4(b []byte, fromGuest bool) ([]Event, error) {
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("%w: ipv4: %v", ErrMalformed, err)
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
	var evs []Event
	if fromGuest && usable4(src) {
		evs = append(evs, Event{Kind: SourceIPv4, Addr: src})
	}
	if ip.Protocol != layers.IPProtocolUDP || ip.FragOffset != 0 {
		return evs, nil
	}
	var udp layers.UDP
	if err := udp.DecodeFromBytes(ip.Payload, gopacket.NilDecodeFeedback); err != nil {
		return evs, fmt.Errorf("%w: udp: %v", ErrMalformed, err)
	}
	switch {
	case !fromGuest && udp.SrcPort == 67 && udp.DstPort == 68:
	case fromGuest && udp.SrcPort == 68 && udp.DstPort == 67:
	default:
		return evs, nil
	}
	dh, err := ParseDHCPv4(udp.Payload)
	if err != nil {
		return evs, err
	}
	if dh == nil {
		return evs, nil
	}
	switch {
	case !fromGuest && dh.Type == layers.DHCPMsgTypeAck && usable4(dh.YourIP):
		if dh.Lease == 0 {
			return evs, fmt.Errorf("%w: dhcp ack without a lease time", ErrMalformed)
		}
		if dh.Lease != Infinite && (dh.Lease < minLease || dh.Lease > maxLease) {
			return evs, fmt.Errorf("%w: dhcp ack with an absurd lease time %v", ErrMalformed, dh.Lease)
		}
		evs = append(evs, Event{Kind: DHCPAck, Addr: dh.YourIP, Server: src, MAC: dh.ClientMAC, Lifetime: dh.Lease})
	case fromGuest && dh.Type == layers.DHCPMsgTypeRelease && usable4(dh.ClientIP):
		evs = append(evs, Event{Kind: DHCPRelease, Addr: dh.ClientIP, MAC: dh.ClientMAC})
	case fromGuest && dh.Type == layers.DHCPMsgTypeDecline && usable4(dh.Requested):
		evs = append(evs, Event{Kind: DHCPDecline, Addr: dh.Requested, MAC: dh.ClientMAC})
	}
	return evs, nil
}

// DHCPv4 is what the learner reads from a DHCP message.
type DHCPv4 struct {
	Type      layers.DHCPMsgType
	ClientIP  netip.Addr // ciaddr
	YourIP    netip.Addr // yiaddr
	Requested netip.Addr // option 50
	ClientMAC net.HardwareAddr
	Lease     time.Duration // option 51; Infinite for 0xffffffff, 0 when absent
}

// ParseDHCPv4 decodes a DHCP message (a UDP payload) with gopacket. A
// BOOTP message without a DHCP message type gives nil.
func ParseDHCPv4(b []byte) (m *DHCPv4, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: dhcp decoder panic: %v", ErrMalformed, r)
		}
	}()
	var d layers.DHCPv4
	if err := d.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("%w: dhcp: %v", ErrMalformed, err)
	}
	if d.HardwareType != layers.LinkTypeEthernet || d.HardwareLen != 6 || len(d.ClientHWAddr) != 6 {
		return nil, fmt.Errorf("%w: dhcp: not an Ethernet client", ErrMalformed)
	}
	m = &DHCPv4{ClientMAC: append(net.HardwareAddr(nil), d.ClientHWAddr...)}
	m.ClientIP, _ = netip.AddrFromSlice(d.ClientIP.To4())
	m.YourIP, _ = netip.AddrFromSlice(d.YourClientIP.To4())
	seenType := false
	for _, o := range d.Options {
		switch o.Type {
		case layers.DHCPOptMessageType:
			if len(o.Data) != 1 {
				return nil, fmt.Errorf("%w: dhcp: message type of %d bytes", ErrMalformed, len(o.Data))
			}
			m.Type, seenType = layers.DHCPMsgType(o.Data[0]), true
		case layers.DHCPOptRequestIP:
			if len(o.Data) != 4 {
				return nil, fmt.Errorf("%w: dhcp: requested address of %d bytes", ErrMalformed, len(o.Data))
			}
			m.Requested = netip.AddrFrom4([4]byte(o.Data))
		case layers.DHCPOptLeaseTime:
			if len(o.Data) != 4 {
				return nil, fmt.Errorf("%w: dhcp: lease time of %d bytes", ErrMalformed, len(o.Data))
			}
			v := binary.BigEndian.Uint32(o.Data)
			if v == 0xffffffff {
				m.Lease = Infinite
			} else {
				m.Lease = time.Duration(v) * time.Second
			}
		}
	}
	if !seenType {
		return nil, nil
	}
	return m, nil
}

func parseIPv6(b []byte, fromGuest bool) ([]Event, error) {
	var ip layers.IPv6
	if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return nil, fmt.Errorf("%w: ipv6: %v", ErrMalformed, err)
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP.To16())
	var evs []Event
	if fromGuest && usable6(src) {
		evs = append(evs, Event{Kind: SourceIPv6, Addr: src})
	}
	switch ip.NextHeader {
	case layers.IPProtocolICMPv6:
		if !fromGuest {
			return evs, nil
		}
		a, ok, err := ParseNA(ip.Payload)
		if err != nil {
			return evs, err
		}
		if ok && usable6(a) {
			evs = append(evs, Event{Kind: NeighborAdvert, Addr: a})
		}
	case layers.IPProtocolUDP:
		var udp layers.UDP
		if err := udp.DecodeFromBytes(ip.Payload, gopacket.NilDecodeFeedback); err != nil {
			return evs, fmt.Errorf("%w: udp: %v", ErrMalformed, err)
		}
		switch {
		case !fromGuest && udp.SrcPort == 547 && udp.DstPort == 546:
		case fromGuest && udp.SrcPort == 546 && udp.DstPort == 547:
		default:
			return evs, nil
		}
		typ, addrs, err := ParseDHCPv6(udp.Payload)
		if err != nil {
			return evs, err
		}
		kind := Kind(0)
		switch {
		case !fromGuest && typ == layers.DHCPv6MsgTypeReply:
			kind = DHCPv6Reply
		case fromGuest && typ == layers.DHCPv6MsgTypeRelease:
			kind = DHCPv6Release
		case fromGuest && typ == layers.DHCPv6MsgTypeDecline:
			kind = DHCPv6Decline
		}
		if kind == 0 {
			return evs, nil
		}
		for _, a := range addrs {
			if !usable6(a.Addr) {
				continue
			}
			if kind == DHCPv6Reply && a.Lifetime != 0 && a.Lifetime != Infinite && (a.Lifetime < minLease || a.Lifetime > maxLease) {
				return evs, fmt.Errorf("%w: dhcpv6 reply with an absurd lifetime %v", ErrMalformed, a.Lifetime)
			}
			evs = append(evs, Event{Kind: kind, Addr: a.Addr, Server: src, Lifetime: a.Lifetime})
		}
	}
	return evs, nil
}

// ParseNA decodes an ICMPv6 message and returns the target address of a
// neighbour advertisement (ok false for other ICMPv6 types).
func ParseNA(b []byte) (target netip.Addr, ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("%w: icmpv6 decoder panic: %v", ErrMalformed, r)
		}
	}()
	var icmp layers.ICMPv6
	if err := icmp.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return netip.Addr{}, false, fmt.Errorf("%w: icmpv6: %v", ErrMalformed, err)
	}
	if icmp.TypeCode.Type() != layers.ICMPv6TypeNeighborAdvertisement {
		return netip.Addr{}, false, nil
	}
	var na layers.ICMPv6NeighborAdvertisement
	if err := na.DecodeFromBytes(icmp.Payload, gopacket.NilDecodeFeedback); err != nil {
		return netip.Addr{}, false, fmt.Errorf("%w: neighbor advertisement: %v", ErrMalformed, err)
	}
	a, valid := netip.AddrFromSlice(na.TargetAddress.To16())
	if !valid {
		return netip.Addr{}, false, fmt.Errorf("%w: neighbor advertisement without a target", ErrMalformed)
	}
	return a, true, nil
}

// Lease6 is one address of a DHCPv6 IA_NA.
type Lease6 struct {
	Addr     netip.Addr
	Lifetime time.Duration // valid lifetime; Infinite for 0xffffffff
}

// DHCPv6 option codes (RFC 8415).
const (
	dhcp6OptIANA   = 3
	dhcp6OptIAAddr = 5
)

// ParseDHCPv6 decodes a DHCPv6 message with gopacket and returns its type
// and the addresses of its IA_NA options.
func ParseDHCPv6(b []byte) (typ layers.DHCPv6MsgType, addrs []Lease6, err error) {
	defer func() {
		if r := recover(); r != nil {
			typ, addrs, err = 0, nil, fmt.Errorf("%w: dhcpv6 decoder panic: %v", ErrMalformed, r)
		}
	}()
	var d layers.DHCPv6
	if err := d.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return 0, nil, fmt.Errorf("%w: dhcpv6: %v", ErrMalformed, err)
	}
	for _, o := range d.Options {
		if o.Code != dhcp6OptIANA {
			continue
		}
		// IAID(4) T1(4) T2(4) then options.
		if len(o.Data) < 12 {
			return 0, nil, fmt.Errorf("%w: dhcpv6: IA_NA of %d bytes", ErrMalformed, len(o.Data))
		}
		rest := o.Data[12:]
		for len(rest) > 0 {
			if len(rest) < 4 {
				return 0, nil, fmt.Errorf("%w: dhcpv6: truncated IA_NA option", ErrMalformed)
			}
			code, n := binary.BigEndian.Uint16(rest), int(binary.BigEndian.Uint16(rest[2:]))
			if len(rest) < 4+n {
				return 0, nil, fmt.Errorf("%w: dhcpv6: IA_NA option %d longer than its IA", ErrMalformed, code)
			}
			if code == dhcp6OptIAAddr {
				if n < 24 {
					return 0, nil, fmt.Errorf("%w: dhcpv6: IAADDR of %d bytes", ErrMalformed, n)
				}
				v := rest[4 : 4+n]
				l := Lease6{Addr: netip.AddrFrom16([16]byte(v[:16]))}
				if valid := binary.BigEndian.Uint32(v[20:24]); valid == 0xffffffff {
					l.Lifetime = Infinite
				} else {
					l.Lifetime = time.Duration(valid) * time.Second
				}
				addrs = append(addrs, l)
			}
			rest = rest[4+n:]
		}
	}
	return d.MsgType, addrs, nil
}
