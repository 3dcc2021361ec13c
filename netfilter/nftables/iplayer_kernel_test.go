package nftables

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/tests/lab"
)

// enforce is a desired port state enforcing rules.
func enforce(port string, pr *netfilter.PortRules) *netfilter.PortState {
	pr.Port = port
	return &netfilter.PortState{Port: port, Mode: netfilter.Enforce, Rules: pr}
}

// TestIPLayerKernelLifecycle applies IP-layer rules for ports through
// every kind of change in a private namespace: the first apply, a new
// port, changed rules (same id), a port losing its IP-layer rules, a
// removed port, the last IP-layer port gone (the inet table and the
// bridge table's IP objects go too), and a restart (a new backend
// replacing both tables). Verify must pass after each step, and the
// layout after the first step is a golden file read back from the
// kernel.
func TestIPLayerKernelLifecycle(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	cases := firewallDataCases(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })

	tcpOut := &netfilter.PortRules{IPv4: []netfilter.Rule{
		ipRuleOf(netfilter.DirOut, netfilter.Drop, true, "tcp", "dstportstart", "25"),
		ipRuleOf(netfilter.DirOut, netfilter.Accept, true, "tcp", "dstportstart", "80"),
		ipRuleOf(netfilter.DirInOut, netfilter.Drop, true, "all"),
	}}
	apply := func(step string, ports ...*netfilter.PortState) {
		t.Helper()
		st := &netfilter.State{Ports: map[string]*netfilter.PortState{}}
		for _, p := range ports {
			st.Ports[p.Port] = p
		}
		if err := b.Apply(ctx, st); err != nil {
			t.Fatalf("%s: apply: %v", step, err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("%s: verify: %v", step, err)
		}
	}
	vnet0 := enforce("vnet0", cases["target2"])
	vnet1 := enforce("vnet1", tcpOut)
	apply("first", vnet0, vnet1)
	if got := ns.mustRun(t, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"); got != "1\n1\n" {
		t.Errorf("bridge-nf-call sysctls: %q", got)
	}
	checkKernelGolden(t, "iplayer/kernel-two-ports.nft", ns.mustRun(t, "nft", "list", "ruleset"))

	// A third port (id 3), then vnet0's rules change (it keeps id 1).
	vnet2 := enforce("vnet2", &netfilter.PortRules{IPv6: cases["icmpv6"].IPv6})
	apply("new port", vnet0, vnet1, vnet2)
	vnet0b := enforce("vnet0", cases["conntrack"])
	apply("changed rules", vnet0b, vnet1, vnet2)
	out := ns.mustRun(t, "nft", "list", "ruleset")
	for _, want := range []string{`"vnet0" : 0x00000001`, `"vnet1" : 0x00000002`, `"vnet2" : 0x00000003`, "ct count over 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("after a change, the ruleset lacks %q:\n%s", want, out)
		}
	}
	// vnet1 loses its IP-layer rules, vnet2 goes.
	gone := b.applied.ports["vnet1"].ip.chains[chainFJ]
	vnet1b := enforce("vnet1", &netfilter.PortRules{Chains: cases["mac"].Chains})
	apply("IP rules gone, port gone", vnet0b, vnet1b)
	out = ns.mustRun(t, "nft", "list", "ruleset")
	if strings.Contains(out, gone) || strings.Contains(out, "vnet2") {
		t.Errorf("chains of vnet1 or vnet2 left:\n%s", out)
	}
	// The last IP-layer port goes: no inet table, no IP objects.
	apply("no IP layer", vnet1b)
	out = ns.mustRun(t, "nft", "list", "ruleset")
	if strings.Contains(out, "table inet") || strings.Contains(out, "ip-") {
		t.Errorf("IP-layer objects left without IP-layer rules:\n%s", out)
	}
	apply("IP layer again", vnet0b, vnet1b)
	// Someone deletes the inet table: Verify notices, the next Apply
	// restores it.
	ns.mustRun(t, "nft", "delete", "table", "inet", TableName)
	if err := b.Verify(ctx); err == nil {
		t.Fatal("verify passed without the inet table")
	}
	apply("restored", vnet0b, vnet1b)
	if out := ns.mustRun(t, "nft", "list", "chain", "inet", TableName, b.applied.ports["vnet0"].ip.chains[chainFJ]); !strings.Contains(out, "ct count over 2") {
		t.Errorf("restored chain:\n%s", out)
	}
	// A restarted daemon replaces both tables in one transaction.
	b2 := New(Config{NetNS: int(ns.fd)})
	b = b2
	apply("restart", vnet0, vnet1)
	if got := ns.mustRun(t, "nft", "list", "ruleset"); got != readFileOr(t, filepath.Join("testdata", "iplayer", "kernel-two-ports.nft")) {
		t.Errorf("after a restart the ruleset differs from the first apply's:\n%s", got)
	}
	apply("restart to nothing", vnet1b)
	if err := b.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if out := ns.mustRun(t, "nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
		t.Errorf("Remove left:\n%s", out)
	}
}

