package nftables

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/tests/lab"
)

// TestNetworkPackets proves the networks' rules with traffic in a lab: a
// hypervisor namespace with bridge nwbr0 (10.77.5.1/24), a guest behind
// vnet0 on it (10.77.5.10), and the upstream LAN (203.0.113.0/24, the
// hypervisor at .2, upstream at .1) on another link. Forwarding is on in
// the hypervisor namespace only. Each mode's network is applied in turn
// (each Apply replaces the networks table) and checked:
//
//   - the guest reaches the host (ping to the bridge address: libvirt
//     blocks no input, its INP rules only accept);
//   - guest → upstream (UDP): nat is seen from the hypervisor's upstream
//     address and a port in 1024-65535, route from the guest's own
//     address, isolated is rejected (TCP: connection refused);
//   - upstream → guest (TCP, new connection): refused for nat (only
//     replies enter) and isolated, established for route.
func TestNetworkPackets(t *testing.T) {
	requireKernel(t)
	l := lab.New(t)
	hv, g, up := l.Hypervisor(), l.AddGuest(), l.Upstream()
	hv.AddBridge("nwbr0", "10.77.5.1/24", g.HostIface)
	g.SetAddr("10.77.5.10/24")
	g.MustRun("ip", "route", "add", "default", "via", "10.77.5.1")
	up.MustRun("ip", "route", "add", "10.77.5.0/24", "via", up.HostAddr.String())
	hv.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	h, err := netns.GetFromName(hv.Name)
	if err != nil {
		t.Fatalf("open %s: %v", hv.Name, err)
	}
	t.Cleanup(func() { h.Close() })
	ctx := context.Background()
	b := New(Config{NetNS: int(h)})
	t.Cleanup(func() { _ = b.Remove(ctx) })

	// Servers: the guest's TCP listener (for connections from upstream)
	// and upstream's (for the isolated case).
	if _, err := g.ListenTCP("10.77.5.10:8080"); err != nil {
		t.Fatal(err)
	}
	if _, err := up.ListenTCP("203.0.113.1:9000"); err != nil {
		t.Fatal(err)
	}
	const sub = "10.77.5.0/24"
	for i, tc := range []struct {
		mode     string
		net      *netfilter.NetworkRules
		src      string // source upstream sees; "" rejected
		fromUpOK bool   // upstream can open a connection to the guest
	}{
		{"nat", natNetwork("lab nat", "nwbr0", sub, "", netfilter.NATRange{}), up.HostAddr.String(), false},
		{"route", routeNetwork("lab route", "nwbr0", sub), "10.77.5.10", true},
		{"isolated", isolatedNetwork("lab isolated", "nwbr0"), "", false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			st := &netfilter.State{Networks: map[string]*netfilter.NetworkRules{tc.net.Network: tc.net}}
			if err := b.Apply(ctx, st); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if err := g.Ping("10.77.5.1", 2, 3*time.Second); err != nil {
				t.Errorf("guest → host: %v", err)
			}
			if tc.src == "" {
				if err := g.Ping(up.Addr.String(), 1, time.Second); err == nil {
					t.Error("guest → upstream ping passed")
				}
				err := g.CanConnectTCP("203.0.113.1:9000", 3*time.Second)
				if err == nil || !strings.Contains(err.Error(), "connection refused") {
					t.Errorf("guest → upstream TCP: %v, want connection refused (rejected)", err)
				}
			} else {
				if err := g.Ping(up.Addr.String(), 2, 3*time.Second); err != nil {
					t.Errorf("guest → upstream: %v", err)
				}
				src := udpSourceSeen(t, g, up, 7000+i)
				if src.IP.String() != tc.src {
					t.Errorf("upstream saw the guest's datagram from %s, want %s", src, tc.src)
				}
				if tc.mode == "nat" && src.Port < 1024 {
					t.Errorf("masqueraded source port %d outside 1024-65535", src.Port)
				}
			}
			err := up.CanConnectTCP("10.77.5.10:8080", 3*time.Second)
			switch {
			case tc.fromUpOK && err != nil:
				t.Errorf("upstream → guest: %v", err)
			case !tc.fromUpOK && (err == nil || !strings.Contains(err.Error(), "connection refused")):
				t.Errorf("upstream → guest: %v, want connection refused (rejected)", err)
			}
		})
	}
}

// udpSourceSeen sends a datagram from the guest to an upstream socket on
// port and returns the source address upstream receives it from. It
// binds the guest's source port to a low one (port-100), so a
// masquerade to 1024-65535 must change it.
func udpSourceSeen(t *testing.T, g *lab.Guest, up *lab.Upstream, port int) *net.UDPAddr {
	t.Helper()
	c, err := up.ListenUDP(fmt.Sprintf("%s:%d", up.Addr, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var s *net.UDPConn
	err = g.Do(func() error {
		var err error
		s, err = net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(10, 77, 5, 10), Port: port - 100},
			&net.UDPAddr{IP: up.Addr, Port: port})
		return err
	})
	if err != nil {
		t.Fatalf("guest udp socket: %v", err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("netwarden")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	_, from, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("upstream received nothing from the guest: %v", err)
	}
	return from
}
