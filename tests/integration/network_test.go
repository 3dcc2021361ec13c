package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/tests/lab"
)

const (
	networkIface = "org.netwarden1.Network"
	portIface    = "org.netwarden1.NetworkPort"
)

// netLab is a lab with an upstream LAN and netwardend managing networks
// on the lab bus (without polkitd: root manages).
type netLab struct {
	l    *lab.Lab
	conn *dbus.Conn
	d    *daemon
	up   *lab.Upstream
}

func newNetLab(t *testing.T) *netLab {
	t.Helper()
	l := lab.New(t)
	n := &netLab{l: l}
	n.conn = l.BusWithoutSystemServices().Conn()
	n.up = l.Upstream()
	n.d = startDaemon(t, l, "netwardend", nil)
	n.d.waitOwned(t, n.conn)
	n.d.waitReady(t)
	return n
}

// restart kills the daemon (SIGKILL when hard) and starts another.
func (n *netLab) restart(t *testing.T, hard bool) {
	t.Helper()
	if hard {
		if err := n.d.Kill(); err != nil {
			t.Fatal(err)
		}
	} else if err := n.d.Stop(); err != nil {
		t.Fatal(err)
	}
	n.d = startDaemon(t, n.l, fmt.Sprintf("netwardend-%d", time.Now().UnixNano()), nil)
	n.d.waitOwned(t, n.conn)
	n.d.waitReady(t)
}

// define defines a network and returns its object.
func (n *netLab) define(t *testing.T, xml string) dbus.ObjectPath {
	t.Helper()
	var path dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkDefineXML", []any{xml}, &path); err != nil {
		t.Fatalf("NetworkDefineXML: %v", err)
	}
	return path
}

// start defines and starts a network.
func (n *netLab) start(t *testing.T, xml string) dbus.ObjectPath {
	t.Helper()
	path := n.define(t, xml)
	if err := call(n.conn, path, networkIface+".Create", nil); err != nil {
		t.Fatalf("Create: %v\n%s", err, n.d.log(t))
	}
	return path
}

// plug creates a port on the network for guest g, adopting its veth.
func (n *netLab) plug(t *testing.T, network dbus.ObjectPath, g *lab.Guest, extra string) dbus.ObjectPath {
	t.Helper()
	var bridge string
	if err := n.conn.Object(dbusapi.BusName, network).StoreProperty(networkIface+".Bridge", &bridge); err != nil {
		t.Fatal(err)
	}
	var path dbus.ObjectPath
	if err := call(n.conn, network, networkIface+".PortCreateXML", []any{portXML(g, bridge, extra), uint32(0)}, &path); err != nil {
		t.Fatalf("PortCreateXML: %v\n%s", err, n.d.log(t))
	}
	n.waitForwarding(t, g.HostIface)
	return path
}

// waitForwarding waits until the bridge forwards through port dev: with
// STP on (libvirt's default network has it) a new port listens and learns
// for twice the kernel's minimum forward delay first, as a VM's does.
func (n *netLab) waitForwarding(t *testing.T, dev string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		state, err := n.l.Hypervisor().Run("cat", "/sys/class/net/"+dev+"/brport/state")
		if err == nil && strings.TrimSpace(state) == "3" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s not forwarding after %v (state %q, %v)", dev, timeout, state, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func portXML(g *lab.Guest, bridge, extra string) string {
	return fmt.Sprintf(`<networkport>
  <owner><name>guest%d</name><uuid>6d2f1a52-0c1e-4b8e-9d3a-0000000000%02d</uuid></owner>
  <mac address='%s'/>
  <plug type='network' bridge='%s' dev='%s'/>%s
</networkport>`, g.Index, g.Index, g.MAC, bridge, g.HostIface, extra)
}

// natNetwork is libvirt's default network, on a lab subnet, with a DNS
// host record and a static DHCP host.
func natNetwork(name, bridge, third string, staticMAC net.HardwareAddr) string {
	return fmt.Sprintf(`<network>
  <name>%s</name>
  <forward mode='nat'/>
  <bridge name='%s' stp='on' delay='0'/>
  <domain name='%s.test'/>
  <dns>
    <host ip='10.%s.0.200'><hostname>printer</hostname></host>
  </dns>
  <ip address='10.%s.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.%s.0.100' end='10.%s.0.150'/>
      <host mac='%s' name='fixed' ip='10.%s.0.42'/>
    </dhcp>
  </ip>
</network>`, name, bridge, name, third, third, third, third, staticMAC, third)
}

