package integration

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/tests/lab"
)

// dualNetwork is a nat network with an IPv4 and an IPv6 <ip>, each with
// a DHCP range.
func dualNetwork(name, bridge, sub string) string {
	return fmt.Sprintf(`<network>
  <name>%s</name>
  <forward mode='nat'/>
  <bridge name='%s' stp='on' delay='0'/>
  <ip address='10.%s.0.1' prefix='24'>
    <dhcp><range start='10.%s.0.100' end='10.%s.0.150'/></dhcp>
  </ip>
  <ip family='ipv6' address='fd00:%s::1' prefix='64'>
    <dhcp><range start='fd00:%s::100' end='fd00:%s::1ff'/></dhcp>
  </ip>
</network>`, name, bridge, sub, sub, sub, sub, sub, sub)
}

// defineFilter defines a filter through the API.
func defineFilter(t *testing.T, n *netLab, xml string) {
	t.Helper()
	var p dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterDefineXML", []any{xml}, &p); err != nil {
		t.Fatalf("define filter: %v", err)
	}
}

// TestLearnPerFamily: a filter using $IP (no-ip-spoofing) and $IPV6
// (no-ipv6-spoofing) with CTRL_IP_LEARNING=any. An IPv4-only guest is
// enforced on IPv4 after its first packet — its own address passes,
// another is dropped — while IPv6 stays with the learning rules; its
// first global IPv6 packet completes the filter.
func TestLearnPerFamily(t *testing.T) {
	n := newNetLab(t)
	g := n.l.AddGuest()
	path := n.start(t, dualNetwork("perfamily", "nwbr10", "94"))
	defineFilter(t, n, `<filter name='ip-and-ipv6' chain='root'>
  <filterref filter='no-mac-spoofing'/>
  <filterref filter='no-ip-spoofing'/>
  <filterref filter='no-ipv6-spoofing'/>
</filter>`)
	n.plug(t, path, g, "\n  <filterref filter='ip-and-ipv6'><parameter name='CTRL_IP_LEARNING' value='any'/></filterref>")
	if mode, learned := bindingProps(t, n, g.HostIface); mode != "learning" || len(learned) != 0 {
		t.Fatalf("before: mode %s learned %v", mode, learned)
	}
	g.SetAddr("10.94.0.5/24")
	_ = g.Ping("10.94.0.1", 1, 300*time.Millisecond)
	waitLearned(t, n, g.HostIface, 5*time.Second, "IPv4", func(l []string) bool { return slices.Equal(l, []string{"10.94.0.5"}) })
	if mode, _ := bindingProps(t, n, g.HostIface); mode != "learning" {
		t.Errorf("mode with IPv6 still to learn: %s", mode)
	}
	if err := g.Ping("10.94.0.1", 1, 3*time.Second); err != nil {
		t.Fatalf("learned IPv4 address blocked while IPv6 is learning: %v\n%s", err, n.l.Hypervisor().MustRun("nft", "list", "ruleset"))
	}
	g.MustRun("ip", "addr", "add", "10.94.0.6/24", "dev", g.Iface)
	if out, err := g.Run("ping", "-c", "1", "-W", "1", "-I", "10.94.0.6", "10.94.0.1"); err == nil {
		t.Errorf("another IPv4 address passed: %s", out)
	}
	if _, learned := bindingProps(t, n, g.HostIface); !slices.Equal(learned, []string{"10.94.0.5"}) {
		t.Errorf("learned changed: %v", learned)
	}
	t.Logf("IPv4 enforced, IPv6 learning; latency %v", latencies(t, n))

	// IPv6: its first global packet completes the filter.
	g.MustRun("ip", "-6", "addr", "add", "fd00:94::5/64", "dev", g.Iface, "nodad")
	_, _ = g.Run("ping", "-6", "-c", "1", "-W", "1", "fd00:94::1")
	waitLearned(t, n, g.HostIface, 5*time.Second, "IPv6", func(l []string) bool { return slices.Equal(l, []string{"10.94.0.5", "fd00:94::5"}) })
	if mode, _ := bindingProps(t, n, g.HostIface); mode != "enforce" {
		t.Errorf("mode with both learned: %s", mode)
	}
	if out, err := g.Run("ping", "-6", "-c", "1", "-W", "2", "fd00:94::1"); err != nil {
		t.Fatalf("learned IPv6 address blocked: %v %s", err, out)
	}
	if err := g.Ping("10.94.0.1", 1, 3*time.Second); err != nil {
		t.Errorf("IPv4 blocked once complete: %v", err)
	}
	g.MustRun("ip", "-6", "addr", "add", "fd00:94::6/64", "dev", g.Iface, "nodad")
	if out, err := g.Run("ping", "-6", "-c", "1", "-W", "1", "-I", "fd00:94::6", "fd00:94::1"); err == nil {
		t.Errorf("spoofed IPv6 source passed: %s", out)
	}
}

