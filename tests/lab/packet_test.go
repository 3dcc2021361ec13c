package lab_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/tests/lab"
)

// bridgedGuests returns two guests whose host ends are ports of a plain
// bridge br0 in the hypervisor, with 10.200.0.1/24 + fd00:200::1/64 on
// guest 0 and 10.200.0.2/24 + fd00:200::2/64 on guest 1.
func bridgedGuests(t *testing.T, l *lab.Lab) (g0, g1 *lab.Guest) {
	t.Helper()
	g0, g1 = l.AddGuest(), l.AddGuest()
	l.Hypervisor().AddBridge("br0", "", g0.HostIface, g1.HostIface)
	for i, g := range []*lab.Guest{g0, g1} {
		g.SetAddr(fmt.Sprintf("10.200.0.%d/24", i+1))
		// nodad: usable at once, not tentative for a second.
		g.MustRun("ip", "addr", "add", fmt.Sprintf("fd00:200::%d/64", i+1), "dev", g.Iface, "nodad")
	}
	return g0, g1
}

func TestPacketTrafficBetweenGuests(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	lab.Require(t, "ping")
	g0, g1 := bridgedGuests(t, l)

	for _, c := range []struct {
		from *lab.Guest
		to   string
	}{{g0, "10.200.0.2"}, {g1, "10.200.0.1"}, {g0, "fd00:200::2"}, {g1, "fd00:200::1"}} {
		if err := c.from.Ping(c.to, 2, 5*time.Second); err != nil {
			t.Errorf("ping: %v", err)
		}
	}
	// Nobody has 10.200.0.99: Ping must report the failure.
	if err := g0.Ping("10.200.0.99", 1, time.Second); err == nil {
		t.Errorf("ping 10.200.0.99 from %s succeeded, want failure", g0.Name)
	}

	// TCP: echo server on guest 1, round trip from guest 0, over both
	// address families.
	for _, addr := range []string{"10.200.0.2:0", "[fd00:200::2]:0"} {
		echo, err := g1.TCPEcho(addr)
		if err != nil {
			t.Fatal(err)
		}
		payload := []byte("tcp round trip via " + echo.String())
		got, err := g0.TCPRoundTrip(echo.String(), payload, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("tcp echo %s returned %q, want %q", echo, got, payload)
		}
		if err := g0.CanConnectTCP(echo.String(), 5*time.Second); err != nil {
			t.Errorf("CanConnectTCP(%s): %v", echo, err)
		}
	}
	// A port nobody listens on answers with a reset.
	if err := g0.CanConnectTCP("10.200.0.2:9", 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("CanConnectTCP to a closed port: got %v, want connection refused", err)
	}

	// UDP: echo server on guest 0, round trip from guest 1.
	uecho, err := g0.UDPEcho("10.200.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("udp round trip")
	got, err := g1.UDPRoundTrip(uecho.String(), payload, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("udp echo returned %q, want %q", got, payload)
	}

	// One-way UDP: the receiver sees the sender's real address.
	sock, err := g1.ListenUDP("10.200.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if err := g0.SendUDP(sock.LocalAddr().String(), []byte("one way")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := sock.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("udp on %s: %v", g1.Name, err)
	}
	if string(buf[:n]) != "one way" || !from.IP.Equal(net.ParseIP("10.200.0.1")) {
		t.Errorf("received %q from %v, want %q from 10.200.0.1", buf[:n], from, "one way")
	}
}

func mustCapture(t *testing.T, n *lab.Netns, iface string, m lab.Match) *lab.Capture {
	t.Helper()
	c, err := n.Capture(iface, m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustFrame(t *testing.T) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func waitOne(t *testing.T, c *lab.Capture) gopacket.Packet {
	t.Helper()
	ps, err := c.Wait(5*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

func wantType(t *testing.T, where string, p gopacket.Packet, want lab.PacketType) {
	t.Helper()
	if got, ok := lab.PacketTypeOf(p); !ok || got != want {
		t.Errorf("%s: packet type %v (recorded %v), want %v: %s", where, got, ok, want, lab.Describe(p))
	}
}

func TestPacketSpoofedFramesAreCaptured(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	g0, g1 := bridgedGuests(t, l)
	hv := l.Hypervisor()
	frame := mustFrame(t)

	fakeMAC := net.HardwareAddr{0x02, 0x00, 0x00, 0xde, 0xad, 0x01} // locally administered, nobody's
	fakeIP := net.ParseIP("10.200.0.66").To4()
	g1IP := net.ParseIP("10.200.0.2").To4()
	marker := []byte("netwarden-lab-" + l.ID + "-spoofed")

	// A forged UDP datagram from guest 0 to guest 1's real address and
	// MAC, claiming another MAC and IP as source.
	spoofed := lab.All(lab.MatchSrcMAC(fakeMAC), lab.MatchUDP(4001))
	atG1 := mustCapture(t, g1.Netns, g1.Iface, spoofed)
	atVnet0 := mustCapture(t, hv, g0.HostIface, spoofed)
	atVnet1 := mustCapture(t, hv, g1.HostIface, spoofed)
	nothing := mustCapture(t, g1.Netns, g1.Iface, lab.MatchUDP(4999))
	sock, err := g1.ListenUDP("10.200.0.2:4001")
	if err != nil {
		t.Fatal(err)
	}
	udp := frame(lab.UDPFrame(fakeMAC, g1.MAC, fakeIP, g1IP, 4000, 4001, marker))
	if err := g0.SendFrame(g0.Iface, udp); err != nil {
		t.Fatal(err)
	}

	p := waitOne(t, atG1)
	wantType(t, "guest 1 eth0", p, lab.PacketHost)
	ip4, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip4 == nil || u == nil || !ip4.SrcIP.Equal(fakeIP) || !ip4.DstIP.Equal(g1IP) || u.SrcPort != 4000 || !bytes.Equal(u.Payload, marker) {
		t.Errorf("guest 1 captured %s, want udp %v:4000 > %v:4001 with the marker", lab.Describe(p), fakeIP, g1IP)
	}
	// On the bridge: in through vnet0 (for another host's MAC), out of vnet1.
	wantType(t, "hypervisor "+g0.HostIface, waitOne(t, atVnet0), lab.PacketOtherHost)
	p = waitOne(t, atVnet1)
	wantType(t, "hypervisor "+g1.HostIface, p, lab.PacketOutgoing)
	if vnet1, err := hv.Interface(g1.HostIface); err != nil {
		t.Error(err)
	} else if p.Metadata().InterfaceIndex != vnet1.Index {
		t.Errorf("frame captured on %s has ifindex %d, want %d", g1.HostIface, p.Metadata().InterfaceIndex, vnet1.Index)
	}

	// Guest 1's kernel accepted the datagram: lengths and checksums are right.
	buf := make([]byte, 200)
	_ = sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := sock.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("forged datagram did not reach the socket on guest 1: %v", err)
	}
	if !bytes.Equal(buf[:n], marker) || !from.IP.Equal(fakeIP) || from.Port != 4000 {
		t.Errorf("socket on guest 1 got %q from %v, want the marker from %v:4000", buf[:n], from, fakeIP)
	}

	if err := nothing.ExpectNone(300 * time.Millisecond); err != nil {
		t.Errorf("predicate matching nothing: %v", err)
	}
	// ExpectNone must fail when a matching frame does arrive.
	if err := g0.SendFrame(g0.Iface, udp); err != nil {
		t.Fatal(err)
	}
	if err := atG1.ExpectNone(5 * time.Second); err == nil {
		t.Errorf("ExpectNone on %s returned nil although a matching frame was sent", atG1)
	}

	// ARP: a forged request for guest 1's address arrives as broadcast,
	// and guest 1's kernel answers it to the forged sender.
	arpIn := mustCapture(t, g1.Netns, g1.Iface, lab.All(lab.MatchARP(), lab.MatchSrcMAC(fakeMAC), lab.Incoming()))
	arpOut := mustCapture(t, g1.Netns, g1.Iface, lab.All(lab.MatchARPOp(layers.ARPReply), lab.MatchDstMAC(fakeMAC), lab.Outgoing()))
	if err := g0.SendFrame(g0.Iface, frame(lab.ARPFrame(layers.ARPRequest, fakeMAC, fakeIP, nil, g1IP))); err != nil {
		t.Fatal(err)
	}
	p = waitOne(t, arpIn)
	wantType(t, "arp request", p, lab.PacketBroadcast)
	if a, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP); a == nil || a.Operation != layers.ARPRequest ||
		!net.IP(a.SourceProtAddress).Equal(fakeIP) || !net.IP(a.DstProtAddress).Equal(g1IP) {
		t.Errorf("arp request captured as %s", lab.Describe(p))
	}
	p = waitOne(t, arpOut)
	if a, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP); a == nil || !bytes.Equal(a.SourceHwAddress, g1.MAC) ||
		!net.IP(a.SourceProtAddress).Equal(g1IP) || !net.IP(a.DstProtAddress).Equal(fakeIP) {
		t.Errorf("arp reply from guest 1 captured as %s", lab.Describe(p))
	}

	// A non-IP ethertype (IEEE local experimental 0x88b5) passes the
	// bridge unchanged.
	const experimental = layers.EthernetType(0x88b5)
	raw := mustCapture(t, g1.Netns, g1.Iface, lab.All(lab.MatchEtherType(experimental), lab.MatchSrcMAC(fakeMAC)))
	if err := g0.SendFrame(g0.Iface, frame(lab.RawFrame(fakeMAC, g1.MAC, experimental, marker))); err != nil {
		t.Fatal(err)
	}
	p = waitOne(t, raw)
	// Frame pads to the 60-byte Ethernet minimum, with zeros.
	if e, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); e == nil || len(p.Data()) != max(60, 14+len(marker)) ||
		!bytes.HasPrefix(e.Payload, marker) || len(bytes.Trim(e.Payload[len(marker):], "\x00")) != 0 {
		t.Errorf("ethertype %#04x frame captured as %s", uint16(experimental), lab.Describe(p))
	}
	if frames, matched := raw.Seen(); matched != 1 || frames < matched {
		t.Errorf("raw capture counted %d frames, %d matching; want exactly 1 matching", frames, matched)
	}
}

func TestPacketNeighborAdvertUpdatesCache(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	g0, g1 := bridgedGuests(t, l)
	fakeMAC := net.HardwareAddr{0x02, 0x00, 0x00, 0xde, 0xad, 0x02}
	target := net.ParseIP("fd00:200::66")

	// A stale entry with another address; a solicited, overriding
	// advertisement must replace it, which the kernel only does for a
	// well-formed NA (checksum, hop limit 255, option).
	g1.MustRun("ip", "-6", "neigh", "replace", target.String(), "lladdr", "02:00:00:00:00:99", "nud", "stale", "dev", g1.Iface)
	c := mustCapture(t, g1.Netns, g1.Iface, lab.All(lab.MatchICMPv6(layers.ICMPv6TypeNeighborAdvertisement), lab.MatchSrcMAC(fakeMAC)))
	na, err := lab.NeighborAdvertFrame(fakeMAC, target, g1.MAC, net.ParseIP("fd00:200::2"), target, lab.NASolicited|lab.NAOverride)
	if err != nil {
		t.Fatal(err)
	}
	if err := g0.SendFrame(g0.Iface, na); err != nil {
		t.Fatal(err)
	}
	p := waitOne(t, c)
	if a, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement); a == nil || !a.TargetAddress.Equal(target) {
		t.Errorf("captured %s, want a neighbour advertisement for %v", lab.Describe(p), target)
	}
	var out string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out = g1.MustRun("ip", "-6", "neigh", "show", target.String(), "dev", g1.Iface)
		if strings.Contains(out, fakeMAC.String()) {
			return
		}
	}
	t.Errorf("neighbour entry for %v on %s after the advertisement: %q, want lladdr %v", target, g1.Name, out, fakeMAC)
}

