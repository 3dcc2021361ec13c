package learning

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/tests/lab"
)

var (
	guestMAC  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x11}
	otherMAC  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x22}
	serverMAC = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x01}
	server    = net.IPv4(10, 0, 0, 1)
)

func ack(t testing.TB, from net.IP, chaddr net.HardwareAddr, yiaddr string, lease uint32) []byte {
	t.Helper()
	f, err := lab.DHCPFrame(serverMAC, guestMAC, from, net.ParseIP(yiaddr), lab.DHCPMessage{
		Type: layers.DHCPMsgTypeAck, ClientMAC: chaddr, YourIP: net.ParseIP(yiaddr), Server: from, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustParse(t *testing.T, f []byte, fromGuest bool) []Event {
	t.Helper()
	evs, err := Parse(f, fromGuest)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestParseDHCPAck(t *testing.T) {
	evs := mustParse(t, ack(t, server, guestMAC, "10.0.0.50", 3600), false)
	if len(evs) != 1 || evs[0].Kind != DHCPAck || evs[0].Addr != netip.MustParseAddr("10.0.0.50") ||
		evs[0].Server != netip.MustParseAddr("10.0.0.1") || evs[0].Lifetime != time.Hour || evs[0].MAC.String() != guestMAC.String() {
		t.Fatalf("events %+v", evs)
	}
	// The same frame from the guest is not a server's answer.
	if evs := mustParse(t, ack(t, server, guestMAC, "10.0.0.50", 3600), true); len(evs) != 1 || evs[0].Kind != SourceIPv4 {
		t.Fatalf("ack from the guest: %+v", evs)
	}
	// Infinite lease.
	if evs := mustParse(t, ack(t, server, guestMAC, "10.0.0.50", 0xffffffff), false); evs[0].Lifetime != Infinite {
		t.Fatalf("infinite: %+v", evs)
	}
	// Absurd lease times and no lease: refused.
	for _, lease := range []uint32{0, 0xfffffff0} {
		if _, err := Parse(ack(t, server, guestMAC, "10.0.0.50", lease), false); !errors.Is(err, ErrMalformed) {
			t.Errorf("lease %d: %v", lease, err)
		}
	}
}

func TestParseReleaseDeclineARPAndSource(t *testing.T) {
	rel, _ := lab.DHCPFrame(guestMAC, serverMAC, net.ParseIP("10.0.0.50"), server, lab.DHCPMessage{
		Type: layers.DHCPMsgTypeRelease, ClientMAC: guestMAC, ClientIP: net.ParseIP("10.0.0.50")})
	evs := mustParse(t, rel, true)
	if len(evs) != 2 || evs[1].Kind != DHCPRelease || evs[1].Addr != netip.MustParseAddr("10.0.0.50") {
		t.Fatalf("release: %+v", evs)
	}
	dec, _ := lab.DHCPFrame(guestMAC, lab.BroadcastMAC(), net.IPv4zero, net.IPv4bcast, lab.DHCPMessage{
		Type: layers.DHCPMsgTypeDecline, ClientMAC: guestMAC, Requested: net.ParseIP("10.0.0.51")})
	evs = mustParse(t, dec, true)
	if len(evs) != 1 || evs[0].Kind != DHCPDecline || evs[0].Addr != netip.MustParseAddr("10.0.0.51") {
		t.Fatalf("decline: %+v", evs)
	}
	arp, _ := lab.ARPFrame(layers.ARPRequest, guestMAC, net.ParseIP("10.0.0.7"), nil, server)
	if evs := mustParse(t, arp, true); len(evs) != 1 || evs[0].Kind != ARPSender || evs[0].Addr != netip.MustParseAddr("10.0.0.7") {
		t.Fatalf("arp: %+v", evs)
	}
	probe, _ := lab.ARPFrame(layers.ARPRequest, guestMAC, net.IPv4zero, nil, server)
	if evs := mustParse(t, probe, true); len(evs) != 0 {
		t.Fatalf("arp probe: %+v", evs)
	}
	mc, _ := lab.UDPFrame(guestMAC, lab.BroadcastMAC(), net.ParseIP("224.0.0.1"), server, 1, 2, nil)
	if evs := mustParse(t, mc, true); len(evs) != 0 {
		t.Fatalf("multicast source: %+v", evs)
	}
}

func TestParseIPv6(t *testing.T) {
	na, err := lab.NeighborAdvertFrame(guestMAC, net.ParseIP("fe80::11"), serverMAC, net.ParseIP("ff02::1"), net.ParseIP("2001:db8::11"), 0x20)
	if err != nil {
		t.Fatal(err)
	}
	evs := mustParse(t, na, true)
	if len(evs) != 1 || evs[0].Kind != NeighborAdvert || evs[0].Addr != netip.MustParseAddr("2001:db8::11") {
		t.Fatalf("na: %+v", evs)
	}
	src, _ := lab.UDPFrame(guestMAC, serverMAC, net.ParseIP("2001:db8::12"), net.ParseIP("2001:db8::1"), 1, 2, nil)
	if evs := mustParse(t, src, true); len(evs) != 1 || evs[0].Kind != SourceIPv6 {
		t.Fatalf("source: %+v", evs)
	}
	reply := dhcp6Reply(t, "2001:db8::99", 600)
	evs = mustParse(t, reply, false)
	if len(evs) != 1 || evs[0].Kind != DHCPv6Reply || evs[0].Addr != netip.MustParseAddr("2001:db8::99") ||
		evs[0].Lifetime != 10*time.Minute || evs[0].Server != netip.MustParseAddr("fe80::1") {
		t.Fatalf("reply: %+v", evs)
	}
}

// dhcp6Reply is a DHCPv6 Reply from fe80::1 with one IA_NA address.
func dhcp6Reply(t testing.TB, addr string, valid uint32) []byte {
	t.Helper()
	ia := make([]byte, 12)
	iaaddr := append([]byte(nil), net.ParseIP(addr).To16()...)
	iaaddr = append(iaaddr, 0, 0, 1, 0, byte(valid>>24), byte(valid>>16), byte(valid>>8), byte(valid))
	ia = append(ia, 0, 5, 0, byte(len(iaaddr)))
	ia = append(ia, iaaddr...)
	msg := []byte{7, 1, 2, 3, 0, 3, 0, byte(len(ia))}
	msg = append(msg, ia...)
	f, err := lab.UDPFrame(serverMAC, guestMAC, net.ParseIP("fe80::1"), net.ParseIP("fe80::11"), 547, 546, msg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseMalformed(t *testing.T) {
	good := ack(t, server, guestMAC, "10.0.0.50", 3600)
	n := 0
	for cut := 0; cut < len(good); cut++ {
		if _, err := Parse(good[:cut], false); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("cut %d: %v", cut, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no truncation was refused")
	}
}