func readFileOr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkKernelGolden compares a kernel listing with testdata/<name>.
func checkKernelGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updateGolden() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it, then review it)", err)
	}
	if got != string(want) {
		t.Errorf("kernel listing differs from %s:\n%s", path, lineDiff(string(want), got))
	}
}

// TestIPLayerKernelEveryCase applies every case of libvirt's
// nwfilterxml2firewalldata suite to a port, each in its own transaction
// after the previous one: the kernel must take every rendering. A case
// the backend reports as unsupported (ipset at the IP layer; arp's
// gratuitous at the Ethernet layer) must leave the port drop-all with the
// reason; the test logs which.
func TestIPLayerKernelEveryCase(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })
	cases := firewallDataCases(t)
	allowed := map[string]error{"ipset": errIPSet, "arp": errUnsupported}
	for _, name := range sortedKeys(cases) {
		st := &netfilter.State{Ports: map[string]*netfilter.PortState{"vnet0": enforce("vnet0", cases[name])}}
		err := b.Apply(ctx, st)
		var pe *netfilter.PortErrors
		switch {
		case err == nil:
		case allowed[name] != nil && errors.As(err, &pe) && errors.Is(pe.Ports["vnet0"], allowed[name]):
			t.Logf("%s: reported unsupported, port drop-all: %v", name, pe.Ports["vnet0"])
			out := ns.mustRun(t, "nft", "list", "map", "bridge", TableName, mapFromGuest)
			if !strings.Contains(out, `"vnet0" : drop`) {
				t.Errorf("%s: port not drop-all:\n%s", name, out)
			}
		default:
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := b.Verify(ctx); err != nil {
			t.Errorf("%s: verify: %v", name, err)
		}
	}
}

// ipChainsOf lists the inet table's IP-layer chains of kind c.
func ipChainsOf(t *testing.T, ns *testNS, c ipChain) []string {
	t.Helper()
	out := ns.mustRun(t, "nft", "list", "chains", "inet")
	re := regexp.MustCompile(`chain (ip-[0-9a-f]{12}-` + ipChainWords[c] + `) \{`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	return names
}

// TestIPLayerKernelSharedChains: ports whose IP-layer rules are the
// same share their FJ, FP and HJ chains; a port with other rules (here
// a source address, as an instantiated $IP gives) has chains of its own;
// a shared chain stays while some port uses it and goes with the last,
// in the same transaction.
func TestIPLayerKernelSharedChains(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })

	rules := func(src string) *netfilter.PortRules {
		r := ipRuleOf(netfilter.DirOut, netfilter.Drop, true, "tcp", "dstportstart", "25")
		limit := ipRuleOf(netfilter.DirOut, netfilter.Drop, true, "tcp", "connlimit-above", "2")
		if src != "" {
			r.Fields = append(r.Fields, netfilter.Field{Attr: "srcipaddr", Value: src})
		}
		return &netfilter.PortRules{IPv4: []netfilter.Rule{r, limit,
			ipRuleOf(netfilter.DirIn, netfilter.Accept, true, "tcp", "dstportstart", "22")}}
	}
	apply := func(step string, want int, ports ...*netfilter.PortState) {
		t.Helper()
		st := &netfilter.State{Ports: map[string]*netfilter.PortState{}}
		for _, p := range ports {
			st.Ports[p.Port] = p
		}
		if err := b.Apply(ctx, st); err != nil {
			t.Fatalf("%s: apply: %v", step, err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("%s: verify: %v", step, err)
		}
		for c := chainFJ; c < numIPChains; c++ {
			if got := ipChainsOf(t, ns, c); len(got) != want {
				t.Errorf("%s: %d %s chains %v, want %d", step, len(got), ipChainWords[c], got, want)
			}
		}
	}
	vnet0, vnet1 := enforce("vnet0", rules("")), enforce("vnet1", rules(""))
	vnet2 := enforce("vnet2", rules("10.0.0.3"))
	apply("two ports, one filter", 1, vnet0, vnet1)
	shared := b.applied.ports["vnet0"].ip.chains
	if b.applied.ports["vnet1"].ip.chains != shared {
		t.Fatalf("vnet0 and vnet1 do not share chains: %v, %v", shared, b.applied.ports["vnet1"].ip.chains)
	}
	for _, want := range []string{
		`0x00000001 : jump ` + shared[chainFJ], `0x00000002 : jump ` + shared[chainFJ],
		`0x00010000 : jump ` + shared[chainFP], `0x00020000 : jump ` + shared[chainFP],
		`0x00000001 : jump ` + shared[chainHJ], `0x00000002 : jump ` + shared[chainHJ],
	} {
		if out := ns.mustRun(t, "nft", "list", "table", "inet", TableName); !strings.Contains(out, want) {
			t.Errorf("the inet table lacks %q:\n%s", want, out)
		}
	}
	out := ns.mustRun(t, "nft", "list", "chain", "inet", TableName, shared[chainFJ])
	for _, want := range []string{"tcp dport 25 drop", "ct count over 2 } drop"} {
		if !strings.Contains(out, want) {
			t.Errorf("shared FJ chain lacks %q:\n%s", want, out)
		}
	}
	// vnet2's source address is in all three chains (reversed in FP).
	apply("a port with other rules", 2, vnet0, vnet1, vnet2)
	own := b.applied.ports["vnet2"].ip.chains
	for c := chainFJ; c < numIPChains; c++ {
		if own[c] == shared[c] {
			t.Errorf("vnet2 shares %s with vnet0: %v, %v", ipChainWords[c], own, shared)
		}
	}
	if out := ns.mustRun(t, "nft", "list", "chain", "inet", TableName, own[chainFJ]); !strings.Contains(out, "ip saddr 10.0.0.3 tcp dport 25 drop") {
		t.Errorf("vnet2's FJ chain:\n%s", out)
	}
	apply("one sharing port gone", 2, vnet1, vnet2)
	if got := ipChainsOf(t, ns, chainFJ); !slices.Contains(got, shared[chainFJ]) {
		t.Errorf("shared FJ chain gone while vnet1 uses it: %v", got)
	}
	// vnet1 takes vnet2's rules: the shared chains go with their last
	// port in the same transaction as its elements change.
	vnet1b := enforce("vnet1", rules("10.0.0.3"))
	apply("last sharing port changed", 1, vnet1b, vnet2)
	if got := ipChainsOf(t, ns, chainFJ); slices.Contains(got, shared[chainFJ]) {
		t.Errorf("shared FJ chain left without ports: %v", got)
	}
	apply("back", 2, vnet0, vnet1b, vnet2)
	apply("last port of own chains gone", 1, vnet0)
	if got := ipChainsOf(t, ns, chainFJ); len(got) != 1 || got[0] != shared[chainFJ] {
		t.Errorf("FJ chains %v, want %s", got, shared[chainFJ])
	}
	// A restart adopts the same layout.
	b = New(Config{NetNS: int(ns.fd)})
	apply("restart", 1, vnet0, enforce("vnet1", rules("")))
}

