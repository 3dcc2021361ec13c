package learning

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/tests/lab"
)

// FuzzDiffParse holds the hand-written decoders to gopacket's (the
// reference parser of ref_test.go): for any input both accept or both
// refuse, and what they accept gives the same events, DHCP fields,
// DHCPv6 addresses and advertised targets. There is no deliberate
// difference. The mode wraps the input in valid Ethernet, IP and UDP
// headers so that the fuzzer reaches every decoder.
func FuzzDiffParse(f *testing.F) {
	for _, s := range diffSeeds(f) {
		f.Add(s, false, uint8(0))
		f.Add(s, true, uint8(0))
	}
	fr := ack(f, server, guestMAC, "10.0.0.50", 3600)
	f.Add(fr[42:], false, uint8(2))
	f.Add(fr[42:], true, uint8(2))
	d6 := dhcp6Reply(f, "2001:db8::99", 600)
	f.Add(d6[62:], false, uint8(4))
	f.Add(d6[62:], true, uint8(4))
	f.Add([]byte{136, 0, 0, 0, 0x20, 0, 0, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 2, 1, 1, 2, 3, 4, 5, 6}, true, uint8(5))
	f.Add([]byte{17, 0, 0, 0, 0xc2, 4, 0, 1, 0, 0}, true, uint8(7))
	f.Add([]byte{0x46, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1, 7, 4, 0, 0}, true, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, fromGuest bool, mode uint8) {
		frame := diffFrame(b, fromGuest, mode)
		evs, err := Parse(frame, fromGuest)
		revs, rerr := refParse(frame, fromGuest)
		noPanic(t, err)
		if (err == nil) != (rerr == nil) || !sameEvents(evs, revs) {
			t.Fatalf("frame %x from guest %v:\nours %+v, %v\ngopacket %+v, %v", frame, fromGuest, evs, err, revs, rerr)
		}
		diffDHCPv4(t, b)
		diffDHCPv6(t, b)
		diffNA(t, b)
	})
}

func noPanic(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "panic") {
		t.Fatalf("hand-written decoder panicked: %v", err)
	}
}

func sameEvents(a, b []Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Kind != y.Kind || x.Addr != y.Addr || x.Server != y.Server || x.Lifetime != y.Lifetime || !bytes.Equal(x.MAC, y.MAC) {
			return false
		}
	}
	return true
}

func diffDHCPv4(t *testing.T, b []byte) {
	m, err := ParseDHCPv4(b)
	r, rerr := refParseDHCPv4(b)
	if (err == nil) != (rerr == nil) || (m == nil) != (r == nil) {
		t.Fatalf("dhcp %x: ours %+v, %v; gopacket %+v, %v", b, m, err, r, rerr)
	}
	if m != nil && (uint8(m.Type) != uint8(r.Type) || m.ClientIP != r.ClientIP || m.YourIP != r.YourIP ||
		m.Requested != r.Requested || !bytes.Equal(m.ClientMAC, r.ClientMAC) || m.Lease != r.Lease) {
		t.Fatalf("dhcp %x: ours %+v; gopacket %+v", b, m, r)
	}
}

func diffDHCPv6(t *testing.T, b []byte) {
	typ, addrs, err := ParseDHCPv6(b)
	rtyp, raddrs, rerr := refParseDHCPv6(b)
	if (err == nil) != (rerr == nil) || uint8(typ) != uint8(rtyp) || len(addrs) != len(raddrs) {
		t.Fatalf("dhcpv6 %x: ours %v %+v %v; gopacket %v %+v %v", b, typ, addrs, err, rtyp, raddrs, rerr)
	}
	for i := range addrs {
		if addrs[i] != raddrs[i] {
			t.Fatalf("dhcpv6 %x: ours %+v; gopacket %+v", b, addrs, raddrs)
		}
	}
}

