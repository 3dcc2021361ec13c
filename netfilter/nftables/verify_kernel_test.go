package nftables

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/netfilter"
)

// fallbackPort is a port whose filter has a rule that cannot be a set
// lookup (a negated match with a variable): its program dispatches
// through a fallback map to a chain of the port's own.
func fallbackPort(name, mac string) *netfilter.PortState {
	origin := func(i int) netfilter.Origin { return netfilter.Origin{Filter: "fb", Rule: i} }
	return enforce(name, &netfilter.PortRules{Chains: []*netfilter.Chain{{Name: "root", Rules: []netfilter.Rule{
		{Direction: netfilter.DirOut, Action: netfilter.Drop, Protocol: "mac", Negate: true,
			Fields: []netfilter.Field{v("srcmacaddr", "MAC", mac)}, Origin: origin(1),
			Vars: []netfilter.Binding{{Name: "MAC", Value: mac}}},
		{Direction: netfilter.DirInOut, Action: netfilter.Accept, Protocol: "mac",
			Fields: []netfilter.Field{f("protocolid", "arp")}, Origin: origin(2)},
	}}}})
}

// verifyState is 10 ports bound to clean-traffic with a tcp rule (so the
// inet table has shared chains), two ports with fallback chains, and a
// nat network.
func verifyState(t testing.TB) *netfilter.State {
	st := watchState(t, 10, 25)
	st.Ports["fb0"] = fallbackPort("fb0", "52:54:00:00:10:00")
	st.Ports["fb1"] = fallbackPort("fb1", "52:54:00:00:10:01")
	return st
}

// ruleHandles lists the handles of a chain's rules.
func ruleHandles(t *testing.T, ns *testNS, family, chain string) []string {
	t.Helper()
	out := ns.mustRun(t, "nft", "-a", "list", "chain", family, TableName, chain)
	var hs []string
	for _, m := range regexp.MustCompile(`(?m)^\t\t.* # handle (\d+)$`).FindAllStringSubmatch(out, -1) {
		hs = append(hs, m[1])
	}
	return hs
}

// TestVerifyKernelDamage: after an Apply, each change by someone else to
// netwarden's tables (a flushed table or chain, a deleted or added rule,
// a chain of unknown origin, a deleted port element) makes Verify fail
// with the first difference, and the following Apply restores the
// tables as they were, which Verify then accepts.
func TestVerifyKernelDamage(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })
	desired := verifyState(t)
	if err := b.Apply(ctx, desired); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatalf("verify after apply: %v", err)
	}
	before := ns.mustRun(t, "nft", "list", "ruleset")

	bridgeWant := b.applied.ruleCounts()
	prog := b.applied.ports["vnet0"].prog.outRoot
	fj := b.applied.ports["vnet0"].ip.chains[chainFJ]
	fjRules := b.applied.ipChainRules[fj]
	fbChain := b.applied.ports["fb0"].data.chains[0].name
	progHandles := ruleHandles(t, ns, "bridge", prog)
	if len(progHandles) != bridgeWant[prog] || len(progHandles) < 2 {
		t.Fatalf("chain %s has %d rules listed, want %d (at least 2)", prog, len(progHandles), bridgeWant[prog])
	}
	if fjRules == 0 {
		t.Fatalf("shared chain %s has no rules to flush", fj)
	}
	t.Logf("program chain %s: %d rules; shared chain %s: %d rules; fallback chain %s: %d rules",
		prog, bridgeWant[prog], fj, fjRules, fbChain, bridgeWant[fbChain])

	for _, tc := range []struct {
		name, cmd, want string
	}{
		{"flush-bridge-table", "flush table bridge " + TableName,
			fmt.Sprintf("chain %s of table bridge %s has 0 rules, want 1", chainFromGuest, TableName)},
		{"flush-from-guest", "flush chain bridge " + TableName + " " + chainFromGuest,
			fmt.Sprintf("chain %s of table bridge %s has 0 rules, want 1", chainFromGuest, TableName)},
		{"flush-program-chain", "flush chain bridge " + TableName + " " + prog,
			fmt.Sprintf("chain %s of table bridge %s has 0 rules, want %d", prog, TableName, bridgeWant[prog])},
		{"delete-program-rule", "delete rule bridge " + TableName + " " + prog + " handle " + progHandles[1],
			fmt.Sprintf("chain %s of table bridge %s has %d rules, want %d", prog, TableName, bridgeWant[prog]-1, bridgeWant[prog])},
		{"flush-fallback-chain", "flush chain bridge " + TableName + " " + fbChain,
			fmt.Sprintf("chain %s of table bridge %s has 0 rules, want %d", fbChain, TableName, bridgeWant[fbChain])},
		{"add-rule-inet-forward", "add rule inet " + TableName + " " + chainIPForward + " accept",
			fmt.Sprintf("chain %s of table inet %s has 3 rules, want 2", chainIPForward, TableName)},
		{"flush-shared-ip-chain", "flush chain inet " + TableName + " " + fj,
			fmt.Sprintf("chain %s of table inet %s has 0 rules, want %d", fj, TableName, fjRules)},
		{"unknown-chain", "add chain bridge " + TableName + " intruder",
			fmt.Sprintf("table bridge %s has 1 chains netwarden did not install (e.g. intruder)", TableName)},
		{"unknown-inet-chain", "add chain inet " + TableName + " intruder; add rule inet " + TableName + " intruder accept",
			fmt.Sprintf("table inet %s has 1 chains netwarden did not install (e.g. intruder)", TableName)},
		{"delete-port-element", "delete element bridge " + TableName + " " + mapFromGuest + " { vnet3 }",
			fmt.Sprintf("set %s of table bridge %s has 11 elements, want 12", mapFromGuest, TableName)},
		{"flush-networks-chain", "flush chain inet " + NetTableName + " forward",
			fmt.Sprintf("chain forward of table inet %s has 0 rules, want %d", NetTableName, b.nets.ruleCounts()["forward"])},
		{"delete-bridge-table", "delete table bridge " + TableName,
			fmt.Sprintf("chain %s of table bridge %s missing", chainFromGuest, TableName)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns.mustRun(t, "nft", tc.cmd)
			err := b.Verify(ctx)
			if err == nil {
				t.Fatalf("Verify after nft %s: nil", tc.cmd)
			}
			t.Logf("nft %s: %v", tc.cmd, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify after nft %s: %v, want %q", tc.cmd, err, tc.want)
			}
			if err := b.Apply(ctx, desired); err != nil {
				t.Fatalf("apply after nft %s: %v", tc.cmd, err)
			}
			if err := b.Verify(ctx); err != nil {
				t.Fatalf("verify after the restoring apply: %v", err)
			}
			if got := ns.mustRun(t, "nft", "list", "ruleset"); got != before {
				t.Errorf("after nft %s and Apply, the ruleset differs from the first Apply's:\n%s", tc.cmd, lineDiff(before, got))
			}
		})
	}
}

