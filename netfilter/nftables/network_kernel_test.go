package nftables

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/netfilter"
)

// TestNetworkKernelGolden applies every network case alone, and two
// networks together, in a private namespace and compares the kernel's
// listing of the networks table with testdata/network/<case>.nft.
// Regenerate with `go test ./netfilter/nftables/ -run NetworkKernel -update`.
func TestNetworkKernelGolden(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })
	cases := networkCases(t)
	type tcase struct {
		name string
		nets []*netfilter.NetworkRules
	}
	var all []tcase
	for _, name := range sortedKeys(cases) {
		all = append(all, tcase{name, []*netfilter.NetworkRules{cases[name]}})
	}
	all = append(all, tcase{"two-networks", []*netfilter.NetworkRules{cases["nat-default"], cases["isolated"]}})
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			st := &netfilter.State{Networks: map[string]*netfilter.NetworkRules{}}
			for _, n := range tc.nets {
				st.Networks[n.Network] = n
			}
			if err := b.Apply(ctx, st); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if err := b.Verify(ctx); err != nil {
				t.Fatalf("verify: %v", err)
			}
			checkKernelGolden(t, "network/"+tc.name+".nft", ns.mustRun(t, "nft", "list", "table", "inet", NetTableName))
		})
	}
}

// TestNetworkKernelLifecycle: networks are applied with ports in one
// transaction, an Apply that changes only ports leaves the networks
// table alone, a removed network's chains go, Verify notices a deleted
// or altered networks table, a restarted backend replaces what it finds,
// and Remove leaves no table.
func TestNetworkKernelLifecycle(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })
	cases := networkCases(t)
	nat, iso := cases["nat-default"], cases["isolated"]
	vnet0 := enforce("vnet0", &netfilter.PortRules{Chains: firewallDataCases(t)["mac"].Chains})
	vnet1 := &netfilter.PortState{Port: "vnet1", Mode: netfilter.DropAll}
	state := func(nets ...*netfilter.NetworkRules) func(ports ...*netfilter.PortState) *netfilter.State {
		return func(ports ...*netfilter.PortState) *netfilter.State {
			st := &netfilter.State{Ports: map[string]*netfilter.PortState{}, Networks: map[string]*netfilter.NetworkRules{}}
			for _, p := range ports {
				st.Ports[p.Port] = p
			}
			for _, n := range nets {
				st.Networks[n.Network] = n
			}
			return st
		}
	}
	apply := func(step string, st *netfilter.State) {
		t.Helper()
		if err := b.Apply(ctx, st); err != nil {
			t.Fatalf("%s: apply: %v", step, err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("%s: verify: %v", step, err)
		}
	}
	listNet := func() string {
		t.Helper()
		out, _ := ns.run("nft", "-a", "list", "table", "inet", NetTableName)
		return out
	}
	apply("ports and two networks", state(nat, iso)(vnet0))
	first := listNet()
	for _, want := range []string{`comment "network default"`, `comment "network isolated net/_ _quoted_"`} {
		if !strings.Contains(first, want) {
			t.Errorf("networks table lacks %q:\n%s", want, first)
		}
	}
	// Only ports change: the networks table keeps its handles.
	apply("a port added", state(nat, iso)(vnet0, vnet1))
	if got := listNet(); got != first {
		t.Errorf("an Apply changing only ports replaced the networks table:\n%s", lineDiff(first, got))
	}
	// An equal copy of the networks changes nothing either.
	natCopy := *nat
	apply("same networks, new values", state(&natCopy, iso)(vnet0, vnet1))
	if got := listNet(); got != first {
		t.Errorf("an Apply with equal networks replaced the networks table:\n%s", lineDiff(first, got))
	}
	// One network goes, with a port change, in one Apply.
	apply("isolated network removed", state(nat)(vnet0))
	out := ns.mustRun(t, "nft", "list", "ruleset")
	if strings.Contains(out, "n-"+shortHash(iso.Network)) || strings.Contains(out, "isolated") {
		t.Errorf("the removed network's chains are left:\n%s", out)
	}
	if !strings.Contains(out, "n-"+shortHash(nat.Network)+"-fwo") || strings.Contains(out, `"vnet1"`) {
		t.Errorf("after removing a network and a port:\n%s", out)
	}
	// Verify notices the table deleted, and a rule deleted.
	ns.mustRun(t, "nft", "delete", "table", "inet", NetTableName)
	if err := b.Verify(ctx); err == nil || !strings.Contains(err.Error(), NetTableName) {
		t.Fatalf("verify without the networks table: %v", err)
	}
	apply("restored", state(nat)(vnet0))
	ns.mustRun(t, "nft", "flush", "chain", "inet", NetTableName, "n-"+shortHash(nat.Network)+"-fwi")
	if err := b.Verify(ctx); err == nil {
		t.Fatal("verify passed with a flushed network chain")
	}
	apply("restored again", state(nat)(vnet0))
	want := readFileOr(t, "testdata/network/nat-default.nft")
	if got := ns.mustRun(t, "nft", "list", "table", "inet", NetTableName); got != want {
		t.Errorf("restored table differs from the golden file:\n%s", lineDiff(want, got))
	}
	// A restarted daemon replaces what it finds, without duplicates.
	b = New(Config{NetNS: int(ns.fd)})
	apply("restart", state(nat)(vnet0))
	if got := ns.mustRun(t, "nft", "list", "table", "inet", NetTableName); got != want {
		t.Errorf("after a restart the table differs from the golden file:\n%s", lineDiff(want, got))
	}
	// Networks gone: the table goes; ports stay.
	apply("no networks", state()(vnet0))
	if out := ns.mustRun(t, "nft", "list", "tables"); strings.Contains(out, NetTableName) {
		t.Errorf("networks table left without networks:\n%s", out)
	}
	apply("networks again", state(iso)(vnet0))
	if err := b.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if out := ns.mustRun(t, "nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
		t.Errorf("Remove left:\n%s", out)
	}
}

