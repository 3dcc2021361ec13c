package xtables

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/tests/lab"
)

// udpFrame builds an Ethernet/IPv4/UDP frame carrying marker.
func udpFrame(t *testing.T, srcMAC net.HardwareAddr, dstMAC net.HardwareAddr, src, dst string, marker string) []byte {
	t.Helper()
	return udpFrameB(t, srcMAC, dstMAC, src, dst, marker)
}

// udpFrameB is udpFrame for any test or benchmark.
func udpFrameB(t testing.TB, srcMAC, dstMAC net.HardwareAddr, src, dst string, marker string) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(marker)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// twoGuests: g0 (10.77.9.10) and g1 (10.77.9.11) on bridge br0 in the
// hypervisor, a backend working there.
func twoGuests(t *testing.T) (*Backend, *lab.Netns, *lab.Guest, *lab.Guest) {
	t.Helper()
	l := lab.New(t)
	b, hv := hvBackend(t, l, FlavourDefault)
	g0, g1 := l.AddGuest(), l.AddGuest()
	hv.AddBridge("br0", "", g0.HostIface, g1.HostIface)
	g0.SetAddr("10.77.9.10/24")
	g1.SetAddr("10.77.9.11/24")
	peers.Store(b, g1)
	return b, hv, g0, g1
}

func cleanTraffic(t *testing.T, g *lab.Guest, ips ...string) *netfilter.PortState {
	reg := builtinFilters(t)
	return &netfilter.PortState{Mode: netfilter.Enforce, Rules: instantiate(t, reg, "clean-traffic", g.HostIface, g.MAC.String(), ipParam(ips...)...)}
}

// TestCleanTrafficPackets: clean-traffic on two ports; each guest's own
// traffic passes, a spoofed source IP or MAC from either is dropped.
func TestCleanTrafficPackets(t *testing.T) {
	requireKernel(t)
	b, _, g0, g1 := twoGuests(t)
	ctx := context.Background()
	st := &netfilter.State{Ports: map[string]*netfilter.PortState{
		g0.HostIface: cleanTraffic(t, g0, "10.77.9.10"),
		g1.HostIface: cleanTraffic(t, g1, "10.77.9.11"),
	}}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []struct {
		from, to *lab.Guest
		src, dst string
	}{{g0, g1, "10.77.9.10", "10.77.9.11"}, {g1, g0, "10.77.9.11", "10.77.9.10"}} {
		spoofMAC, _ := net.ParseMAC("52:54:00:99:99:99")
		for _, c := range []struct {
			what string
			mac  net.HardwareAddr
			src  string
			pass bool
		}{{"own", dir.from.MAC, dir.src, true}, {"spoofed IP", dir.from.MAC, "10.77.9.99", false}, {"spoofed MAC", spoofMAC, dir.src, false}} {
			marker := fmt.Sprintf("nw-%s-%s", dir.from.HostIface, strings.ReplaceAll(c.what, " ", "-"))
			capt, err := dir.to.Capture(dir.to.Iface, lab.MatchContains([]byte(marker)))
			if err != nil {
				t.Fatal(err)
			}
			frame := udpFrame(t, c.mac, dir.to.MAC, c.src, dir.dst, marker)
			for i := 0; i < 3; i++ {
				if err := dir.from.SendFrame(dir.from.Iface, frame); err != nil {
					t.Fatal(err)
				}
			}
			if c.pass {
				if _, err := capt.Wait(2*time.Second, 1); err != nil {
					t.Errorf("%s → %s %s: %v", dir.from.HostIface, dir.to.HostIface, c.what, err)
				}
			} else if err := capt.ExpectNone(500 * time.Millisecond); err != nil {
				t.Errorf("%s → %s %s passed: %v", dir.from.HostIface, dir.to.HostIface, c.what, err)
			}
			capt.Close()
		}
	}
}

