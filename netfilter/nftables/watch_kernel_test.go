package nftables

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/fwcases"
	"github.com/netwarden/netwarden/policy"
)

// cleanTrafficPorts binds n ports to clean-traffic, each with its own MAC
// and IP.
func cleanTrafficPorts(tb testing.TB, n int) map[string]*netfilter.PortState {
	tb.Helper()
	res := fwcases.Resolver{Builtins: builtinFilters(tb)}
	ports := make(map[string]*netfilter.PortState, n)
	for i := range n {
		name := fmt.Sprintf("vnet%d", i)
		mac := fmt.Sprintf("52:54:00:00:%02x:%02x", i>>8, i&0xff)
		ip := fmt.Sprintf("10.77.%d.%d", i/250, i%250+1)
		inst, err := policy.Instantiate(res, name, "clean-traffic", mac, []policy.Param{{Name: "IP", Value: ip}})
		if err != nil {
			tb.Fatal(err)
		}
		ports[name] = enforce(name, inst.Rules)
	}
	return ports
}

// watchState is ports (clean-traffic with a tcp rule, so the inet table
// is there too) and a nat network.
func watchState(tb testing.TB, n, tcpPort int) *netfilter.State {
	nat := natNetwork("default", "virbr0", "192.168.122.0/24", "", netfilter.NATRange{})
	return &netfilter.State{
		Ports:    tcpFilterPorts(tb, n, tcpPort),
		Networks: map[string]*netfilter.NetworkRules{nat.Network: nat},
	}
}

// stamps turns a watch channel into the times its signals arrived; the
// stamps channel is closed when the watch channel is.
func stamps(ch <-chan struct{}) <-chan time.Time {
	out := make(chan time.Time, 64)
	go func() {
		defer close(out)
		for range ch {
			out <- time.Now()
		}
	}()
	return out
}

// drain forgets signals that arrived so far.
func drain(st <-chan time.Time) {
	for {
		select {
		case <-st:
		default:
			return
		}
	}
}

// expectSignal waits for a signal after t0 and returns how long after t0
// it came.
func expectSignal(t *testing.T, st <-chan time.Time, t0 time.Time, within time.Duration, what string) time.Duration {
	t.Helper()
	select {
	case ts, ok := <-st:
		if !ok {
			t.Fatalf("%s: watch channel closed", what)
		}
		d := ts.Sub(t0)
		if d > within {
			t.Errorf("%s: signal after %v, want within %v", what, d, within)
		}
		return d
	case <-time.After(2 * time.Second):
		t.Fatalf("%s: no signal within 2s", what)
	}
	return 0
}

// expectQuiet checks that no signal arrives for a while.
func expectQuiet(t *testing.T, st <-chan time.Time, what string) {
	t.Helper()
	select {
	case <-st:
		t.Errorf("%s: unexpected signal", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestWatchKernel: our own Applies and Removes (small and large, full
// replacements and deltas) and changes to another table give no signal;
// nft flush ruleset, deleting or flushing one of our tables or chains,
// deleting a port's map element, and a flush by another socket of this
// process each give one within 100 ms; cancelling ends the watch.
func TestWatchKernel(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(context.Background()) })

	ch, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cap(ch) != 1 {
		t.Errorf("watch channel capacity %d, want 1", cap(ch))
	}
	st := stamps(ch)

	small := watchState(t, 10, 25)
	big := watchState(t, 1000, 25)
	bigChanged := watchState(t, 1000, 26)
	noNet := &netfilter.State{Ports: small.Ports}
	apply := func(s *netfilter.State) {
		t.Helper()
		if err := b.Apply(ctx, s); err != nil {
			t.Fatalf("apply: %v", err)
		}
		// Our own Applies leave what Verify accepts (its dumps send no
		// notifications).
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("verify after apply: %v", err)
		}
	}
	restore := func() {
		t.Helper()
		if err := b.Remove(ctx); err != nil {
			t.Fatalf("remove: %v", err)
		}
		apply(small)
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("verify after restore: %v", err)
		}
		expectQuiet(t, st, "our own Remove and Apply")
	}

	t.Run("own-applies", func(t *testing.T) {
		apply(small)      // everything created
		apply(big)        // 990 ports added
		apply(bigChanged) // every port's tcp rule changes
		apply(noNet)      // 990 ports and the network go
		apply(small)      // the network comes back
		if err := b.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		expectQuiet(t, st, "our own Applies")
		restore()
	})

	t.Run("other-table", func(t *testing.T) {
		ns.mustRun(t, "nft", "add table inet other; add chain inet other c { type filter hook forward priority 0; }; add rule inet other c accept; add set inet other s { type ifname; }; add element inet other s { vnet0 }")
		ns.mustRun(t, "nft", "flush chain inet other c; delete element inet other s { vnet0 }; delete table inet other")
		ns.mustRun(t, "nft", "add table bridge netwarden-probe; delete table bridge netwarden-probe; add table ip netwarden; delete table ip netwarden")
		expectQuiet(t, st, "another table")
	})

	for _, tc := range []struct {
		name string
		cmd  string
	}{
		{"flush-ruleset", "flush ruleset"},
		{"delete-bridge-table", "delete table bridge " + TableName},
		{"delete-inet-table", "delete table inet " + TableName},
		{"delete-networks-table", "delete table inet " + NetTableName},
		{"flush-bridge-table", "flush table bridge " + TableName},
		{"flush-base-chain", "flush chain bridge " + TableName + " " + chainFromGuest},
		{"flush-networks-chain", "flush chain inet " + NetTableName + " forward"},
		{"delete-port-element", "delete element bridge " + TableName + " " + mapFromGuest + " { vnet3 }"},
		{"add-rule", "add rule inet " + TableName + " " + chainIPForward + " accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drain(st)
			t0 := time.Now()
			ns.mustRun(t, "nft", tc.cmd)
			done := time.Now()
			d := expectSignal(t, st, t0, time.Second, tc.cmd)
			t.Logf("nft %s: signal %v after the command started (it ran %v)", tc.cmd, d.Round(time.Microsecond), done.Sub(t0).Round(time.Microsecond))
			if after := time.Since(done); d > done.Sub(t0) && after > 100*time.Millisecond {
				t.Errorf("signal %v after nft exited, want within 100ms", after)
			}
			verr := b.Verify(ctx)
			t.Logf("Verify: %v", verr)
			if verr == nil {
				t.Errorf("Verify after nft %s: nil", tc.cmd)
			}
			restore()
		})
	}

	t.Run("flush-by-another-socket", func(t *testing.T) {
		// Another socket of this very process is not the backend's.
		drain(st)
		c := ns.conn()
		c.FlushRuleset()
		t0 := time.Now()
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		d := expectSignal(t, st, t0, 100*time.Millisecond, "flush ruleset")
		t.Logf("flush ruleset by netlink: signal %v after the flush was sent", d.Round(time.Microsecond))
		if err := b.Verify(ctx); err == nil {
			t.Error("Verify after flush ruleset: nil")
		}
		apply(small)
		if err := b.Verify(ctx); err != nil {
			t.Fatalf("verify after re-Apply: %v", err)
		}
		expectQuiet(t, st, "the re-Apply")
	})

	t.Run("another-backend", func(t *testing.T) {
		// A second backend (a restarted daemon) is someone else.
		drain(st)
		other := New(Config{NetNS: int(ns.fd)})
		t0 := time.Now()
		if err := other.Apply(ctx, noNet); err != nil {
			t.Fatal(err)
		}
		expectSignal(t, st, t0, time.Second, "another backend's Apply")
		restore()
	})

	t.Run("cancel", func(t *testing.T) {
		cancel()
		deadline := time.After(time.Second)
		for {
			select {
			case _, ok := <-st:
				if !ok {
					return
				}
			case <-deadline:
				t.Fatal("watch channel still open 1s after cancel")
			}
		}
	})
}

