// Package learning learns the addresses of guests from their traffic, as
// libvirt's nwfilter "IP address learning" does: CTRL_IP_LEARNING=any
// takes the first address a guest uses, dhcp only what a trusted DHCP
// (or DHCPv6) server leased to it, for as long as the lease lasts.
//
// One Learner serves every learning port with one goroutine: an
// AF_PACKET socket per port, each with a classic BPF filter so only ARP,
// DHCP, DHCPv6, neighbour discovery and (for "any") the first IP packets
// reach user space, all waited on with one epoll. Frames are parsed by
// small hand-written decoders (Parse, pure and fuzzed, and checked
// against gopacket's by a differential fuzz test), fed to a per-port state
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

// Ethernet types and IP protocols the decoders know.
const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd

	ipProtoHopByHop = 0
	ipProtoUDP      = 17
	ipProtoICMPv6   = 58

	icmp6NeighborAdvert = 136
)

// DHCPMsgType is a DHCP message type (option 53, RFC 2132).
type DHCPMsgType uint8

// DHCP message types.
const (
	DHCPMsgTypeDiscover DHCPMsgType = iota + 1
	DHCPMsgTypeOffer
	DHCPMsgTypeRequest
	DHCPMsgTypeDecline
	DHCPMsgTypeAck
	DHCPMsgTypeNak
	DHCPMsgTypeRelease
	DHCPMsgTypeInform
)

// DHCPv6MsgType is a DHCPv6 message type (RFC 8415).
type DHCPv6MsgType uint8

// DHCPv6 message types.
const (
	DHCPv6MsgTypeSolicit DHCPv6MsgType = iota + 1
	DHCPv6MsgTypeAdvertise
	DHCPv6MsgTypeRequest
	DHCPv6MsgTypeConfirm
	DHCPv6MsgTypeRenew
	DHCPv6MsgTypeRebind
	DHCPv6MsgTypeReply
	DHCPv6MsgTypeRelease
	DHCPv6MsgTypeDecline
	DHCPv6MsgTypeReconfigure
	DHCPv6MsgTypeInformationRequest
	DHCPv6MsgTypeRelayForward
	DHCPv6MsgTypeRelayReply
)

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// Parse extracts the learning events of one Ethernet frame. fromGuest
// says the guest sent it (else it was sent to the guest). A frame of no
// interest gives no events and no error; a frame that claims to be ARP,
// DHCP, DHCPv6 or ND but is truncated or inconsistent gives an error
// wrapping ErrMalformed. Parse never panics on any input.
//
// The decoders accept and refuse exactly what gopacket's layers did
// (the differential fuzz test holds them to it), quirks included: no
// 802.1Q tags (a tagged frame is of no interest), an IPv4 total length of
// 0 means "the rest of the frame", IPv4 and IPv6 versions are not
// checked, an IPv6 hop-by-hop header is validated but what follows it is
// not looked at.
func Parse(frame []byte, fromGuest bool) (evs []Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			evs, err = nil, fmt.Errorf("%w: decoder panic: %v", ErrMalformed, r)
		}
	}()
	if len(frame) < 14 {
		return nil, malformed("ethernet: frame of %d bytes", len(frame))
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherTypeARP:
		return parseARP(frame[14:], fromGuest)
	case etherTypeIPv4:
		return parseIPv4(frame[14:], fromGuest)
	case etherTypeIPv6:
		return parseIPv6(frame[14:], fromGuest)
	}
	return nil, nil
}

