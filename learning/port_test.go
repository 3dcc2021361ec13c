package learning

import (
	"net/netip"
	"testing"
	"time"
)

func spec(mode string) Spec {
	return Spec{Port: "vnet0", MAC: guestMAC, Mode: mode, IPv4: true, IPv6: true,
		Servers: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Servers6: []netip.Addr{netip.MustParseAddr("fe80::1")}}
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestPortAnyTakesTheFirstAddressOfEachFamily(t *testing.T) {
	p := NewPort(spec(ModeAny), nil, t0)
	if !p.Handle(Event{Kind: SourceIPv4, Addr: addr("10.0.0.5")}, t0) {
		t.Fatal("first address not learned")
	}
	if p.Handle(Event{Kind: ARPSender, Addr: addr("10.0.0.6")}, t0) {
		t.Fatal("second IPv4 address learned")
	}
	if p.Complete() {
		t.Fatal("complete without IPv6")
	}
	if !p.Handle(Event{Kind: NeighborAdvert, Addr: addr("2001:db8::5")}, t0) || !p.Complete() {
		t.Fatal("IPv6 not learned")
	}
	if got := p.Addresses(); len(got) != 2 || !got[0].Expires.IsZero() {
		t.Fatalf("addresses %+v", got)
	}
}

func TestPortDHCPLeases(t *testing.T) {
	p := NewPort(spec(ModeDHCP), nil, t0)
	// Sources and ARP teach nothing in dhcp mode; rogue servers neither.
	for _, ev := range []Event{
		{Kind: SourceIPv4, Addr: addr("10.0.0.5")},
		{Kind: ARPSender, Addr: addr("10.0.0.5")},
		{Kind: DHCPAck, Addr: addr("10.0.0.5"), Server: addr("10.0.0.66"), MAC: guestMAC, Lifetime: time.Hour},
		{Kind: DHCPAck, Addr: addr("10.0.0.5"), Server: addr("10.0.0.1"), MAC: otherMAC, Lifetime: time.Hour},
		{Kind: DHCPv6Reply, Addr: addr("2001:db8::5"), Server: addr("fe80::66"), Lifetime: time.Hour},
	} {
		if p.Handle(ev, t0) {
			t.Fatalf("%v learned: %+v", ev.Kind, p.Addresses())
		}
	}
	if !p.Handle(Event{Kind: DHCPAck, Addr: addr("10.0.0.5"), Server: addr("10.0.0.1"), MAC: guestMAC, Lifetime: time.Minute}, t0) {
		t.Fatal("trusted ack not learned")
	}
	if !p.Handle(Event{Kind: DHCPAck, Addr: addr("10.0.0.6"), Server: addr("10.0.0.1"), MAC: guestMAC, Lifetime: time.Hour}, t0) {
		t.Fatal("second lease not learned")
	}
	if len(p.Addresses()) != 2 || p.Complete() {
		t.Fatalf("addresses %+v", p.Addresses())
	}
	// Renewal extends.
	t1 := t0.Add(50 * time.Second)
	if !p.Handle(Event{Kind: DHCPAck, Addr: addr("10.0.0.5"), Server: addr("10.0.0.1"), MAC: guestMAC, Lifetime: time.Minute}, t1) {
		t.Fatal("renewal changed nothing")
	}
	if p.Expire(t0.Add(70 * time.Second)) {
		t.Fatal("renewed lease expired")
	}
	if !p.Expire(t1.Add(time.Minute)) || len(p.Addresses()) != 1 {
		t.Fatalf("expiry: %+v", p.Addresses())
	}
	if !p.Handle(Event{Kind: DHCPRelease, Addr: addr("10.0.0.6"), MAC: guestMAC}, t1) || len(p.Addresses()) != 0 {
		t.Fatalf("release: %+v", p.Addresses())
	}
	// DHCPv6: reply, then lifetime 0 withdraws.
	if !p.Handle(Event{Kind: DHCPv6Reply, Addr: addr("2001:db8::5"), Server: addr("fe80::1"), Lifetime: time.Hour}, t1) {
		t.Fatal("dhcpv6 not learned")
	}
	if !p.Handle(Event{Kind: DHCPv6Reply, Addr: addr("2001:db8::5"), Server: addr("fe80::1")}, t1) || len(p.Addresses()) != 0 {
		t.Fatal("zero lifetime kept the address")
	}
}

func TestPortRestoresOnlyValidLeases(t *testing.T) {
	known := []Address{
		{Addr: addr("10.0.0.5"), Expires: t0.Add(-time.Second)},
		{Addr: addr("10.0.0.6"), Expires: t0.Add(time.Hour)},
		{Addr: addr("10.0.0.7")},
	}
	p := NewPort(spec(ModeDHCP), known, t0)
	got := p.Addresses()
	if len(got) != 2 || got[0].Addr != addr("10.0.0.6") || got[1].Addr != addr("10.0.0.7") {
		t.Fatalf("restored %+v", got)
	}
	if !p.NextExpiry().Equal(t0.Add(time.Hour)) {
		t.Fatalf("next expiry %v", p.NextExpiry())
	}
}

func TestBucket(t *testing.T) {
	var b bucket
	n := 0
	for i := 0; i < 1000; i++ {
		if b.take(t0, 100, 200) {
			n++
		}
	}
	if n != 200 {
		t.Fatalf("burst %d", n)
	}
	if !b.take(t0.Add(20*time.Millisecond), 100, 200) {
		t.Fatal("no refill")
	}
}

func TestFilterPrograms(t *testing.T) {
	for _, mode := range []string{ModeAny, ModeDHCP} {
		for _, fam := range [][2]bool{{true, false}, {false, true}, {true, true}} {
			s := spec(mode)
			s.IPv4, s.IPv6 = fam[0], fam[1]
			if _, err := filterProgram(s); err != nil {
				t.Errorf("%s %v: %v", mode, fam, err)
			}
		}
	}
}

// TestPortPendingNarrowsToTheFamilyLeft: once an "any" port has one
// family, its socket filter needs only the other's frames.
func TestPortPendingNarrowsToTheFamilyLeft(t *testing.T) {
	mac := guestMAC
	p := NewPort(Spec{Port: "p", MAC: mac, Mode: ModeAny, IPv4: true, IPv6: true}, nil, time.Now())
	if s := p.pending(); !s.IPv4 || !s.IPv6 {
		t.Fatalf("before: %+v", s)
	}
	p.Handle(Event{Kind: SourceIPv4, Addr: netip.MustParseAddr("10.0.0.5"), MAC: mac}, time.Now())
	if s := p.pending(); s.IPv4 || !s.IPv6 {
		t.Fatalf("after IPv4: %+v", s)
	}
	if _, err := filterProgram(p.pending()); err != nil {
		t.Fatal(err)
	}
	d := NewPort(Spec{Port: "p", MAC: mac, Mode: ModeDHCP, IPv4: true}, []Address{{Addr: netip.MustParseAddr("10.0.0.5"), Expires: time.Now().Add(time.Hour)}}, time.Now())
	if s := d.pending(); !s.IPv4 {
		t.Fatal("dhcp ports keep every family (renewals, releases)")
	}
}