// TestWatchSignalCoalesces: a burst of foreign changes leaves one pending
// signal, never blocks the watcher, and the watcher keeps going.
func TestWatchSignalCoalesces(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := New(Config{NetNS: int(ns.fd)})
	t.Cleanup(func() { _ = b.Remove(context.Background()) })
	ch, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(ctx, watchState(t, 10, 25)); err != nil {
		t.Fatal(err)
	}
	c := ns.conn()
	for range 20 {
		c.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
		c.AddChain(&nftables.Chain{Name: "x", Table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}})
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		c.DelChain(&nftables.Chain{Name: "x", Table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}})
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(ch); n != 1 {
		t.Fatalf("%d signals pending, want 1", n)
	}
	<-ch
	c.DelTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyBridge})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no signal after the burst")
	}
}

// BenchmarkWatchFlushRestore1000Ports measures, for 1000 ports bound to
// clean-traffic and a nat network, the time from `nft flush ruleset`
// (sent by another socket) to the watch signal, and from the signal to
// the end of what the daemon does then: Verify (which fails) and Apply of
// the previous state (a full replacement).
func BenchmarkWatchFlushRestore1000Ports(b *testing.B) {
	ns := newBenchNS(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be := New(Config{NetNS: int(ns)})
	b.Cleanup(func() { _ = be.Remove(context.Background()) })
	nat := natNetwork("default", "virbr0", "192.168.122.0/24", "", netfilter.NATRange{})
	prev := &netfilter.State{
		Ports:    cleanTrafficPorts(b, 1000),
		Networks: map[string]*netfilter.NetworkRules{nat.Network: nat},
	}
	if err := be.Apply(ctx, prev); err != nil {
		b.Fatal(err)
	}
	ch, err := be.Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	other := &nftables.Conn{NetNS: int(ns)}
	var toSignal, toRestored time.Duration
	b.ResetTimer()
	for range b.N {
		other.FlushRuleset()
		t0 := time.Now()
		if err := other.Flush(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			b.Fatal("no signal")
		}
		t1 := time.Now()
		if err := be.Verify(ctx); err == nil {
			b.Fatal("Verify after flush ruleset: nil")
		}
		if err := be.Apply(ctx, prev); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		toSignal += t1.Sub(t0)
		toRestored += t2.Sub(t1)
	}
	b.StopTimer()
	if err := be.Verify(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case <-ch:
		b.Error("our own re-Apply signalled")
	case <-time.After(200 * time.Millisecond):
	}
	b.ReportMetric(float64(toSignal.Microseconds())/float64(b.N)/1000, "ms-to-signal")
	b.ReportMetric(float64(toRestored.Microseconds())/float64(b.N)/1000, "ms-signal-to-restored")
	b.ReportMetric(float64((toSignal+toRestored).Microseconds())/float64(b.N)/1000, "ms-flush-to-restored")
}