// TestNetworkKernelInvalid: a state with an invalid network is refused
// as a whole and the kernel keeps what was in force.
func TestNetworkKernelInvalid(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })
	nat := networkCases(t)["nat-default"]
	good := &netfilter.State{Networks: map[string]*netfilter.NetworkRules{nat.Network: nat}}
	if err := b.Apply(ctx, good); err != nil {
		t.Fatal(err)
	}
	before := ns.mustRun(t, "nft", "-a", "list", "ruleset")
	bad := &netfilter.State{Networks: map[string]*netfilter.NetworkRules{
		nat.Network: nat,
		"bad":       {Network: "bad", Bridge: "this-name-is-too-long"},
	}}
	if err := b.Apply(ctx, bad); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("apply of an invalid network: %v", err)
	}
	if after := ns.mustRun(t, "nft", "-a", "list", "ruleset"); after != before {
		t.Errorf("a refused Apply changed the kernel:\n%s", lineDiff(before, after))
	}
	if err := b.Verify(ctx); err != nil {
		t.Errorf("verify after a refused Apply: %v", err)
	}
}

// BenchmarkNetworkApplyWith1000Ports measures an Apply that adds a nat
// network to a state of 1000 bound ports that do not change: as the first
// network (the networks table is created) and as a second one (the table
// is replaced, which costs the kernel a grace period for the deleted base
// chains).
func BenchmarkNetworkApplyWith1000Ports(b *testing.B) {
	ns := newBenchNS(b)
	ctx := context.Background()
	be := New(Config{NetNS: int(ns)})
	b.Cleanup(func() { _ = be.Remove(ctx) })
	chains := firewallDataCases(b)["mac"].Chains
	ports := map[string]*netfilter.PortState{}
	for i := range 1000 {
		name := fmt.Sprintf("vnet%d", i)
		ports[name] = enforce(name, &netfilter.PortRules{Chains: chains})
	}
	nat := natNetwork("default", "virbr0", "192.168.122.0/24", "", netfilter.NATRange{})
	iso := isolatedNetwork("isolated", "virbr1")
	for _, bc := range []struct {
		name   string
		before []*netfilter.NetworkRules
	}{
		{"first-network", nil},
		{"second-network", []*netfilter.NetworkRules{iso}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			without := &netfilter.State{Ports: ports, Networks: map[string]*netfilter.NetworkRules{}}
			for _, n := range bc.before {
				without.Networks[n.Network] = n
			}
			with := &netfilter.State{Ports: ports, Networks: map[string]*netfilter.NetworkRules{nat.Network: nat}}
			for _, n := range bc.before {
				with.Networks[n.Network] = n
			}
			if err := be.Apply(ctx, without); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := be.Apply(ctx, with); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := be.Apply(ctx, without); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// newBenchNS creates a private namespace for a benchmark, deleted at its
// end; without root it skips.
func newBenchNS(b *testing.B) netns.NsHandle {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		b.Fatal(err)
	}
	name := "nwm-" + hex.EncodeToString(id)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	b.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			b.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		b.Fatalf("open namespace %s: %v", name, err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}