// TestVerifyKernelOwnApplies: Verify accepts what every kind of Apply
// leaves: ports with fallback chains added, changed (their chains
// refilled) and removed, programs appearing and going, the IP layer
// coming and going, networks changing, and a restart.
func TestVerifyKernelOwnApplies(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx := context.Background()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(ctx) })
	apply := func(step string, st *netfilter.State) {
		t.Helper()
		if err := b.Apply(ctx, st); err != nil {
			t.Fatalf("%s: apply: %v", step, err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("%s: verify: %v", step, err)
		}
	}
	full := verifyState(t)
	with := func(base *netfilter.State, ports ...*netfilter.PortState) *netfilter.State {
		st := &netfilter.State{Ports: maps.Clone(base.Ports), Networks: base.Networks}
		for _, p := range ports {
			st.Ports[p.Port] = p
		}
		return st
	}
	without := func(base *netfilter.State, names ...string) *netfilter.State {
		st := &netfilter.State{Ports: maps.Clone(base.Ports), Networks: base.Networks}
		for _, n := range names {
			delete(st.Ports, n)
		}
		return st
	}
	apply("nothing", &netfilter.State{})
	apply("clean-traffic only", &netfilter.State{Ports: cleanTrafficPorts(t, 5)})
	apply("everything", full)
	apply("fallback MAC changed", with(full, fallbackPort("fb0", "52:54:00:00:10:10")))
	apply("fallback port added", with(full, fallbackPort("fb2", "52:54:00:00:10:02")))
	apply("fallback ports gone", without(full, "fb0", "fb1"))
	apply("tcp rule changed", &netfilter.State{Ports: tcpFilterPorts(t, 10, 26), Networks: full.Networks})
	apply("network gone", &netfilter.State{Ports: full.Ports})
	apply("IP layer gone", &netfilter.State{Ports: cleanTrafficPorts(t, 10)})
	apply("back", full)
	b = New(Config{NetNS: int(ns.fd)})
	apply("restart", full)
	apply("drop-all", with(full, &netfilter.PortState{Port: "vnet0", Mode: netfilter.DropAll}))
	apply("nothing again", &netfilter.State{})
}

// BenchmarkVerify1000Ports measures Verify of 1000 ports bound to
// clean-traffic and a nat network, all in place; with-ip-layer adds a tcp
// rule to every port (the IP layer: the inet table, the port ids).
func BenchmarkVerify1000Ports(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ports func(testing.TB) map[string]*netfilter.PortState
	}{
		{"clean-traffic", func(tb testing.TB) map[string]*netfilter.PortState { return cleanTrafficPorts(tb, 1000) }},
		{"with-ip-layer", func(tb testing.TB) map[string]*netfilter.PortState { return tcpFilterPorts(tb, 1000, 25) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ns := newBenchNS(b)
			ctx := context.Background()
			be := New(Config{NetNS: int(ns)})
			b.Cleanup(func() { _ = be.Remove(ctx) })
			nat := natNetwork("default", "virbr0", "192.168.122.0/24", "", netfilter.NATRange{})
			st := &netfilter.State{
				Ports:    bc.ports(b),
				Networks: map[string]*netfilter.NetworkRules{nat.Network: nat},
			}
			if err := be.Apply(ctx, st); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := be.Verify(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
