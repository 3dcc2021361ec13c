package learning

// The gopacket-based parser this package used before its hand-written
// decoders, kept as the reference the differential fuzz test compares
// them with. Tests are not linked into the daemon, so gopacket costs it
// nothing here.

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// refParse extracts the learning events of one Ethernet frame. fromGuest
// says the guest sent it (else it was sent to the guest). A frame of no
// interest gives no events and no error; a frame that claims to be ARP,
// DHCP, DHCPv6 or ND but is truncated or inconsistent gives an error
// wrapping ErrMalformed. Parse never panics on any input.
func refParse(frame []byte, fromGuest bool) (evs []Event, err error) {
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
		return refParseARP(eth.Payload, fromGuest)
	case layers.EthernetTypeIPv4:
		return refParseIPv4(eth.Payload, fromGuest)
	case layers.EthernetTypeIPv6:
		return refParseIPv6(eth.Payload, fromGuest)
	}
	return nil, nil
}

func refParseARP(b []byte, fromGuest bool) ([]Event, error) {
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

func refParseIPv4(b []byte, fromGuest bool) ([]Event, error) {
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
	dh, err := refParseDHCPv4(udp.Payload)
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

// refDHCPv4 is what the learner reads from a DHCP message.
type refDHCPv4 struct {
	Type      layers.DHCPMsgType
	ClientIP  netip.Addr // ciaddr
	YourIP    netip.Addr // yiaddr
	Requested netip.Addr // option 50
	ClientMAC net.HardwareAddr
	Lease     time.Duration // option 51; Infinite for 0xffffffff, 0 when absent
}

// refParseDHCPv4 decodes a DHCP message (a UDP payload) with gopacket. A
// BOOTP message without a DHCP message type gives nil.
func refParseDHCPv4(b []byte) (m *refDHCPv4, err error) {
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
	m = &refDHCPv4{ClientMAC: append(net.HardwareAddr(nil), d.ClientHWAddr...)}
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

func refParseIPv6(b []byte, fromGuest bool) ([]Event, error) {
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
		a, ok, err := refParseNA(ip.Payload)
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
		typ, addrs, err := refParseDHCPv6(udp.Payload)
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

// refParseNA decodes an ICMPv6 message and returns the target address of a
// neighbour advertisement (ok false for other ICMPv6 types).
func refParseNA(b []byte) (target netip.Addr, ok bool, err error) {
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

// refParseDHCPv6 decodes a DHCPv6 message with gopacket and returns its type
// and the addresses of its IA_NA options.
func refParseDHCPv6(b []byte) (typ layers.DHCPv6MsgType, addrs []Lease6, err error) {
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