// TestTCPStatematch: a tcp rule with connection tracking on g0 (accept
// TCP to port 80, drop all other IPv4): g1 connects to port 80 (the reply
// passes as ESTABLISHED), port 81 is dropped.
func TestTCPStatematch(t *testing.T) {
	requireKernel(t)
	b, _, g0, _ := twoGuests(t)
	ctx := context.Background()
	st := &netfilter.State{Ports: map[string]*netfilter.PortState{
		g0.HostIface: {Mode: netfilter.Enforce, Rules: tcpPortRules(g0.HostIface)},
	}}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"80", "81"} {
		if _, err := g0.ListenTCP("10.77.9.10:" + p); err != nil {
			t.Fatal(err)
		}
	}
	tc := func(g *lab.Guest, addr string) error { return g.CanConnectTCP(addr, 2*time.Second) }
	peer := guestPeer(t, b)
	if err := tc(peer, "10.77.9.10:80"); err != nil {
		t.Errorf("tcp to port 80: %v", err)
	}
	if err := tc(peer, "10.77.9.10:81"); err == nil {
		t.Error("tcp to port 81 passed")
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

var peers sync.Map

// guestPeer returns the second guest of twoGuests for b.
func guestPeer(t *testing.T, b *Backend) *lab.Guest {
	v, ok := peers.Load(b)
	if !ok {
		t.Fatal("no peer")
	}
	return v.(*lab.Guest)
}

// TestUpdateNeverUnfiltered: g0 floods spoofed frames while its
// clean-traffic binding is re-applied 50 times with changing rules (new
// chains each time); g1 never sees one, and g0's own frames pass after.
func TestUpdateNeverUnfiltered(t *testing.T) {
	requireKernel(t)
	b, _, g0, g1 := twoGuests(t)
	ctx := context.Background()
	states := []*netfilter.State{
		{Ports: map[string]*netfilter.PortState{g0.HostIface: cleanTraffic(t, g0, "10.77.9.10"), g1.HostIface: cleanTraffic(t, g1, "10.77.9.11")}},
		{Ports: map[string]*netfilter.PortState{g0.HostIface: cleanTraffic(t, g0, "10.77.9.10", "10.77.9.12"), g1.HostIface: cleanTraffic(t, g1, "10.77.9.11")}},
	}
	if err := b.Apply(ctx, states[0]); err != nil {
		t.Fatal(err)
	}
	capt, err := g1.Capture(g1.Iface, lab.MatchContains([]byte("nw-spoof")))
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Close()
	frame := udpFrame(t, g0.MAC, g1.MAC, "10.77.9.99", "10.77.9.11", "nw-spoof")
	done := make(chan int)
	go func() {
		n, _ := g0.Flood(g0.Iface, frame, 3*time.Second)
		done <- n
	}()
	start := time.Now()
	for i := 0; i < 50; i++ {
		if err := b.Apply(ctx, states[(i+1)%2]); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	sent := <-done
	if err := capt.ExpectNone(200 * time.Millisecond); err != nil {
		t.Fatalf("a spoofed frame passed during the updates: %v", err)
	}
	if sent < 1000 {
		t.Fatalf("flood sent only %d frames", sent)
	}
	t.Logf("50 updates in %v while %d spoofed frames were sent; none passed", elapsed, sent)
}

// TestNetworkNAT: a nat network masquerades the guest's traffic to the
// upstream LAN, and upstream cannot open connections to the guest.
func TestNetworkNAT(t *testing.T) {
	requireKernel(t)
	l := lab.New(t)
	b, hv := hvBackend(t, l, FlavourDefault)
	g, up := l.AddGuest(), l.Upstream()
	hv.AddBridge("nwbr0", "10.77.5.1/24", g.HostIface)
	g.SetAddr("10.77.5.10/24")
	g.MustRun("ip", "route", "add", "default", "via", "10.77.5.1")
	up.MustRun("ip", "route", "add", "10.77.5.0/24", "via", up.HostAddr.String())
	hv.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	n, err := network.Parse([]byte(`<network><name>labnat</name><forward mode='nat'/><bridge name='nwbr0'/>
<ip address='10.77.5.1' netmask='255.255.255.0'/></network>`))
	if err != nil {
		t.Fatal(err)
	}
	nr, err := network.FirewallRules(n)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Apply(ctx, &netfilter.State{Networks: map[string]*netfilter.NetworkRules{nr.Network: nr}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ListenTCP("10.77.5.10:8080"); err != nil {
		t.Fatal(err)
	}
	c, err := up.ListenUDP(fmt.Sprintf("%s:%d", up.Addr, 7001))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var s *net.UDPConn
	if err := g.Do(func() error {
		var err error
		s, err = net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(10, 77, 5, 10), Port: 901}, &net.UDPAddr{IP: up.Addr, Port: 7001})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("netwarden")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	_, from, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("upstream received nothing: %v", err)
	}
	if from.IP.String() != up.HostAddr.String() || from.Port < 1024 {
		t.Errorf("upstream saw %s, want %s with a port ≥ 1024", from, up.HostAddr)
	}
	if err := up.CanConnectTCP("10.77.5.10:8080", 2*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("upstream → guest: %v, want connection refused", err)
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