func parseARP(b []byte, fromGuest bool) ([]Event, error) {
	if len(b) < 8 {
		return nil, malformed("arp: %d bytes", len(b))
	}
	proto, hlen, plen := binary.BigEndian.Uint16(b[2:4]), int(b[4]), int(b[5])
	n := 8 + 2*hlen + 2*plen
	// gopacket computes the length in a byte and fails on any overflow.
	if n > 255 || len(b) < n {
		return nil, malformed("arp: %d bytes, %d expected", len(b), n)
	}
	if !fromGuest || proto != etherTypeIPv4 || plen != 4 {
		return nil, nil
	}
	a := netip.AddrFrom4([4]byte(b[8+hlen : 8+hlen+4]))
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

// ipv4 is what the learner reads from an IPv4 header.
type ipv4 struct {
	src        netip.Addr
	proto      uint8
	fragOffset uint16
	payload    []byte
}

func decodeIPv4(b []byte) (ip ipv4, err error) {
	if len(b) < 20 {
		return ip, malformed("ipv4: header of %d bytes", len(b))
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length == 0 {
		// Segmentation offload: the packet is the rest of the frame.
		length = int(uint16(len(b)))
	}
	hlen := int(b[0]&0x0f) * 4
	switch {
	case length < 20:
		return ip, malformed("ipv4: total length %d", length)
	case hlen < 20:
		return ip, malformed("ipv4: header length %d", hlen)
	case hlen > length:
		return ip, malformed("ipv4: header length %d > total length %d", hlen, length)
	}
	if len(b) > length {
		b = b[:length]
	} else if hlen > len(b) {
		return ip, malformed("ipv4: header of %d bytes, %d expected", len(b), hlen)
	}
	for opts := b[20:hlen]; len(opts) > 0; {
		switch opts[0] {
		case 0: // end of options
			opts = nil
		case 1: // no operation
			opts = opts[1:]
		default:
			if len(opts) < 2 {
				return ip, malformed("ipv4: truncated option %d", opts[0])
			}
			n := int(opts[1])
			if n <= 2 || n > len(opts) {
				return ip, malformed("ipv4: option %d of %d bytes", opts[0], n)
			}
			opts = opts[n:]
		}
	}
	ip.src = netip.AddrFrom4([4]byte(b[12:16]))
	ip.proto = b[9]
	ip.fragOffset = binary.BigEndian.Uint16(b[6:8]) & 0x1fff
	ip.payload = b[hlen:]
	return ip, nil
}

// decodeUDP returns the ports and payload of a UDP datagram.
func decodeUDP(b []byte) (src, dst uint16, payload []byte, err error) {
	if len(b) < 8 {
		return 0, 0, nil, malformed("udp: header of %d bytes", len(b))
	}
	switch n := int(binary.BigEndian.Uint16(b[4:6])); {
	case n >= 8:
		payload = b[8:min(n, len(b))]
	case n == 0: // jumbogram
		payload = b[8:]
	default:
		return 0, 0, nil, malformed("udp: length %d", n)
	}
	return binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4]), payload, nil
}

func parseIPv4(b []byte, fromGuest bool) ([]Event, error) {
	ip, err := decodeIPv4(b)
	if err != nil {
		return nil, err
	}
	src := ip.src
	var evs []Event
	if fromGuest && usable4(src) {
		evs = append(evs, Event{Kind: SourceIPv4, Addr: src})
	}
	if ip.proto != ipProtoUDP || ip.fragOffset != 0 {
		return evs, nil
	}
	sport, dport, payload, err := decodeUDP(ip.payload)
	if err != nil {
		return evs, err
	}
	switch {
	case !fromGuest && sport == 67 && dport == 68:
	case fromGuest && sport == 68 && dport == 67:
	default:
		return evs, nil
	}
	dh, err := ParseDHCPv4(payload)
	if err != nil {
		return evs, err
	}
	if dh == nil {
		return evs, nil
	}
	switch {
	case !fromGuest && dh.Type == DHCPMsgTypeAck && usable4(dh.YourIP):
		if dh.Lease == 0 {
			return evs, fmt.Errorf("%w: dhcp ack without a lease time", ErrMalformed)
		}
		if dh.Lease != Infinite && (dh.Lease < minLease || dh.Lease > maxLease) {
			return evs, fmt.Errorf("%w: dhcp ack with an absurd lease time %v", ErrMalformed, dh.Lease)
		}
		evs = append(evs, Event{Kind: DHCPAck, Addr: dh.YourIP, Server: src, MAC: dh.ClientMAC, Lifetime: dh.Lease})
	case fromGuest && dh.Type == DHCPMsgTypeRelease && usable4(dh.ClientIP):
		evs = append(evs, Event{Kind: DHCPRelease, Addr: dh.ClientIP, MAC: dh.ClientMAC})
	case fromGuest && dh.Type == DHCPMsgTypeDecline && usable4(dh.Requested):
		evs = append(evs, Event{Kind: DHCPDecline, Addr: dh.Requested, MAC: dh.ClientMAC})
	}
	return evs, nil
}

// DHCPv4 is what the learner reads from a DHCP message.
type DHCPv4 struct {
	Type      DHCPMsgType
	ClientIP  netip.Addr // ciaddr
	YourIP    netip.Addr // yiaddr
	Requested netip.Addr // option 50
	ClientMAC net.HardwareAddr
	Lease     time.Duration // option 51; Infinite for 0xffffffff, 0 when absent
}

// DHCP constants (RFC 2131, 2132).
const (
	dhcpMagic        = 0x63825363
	dhcpOptPad       = 0
	dhcpOptRequestIP = 50
	dhcpOptLeaseTime = 51
	dhcpOptMsgType   = 53
	dhcpOptEnd       = 255
)

