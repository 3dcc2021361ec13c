package nftables

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/netfilter"
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
	vnet1b := enforce("vnet1", &netfilter.PortRules{Chains: cases["mac"].Chains})
	apply("IP rules gone, port gone", vnet0b, vnet1b)
	out = ns.mustRun(t, "nft", "list", "ruleset")
	if strings.Contains(out, "fj-vnet1") || strings.Contains(out, "vnet2") {
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
	if out := ns.mustRun(t, "nft", "list", "chain", "inet", TableName, "fj-vnet0"); !strings.Contains(out, "ct count over 2") {
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
