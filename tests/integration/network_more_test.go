package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/tests/lab"
)

// The upstream LAN's IPv6 addresses, set by the IPv6 tests (the lab
// gives the link IPv4 only).
var (
	upstream6     = net.ParseIP("2001:db8:113::1")
	upstreamHost6 = net.ParseIP("2001:db8:113::2")
)

// addUpstreamIPv6 gives the upstream link IPv6 addresses (without
// duplicate address detection, so they are usable at once) and, when
// routeBack is set, the upstream a route back to subnet via the
// hypervisor, as a routed network needs.
func (n *netLab) addUpstreamIPv6(t *testing.T, routeBack string) {
	t.Helper()
	n.l.Hypervisor().MustRun("ip", "-6", "addr", "add", upstreamHost6.String()+"/64", "dev", n.up.HostIface, "nodad")
	n.up.MustRun("ip", "-6", "addr", "add", upstream6.String()+"/64", "dev", n.up.Iface, "nodad")
	if routeBack != "" {
		n.up.MustRun("ip", "-6", "route", "add", routeBack, "via", upstreamHost6.String())
	}
}

// bridgeLinkLocal returns the link-local address of a bridge in the
// hypervisor, once duplicate address detection has accepted it.
func (n *netLab) bridgeLinkLocal(t *testing.T, bridge string) net.IP {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := n.l.Hypervisor().Run("ip", "-6", "-o", "addr", "show", "dev", bridge, "scope", "link")
		if err == nil && !strings.Contains(out, "tentative") {
			for _, f := range strings.Fields(out) {
				if ip, _, err := net.ParseCIDR(f); err == nil && ip.IsLinkLocalUnicast() {
					return ip
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge %s has no usable link-local address: %q %v", bridge, out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDefaultRoute6 waits until the guest's kernel has an IPv6 default
// route learnt from a router advertisement, soliciting one first, and
// returns the route.
func waitDefaultRoute6(t *testing.T, g *lab.Guest) string {
	t.Helper()
	if err := g.SolicitRouter(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	resolicit := time.Now().Add(2 * time.Second)
	for {
		out, err := g.Run("ip", "-6", "route", "show", "default")
		if err == nil && strings.Contains(out, "via") {
			return strings.TrimSpace(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest has no IPv6 default route from a router advertisement: %q %v\nguest routes:\n%s",
				out, err, g.MustRun("ip", "-6", "route"))
		}
		if time.Now().After(resolicit) {
			_ = g.SolicitRouter()
			resolicit = time.Now().Add(2 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ipv6Network is a nat network with an IPv4 <ip> (with DHCP) and an
// IPv6 <ip> with a DHCPv6 range on fd00:<sub>::/64; natv6 adds
// <nat ipv6='yes'/>.
func ipv6Network(name, bridge, sub string, natv6 bool) string {
	forward := "<forward mode='nat'/>"
	if natv6 {
		forward = "<forward mode='nat'><nat ipv6='yes'/></forward>"
	}
	return fmt.Sprintf(`<network>
  <name>%s</name>
  %s
  <bridge name='%s' stp='on' delay='0'/>
  <ip address='10.%s.0.1' prefix='24'>
    <dhcp><range start='10.%s.0.100' end='10.%s.0.150'/></dhcp>
  </ip>
  <ip family='ipv6' address='fd00:%s::1' prefix='64'>
    <dhcp><range start='fd00:%s::100' end='fd00:%s::1ff'/></dhcp>
  </ip>
</network>`, name, forward, bridge, sub, sub, sub, sub, sub, sub)
}

// testIPv6 runs the IPv6 scenario: router advertisement → default route
// via the bridge, a DHCPv6 address from the range (a stateful range
// makes dnsmasq advertise the prefix with the managed flag and without
// autonomous configuration, so the guest's kernel does no SLAAC: the
// lab's DHCPv6 client asks for the address), the lease in the API, and a
// ping to the upstream LAN over IPv6 whose source upstream sees is want
// (nil: the guest's own address).
func testIPv6(t *testing.T, natv6 bool, sub, bridge string) {
	n := newNetLab(t)
	subnet := fmt.Sprintf("fd00:%s::/64", sub)
	routeBack := subnet
	if natv6 {
		// Masqueraded: upstream has no route to the guests' subnet,
		// so a reply proves the translation.
		routeBack = ""
	}
	n.addUpstreamIPv6(t, routeBack)
	g := n.l.AddGuest()
	path := n.start(t, ipv6Network("v6-"+sub, bridge, sub, natv6))
	n.plug(t, path, g, "")

	// The guest's kernel takes the bridge's advertisement: its
	// default route is via the bridge's link-local address.
	route := waitDefaultRoute6(t, g)
	ll := n.bridgeLinkLocal(t, bridge)
	if !strings.Contains(route, "via "+ll.String()+" dev "+g.Iface) {
		t.Errorf("guest's IPv6 default route %q is not via the bridge's %s", route, ll)
	}
	if ra := g.MustRun("ip", "-6", "-o", "addr", "show", "dev", g.Iface, "scope", "global"); strings.TrimSpace(ra) != "" {
		t.Errorf("guest configured a global address by itself (SLAAC with a stateful range): %s", ra)
	}

	lease, err := g.DHCPv6(10 * time.Second)
	if err != nil {
		t.Fatalf("DHCPv6: %v\n%s", err, n.d.log(t))
	}
	_, want, _ := net.ParseCIDR(subnet)
	lo, hi := net.ParseIP(fmt.Sprintf("fd00:%s::100", sub)), net.ParseIP(fmt.Sprintf("fd00:%s::1ff", sub))
	if !want.Contains(lease.IP) || bytes.Compare(lease.IP, lo) < 0 || bytes.Compare(lease.IP, hi) > 0 {
		t.Errorf("DHCPv6 gave %s, want an address in %s-%s", lease.IP, lo, hi)
	}
	if len(lease.DNS) == 0 || !lease.DNS[0].Equal(net.ParseIP(fmt.Sprintf("fd00:%s::1", sub))) {
		t.Errorf("DHCPv6 offered name servers %v, want fd00:%s::1", lease.DNS, sub)
	}
	// The network's own IPv6 address answers.
	if err := g.Ping(fmt.Sprintf("fd00:%s::1", sub), 1, 3*time.Second); err != nil {
		t.Errorf("guest cannot reach the network's IPv6 address: %v", err)
	}

	// The API shows the IPv6 lease (type 1).
	var leases []leaseRow
	if err := call(n.conn, path, networkIface+".GetDHCPLeases", []any{"", uint32(0)}, &leases); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range leases {
		if l.Type == 1 && net.ParseIP(l.IP).Equal(lease.IP) {
			found = true
			if l.Prefix != 64 || l.Iface != bridge {
				t.Errorf("IPv6 lease in the API: %+v, want prefix 64 on %s", l, bridge)
			}
		}
	}
	if !found {
		t.Errorf("the API does not list the IPv6 lease of %s: %+v", lease.IP, leases)
	}

	// Upstream over IPv6.
	c, err := n.up.Capture(n.up.Iface, lab.MatchICMPv6(128))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := g.Ping(upstream6.String(), 2, 5*time.Second); err != nil {
		t.Fatalf("guest cannot reach upstream over IPv6: %v\n%s", err, n.l.Hypervisor().MustRun("nft", "list", "ruleset"))
	}
	pkts, err := c.Wait(3*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	src := pkts[0].Layer(layers.LayerTypeIPv6).(*layers.IPv6).SrcIP
	wantSrc := lease.IP
	if natv6 {
		wantSrc = upstreamHost6
	}
	if !src.Equal(wantSrc) {
		t.Errorf("upstream saw IPv6 source %s, want %s", src, wantSrc)
	}
	if !natv6 {
		// Routed, not masqueraded: as in libvirt, whose nat network
		// adds IPv6 routing rules (FWI accepts anything to the subnet,
		// without a conntrack condition), upstream reaches the guest.
		if err := n.up.Ping(lease.IP.String(), 1, 3*time.Second); err != nil {
			t.Errorf("upstream cannot reach the routed IPv6 guest: %v", err)
		}
	}
}

// TestNetworkMoreIPv6Routed: on a nat network, IPv6 is routed (libvirt's
// default): upstream sees the guest's DHCPv6 address.
func TestNetworkMoreIPv6Routed(t *testing.T) {
	testIPv6(t, false, "91", "nwbr91")
}

// TestNetworkMoreIPv6Masquerade: with <nat ipv6='yes'/>, upstream sees
// the hypervisor's address and answers without a route to the guests.
func TestNetworkMoreIPv6Masquerade(t *testing.T) {
	testIPv6(t, true, "92", "nwbr92")
}

// dnsmasqPID reads the PID of a network's dnsmasq from the daemon's
// pidfile and checks through /proc that it is a dnsmasq of that network;
// 0 when there is none (yet).
func (n *netLab) dnsmasqPID(uuid string) (int, error) {
	pidFile := filepath.Join(n.d.stateDir, "dnsmasq", uuid+".pid")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", pidFile, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("pid %d from %s: %w", pid, pidFile, err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if filepath.Base(argv[0]) != "dnsmasq" || !strings.Contains(string(cmdline), uuid+".conf") {
		return 0, fmt.Errorf("pid %d from %s is not this network's dnsmasq: %q", pid, pidFile, argv)
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return 0, fmt.Errorf("pid %d is a zombie", pid)
		}
	}
	return pid, nil
}

func (n *netLab) networkString(t *testing.T, path dbus.ObjectPath, prop string) string {
	t.Helper()
	var v string
	if err := n.conn.Object(dbusapi.BusName, path).StoreProperty(networkIface+"."+prop, &v); err != nil {
		t.Fatalf("%s.%s: %v", path, prop, err)
	}
	return v
}

// TestNetworkMoreDnsmasqRestart: a network's dnsmasq killed with SIGKILL
// is restarted by the daemon; the network's Status says so meanwhile and
// is empty again after; a guest's DHCP works again.
func TestNetworkMoreDnsmasqRestart(t *testing.T) {
	n := newNetLab(t)
	g := n.l.AddGuest()
	path := n.start(t, natNetwork("superv", "nwbr93", "93", net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	n.plug(t, path, g, "")
	uuid := n.networkString(t, path, "UUID")
	if st := n.networkString(t, path, "Status"); st != "" {
		t.Errorf("Status of a healthy network = %q, want empty", st)
	}
	first, err := g.DHCP(15 * time.Second)
	if err != nil {
		t.Fatalf("DHCP before the kill: %v", err)
	}
	pid, err := n.dnsmasqPID(uuid)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// Wait for a new dnsmasq and an empty Status; record whether the
	// Status told of the restart in between (it may be too quick to see).
	var sawStatus string
	deadline := time.Now().Add(10 * time.Second)
	var newPID int
	for {
		st := n.networkString(t, path, "Status")
		if st != "" {
			sawStatus = st
		}
		p, perr := n.dnsmasqPID(uuid)
		if perr == nil && p != pid && st == "" {
			newPID = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new dnsmasq with an empty Status %v after the kill (pid %d → %d %v, Status %q)\n%s",
				time.Since(killed), pid, p, perr, st, n.d.log(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("dnsmasq %d killed, %d running after %v; Status meanwhile %q", pid, newPID, time.Since(killed).Round(time.Millisecond), sawStatus)
	if sawStatus != "" && !strings.Contains(sawStatus, "dnsmasq") {
		t.Errorf("Status while dnsmasq was down = %q, want it to name dnsmasq", sawStatus)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("killed dnsmasq %d still in /proc (not reaped)", pid)
	}
	if !strings.Contains(n.d.log(t), "dnsmasq exited") {
		t.Errorf("the daemon did not log the death of dnsmasq:\n%s", n.d.log(t))
	}
	again, err := g.DHCPWith(lab.DHCPOptions{Timeout: 15 * time.Second, RequestIP: first.IP})
	if err != nil {
		t.Fatalf("DHCP after dnsmasq was restarted: %v\n%s", err, n.d.log(t))
	}
	if !again.IP.Equal(first.IP) {
		t.Errorf("after the restart the guest leased %s, before %s (the lease database was lost)", again.IP, first.IP)
	}
	if st := n.networkString(t, path, "Status"); st != "" {
		t.Errorf("Status after the restart = %q, want empty", st)
	}
}

// labSnapshot is what must not change when the daemon refuses a
// request: links, netwarden's rules, dnsmasq processes, networks, ports.
type labSnapshot struct {
	links    []string
	rules    string
	dnsmasq  []int
	networks []string
	ports    []dbus.ObjectPath
}

var nftCounter = regexp.MustCompile(`counter packets \d+ bytes \d+`)

func (n *netLab) snapshot(t *testing.T, portsOf dbus.ObjectPath) labSnapshot {
	t.Helper()
	var s labSnapshot
	for _, line := range strings.Split(n.l.Hypervisor().MustRun("ip", "-br", "link"), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			s.links = append(s.links, strings.SplitN(f[0], "@", 2)[0])
		}
	}
	slices.Sort(s.links)
	s.rules = nftCounter.ReplaceAllString(n.l.Hypervisor().MustRun("nft", "list", "ruleset"), "counter")
	s.dnsmasq = n.dnsmasqProcs(t)
	var paths []dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".ListNetworks", []any{uint32(0)}, &paths); err != nil {
		t.Fatalf("ListNetworks: %v\n%s", err, n.d.log(t))
	}
	for _, p := range paths {
		s.networks = append(s.networks, n.networkString(t, p, "Name"))
	}
	slices.Sort(s.networks)
	if err := call(n.conn, portsOf, networkIface+".ListPorts", []any{uint32(0)}, &s.ports); err != nil {
		t.Fatalf("ListPorts: %v", err)
	}
	slices.Sort(s.ports)
	return s
}

// dnsmasqProcs lists the dnsmasq processes running a configuration in
// the daemon's state directory.
func (n *netLab) dnsmasqProcs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv := strings.Split(string(cmd), "\x00")
		if filepath.Base(argv[0]) == "dnsmasq" && strings.Contains(string(cmd), n.d.stateDir) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

func (s labSnapshot) diff(o labSnapshot) []string {
	var d []string
	if !slices.Equal(s.links, o.links) {
		d = append(d, fmt.Sprintf("links %v → %v", s.links, o.links))
	}
	if s.rules != o.rules {
		d = append(d, fmt.Sprintf("rules changed:\n%s\n→\n%s", s.rules, o.rules))
	}
	if !slices.Equal(s.dnsmasq, o.dnsmasq) {
		d = append(d, fmt.Sprintf("dnsmasq processes %v → %v", s.dnsmasq, o.dnsmasq))
	}
	if !slices.Equal(s.networks, o.networks) {
		d = append(d, fmt.Sprintf("networks %v → %v", s.networks, o.networks))
	}
	if !slices.Equal(s.ports, o.ports) {
		d = append(d, fmt.Sprintf("ports %v → %v", s.ports, o.ports))
	}
	return d
}

// TestNetworkMoreBadInput: each bad definition or port is refused at
// define or at start (port create for ports) with a netwarden D-Bus error
// whose message names the offending field; nothing half-made stays
// behind (links, rules, dnsmasq, networks, ports), and the daemon serves
// the next call.
func TestNetworkMoreBadInput(t *testing.T) {
	n := newNetLab(t)
	hv := n.l.Hypervisor()
	g0, g1 := n.l.AddGuest(), n.l.AddGuest()
	base := n.start(t, natNetwork("base", "nwbr94", "94", net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	n.plug(t, base, g0, "")
	sleepy := n.define(t, `<network><name>sleepy</name><bridge name='nwbr95'/><ip address='10.95.0.1' prefix='24'/></network>`)
	// Links of someone else's in the hypervisor: a bridge netwarden did
	// not make and a veth.
	hv.MustRun("ip", "link", "add", "nwforeign0", "type", "bridge")
	hv.MustRun("ip", "link", "add", "nwforeign1", "type", "veth", "peer", "name", "nwforeign2")

	simple := func(name, bridge, body string) string {
		return fmt.Sprintf("<network><name>%s</name><bridge name='%s'/>%s</network>", name, bridge, body)
	}
	long := strings.Repeat("n", 200)
	networkCases := []struct {
		name, xml string
		want      []string // each must be in the message
	}{
		{"overlapping subnet", simple("bad-overlap", "nwbad1", `<ip address='10.94.0.129' prefix='25'/>`),
			[]string{"ip address", "10.94.0.129", "overlaps", "base"}},
		{"bridge name over 15 characters", simple("bad-longbr", "nwbridge-too-long", `<ip address='10.101.0.1' prefix='24'/>`),
			[]string{"bridge", "nwbridge-too-long"}},
		{"bridge name of a foreign bridge", simple("bad-foreign", "nwforeign0", `<ip address='10.102.0.1' prefix='24'/>`),
			[]string{"nwforeign0"}},
		{"bridge name of a foreign veth", simple("bad-foreign", "nwforeign1", `<ip address='10.102.0.1' prefix='24'/>`),
			[]string{"nwforeign1"}},
		{"DHCP range outside its subnet", simple("bad-range", "nwbad3",
			`<ip address='10.103.0.1' prefix='24'><dhcp><range start='10.104.0.10' end='10.104.0.20'/></dhcp></ip>`),
			[]string{"range", "10.104.0.10"}},
		{"second DHCP IPv4 ip", simple("bad-twodhcp", "nwbad4",
			`<ip address='10.105.0.1' prefix='24'><dhcp><range start='10.105.0.10' end='10.105.0.20'/></dhcp></ip>
			 <ip address='10.106.0.1' prefix='24'><dhcp><range start='10.106.0.10' end='10.106.0.20'/></dhcp></ip>`),
			[]string{"dhcp"}},
		{"lease under two minutes", simple("bad-lease", "nwbad5",
			`<ip address='10.107.0.1' prefix='24'><dhcp><range start='10.107.0.10' end='10.107.0.20'><lease expiry='1' unit='minutes'/></range></dhcp></ip>`),
			[]string{"lease", "expiry"}},
		{"malformed XML", `<network><name>bad-xml</name><bridge name='nwbad6'/>`, []string{"XML"}},
		{"name with a slash", simple("bad/slash", "nwbad7", `<ip address='10.108.0.1' prefix='24'/>`), []string{"name", "'/'"}},
		{"name with a line break", simple("bad&#10;dhcp-range=1.2.3.4", "nwbad8", `<ip address='10.109.0.1' prefix='24'/>`),
			[]string{"name", "control character"}},
		{"name of 200 characters", simple(long, "nwbad9", `<ip address='10.110.0.1' prefix='24'/>`), []string{"name"}},
	}
	for _, tc := range networkCases {
		t.Run(tc.name, func(t *testing.T) {
			before := n.snapshot(t, base)
			var path dbus.ObjectPath
			err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkDefineXML", []any{tc.xml}, &path)
			stage := "define"
			if err == nil {
				stage = "start"
				err = call(n.conn, path, networkIface+".Create", nil)
				if err == nil {
					t.Errorf("defined and started: %s", tc.xml)
					_ = call(n.conn, path, networkIface+".Destroy", nil)
				}
				if active := false; n.conn.Object(dbusapi.BusName, path).StoreProperty(networkIface+".Active", &active) != nil || active {
					t.Errorf("network active (or gone) after a refused start")
				}
				if uerr := call(n.conn, path, networkIface+".Undefine", nil); uerr != nil {
					t.Errorf("Undefine after the refused start: %v", uerr)
				}
			}
			checkRefusal(t, stage, err, tc.want)
			if d := before.diff(n.snapshot(t, base)); len(d) > 0 {
				t.Errorf("refused %s left something behind:\n%s", stage, strings.Join(d, "\n"))
			}
		})
	}

	// Quotes and semicolons are allowed in a network name, as in
	// libvirt (which refuses only '/'): the name reaches no kernel
	// object (chains are named by its hash, dnsmasq's files by the
	// UUID). Such a network runs, with its dnsmasq, and leaves nothing
	// behind once destroyed and undefined.
	for i, name := range []string{`odd"quote'`, "odd;semi; rm -rf x"} {
		t.Run("name "+name, func(t *testing.T) {
			before := n.snapshot(t, base)
			bridge := fmt.Sprintf("nwodd%d", i)
			xml := fmt.Sprintf(`<network><name>%s</name><forward mode='nat'/><bridge name='%s'/>
  <ip address='10.%d.0.1' prefix='24'><dhcp><range start='10.%d.0.10' end='10.%d.0.20'/></dhcp></ip></network>`,
				strings.NewReplacer(`"`, "&quot;", "'", "&apos;").Replace(name), bridge, 111+i, 111+i, 111+i)
			path := n.start(t, xml)
			if got := n.networkString(t, path, "Name"); got != name {
				t.Errorf("Name = %q, want %q", got, name)
			}
			if _, err := n.dnsmasqPID(n.networkString(t, path, "UUID")); err != nil {
				t.Errorf("no dnsmasq for network %q: %v", name, err)
			}
			if rules := hv.MustRun("nft", "list", "ruleset"); !strings.Contains(rules, bridge) {
				t.Errorf("no rules for network %q:\n%s", name, rules)
			}
			if err := call(n.conn, path, networkIface+".Destroy", nil); err != nil {
				t.Fatal(err)
			}
			if err := call(n.conn, path, networkIface+".Undefine", nil); err != nil {
				t.Fatal(err)
			}
			if d := before.diff(n.snapshot(t, base)); len(d) > 0 {
				t.Errorf("network %q left something behind:\n%s", name, strings.Join(d, "\n"))
			}
		})
	}

	portCases := []struct {
		name    string
		network dbus.ObjectPath
		xml     string
		want    []string
	}{
		// A new TAP would be made for nwtapbad0, so a failure that did
		// not undo its steps would leave a link.
		{"port MAC already in use", base, portXMLDev(g1, "nwbr94", "nwtapbad0", g0.MAC, ""),
			[]string{"mac address", g0.MAC.String()}},
		{"port with an unknown filter", base, portXMLDev(g1, "nwbr94", "nwtapbad1", g1.MAC,
			"\n  <filterref filter='no-such-filter'/>"), []string{"no-such-filter"}},
		{"adopted interface with an unknown filter", base, portXMLDev(g1, "nwbr94", g1.HostIface, g1.MAC,
			"\n  <filterref filter='no-such-filter'/>"), []string{"no-such-filter"}},
		{"port on an inactive network", sleepy, portXMLDev(g1, "nwbr95", "nwtapbad2", g1.MAC, ""),
			[]string{"sleepy", "not active"}},
	}
	for _, tc := range portCases {
		t.Run(tc.name, func(t *testing.T) {
			before := n.snapshot(t, base)
			var p dbus.ObjectPath
			err := call(n.conn, tc.network, networkIface+".PortCreateXML", []any{tc.xml, uint32(0)}, &p)
			checkRefusal(t, "port create", err, tc.want)
			if d := before.diff(n.snapshot(t, base)); len(d) > 0 {
				t.Errorf("refused port left something behind:\n%s", strings.Join(d, "\n"))
			}
			if master, _ := hv.Run("ip", "-o", "link", "show", g1.HostIface); strings.Contains(master, "master") {
				t.Errorf("%s still in a bridge after a refused port: %s", g1.HostIface, master)
			}
		})
	}

	// The daemon still serves: a good network and port after all that.
	good := n.start(t, `<network><name>good</name><bridge name='nwbr96'/><ip address='10.96.0.1' prefix='24'/></network>`)
	var p dbus.ObjectPath
	if err := call(n.conn, good, networkIface+".PortCreateXML", []any{portXMLDev(g1, "nwbr96", g1.HostIface, g1.MAC, ""), uint32(0)}, &p); err != nil {
		t.Errorf("a good port after the refusals: %v\n%s", err, n.d.log(t))
	}
}

// portXMLDev is portXML with a chosen interface and MAC.
func portXMLDev(g *lab.Guest, bridge, dev string, mac net.HardwareAddr, extra string) string {
	x := strings.Replace(portXML(g, bridge, extra), "dev='"+g.HostIface+"'", "dev='"+dev+"'", 1)
	return strings.Replace(x, g.MAC.String(), mac.String(), 1)
}

// checkRefusal checks that err is a netwarden D-Bus error (not a
// generic failure) whose message holds every string of want.
func checkRefusal(t *testing.T, stage string, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Errorf("not refused (wanted an error naming %q)", want)
		return
	}
	name := errName(err)
	if !strings.HasPrefix(name, "org.netwarden1.Error.") || name == "org.netwarden1.Error.Failed" {
		t.Errorf("refused at %s with %s, want a specific netwarden error: %v", stage, name, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refused at %s (%s) with %q, which does not name %q", stage, name, err.Error(), w)
		}
	}
	t.Logf("refused at %s: %s: %v", stage, name, err)
}

// TestNetworkMoreNoCrossTalk: guests of two nat networks cannot open
// connections to each other. libvirt's FORWARD order is FWX, FWI, FWO:
// a packet from network A to network B's subnet is not in A's FWX (not
// the same bridge), meets B's FWI (out to B's bridge, to B's subnet:
// related and established only, then reject) and is rejected there with
// an ICMP port unreachable, before A's FWO would accept it. Both still
// reach upstream.
func TestNetworkMoreNoCrossTalk(t *testing.T) {
	n := newNetLab(t)
	ga, gb := n.l.AddGuest(), n.l.AddGuest()
	pa := n.start(t, natNetwork("net-a", "nwbr97", "97", net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	pb := n.start(t, natNetwork("net-b", "nwbr98", "98", net.HardwareAddr{2, 0, 0, 0, 0, 2}))
	n.plug(t, pa, ga, "")
	n.plug(t, pb, gb, "")
	ga.SetAddr("10.97.0.50/24")
	ga.MustRun("ip", "route", "add", "default", "via", "10.97.0.1")
	gb.SetAddr("10.98.0.50/24")
	gb.MustRun("ip", "route", "add", "default", "via", "10.98.0.1")

	// Both are forwarded upstream.
	for _, g := range []*lab.Guest{ga, gb} {
		if err := g.Ping(n.up.Addr.String(), 1, 3*time.Second); err != nil {
			t.Fatalf("%s cannot reach upstream: %v", g.Name, err)
		}
	}

	for _, dir := range []struct {
		from, to *lab.Guest
		toAddr   string
		gateway  string
	}{
		{ga, gb, "10.98.0.50", "10.97.0.1"},
		{gb, ga, "10.97.0.50", "10.98.0.1"},
	} {
		arrived, err := dir.to.Capture(dir.to.Iface, lab.All(lab.MatchICMPv4(8), lab.MatchDstIP(net.ParseIP(dir.toAddr))))
		if err != nil {
			t.Fatal(err)
		}
		unreach, err := dir.from.Capture(dir.from.Iface, lab.All(lab.Incoming(), lab.MatchICMPv4(3)))
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.from.Ping(dir.toAddr, 1, 2*time.Second); err == nil {
			t.Errorf("%s reached %s on the other network", dir.from.Name, dir.toAddr)
		}
		if err := arrived.ExpectNone(300 * time.Millisecond); err != nil {
			t.Errorf("an echo request from %s reached %s: %v", dir.from.Name, dir.to.Name, err)
		}
		if pkts, err := unreach.Wait(2*time.Second, 1); err != nil {
			t.Errorf("%s got no ICMP unreachable for %s (rejected, as libvirt's FWI does): %v", dir.from.Name, dir.toAddr, err)
		} else {
			icmp := pkts[0].Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			ip := pkts[0].Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if icmp.TypeCode.Code() != layers.ICMPv4CodePort {
				t.Errorf("%s got %v from %s, want port unreachable", dir.from.Name, icmp.TypeCode, ip.SrcIP)
			}
		}
		// TCP to the other guest is refused too.
		if _, err := dir.to.TCPEcho(":7007"); err != nil {
			t.Fatal(err)
		}
		if err := dir.from.CanConnectTCP(net.JoinHostPort(dir.toAddr, "7007"), 2*time.Second); err == nil {
			t.Errorf("%s connected over TCP to %s on the other network", dir.from.Name, dir.toAddr)
		}
		arrived.Close()
		unreach.Close()
	}
	// Each guest still reaches its own gateway.
	if err := ga.Ping("10.97.0.1", 1, 2*time.Second); err != nil {
		t.Errorf("guest A cannot reach its gateway: %v", err)
	}
}