// TestNetworkNAT: a guest on a nat network leases an address, resolves
// names, reaches the upstream LAN masqueraded, and gets replies; the
// lease shows in the API; a static host gets its fixed address.
func TestNetworkNAT(t *testing.T) {
	n := newNetLab(t)
	g0, g1 := n.l.AddGuest(), n.l.AddGuest()
	net0 := n.start(t, natNetwork("default", "nwbr0", "80", g1.MAC))
	n.plug(t, net0, g0, "")
	n.plug(t, net0, g1, "")

	lease, err := g0.DHCPWith(lab.DHCPOptions{Hostname: "alpha", Timeout: 15 * time.Second})
	if err != nil {
		t.Fatalf("guest 0 DHCP: %v\n%s", err, n.d.log(t))
	}
	if !inRange(lease.IP, "10.80.0.100", "10.80.0.150") || lease.Prefix != 24 {
		t.Errorf("guest 0 leased %s/%d, want an address in 10.80.0.100-150/24", lease.IP, lease.Prefix)
	}
	fixed, err := g1.DHCPWith(lab.DHCPOptions{Hostname: "beta", Timeout: 15 * time.Second})
	if err != nil {
		t.Fatalf("guest 1 DHCP: %v", err)
	}
	if !fixed.IP.Equal(net.ParseIP("10.80.0.42")) {
		t.Errorf("static host leased %s, want 10.80.0.42", fixed.IP)
	}

	// DNS: a <dns><host> record, and the other guest's DHCP hostname.
	for name, want := range map[string]string{"printer": "10.80.0.200", "alpha.default.test": lease.IP.String(), "fixed": "10.80.0.42"} {
		ips, err := g1.LookupDNS("10.80.0.1", name, layers.DNSTypeA, 3*time.Second)
		if err != nil || len(ips) == 0 || ips[0].String() != want {
			t.Errorf("resolve %s: %v %v, want %s", name, ips, err, want)
		}
	}

	// Upstream sees the hypervisor's address, and answers come back.
	c, err := n.up.Capture(n.up.Iface, lab.MatchICMPv4(8))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := g0.Ping(n.up.Addr.String(), 2, 5*time.Second); err != nil {
		t.Fatalf("guest cannot reach upstream through NAT: %v", err)
	}
	pkts, err := c.Wait(3*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	if src := pkts[0].Layer(layers.LayerTypeIPv4).(*layers.IPv4).SrcIP; !src.Equal(n.up.HostAddr) {
		t.Errorf("upstream saw source %s, want the masqueraded %s", src, n.up.HostAddr)
	}
	// Guests reach each other.
	if err := g0.Ping("10.80.0.42", 1, 3*time.Second); err != nil {
		t.Errorf("guest to guest: %v", err)
	}
	// A connection from upstream into the NAT network is refused.
	n.up.MustRun("ip", "route", "replace", "10.80.0.0/24", "via", n.up.HostAddr.String())
	if err := n.up.Ping(lease.IP.String(), 1, 2*time.Second); err == nil {
		t.Error("upstream reached a guest behind NAT")
	}

	// The API shows both leases.
	var leases []leaseRow
	if err := call(n.conn, net0, networkIface+".GetDHCPLeases", []any{"", uint32(0)}, &leases); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range leases {
		got[l.MAC] = l.IP + "/" + fmt.Sprint(l.Prefix) + " " + l.Hostname + " " + l.Iface
	}
	if got[g0.MAC.String()] != lease.IP.String()+"/24 alpha nwbr0" || got[g1.MAC.String()] != "10.80.0.42/24 fixed nwbr0" {
		t.Errorf("leases = %v", got)
	}
}

// leaseRow is one lease as GetDHCPLeases returns it (sxisssuss).
type leaseRow struct {
	Iface    string
	Expiry   int64
	Type     int32
	MAC      string
	IAID     string
	IP       string
	Prefix   uint32
	Hostname string
	ClientID string
}

func inRange(ip net.IP, lo, hi string) bool {
	v := ip.To4()
	l, h := net.ParseIP(lo).To4(), net.ParseIP(hi).To4()
	return v != nil && string(v) >= string(l) && string(v) <= string(h)
}

// TestNetworkModes: route (upstream sees the guest's own address and can
// reach it), isolated (nothing beyond the bridge) and open (no rules).
func TestNetworkModes(t *testing.T) {
	n := newNetLab(t)
	g0, g1, g2 := n.l.AddGuest(), n.l.AddGuest(), n.l.AddGuest()
	routed := n.start(t, `<network><name>routed</name><forward mode='route'/><bridge name='nwbr1'/>
  <ip address='10.81.0.1' prefix='24'><dhcp><range start='10.81.0.10' end='10.81.0.20'/></dhcp></ip></network>`)
	isolated := n.start(t, `<network><name>isolated</name><bridge name='nwbr2'/>
  <dns><host ip='10.82.0.5'><hostname>iso-host</hostname></host></dns>
  <ip address='10.82.0.1' prefix='24'><dhcp><range start='10.82.0.10' end='10.82.0.20'/></dhcp></ip></network>`)
	n.start(t, `<network><name>open</name><forward mode='open'/><bridge name='nwbr3'/>
  <ip address='10.83.0.1' prefix='24'/></network>`)
	n.plug(t, routed, g0, "")
	n.plug(t, isolated, g1, "")
	_ = g2

	l0, err := g0.DHCP(15 * time.Second)
	if err != nil {
		t.Fatalf("routed guest DHCP: %v\n%s", err, n.d.log(t))
	}
	c, err := n.up.Capture(n.up.Iface, lab.MatchICMPv4(8))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := g0.Ping(n.up.Addr.String(), 1, 5*time.Second); err == nil {
		t.Error("routed guest got a reply although upstream has no route back")
	}
	pkts, err := c.Wait(3*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	if src := pkts[0].Layer(layers.LayerTypeIPv4).(*layers.IPv4).SrcIP; !src.Equal(l0.IP) {
		t.Errorf("upstream saw %s, want the guest's own %s", src, l0.IP)
	}
	n.up.MustRun("ip", "route", "replace", "10.81.0.0/24", "via", n.up.HostAddr.String())
	if err := n.up.Ping(l0.IP.String(), 2, 5*time.Second); err != nil {
		t.Errorf("upstream cannot reach the routed guest: %v", err)
	}

	if _, err := g1.DHCP(15 * time.Second); err != nil {
		t.Fatalf("isolated guest DHCP: %v", err)
	}
	if _, err := g1.LookupDNS("10.82.0.1", "iso-host", layers.DNSTypeA, 3*time.Second); err != nil {
		t.Errorf("isolated guest cannot use DNS: %v", err)
	}
	g1.MustRun("ip", "route", "replace", "default", "via", "10.82.0.1")
	if err := g1.Ping(n.up.Addr.String(), 1, 2*time.Second); err == nil {
		t.Error("isolated guest reached upstream")
	}
	if err := g1.Ping("10.81.0.1", 1, 2*time.Second); err == nil {
		// The host's own address on another network is not forwarded
		// to, but it is the host: libvirt allows it. Only forwarding
		// is blocked.
		t.Log("isolated guest reaches the host's address on another network (as in libvirt)")
	}
	if err := g1.Ping(l0.IP.String(), 1, 2*time.Second); err == nil {
		t.Error("isolated guest reached a guest of another network")
	}

	// open: netwarden's tables mention neither the open network's bridge.
	rules := n.l.Hypervisor().MustRun("nft", "list", "ruleset")
	if strings.Contains(rules, "nwbr3") {
		t.Errorf("the open network has rules:\n%s", rules)
	}
	for _, br := range []string{"nwbr1", "nwbr2"} {
		if !strings.Contains(rules, br) {
			t.Errorf("no rules for %s:\n%s", br, rules)
		}
	}
}

// TestNetworkLifecycle: define, start, destroy, undefine, autostart
// across a restart, transient networks, the write-back of a generated
// bridge name and MAC, and refusals that leave nothing behind.
func TestNetworkLifecycle(t *testing.T) {
	n := newNetLab(t)
	hv := n.l.Hypervisor()
	path := n.define(t, `<network><name>auto</name><forward mode='nat'/>
  <ip address='10.84.0.1' prefix='24'><dhcp><range start='10.84.0.10' end='10.84.0.20'/></dhcp></ip></network>`)
	if err := setProperty(n.conn, path, networkIface, "Autostart", true); err != nil {
		t.Fatal(err)
	}
	if err := call(n.conn, path, networkIface+".Create", nil); err != nil {
		t.Fatal(err)
	}
	var xml string
	if err := call(n.conn, path, networkIface+".GetXMLDesc", []any{uint32(1)}, &xml); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(xml, "<bridge name='virbr0'") || !strings.Contains(xml, "<mac address='52:54:00:") {
		t.Errorf("inactive XML lacks the generated bridge name or MAC:\n%s", xml)
	}
	if _, err := hv.Run("ip", "link", "show", "virbr0"); err != nil {
		t.Fatalf("bridge virbr0 missing: %v", err)
	}

	// Refusals: overlapping subnet, a bridge in use, unsupported mode.
	for _, bad := range []struct{ xml, want string }{
		{`<network><name>overlap</name><ip address='10.84.0.129' prefix='25'/></network>`, "overlaps"},
		{`<network><name>samebr</name><bridge name='virbr0'/><ip address='10.85.0.1' prefix='24'/></network>`, "virbr0"},
		{`<network><name>vepa</name><forward mode='vepa'><interface dev='eth9'/></forward></network>`, "not supported"},
	} {
		// Refused at define (a bridge name another network has) or at
		// start (what depends on the running networks).
		var p dbus.ObjectPath
		err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkDefineXML", []any{bad.xml}, &p)
		if err == nil {
			err = call(n.conn, p, networkIface+".Create", nil)
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("define and start %q: %v, want an error saying %q", bad.xml, err, bad.want)
		}
	}
	links := hv.MustRun("ip", "-br", "link")
	if strings.Count(links, "virbr") != 1 {
		t.Errorf("a refused start left a bridge behind:\n%s", links)
	}

	// Autostart across a restart with a fresh state dir (a reboot).
	if err := n.d.Stop(); err != nil {
		t.Fatal(err)
	}
	hv.MustRun("ip", "link", "del", "virbr0")
	if err := os.RemoveAll(filepath.Join(n.d.stateDir, "networks")); err != nil {
		t.Fatal(err)
	}
	n.d = startDaemon(t, n.l, "netwardend-2", nil)
	n.d.waitOwned(t, n.conn)
	n.d.waitReady(t)
	if _, err := hv.Run("ip", "link", "show", "virbr0"); err != nil {
		t.Fatalf("autostart network not started: %v\n%s", err, n.d.log(t))
	}
	if err := call(n.conn, path, networkIface+".Destroy", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.Run("ip", "link", "show", "virbr0"); err == nil {
		t.Error("bridge still there after Destroy")
	}
	if rules := hv.MustRun("nft", "list", "ruleset"); strings.Contains(rules, "virbr0") {
		t.Errorf("rules left after Destroy:\n%s", rules)
	}
	if err := call(n.conn, path, networkIface+".Undefine", nil); err != nil {
		t.Fatal(err)
	}

	// Transient: gone after destroy.
	var tp dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkCreateXML",
		[]any{`<network><name>tmp</name><bridge name='nwtmp'/><ip address='10.86.0.1' prefix='24'/></network>`}, &tp); err != nil {
		t.Fatal(err)
	}
	if err := call(n.conn, tp, networkIface+".Destroy", nil); err != nil {
		t.Fatal(err)
	}
	var p dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkLookupByName", []any{"tmp"}, &p); err == nil {
		t.Error("transient network still there after Destroy")
	}
}

// TestNetworkRestartKeepsTraffic: a ping across a kill -9 and restart of
// the daemon loses at most one packet; the network is adopted, not
// recreated, and its dnsmasq serves again.
func TestNetworkRestartKeepsTraffic(t *testing.T) {
	n := newNetLab(t)
	g := n.l.AddGuest()
	path := n.start(t, natNetwork("keep", "nwbr5", "87", net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	n.plug(t, path, g, "")
	if _, err := g.DHCP(15 * time.Second); err != nil {
		t.Fatalf("DHCP: %v", err)
	}
	idx := n.l.Hypervisor().MustRun("cat", "/sys/class/net/nwbr5/ifindex")
	ping := g.Command(t.Context(), "ping", "-i", "0.05", "-w", "4", "-n", n.up.Addr.String())
	out := &syncBuffer{}
	ping.Stdout, ping.Stderr = out, out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	n.restart(t, true)
	if err := ping.Wait(); err != nil {
		t.Logf("ping: %v", err)
	}
	sent, recv := pingCounts(out.String())
	if sent == 0 || sent-recv > 1 {
		t.Errorf("ping across the restart: %d sent, %d received; want at most one lost\n%s", sent, recv, out.String())
	}
	if idx2 := n.l.Hypervisor().MustRun("cat", "/sys/class/net/nwbr5/ifindex"); idx2 != idx {
		t.Errorf("bridge was recreated (ifindex %s → %s)", idx, idx2)
	}
	if _, err := g.DHCP(15 * time.Second); err != nil {
		t.Errorf("DHCP after the restart: %v\n%s", err, n.d.log(t))
	}
	var ports []dbus.ObjectPath
	if err := call(n.conn, path, networkIface+".ListPorts", []any{uint32(0)}, &ports); err != nil || len(ports) != 1 {
		t.Errorf("ports after restart: %v %v", ports, err)
	}
}

func pingCounts(out string) (sent, recv int) {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "packets transmitted") {
			fmt.Sscanf(line, "%d packets transmitted, %d received", &sent, &recv)
		}
	}
	return sent, recv
}

// TestNetworkPortFilterAndRelease: a port with a <filterref> is bound
// (spoofed traffic dropped), duplicate MACs are refused, and deleting the
// port removes its binding and releases its lease.
func TestNetworkPortFilterAndRelease(t *testing.T) {
	n := newNetLab(t)
	g, g2 := n.l.AddGuest(), n.l.AddGuest()
	path := n.start(t, natNetwork("filtered", "nwbr6", "88", net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	port := n.plug(t, path, g, "\n  <filterref filter='clean-traffic'><parameter name='IP' value='10.88.0.120'/></filterref>")
	var bp dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterBindingLookupByPortDev", []any{g.HostIface}, &bp); err != nil {
		t.Fatalf("no binding for the port: %v", err)
	}
	// Same MAC again: refused, naming the MAC.
	dup := strings.Replace(portXML(g2, "nwbr6", ""), g2.MAC.String(), g.MAC.String(), 1)
	var p2 dbus.ObjectPath
	err := call(n.conn, path, networkIface+".PortCreateXML", []any{dup, uint32(0)}, &p2)
	if err == nil || !strings.Contains(err.Error(), g.MAC.String()) {
		t.Errorf("duplicate MAC: %v", err)
	}
	// The bound guest may use its address only.
	g.SetAddr("10.88.0.120/24")
	if err := g.Ping("10.88.0.1", 1, 3*time.Second); err != nil {
		var mode, reason string
		o := n.conn.Object(dbusapi.BusName, bp)
		_ = o.StoreProperty(dbusapi.NWFilterBindingInterface+".Mode", &mode)
		_ = o.StoreProperty(dbusapi.NWFilterBindingInterface+".Reason", &reason)
		t.Errorf("filtered guest cannot use its own address: %v\nbinding %s %s\n%s", err, mode, reason, n.l.Hypervisor().MustRun("nft", "list", "ruleset"))
	}
	g.MustRun("ip", "addr", "flush", "dev", g.Iface)
	g.SetAddr("10.88.0.121/24")
	if err := g.Ping("10.88.0.1", 1, 2*time.Second); err == nil {
		t.Error("spoofed address passed the port's filter")
	}
	g.MustRun("ip", "addr", "flush", "dev", g.Iface)

	// Lease then delete: the lease is released.
	n.plug(t, path, g2, "")
	if _, err := g2.DHCP(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	var ports []dbus.ObjectPath
	if err := call(n.conn, path, networkIface+".ListPorts", []any{uint32(0)}, &ports); err != nil || len(ports) != 2 {
		t.Fatalf("ports: %v %v", ports, err)
	}
	for _, p := range ports {
		if p == port {
			continue
		}
		if err := call(n.conn, p, portIface+".Delete", nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var leases []leaseRow
		if err := call(n.conn, path, networkIface+".GetDHCPLeases", []any{g2.MAC.String(), uint32(0)}, &leases); err != nil {
			t.Fatal(err)
		}
		if len(leases) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease of the deleted port not released: %v", leases)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := call(n.conn, port, portIface+".Delete", nil); err != nil {
		t.Fatal(err)
	}
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterBindingLookupByPortDev", []any{g.HostIface}, &bp); err == nil {
		t.Error("binding still there after the port was deleted")
	}
	if _, err := n.l.Hypervisor().Run("ip", "link", "show", g.HostIface); err != nil {
		t.Error("an adopted interface was deleted with its port")
	}
}

// setProperty sets a property as root.
func setProperty(conn *dbus.Conn, path dbus.ObjectPath, iface, name string, v any) error {
	return conn.Object(dbusapi.BusName, path).Call("org.freedesktop.DBus.Properties.Set", 0, iface, name, dbus.MakeVariant(v)).Err
}

// TestNetworkTapPortAndHostBridge: a port without <plug dev> gets a
// persistent TAP named vnetN with the guest's MAC behind fe:, in the
// bridge, deleted with the port; a bridge-mode network uses an existing
// host bridge: nothing created, no dnsmasq, no rules, and the bridge
// survives destroy.
func TestNetworkTapPortAndHostBridge(t *testing.T) {
	n := newNetLab(t)
	hv := n.l.Hypervisor()
	path := n.start(t, `<network><name>taps</name><bridge name='nwbr7' stp='off'/>
  <ip address='10.89.0.1' prefix='24'/></network>`)
	var port dbus.ObjectPath
	xml := `<networkport><owner><name>vm</name><uuid>0b9a6f55-21a4-4c39-a2d6-3b0a3a1f3e01</uuid></owner>
  <mac address='52:54:00:12:34:56'/></networkport>`
	if err := call(n.conn, path, networkIface+".PortCreateXML", []any{xml, uint32(0)}, &port); err != nil {
		t.Fatal(err)
	}
	var dev string
	if err := n.conn.Object(dbusapi.BusName, port).StoreProperty(portIface+".Dev", &dev); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dev, "vnet") {
		t.Fatalf("port device %q, want vnetN", dev)
	}
	link := hv.MustRun("ip", "-d", "link", "show", dev)
	for _, want := range []string{"tun", "fe:54:00:12:34:56", "master nwbr7"} {
		if !strings.Contains(link, want) {
			t.Errorf("TAP %s lacks %q:\n%s", dev, want, link)
		}
	}
	var out string
	if err := call(n.conn, port, portIface+".GetXMLDesc", []any{uint32(0)}, &out); err != nil || !strings.Contains(out, "dev='"+dev+"'") {
		t.Errorf("port XML does not name its device: %v\n%s", err, out)
	}
	if err := call(n.conn, port, portIface+".Delete", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.Run("ip", "link", "show", dev); err == nil {
		t.Errorf("TAP %s still there after the port was deleted", dev)
	}

	// Bridge mode on a host bridge.
	hv.MustRun("ip", "link", "add", "hostbr", "type", "bridge")
	hv.MustRun("ip", "link", "set", "hostbr", "up")
	g := n.l.AddGuest()
	bp := n.start(t, `<network><name>host</name><forward mode='bridge'/><bridge name='hostbr'/></network>`)
	n.plug(t, bp, g, "")
	if m := hv.MustRun("ip", "link", "show", g.HostIface); !strings.Contains(m, "master hostbr") {
		t.Errorf("port not in the host bridge:\n%s", m)
	}
	if rules := hv.MustRun("nft", "list", "ruleset"); strings.Contains(rules, "hostbr") || strings.Contains(rules, `"host"`) {
		t.Errorf("a bridge-mode network has rules:\n%s", rules)
	}
	if err := call(n.conn, bp, networkIface+".Destroy", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.Run("ip", "link", "show", "hostbr"); err != nil {
		t.Error("destroying a bridge-mode network deleted the host bridge")
	}
	if m := hv.MustRun("ip", "link", "show", g.HostIface); strings.Contains(m, "master hostbr") {
		t.Errorf("destroy left the adopted port in the host bridge:\n%s", m)
	}
}

// TestNetworkStoredByHand: a definition an administrator put into
// CONFIG/networks without bridge name or MAC gets both when the daemon
// starts, stored back, as a network defined through the API does.
func TestNetworkStoredByHand(t *testing.T) {
	l := lab.New(t)
	conn := l.BusWithoutSystemServices().Conn()
	dir := filepath.Join(l.Dir, "etc", "networks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	doc := `<network><name>hand</name><uuid>8f0e5a4c-2b1d-4c3e-9f7a-6b5d4c3e2f10</uuid><ip address='10.96.0.1' prefix='24'/></network>`
	if err := os.WriteFile(filepath.Join(dir, "hand.xml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)
	d.waitReady(t)
	stored, err := os.ReadFile(filepath.Join(dir, "hand.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), "<bridge name='virbr0'") || !strings.Contains(string(stored), "<mac address='52:54:00:") {
		t.Errorf("stored definition lacks the chosen bridge name or MAC:\n%s", stored)
	}
}
