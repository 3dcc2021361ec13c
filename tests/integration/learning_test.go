package integration

import (
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/tests/lab"
)

// bindingProps reads a binding's Mode and LearnedAddresses.
func bindingProps(t *testing.T, n *netLab, port string) (mode string, learned []string) {
	t.Helper()
	var bp dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterBindingLookupByPortDev", []any{port}, &bp); err != nil {
		t.Fatalf("no binding for %s: %v", port, err)
	}
	o := n.conn.Object(dbusapi.BusName, bp)
	if err := o.StoreProperty(dbusapi.NWFilterBindingInterface+".Mode", &mode); err != nil {
		t.Fatal(err)
	}
	if err := o.StoreProperty(dbusapi.NWFilterBindingInterface+".LearnedAddresses", &learned); err != nil {
		t.Fatal(err)
	}
	return mode, learned
}

// waitLearned waits until the binding's learned addresses satisfy ok.
func waitLearned(t *testing.T, n *netLab, port string, d time.Duration, what string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		mode, learned := bindingProps(t, n, port)
		if ok(learned) {
			return learned
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: learned %v (mode %s) after %v\n%s", what, learned, mode, d, n.d.log(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var latencyRE = regexp.MustCompile(`learned addresses enforced.*port=(\S+).*latency=(\S+)`)

// latencies reports the learning-to-enforcement latencies in the log.
func latencies(t *testing.T, n *netLab) []string {
	var out []string
	for _, m := range latencyRE.FindAllStringSubmatch(n.d.log(t), -1) {
		out = append(out, m[1]+"="+m[2])
	}
	return out
}

// TestLearnDHCP: clean-traffic with CTRL_IP_LEARNING=dhcp and the
// network's dnsmasq as the trusted server. The guest leases and may use
// its address only; a rogue server's ACK teaches nothing; a short lease
// from the trusted server expires; a daemon restart keeps the lease.
func TestLearnDHCP(t *testing.T) {
	n := newNetLab(t)
	g, g2 := n.l.AddGuest(), n.l.AddGuest()
	path := n.start(t, natNetwork("learn", "nwbr7", "89", net.HardwareAddr{2, 0, 0, 0, 0, 2}))
	n.plug(t, path, g, "\n  <filterref filter='clean-traffic'><parameter name='CTRL_IP_LEARNING' value='dhcp'/>"+
		"<parameter name='DHCPSERVER' value='10.89.0.1'/></filterref>")
	n.plug(t, path, g2, "")
	if mode, learned := bindingProps(t, n, g.HostIface); mode != "learning" || len(learned) != 0 {
		t.Fatalf("before the lease: mode %s learned %v", mode, learned)
	}
	// While learning only DHCP and ARP pass: a hand-set address cannot ping.
	g.SetAddr("10.89.0.120/24")
	if err := g.Ping("10.89.0.1", 1, 2*time.Second); err == nil {
		t.Error("ping passed while learning")
	}
	g.MustRun("ip", "addr", "flush", "dev", g.Iface)

	lease, err := g.DHCP(20 * time.Second)
	if err != nil {
		t.Fatalf("dhcp through the learning rules: %v\n%s", err, n.d.log(t))
	}
	ip := lease.IP.String()
	waitLearned(t, n, g.HostIface, 5*time.Second, "lease", func(l []string) bool { return slices.Contains(l, ip) })
	t.Logf("learned %s; latency %v", ip, latencies(t, n))
	if err := g.Ping("10.89.0.1", 1, 3*time.Second); err != nil {
		t.Fatalf("leased address blocked: %v\n%s", err, n.l.Hypervisor().MustRun("nft", "list", "ruleset"))
	}
	// Another address: blocked.
	g.MustRun("ip", "addr", "flush", "dev", g.Iface)
	g.SetAddr("10.89.0.121/24")
	if err := g.Ping("10.89.0.1", 1, 2*time.Second); err == nil {
		t.Error("an address not leased passed")
	}
	g.MustRun("ip", "addr", "flush", "dev", g.Iface)
	g.SetAddr(lease.CIDR())

	// A rogue server (another guest) hands the guest another address.
	rogue := net.ParseIP("10.89.0.66")
	frame, err := lab.DHCPFrame(g2.MAC, g.MAC, rogue, net.ParseIP("10.89.0.77"), lab.DHCPMessage{Type: layers.DHCPMsgTypeAck,
		ClientMAC: g.MAC, YourIP: net.ParseIP("10.89.0.77"), Server: rogue, Lease: 3600, Mask: net.CIDRMask(24, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.SendFrame(g2.Iface, frame); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, learned := bindingProps(t, n, g.HostIface); slices.Contains(learned, "10.89.0.77") {
		t.Fatalf("rogue server's ACK learned: %v", learned)
	}

	// A short lease from the trusted server's address (a crafted ACK with
	// a 2 s lease) is learned, then expires without renewal.
	server := net.ParseIP("10.89.0.1")
	frame, err = lab.DHCPFrame(g2.MAC, g.MAC, server, net.ParseIP("10.89.0.78"), lab.DHCPMessage{Type: layers.DHCPMsgTypeAck,
		ClientMAC: g.MAC, YourIP: net.ParseIP("10.89.0.78"), Server: server, Lease: 2, Mask: net.CIDRMask(24, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.SendFrame(g2.Iface, frame); err != nil {
		t.Fatal(err)
	}
	waitLearned(t, n, g.HostIface, 3*time.Second, "short lease", func(l []string) bool { return slices.Contains(l, "10.89.0.78") })
	g.MustRun("ip", "addr", "add", "10.89.0.78/24", "dev", g.Iface)
	if out, err := g.Run("ping", "-c", "1", "-W", "1", "-I", "10.89.0.78", "10.89.0.1"); err != nil {
		t.Errorf("short lease not usable: %v %s", err, out)
	}
	waitLearned(t, n, g.HostIface, 5*time.Second, "expiry", func(l []string) bool { return !slices.Contains(l, "10.89.0.78") })
	if out, err := g.Run("ping", "-c", "1", "-W", "1", "-I", "10.89.0.78", "10.89.0.1"); err == nil {
		t.Errorf("expired lease still usable: %s", out)
	}
	g.MustRun("ip", "addr", "del", "10.89.0.78/24", "dev", g.Iface)

	// A restart keeps the lease in force.
	n.restart(t, false)
	if mode, learned := bindingProps(t, n, g.HostIface); mode != "enforce" || !slices.Contains(learned, ip) {
		t.Fatalf("after restart: mode %s learned %v\n%s", mode, learned, n.d.log(t))
	}
	if err := g.Ping("10.89.0.1", 1, 3*time.Second); err != nil {
		t.Fatalf("leased address blocked after restart: %v", err)
	}
}

// TestLearnAny: a guest configured by hand is locked to the address of
// its first packet; the time from that packet to enforcement is logged.
func TestLearnAny(t *testing.T) {
	n := newNetLab(t)
	g := n.l.AddGuest()
	path := n.start(t, natNetwork("learnany", "nwbr8", "90", net.HardwareAddr{2, 0, 0, 0, 0, 3}))
	n.plug(t, path, g, "\n  <filterref filter='clean-traffic'/>")
	g.SetAddr("10.90.0.5/24")
	start := time.Now()
	// The first packets (ARP for the gateway) teach the address.
	_ = g.Ping("10.90.0.1", 1, 300*time.Millisecond)
	waitLearned(t, n, g.HostIface, 5*time.Second, "first packet", func(l []string) bool { return slices.Equal(l, []string{"10.90.0.5"}) })
	t.Logf("learned after %v (poll included); daemon latency %v", time.Since(start), latencies(t, n))
	if err := g.Ping("10.90.0.1", 1, 3*time.Second); err != nil {
		t.Fatalf("learned address blocked: %v", err)
	}
	g.MustRun("ip", "addr", "flush", "dev", g.Iface)
	g.SetAddr("10.90.0.6/24")
	if err := g.Ping("10.90.0.1", 1, 2*time.Second); err == nil {
		t.Error("a second address passed after learning")
	}
	if _, learned := bindingProps(t, n, g.HostIface); !slices.Equal(learned, []string{"10.90.0.5"}) {
		t.Errorf("learned changed: %v", learned)
	}
}

// TestLearnIPv6: no-ipv6-spoofing with $IPV6 learned (mode any) from the
// guest's first global packet; another source is dropped afterwards.
func TestLearnIPv6(t *testing.T) {
	n := newNetLab(t)
	g := n.l.AddGuest()
	xml := strings.Replace(natNetwork("learn6", "nwbr9", "91", net.HardwareAddr{2, 0, 0, 0, 0, 4}),
		"</network>", "  <ip family='ipv6' address='fd00:91::1' prefix='64'/>\n</network>", 1)
	path := n.start(t, xml)
	n.plug(t, path, g, "\n  <filterref filter='no-ipv6-spoofing'/>")
	if mode, _ := bindingProps(t, n, g.HostIface); mode != "learning" {
		t.Fatalf("mode %s", mode)
	}
	g.MustRun("ip", "-6", "addr", "add", "fd00:91::5/64", "dev", g.Iface, "nodad")
	_, _ = g.Run("ping", "-6", "-c", "1", "-W", "1", "fd00:91::1")
	waitLearned(t, n, g.HostIface, 5*time.Second, "ipv6", func(l []string) bool { return slices.Equal(l, []string{"fd00:91::5"}) })
	// Several echo requests if need be: the neighbour entry of the host
	// may still be resolving after the blocked attempt while learning.
	if err := g.Ping("fd00:91::1", 1, 5*time.Second); err != nil {
		t.Fatalf("learned IPv6 address blocked: %v", err)
	}
	g.MustRun("ip", "-6", "addr", "add", "fd00:91::6/64", "dev", g.Iface, "nodad")
	if out, err := g.Run("ping", "-6", "-c", "1", "-W", "1", "-I", "fd00:91::6", "fd00:91::1"); err == nil {
		t.Errorf("spoofed IPv6 source passed: %s", out)
	}
	t.Log("ipv6 latency", latencies(t, n))
}