// TestLearnDHCPv6: no-ipv6-spoofing with CTRL_IP_LEARNING=dhcp and
// DHCPSERVERV6 = the bridge's link-local address (dnsmasq answers DHCPv6
// from it, and the learner trusts a reply by its source address). The
// guest's leased address is learned and is the only one that passes.
func TestLearnDHCPv6(t *testing.T) {
	n := newNetLab(t)
	g, other := n.l.AddGuest(), n.l.AddGuest()
	path := n.start(t, dualNetwork("learn6dhcp", "nwbr11", "95"))
	// A bridge without ports has no carrier, hence no link-local address
	// yet: another guest's port first.
	n.plug(t, path, other, "")
	ll := n.bridgeLinkLocal(t, "nwbr11")
	n.plug(t, path, g, "\n  <filterref filter='no-ipv6-spoofing'><parameter name='CTRL_IP_LEARNING' value='dhcp'/>"+
		"<parameter name='DHCPSERVERV6' value='"+ll.String()+"'/></filterref>")
	if mode, _ := bindingProps(t, n, g.HostIface); mode != "learning" {
		t.Fatalf("mode %s", mode)
	}
	// Router advertisements pass the learning rules.
	route := waitDefaultRoute6(t, g)
	if !strings.Contains(route, ll.String()) {
		t.Errorf("default route %q not via %s", route, ll)
	}
	lease, err := g.DHCPv6(15 * time.Second)
	if err != nil {
		t.Fatalf("DHCPv6 through the learning rules: %v\n%s", err, n.d.log(t))
	}
	ip := lease.IP.String()
	waitLearned(t, n, g.HostIface, 5*time.Second, "DHCPv6 lease", func(l []string) bool { return slices.Contains(l, ip) })
	t.Logf("learned %s from %s; latency %v", ip, ll, latencies(t, n))
	if mode, _ := bindingProps(t, n, g.HostIface); mode != "enforce" {
		t.Errorf("mode %s", mode)
	}
	if err := g.Ping("fd00:95::1", 1, 3*time.Second); err != nil {
		t.Fatalf("leased IPv6 address blocked: %v\n%s", err, n.l.Hypervisor().MustRun("nft", "list", "ruleset"))
	}
	g.MustRun("ip", "-6", "addr", "add", "fd00:95::77/64", "dev", g.Iface, "nodad")
	if out, err := g.Run("ping", "-6", "-c", "1", "-W", "1", "-I", "fd00:95::77", "fd00:95::1"); err == nil {
		t.Errorf("an address not leased passed: %s", out)
	}
}

// enforcedRE reads one "learned addresses enforced" log line.
var enforcedRE = regexp.MustCompile(`time=(\S+) .*learned addresses enforced.*port=(\S+).*latency=(\S+) queued=(\S+) lock=(\S+) store=(\S+) instantiate=(\S+) apply=(\S+)`)

type enforcement struct {
	at                                         time.Time
	latency, queued, store, instantiate, apply time.Duration
}