// TestIPLayerConnlimitPerPort: two ports sharing one FJ chain with
// connlimit-above='2' count their connections each: the count is keyed
// by the sending port's id from the packet mark, not by the chain. Both
// guests have the same address (each server reaches its own guest by a
// permanent neighbour entry), so counting by rule and source address
// alone would stop guest 1's first connection after guest 0's two.
func TestIPLayerConnlimitPerPort(t *testing.T) {
	requireKernel(t)
	l := lab.New(t)
	hv := l.Hypervisor()
	g0, g1, s0, s1 := l.AddGuest(), l.AddGuest(), l.AddGuest(), l.AddGuest()
	hv.AddBridge("br0", "", g0.HostIface, g1.HostIface, s0.HostIface, s1.HostIface)
	g0.SetAddr("10.77.6.10/24")
	g1.SetAddr("10.77.6.10/24")
	s0.SetAddr("10.77.6.20/24")
	s1.SetAddr("10.77.6.21/24")
	s0.MustRun("ip", "neigh", "replace", "10.77.6.10", "lladdr", g0.MAC.String(), "dev", s0.Iface, "nud", "permanent")
	s1.MustRun("ip", "neigh", "replace", "10.77.6.10", "lladdr", g1.MAC.String(), "dev", s1.Iface, "nud", "permanent")
	for _, s := range []*lab.Guest{s0, s1} {
		if _, err := s.TCPEcho(":80"); err != nil {
			t.Fatal(err)
		}
	}
	h, err := netns.GetFromName(hv.Name)
	if err != nil {
		t.Fatalf("open %s: %v", hv.Name, err)
	}
	t.Cleanup(func() { h.Close() })
	ctx := context.Background()
	b := New(Config{NetNS: int(h)})
	t.Cleanup(func() { _ = b.Remove(ctx) })
	limit := func(port string) *netfilter.PortState {
		return enforce(port, &netfilter.PortRules{IPv4: []netfilter.Rule{
			ipRuleOf(netfilter.DirOut, netfilter.Drop, true, "tcp", "connlimit-above", "2")}})
	}
	st := &netfilter.State{Ports: map[string]*netfilter.PortState{
		g0.HostIface: limit(g0.HostIface), g1.HostIface: limit(g1.HostIface)}}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	fj := b.applied.ports[g0.HostIface].ip.chains[chainFJ]
	if b.applied.ports[g1.HostIface].ip.chains[chainFJ] != fj {
		t.Fatal("the two ports do not share their FJ chain")
	}
	for _, c := range []struct {
		g    *lab.Guest
		addr string
	}{{g0, "10.77.6.20:80"}, {g1, "10.77.6.21:80"}} {
		for i := 1; i <= 2; i++ {
			if _, err := c.g.DialTCP(c.addr, 3*time.Second); err != nil {
				t.Fatalf("%s: connection %d to %s: %v", c.g.HostIface, i, c.addr, err)
			}
		}
		if err := c.g.CanConnectTCP(c.addr, time.Second); err == nil {
			t.Errorf("%s: a third concurrent connection to %s was opened", c.g.HostIface, c.addr)
		}
	}
	out := hv.MustRun("nft", "list", "set", "inet", TableName, connlimitSetName(chainFJ, false))
	t.Logf("FJ chain %s, connlimit set:\n%s", fj, out)
}