// ParseDHCPv4 decodes a DHCP message (a UDP payload): the BOOTP header of
// an Ethernet client, the magic cookie and options up to the end option.
// A BOOTP message without a DHCP message type gives nil. When an option
// repeats, the last one counts.
func ParseDHCPv4(b []byte) (m *DHCPv4, err error) {
	if len(b) < 240 {
		return nil, malformed("dhcp: %d bytes", len(b))
	}
	if binary.BigEndian.Uint32(b[236:240]) != dhcpMagic {
		return nil, malformed("dhcp: bad magic cookie")
	}
	// htype 1 (Ethernet), hlen 6.
	if b[1] != 1 || b[2] != 6 {
		return nil, malformed("dhcp: not an Ethernet client")
	}
	m = &DHCPv4{
		ClientMAC: append(net.HardwareAddr(nil), b[28:34]...),
		ClientIP:  netip.AddrFrom4([4]byte(b[12:16])),
		YourIP:    netip.AddrFrom4([4]byte(b[16:20])),
	}
	seenType := false
	for opts := b[240:]; len(opts) > 0; {
		code := opts[0]
		if code == dhcpOptEnd {
			break
		}
		if code == dhcpOptPad {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) > len(opts)-2 {
			return nil, malformed("dhcp: truncated option %d", code)
		}
		data := opts[2 : 2+int(opts[1])]
		opts = opts[2+len(data):]
		switch code {
		case dhcpOptMsgType:
			if len(data) != 1 {
				return nil, malformed("dhcp: message type of %d bytes", len(data))
			}
			m.Type, seenType = DHCPMsgType(data[0]), true
		case dhcpOptRequestIP:
			if len(data) != 4 {
				return nil, malformed("dhcp: requested address of %d bytes", len(data))
			}
			m.Requested = netip.AddrFrom4([4]byte(data))
		case dhcpOptLeaseTime:
			if len(data) != 4 {
				return nil, malformed("dhcp: lease time of %d bytes", len(data))
			}
			v := binary.BigEndian.Uint32(data)
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

// decodeIPv6 decodes an IPv6 header and, if one follows, its hop-by-hop
// header. next is the header's next header field: after a hop-by-hop
// header it stays 0 and payload is nil (nothing behind it is looked at).
func decodeIPv6(b []byte) (src netip.Addr, next uint8, payload []byte, err error) {
	if len(b) < 40 {
		return src, 0, nil, malformed("ipv6: header of %d bytes", len(b))
	}
	length := int(binary.BigEndian.Uint16(b[4:6]))
	next = b[6]
	src = netip.AddrFrom16([16]byte(b[8:24]))
	payload = b[40:]
	if next == ipProtoHopByHop {
		jumbo, err := hopByHop(payload)
		switch {
		case err != nil:
			return src, 0, nil, err
		case jumbo && length != 0:
			return src, 0, nil, malformed("ipv6: jumbo option and a payload length")
		case !jumbo && length == 0:
			return src, 0, nil, malformed("ipv6: payload length 0 without a jumbo option")
		}
		return src, next, nil, nil
	}
	if length == 0 {
		return src, 0, nil, malformed("ipv6: payload length 0, next header %d", next)
	}
	return src, next, payload[:min(length, len(payload))], nil
}

// hopByHop validates an IPv6 hop-by-hop header as gopacket does (its
// options may run past the header's length into what follows) and
// reports whether it has a jumbo payload option.
func hopByHop(b []byte) (jumbo bool, err error) {
	if len(b) < 2 {
		return false, malformed("ipv6: hop-by-hop header of %d bytes", len(b))
	}
	hlen := int(b[1])*8 + 8
	if len(b) < hlen {
		return false, malformed("ipv6: hop-by-hop header of %d bytes, %d expected", len(b), hlen)
	}
	var jumboData []byte
	for off := 2; off < hlen; {
		if len(b)-off < 2 {
			return false, malformed("ipv6: truncated hop-by-hop option")
		}
		if b[off] == 0 { // Pad1
			off++
			continue
		}
		n := int(b[off+1]) + 2
		if len(b)-off < n {
			return false, malformed("ipv6: hop-by-hop option %d of %d bytes", b[off], n)
		}
		if b[off] == 0xc2 && !jumbo {
			jumbo, jumboData = true, b[off+2:off+n]
		}
		off += n
	}
	if jumbo && (len(jumboData) != 4 || binary.BigEndian.Uint32(jumboData) <= 0xffff) {
		return false, malformed("ipv6: bad jumbo payload option")
	}
	return jumbo, nil
}

func parseIPv6(b []byte, fromGuest bool) ([]Event, error) {
	src, next, payload, err := decodeIPv6(b)
	if err != nil {
		return nil, err
	}
	var evs []Event
	if fromGuest && usable6(src) {
		evs = append(evs, Event{Kind: SourceIPv6, Addr: src})
	}
	switch next {
	case ipProtoICMPv6:
		if !fromGuest {
			return evs, nil
		}
		a, ok, err := ParseNA(payload)
		if err != nil {
			return evs, err
		}
		if ok && usable6(a) {
			evs = append(evs, Event{Kind: NeighborAdvert, Addr: a})
		}
	case ipProtoUDP:
		sport, dport, payload, err := decodeUDP(payload)
		if err != nil {
			return evs, err
		}
		switch {
		case !fromGuest && sport == 547 && dport == 546:
		case fromGuest && sport == 546 && dport == 547:
		default:
			return evs, nil
		}
		typ, addrs, err := ParseDHCPv6(payload)
		if err != nil {
			return evs, err
		}
		kind := Kind(0)
		switch {
		case !fromGuest && typ == DHCPv6MsgTypeReply:
			kind = DHCPv6Reply
		case fromGuest && typ == DHCPv6MsgTypeRelease:
			kind = DHCPv6Release
		case fromGuest && typ == DHCPv6MsgTypeDecline:
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
// neighbour advertisement (ok false for other ICMPv6 types). The options
// of an advertisement must be well formed.
func ParseNA(b []byte) (target netip.Addr, ok bool, err error) {
	if len(b) < 4 {
		return netip.Addr{}, false, malformed("icmpv6: %d bytes", len(b))
	}
	if b[0] != icmp6NeighborAdvert {
		return netip.Addr{}, false, nil
	}
	// Flags(1) reserved(3) target(16) options.
	na := b[4:]
	if len(na) < 20 {
		return netip.Addr{}, false, malformed("neighbor advertisement: %d bytes", len(na))
	}
	for opts := na[20:]; len(opts) > 0; {
		if len(opts) < 2 {
			return netip.Addr{}, false, malformed("neighbor advertisement: truncated option")
		}
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return netip.Addr{}, false, malformed("neighbor advertisement: option %d of %d bytes", opts[0], n)
		}
		opts = opts[n:]
	}
	return netip.AddrFrom16([16]byte(na[4:20])), true, nil
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

// ParseDHCPv6 decodes a DHCPv6 message and returns its type and the
// addresses of its IA_NA options. Every option must be well formed;
// those of a relay message are not looked into.
func ParseDHCPv6(b []byte) (typ DHCPv6MsgType, addrs []Lease6, err error) {
	if len(b) < 4 {
		return 0, nil, malformed("dhcpv6: %d bytes", len(b))
	}
	typ = DHCPv6MsgType(b[0])
	// msg-type(1) transaction-id(3), or for relays msg-type(1)
	// hop-count(1) link-address(16) peer-address(16).
	opts := b[4:]
	if typ == DHCPv6MsgTypeRelayForward || typ == DHCPv6MsgTypeRelayReply {
		if len(b) < 34 {
			return 0, nil, malformed("dhcpv6: relay message of %d bytes", len(b))
		}
		opts = b[34:]
	}
	for len(opts) > 0 {
		if len(opts) < 4 {
			return 0, nil, malformed("dhcpv6: truncated option")
		}
		code, n := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if len(opts) < 4+n {
			return 0, nil, malformed("dhcpv6: option %d of %d bytes, %d left", code, n, len(opts)-4)
		}
		data := opts[4 : 4+n]
		opts = opts[4+n:]
		if code != dhcp6OptIANA {
			continue
		}
		// IAID(4) T1(4) T2(4) then options.
		if len(data) < 12 {
			return 0, nil, malformed("dhcpv6: IA_NA of %d bytes", len(data))
		}
		rest := data[12:]
		for len(rest) > 0 {
			if len(rest) < 4 {
				return 0, nil, malformed("dhcpv6: truncated IA_NA option")
			}
			code, n := binary.BigEndian.Uint16(rest), int(binary.BigEndian.Uint16(rest[2:]))
			if len(rest) < 4+n {
				return 0, nil, malformed("dhcpv6: IA_NA option %d longer than its IA", code)
			}
			if code == dhcp6OptIAAddr {
				if n < 24 {
					return 0, nil, malformed("dhcpv6: IAADDR of %d bytes", n)
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
	return typ, addrs, nil
}
