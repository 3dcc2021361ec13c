package xtables

import (
	"context"
	"testing"
	"time"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/tests/lab"
)

// watchState is two filtered ports (clean-traffic, and a tcp rule: the
// IP layer) and a nat network.
func watchState(t *testing.T, hv *lab.Netns) *netfilter.State {
	t.Helper()
	hv.MustRun("ip", "link", "add", "brw", "type", "bridge") // loads br_netfilter's sysctls
	n, err := network.Parse([]byte(`<network><name>labnat</name><forward mode='nat'/><bridge name='nwbr0'/>
<ip address='10.77.5.1' netmask='255.255.255.0'/></network>`))
	if err != nil {
		t.Fatal(err)
	}
	nr, err := network.FirewallRules(n)
	if err != nil {
		t.Fatal(err)
	}
	reg := builtinFilters(t)
	return &netfilter.State{
		Ports: map[string]*netfilter.PortState{
			"vnet0": {Mode: netfilter.Enforce, Rules: instantiate(t, reg, "clean-traffic", "vnet0", "52:54:00:00:00:01", ipParam("10.0.0.1")...)},
			"vnet1": {Mode: netfilter.Enforce, Rules: tcpPortRules("vnet1")},
		},
		Networks: map[string]*netfilter.NetworkRules{nr.Network: nr},
	}
}

// drain empties a signal channel.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// waitSignal waits up to d for a signal and returns how long it took.
func waitSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch channel closed", what)
		}
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s: no signal within %v", what, d)
	}
	return 0
}

// noSignal fails if a signal arrives within d.
func noSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: unexpected signal", what)
	case <-time.After(d):
	}
}

// TestWatch: with the nf_tables programs, a flush or deletion by someone
// else (iptables -F, iptables -X, ebtables -t nat -F, a single chain's
// flush) is signalled within 100 ms, Verify then fails and Apply
// restores; our own Applies (first, unchanged, changed, the restore)
// and others' changes to chains that are not ours signal nothing.
func TestWatch(t *testing.T) {
	requireKernel(t)
	l := lab.New(t)
	b, hv := hvBackend(t, l, FlavourNFT)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := watchState(t, hv)
	ch, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	noSignal(t, ch, 200*time.Millisecond, "first Apply")

	// A changed port: new chains, swapped dispatch, old chains deleted.
	st.Ports["vnet1"] = &netfilter.PortState{Mode: netfilter.DropAll, Reason: "test"}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	noSignal(t, ch, 200*time.Millisecond, "changing Apply")

	// Others' chains and rules in the same tables are none of ours.
	hv.MustRun("iptables-nft", "-N", "OTHER")
	hv.MustRun("iptables-nft", "-A", "OTHER", "-j", "RETURN")
	hv.MustRun("iptables-nft", "-F", "OTHER")
	hv.MustRun("iptables-nft", "-X", "OTHER")
	noSignal(t, ch, 200*time.Millisecond, "another tool's chain")

	for _, flush := range [][][]string{
		{{"iptables", "-F"}},
		{{"iptables", "-F"}, {"iptables", "-X"}},
		{{"ebtables", "-t", "nat", "-F"}},
		{{"iptables", "-t", "nat", "-F"}},
		{{"ip6tables", "-F"}},
		{{"ebtables", "-t", "nat", "-F", "NW-PRE"}},
		{{"iptables", "-D", "FORWARD", "-j", "NW-FORWARD"}},
		{{"ebtables", "-t", "nat", "-F"}, {"ebtables", "-t", "nat", "-X"}},
	} {
		name := ""
		for i, c := range flush {
			if i > 0 {
				name += "; "
			}
			for j, a := range c {
				if j > 0 {
					name += " "
				}
				name += a
			}
		}
		start := time.Now()
		for _, c := range flush {
			hv.MustRun(c...) // the nf_tables programs: the system's alternatives here
		}
		ran := time.Since(start)
		waitSignal(t, ch, time.Second, name)
		d := time.Since(start)
		t.Logf("%s: signal %v after the flush began (the command ran %v)", name, d.Round(100*time.Microsecond), ran.Round(time.Millisecond))
		if d-ran > 100*time.Millisecond {
			t.Errorf("%s: signal after %v, want within 100 ms", name, d)
		}
		time.Sleep(50 * time.Millisecond) // the rest of a multi-command flush
		drain(ch)
		if err := b.Verify(ctx); err == nil {
			t.Fatalf("%s: Verify finds nothing wrong", name)
		}
		if err := b.Apply(ctx, st); err != nil {
			t.Fatalf("%s: restore: %v", name, err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("%s: after the restore: %v", name, err)
		}
		noSignal(t, ch, 150*time.Millisecond, name+": the restore")
	}
	cancel()
	for range ch {
	}
}

// TestWatchLegacy: with legacy iptables the poll of the tables' kernel
// description notices a flush within a poll period and a second; our
// own Applies signal nothing.
func TestWatchLegacy(t *testing.T) {
	requireKernel(t)
	l := lab.New(t)
	b, hv := hvBackend(t, l, FlavourLegacy)
	if _, err := hv.Run("iptables-legacy", "-L", "-n"); err != nil {
		t.Skipf("legacy iptables unavailable: %v", err)
	}
	if _, err := hv.Run("ebtables-legacy", "-t", "nat", "-L"); err != nil {
		b.cfg.EbtablesFlavour = FlavourNFT
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := watchState(t, hv)
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	ch, err := b.Watch(ctx) // after the first Apply, as in the daemon
	if err != nil {
		t.Fatal(err)
	}
	st.Ports["vnet1"] = &netfilter.PortState{Mode: netfilter.DropAll, Reason: "test"}
	if err := b.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	noSignal(t, ch, 2500*time.Millisecond, "own Apply")
	for _, flush := range [][]string{
		{"iptables-legacy", "-F"},
		{"ip6tables-legacy", "-t", "nat", "-F"},
		{"iptables-legacy", "-t", "nat", "-F", "NW-POSTROUTING"},
	} {
		start := time.Now()
		hv.MustRun(flush...)
		waitSignal(t, ch, 2*time.Second, flush[0])
		t.Logf("%v: signal %v after the flush began", flush, time.Since(start).Round(time.Millisecond))
		if err := b.Verify(ctx); err == nil {
			t.Fatalf("%v: Verify finds nothing wrong", flush)
		}
		if err := b.Apply(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		noSignal(t, ch, 1500*time.Millisecond, "the restore")
	}
	// The nf_tables part (ebtables-nft beside legacy iptables) is
	// watched through notifications.
	if b.cfg.EbtablesFlavour == FlavourNFT {
		hv.MustRun("ebtables-nft", "-t", "nat", "-F")
		waitSignal(t, ch, 200*time.Millisecond, "ebtables-nft -t nat -F")
	}
}
