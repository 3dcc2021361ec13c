package xtables

import (
	"context"
	"errors"

	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/nftables"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/tests/lab"
)

// Kernel tests run every command inside a namespace of a lab; the
// machine's own namespace and firewall are never touched.

func strictKernel() bool {
	return os.Getenv("CI") == "true" || os.Getenv("NETWARDEN_INTEGRATION") == "1"
}

func requireKernel(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range []string{"ip", "nft", "ebtables-restore", "iptables-restore", "ip6tables-restore", "iptables-save", "ebtables-save"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "kernel test needs " + strings.Join(missing, ", ")
	if strictKernel() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// hvBackend makes a backend working in a fresh lab's hypervisor
// namespace.
func hvBackend(t testing.TB, l *lab.Lab, flavour Flavour) (*Backend, *lab.Netns) {
	t.Helper()
	hv := l.Hypervisor()
	h, err := netns.GetFromName(hv.Name)
	if err != nil {
		t.Fatalf("open %s: %v", hv.Name, err)
	}
	t.Cleanup(func() { h.Close() })
	b := New(Config{NetNS: int(h), Flavour: flavour})
	t.Cleanup(func() { _ = b.Remove(context.Background()) })
	return b, hv
}

// ours lists the chains of ours and hooks in a namespace, all tools.
func ours(t *testing.T, b *Backend) []string {
	t.Helper()
	var out []string
	for tl := tool(0); tl < numTools; tl++ {
		ex, hk, err := b.readOurs(context.Background(), tl)
		if err != nil {
			t.Fatal(err)
		}
		for table, chains := range ex {
			for c := range chains {
				out = append(out, tl.String()+" "+table+" "+c)
			}
			for h := range hk[table] {
				out = append(out, tl.String()+" "+table+" "+h.builtin+" -j "+h.chain)
			}
		}
	}
	return out
}

// TestKernelConformance loads every case of libvirt's
// nwfilterxml2firewalldata and networkxml2firewalldata into a namespace
// (each case replacing the one before, as one Apply), verifies it, and
// removes everything at the end; with the nf_tables programs and, where
// the kernel has the legacy tables, the legacy ones.
func TestKernelConformance(t *testing.T) {
	requireKernel(t)
	cases := firewallDataCases(t)
	for _, fl := range []Flavour{FlavourNFT, FlavourLegacy} {
		t.Run(string(fl), func(t *testing.T) {
			l := lab.New(t)
			b, hv := hvBackend(t, l, fl)
			if fl == FlavourLegacy {
				if _, err := hv.Run("iptables-legacy", "-L", "-n"); err != nil {
					if strictKernel() {
						t.Logf("legacy iptables unavailable in this kernel: %v", err)
					}
					t.Skipf("legacy iptables unavailable: %v", err)
				}
				if _, err := hv.Run("ebtables-legacy", "-t", "nat", "-L"); err != nil {
					t.Logf("legacy ebtables unavailable, ebtables-nft beside legacy iptables: %v", err)
					b.cfg.EbtablesFlavour = FlavourNFT
				}
			}
			ctx := context.Background()
			if _, err := b.Probe(ctx); err != nil {
				t.Fatal(err)
			}
			hv.MustRun("ip", "link", "add", "brx", "type", "bridge") // loads br_netfilter's sysctls
			for _, name := range sortedKeys(cases) {
				st := &netfilter.State{Ports: map[string]*netfilter.PortState{
					"vnet0": {Mode: netfilter.Enforce, Rules: cases[name]},
					"vnet9": {Mode: netfilter.DropAll, Reason: "test"},
				}}
				err := b.Apply(ctx, st)
				var pe *netfilter.PortErrors
				if err != nil && !(errors.As(err, &pe) && len(pe.Ports) == 1 && pe.Ports["vnet0"] != nil) {
					t.Fatalf("%s: apply: %v", name, err)
				}
				if err := b.Verify(ctx); err != nil {
					t.Fatalf("%s: verify: %v", name, err)
				}
			}
			if err := b.Remove(ctx); err != nil {
				t.Fatal(err)
			}
			if left := ours(t, b); len(left) > 0 {
				t.Fatalf("left after Remove: %v", left)
			}
		})
	}
}

// TestLifecycle: Apply, Verify, someone flushes a chain, Verify says so,
// Apply puts it back, Remove leaves nothing; applying twice changes
// nothing (no restore runs).
func TestLifecycle(t *testing.T) {
	requireKernel(t)
	l := lab.New(t)
	b, hv := hvBackend(t, l, FlavourDefault)
	ctx := context.Background()
	reg := builtinFilters(t)
	st := &netfilter.State{Ports: map[string]*netfilter.PortState{
		"vnet0": {Mode: netfilter.Enforce, Rules: instantiate(t, reg, "clean-traffic", "vnet0", "52:54:00:00:00:01", ipParam("10.0.0.1")...)},
		"vnet1": {Mode: netfilter.Enforce, Rules: tcpPortRules("vnet1")},
	}}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	before := hv.MustRun("iptables-save", "-t", "filter") + hv.MustRun("ebtables-save", "-t", "nat")
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	after := hv.MustRun("iptables-save", "-t", "filter") + hv.MustRun("ebtables-save", "-t", "nat")
	if strip(before) != strip(after) {
		t.Errorf("second Apply changed the kernel:\n%s\n---\n%s", before, after)
	}
	hv.MustRun("ebtables", "-t", "nat", "-F", "NI0-vnet0")
	if err := b.Verify(ctx); err == nil || !strings.Contains(err.Error(), "NI0-vnet0") {
		t.Fatalf("verify after a flush: %v", err)
	}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatalf("verify after repair: %v", err)
	}
	// A fresh backend (a restarted daemon) adopts what is there.
	b2 := New(b.cfg)
	if err := b2.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := b2.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b2.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if left := ours(t, b2); len(left) > 0 {
		t.Fatalf("left after Remove: %v", left)
	}
}

// strip drops save's comment lines (dates).
func strip(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func ipParam(ips ...string) []policy.Param {
	var ps []policy.Param
	for _, ip := range ips {
		ps = append(ps, policy.Param{Name: "IP", Value: ip})
	}
	return ps
}

// tcpPortRules: TCP to port 80 of the guest accepted with connection
// tracking (libvirt's default NEW,ESTABLISHED / ESTABLISHED), all other
// IPv4 dropped.
func tcpPortRules(port string) *netfilter.PortRules {
	return &netfilter.PortRules{Port: port, IPv4: []netfilter.Rule{
		{Direction: netfilter.DirIn, Action: netfilter.Accept, StateMatch: true, Protocol: "tcp",
			Fields: []netfilter.Field{{Attr: "dstportstart", Value: "80"}}, Origin: netfilter.Origin{Filter: "t", Rule: 1}},
		{Direction: netfilter.DirInOut, Action: netfilter.Drop, StateMatch: true, Protocol: "all",
			Origin: netfilter.Origin{Filter: "t", Rule: 2}},
	}}
}

var lookPath = exec.LookPath

// TestSwitchBackends: nftables enforces a port, then xtables takes over
// and, after its first Apply, nftables' tables are gone; then back.
func TestSwitchBackends(t *testing.T) {
	requireKernel(t)
	l := lab.New(t)
	x, hv := hvBackend(t, l, FlavourDefault)
	nft := nftables.New(nftables.Config{NetNS: x.cfg.NetNS})
	t.Cleanup(func() { _ = nft.Remove(context.Background()) })
	ctx := context.Background()
	reg := builtinFilters(t)
	st := &netfilter.State{Ports: map[string]*netfilter.PortState{
		"vnet0": {Mode: netfilter.Enforce, Rules: instantiate(t, reg, "clean-traffic", "vnet0", "52:54:00:00:00:01", ipParam("10.0.0.1")...)},
	}}
	hasNft := func() bool { return strings.Contains(hv.MustRun("nft", "list", "tables"), "netwarden") }
	if err := nft.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if !hasNft() {
		t.Fatal("nftables tables missing")
	}
	if err := Switch(x, nft, nil).Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if hasNft() {
		t.Error("nftables' tables still there after the switch to xtables")
	}
	if err := x.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Switch(nftables.New(nftables.Config{NetNS: x.cfg.NetNS}), New(x.cfg), nil).Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if left := ours(t, x); len(left) > 0 {
		t.Errorf("xtables chains left after the switch to nftables: %v", left)
	}
	if !hasNft() {
		t.Error("nftables tables missing after the switch back")
	}
}