func TestPacketDHCPAndDNSFromDnsmasq(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	lab.Require(t, "busybox", "dnsmasq")
	g, g2 := l.AddGuest(), l.AddGuest()
	hv := l.Hypervisor()
	hv.AddBridge("br0", "10.201.0.1/24", g.HostIface, g2.HostIface)
	srv := l.StartDnsmasq(hv, lab.Dnsmasq{
		Interface: "br0",
		DHCPRange: "10.201.0.50,10.201.0.60,1h",
		Hosts:     map[string]string{"vm1.lab.test": "10.201.0.77"},
		// Names under lab.test that Hosts does not list are NXDOMAIN.
		// No ping check of an address before offering it: it would
		// delay each lease by 3 s.
		Extra: []string{"--local=/lab.test/", "--no-ping"},
	})
	gw := net.ParseIP("10.201.0.1").To4()

	start := time.Now()
	lease, err := g.DHCP(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lease %s from %v after %v", lease.CIDR(), lease.ServerID, time.Since(start).Round(time.Millisecond))
	ip4 := lease.IP.To4()
	subnet := &net.IPNet{IP: net.IPv4(10, 201, 0, 0), Mask: net.CIDRMask(24, 32)}
	if ip4 == nil || !subnet.Contains(ip4) || ip4[3] < 50 || ip4[3] > 60 {
		t.Errorf("leased %v, want an address in 10.201.0.50-60", lease.IP)
	}
	if lease.Prefix != 24 || !lease.ServerID.Equal(gw) || !lease.Router.Equal(gw) || lease.LeaseTime != time.Hour {
		t.Errorf("lease %+v: want /24, server and router %v, 1h", lease, gw)
	}
	if len(lease.DNS) == 0 || !lease.DNS[0].Equal(gw) {
		t.Errorf("lease offers DNS %v, want %v", lease.DNS, gw)
	}
	if out := g.MustRun("ip", "-4", "addr", "show", "dev", g.Iface); !strings.Contains(out, "inet "+lease.CIDR()+" ") {
		t.Errorf("%s not configured on %s:\n%s", lease.CIDR(), g.Iface, out)
	}
	if out := g.MustRun("ip", "-4", "route", "show", "default"); !strings.Contains(out, "via 10.201.0.1 dev "+g.Iface) {
		t.Errorf("default route on %s: %q, want via 10.201.0.1", g.Name, out)
	}

	// A second client asks for broadcast replies and sends a hostname,
	// which dnsmasq records and answers in DNS.
	start = time.Now()
	lease2, err := g2.DHCPWith(lab.DHCPOptions{Timeout: 15 * time.Second, Broadcast: true, Hostname: "vm2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lease %s from %v after %v", lease2.CIDR(), lease2.ServerID, time.Since(start).Round(time.Millisecond))
	if lease2.IP.Equal(lease.IP) || !subnet.Contains(lease2.IP) {
		t.Errorf("second lease %v: want another address in %v than %v", lease2.IP, subnet, lease.IP)
	}

	leases, err := os.ReadFile(srv.Leases)
	if err != nil {
		t.Fatal(err)
	}
	// dnsmasq lease line: expiry MAC IP hostname client-id.
	for _, want := range [][3]string{{g.MAC.String(), lease.IP.String(), "*"}, {g2.MAC.String(), lease2.IP.String(), "vm2"}} {
		found := false
		for _, line := range strings.Split(string(leases), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[1] == want[0] && f[2] == want[1] && f[3] == want[2] {
				found = true
			}
		}
		if !found {
			t.Errorf("dnsmasq lease file has no line for MAC %s, IP %s, hostname %s:\n%s", want[0], want[1], want[2], leases)
		}
	}
	if ips, err := g.LookupDNS("10.201.0.1", "vm2", layers.DNSTypeA, 3*time.Second); err != nil {
		t.Error(err)
	} else if len(ips) != 1 || !ips[0].Equal(lease2.IP) {
		t.Errorf("vm2 resolves to %v, want [%v]", ips, lease2.IP)
	}

	ips, err := g.LookupDNS("10.201.0.1", "vm1.lab.test", layers.DNSTypeA, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || !ips[0].Equal(net.ParseIP("10.201.0.77")) {
		t.Errorf("vm1.lab.test resolves to %v, want [10.201.0.77]", ips)
	}
	_, err = g.QueryDNS("10.201.0.1:53", "absent.lab.test", layers.DNSTypeA, 3*time.Second)
	var dnsErr *lab.DNSError
	if !errors.As(err, &dnsErr) || dnsErr.RCode != layers.DNSResponseCodeNXDomain {
		t.Errorf("absent.lab.test: got %v, want NXDOMAIN", err)
	}
}

func TestPacketCaptureCloseEndsWait(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	c := mustCapture(t, l.Hypervisor(), "lo", lab.MatchUDP(4999))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Wait(30*time.Second, 1)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "0 of 1") {
			t.Errorf("Wait after Close: %v, want an error reporting 0 of 1 packets", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked 5 s after Close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.ExpectNone(time.Second); err == nil {
		t.Error("ExpectNone on a closed capture returned nil")
	}
}

func TestPacketBuildersRejectBadInput(t *testing.T) {
	t.Parallel()
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	v4, v6 := net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")
	if _, err := lab.UDPFrame(mac, mac, v4, v6, 1, 2, nil); err == nil {
		t.Error("UDPFrame accepted an IPv4 source with an IPv6 destination")
	}
	if _, err := lab.ARPFrame(layers.ARPRequest, mac, v6, nil, v4); err == nil {
		t.Error("ARPFrame accepted an IPv6 address")
	}
	if _, err := lab.ARPFrame(7, mac, v4, nil, v4); err == nil {
		t.Error("ARPFrame accepted operation 7")
	}
	if _, err := lab.Frame(&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}, &layers.UDP{}); err == nil {
		t.Error("Frame accepted a UDP layer without an IP layer for its checksum")
	}
	// A well-formed frame decodes back to what was asked for.
	b, err := lab.UDPFrame(mac, lab.BroadcastMAC(), v6, net.ParseIP("fd00::2"), 1000, 2000, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	ip6, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip6 == nil || u == nil || !ip6.SrcIP.Equal(v6) || u.DstPort != 2000 || string(u.Payload) != "x" || u.Length != 9 {
		t.Errorf("UDPFrame over IPv6 decodes as %s", lab.Describe(p))
	}
}