func diffNA(t *testing.T, b []byte) {
	a, ok, err := ParseNA(b)
	ra, rok, rerr := refParseNA(b)
	if (err == nil) != (rerr == nil) || ok != rok || a != ra {
		t.Fatalf("icmpv6 %x: ours %v %v %v; gopacket %v %v %v", b, a, ok, err, ra, rok, rerr)
	}
}

// diffFrame makes a frame of b: as it is (mode 0) or as the payload of
// headers with consistent lengths.
func diffFrame(b []byte, fromGuest bool, mode uint8) []byte {
	eth := func(typ uint16) []byte {
		h := append(append([]byte(nil), serverMAC...), guestMAC...)
		return binary.BigEndian.AppendUint16(h, typ)
	}
	ip4 := func(proto uint8, payload []byte) []byte {
		h := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 5, 255, 255, 255, 255}
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
		return append(h, payload...)
	}
	ip6 := func(next uint8, payload []byte) []byte {
		h := make([]byte, 40)
		h[0], h[6], h[7] = 0x60, next, 255
		binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
		copy(h[8:], net.ParseIP("2001:db8::5"))
		copy(h[24:], net.ParseIP("ff02::1"))
		return append(h, payload...)
	}
	udp := func(sport, dport uint16, payload []byte) []byte {
		h := make([]byte, 8)
		binary.BigEndian.PutUint16(h, sport)
		binary.BigEndian.PutUint16(h[2:], dport)
		binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
		return append(h, payload...)
	}
	s4, d4, s6, d6 := uint16(67), uint16(68), uint16(547), uint16(546)
	if fromGuest {
		s4, d4, s6, d6 = d4, s4, d6, s6
	}
	switch mode % 8 {
	case 1:
		return append(eth(etherTypeIPv4), b...)
	case 2:
		return append(eth(etherTypeIPv4), ip4(ipProtoUDP, udp(s4, d4, b))...)
	case 3:
		return append(eth(etherTypeIPv6), b...)
	case 4:
		return append(eth(etherTypeIPv6), ip6(ipProtoUDP, udp(s6, d6, b))...)
	case 5:
		return append(eth(etherTypeIPv6), ip6(ipProtoICMPv6, b)...)
	case 6:
		return append(eth(etherTypeARP), b...)
	case 7:
		return append(eth(etherTypeIPv6), ip6(ipProtoHopByHop, b)...)
	}
	return b
}

// diffSeeds are frames of every kind the learner reads.
func diffSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	add := func(f []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, f)
	}
	add(ack(t, server, guestMAC, "10.0.0.50", 3600), nil)
	add(ack(t, server, guestMAC, "10.0.0.50", 0xffffffff), nil)
	add(dhcp6Reply(t, "2001:db8::99", 600), nil)
	add(lab.DHCPFrame(guestMAC, serverMAC, net.ParseIP("10.0.0.50"), server, lab.DHCPMessage{
		Type: layers.DHCPMsgTypeRelease, ClientMAC: guestMAC, ClientIP: net.ParseIP("10.0.0.50")}))
	add(lab.DHCPFrame(guestMAC, lab.BroadcastMAC(), net.IPv4zero, net.IPv4bcast, lab.DHCPMessage{
		Type: layers.DHCPMsgTypeDecline, ClientMAC: guestMAC, Requested: net.ParseIP("10.0.0.51")}))
	add(lab.ARPFrame(layers.ARPRequest, guestMAC, net.ParseIP("10.0.0.7"), nil, server))
	add(lab.NeighborAdvertFrame(guestMAC, net.ParseIP("fe80::11"), serverMAC, net.ParseIP("ff02::1"), net.ParseIP("2001:db8::11"), 0x20))
	add(lab.UDPFrame(guestMAC, serverMAC, net.ParseIP("2001:db8::12"), net.ParseIP("2001:db8::1"), 1, 2, nil))
	add(lab.UDPFrame(guestMAC, serverMAC, net.ParseIP("10.0.0.12"), server, 1, 2, []byte("x")))
	return seeds
}