func enforcements(t *testing.T, n *netLab, port string) []enforcement {
	var out []enforcement
	for _, m := range enforcedRE.FindAllStringSubmatch(n.d.log(t), -1) {
		if m[2] != port {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatal(err)
		}
		d := func(s string) time.Duration {
			v, err := time.ParseDuration(s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		out = append(out, enforcement{at: at, latency: d(m[3]), queued: d(m[4]), store: d(m[6]), instantiate: d(m[7]), apply: d(m[8])})
	}
	return out
}

// measure sends frame() with s, waits for the daemon's next enforcement
// on port and returns it with the time from the send to the log line
// (the log has millisecond precision).
func measure(t *testing.T, n *netLab, port string, s *lab.Sender, frame []byte) (enforcement, time.Duration) {
	t.Helper()
	before := len(enforcements(t, n, port))
	sent := time.Now()
	if err := s.Send(frame); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if es := enforcements(t, n, port); len(es) > before {
			return es[before], es[before].at.Sub(sent)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no enforcement within 5 s\n%s", n.d.log(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestLearnLatency measures, 11 times each for any (IPv4), any (IPv6)
// and dhcp, the time from the guest's learning frame to its
// enforcement: the daemon's own figure (from the frame's capture to the
// Apply's return, with where it went) and from the send to the log line.
// It fails when the median exceeds 50 ms.
func TestLearnLatency(t *testing.T) {
	n := newNetLab(t)
	g, srv := n.l.AddGuest(), n.l.AddGuest()
	path := n.start(t, dualNetwork("latency", "nwbr12", "96"))
	n.plug(t, path, g, "")
	n.plug(t, path, srv, "")
	gs, err := g.Sender(g.Iface)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := srv.Sender(srv.Iface)
	if err != nil {
		t.Fatal(err)
	}
	create := func(filter string, params ...[2]string) dbus.ObjectPath {
		var p dbus.ObjectPath
		if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterBindingCreateXML",
			[]any{testBindingXML(g.HostIface, g.MAC, filter, params...), uint32(0)}, &p); err != nil {
			t.Fatalf("create binding: %v", err)
		}
		return p
	}
	remove := func(p dbus.ObjectPath) {
		if err := call(n.conn, p, dbusapi.NWFilterBindingInterface+".Delete", nil); err != nil {
			t.Fatalf("delete binding: %v", err)
		}
	}
	const runs = 11
	report := func(what string, es []enforcement, wall []time.Duration) time.Duration {
		var lat, q, st, in, ap []time.Duration
		for _, e := range es {
			lat, q, st, in, ap = append(lat, e.latency), append(q, e.queued), append(st, e.store), append(in, e.instantiate), append(ap, e.apply)
		}
		slices.Sort(lat)
		t.Logf("%-9s median %v (min %v, max %v); send→log median %v; median queued %v store %v instantiate %v apply %v",
			what, median(lat), lat[0], lat[len(lat)-1], median(wall), median(q), median(st), median(in), median(ap))
		return median(lat)
	}
	var worst time.Duration

	// any, IPv4: a new binding each run, one UDP datagram from a new address.
	var es []enforcement
	var wall []time.Duration
	gw4, gw6 := net.ParseIP("10.96.0.1"), net.ParseIP("fd00:96::1")
	for i := 0; i < runs; i++ {
		p := create("clean-traffic")
		frame, err := lab.UDPFrame(g.MAC, lab.BroadcastMAC(), net.ParseIP(fmt.Sprintf("10.96.0.%d", 10+i)), gw4, 4000, 4000, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		e, w := measure(t, n, g.HostIface, gs, frame)
		es, wall = append(es, e), append(wall, w)
		remove(p)
	}
	worst = max(worst, report("any/IPv4", es, wall))

	// any, IPv6.
	es, wall = nil, nil
	for i := 0; i < runs; i++ {
		p := create("no-ipv6-spoofing")
		frame, err := lab.UDPFrame(g.MAC, lab.BroadcastMAC(), net.ParseIP(fmt.Sprintf("fd00:96::%x", 0x10+i)), gw6, 4000, 4000, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		e, w := measure(t, n, g.HostIface, gs, frame)
		es, wall = append(es, e), append(wall, w)
		remove(p)
	}
	worst = max(worst, report("any/IPv6", es, wall))

	// dhcp: ACKs from the trusted server's address for new leases.
	es, wall = nil, nil
	p := create("clean-traffic", [2]string{"CTRL_IP_LEARNING", "dhcp"}, [2]string{"DHCPSERVER", "10.96.0.1"})
	for i := 0; i < runs; i++ {
		yours := net.ParseIP(fmt.Sprintf("10.96.0.%d", 50+i))
		frame, err := lab.DHCPFrame(srv.MAC, g.MAC, gw4, yours, lab.DHCPMessage{Type: layers.DHCPMsgTypeAck,
			ClientMAC: g.MAC, YourIP: yours, Server: gw4, Lease: 3600, Mask: net.CIDRMask(24, 32)})
		if err != nil {
			t.Fatal(err)
		}
		e, w := measure(t, n, g.HostIface, ss, frame)
		es, wall = append(es, e), append(wall, w)
	}
	worst = max(worst, report("dhcp/IPv4", es, wall))
	remove(p)
	if worst > 50*time.Millisecond {
		t.Errorf("median latency %v exceeds 50 ms", worst)
	}
}
