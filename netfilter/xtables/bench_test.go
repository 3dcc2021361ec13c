package xtables

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/tests/lab"
)

// Benchmarks in a lab namespace (run as root):
//
//	go test ./netfilter/xtables -run '^$' -bench . -benchtime 1x
//
// BenchmarkBindCleanTraffic{100,1000}: N ports get clean-traffic one
// after the other, one Apply each (the daemon's binding create); the
// figure is per binding. BenchmarkRedefine1000: every port's rules
// change at once (a filter used by 1000 bindings redefined). The
// per-packet cost of per-port dispatch is TestPacketRate1vs1000.

func portName(i int) string { return fmt.Sprintf("nwp%05d", i) }

func benchPorts(b *testing.B, reg *policy.Registry, n int, ipOf func(int) string) map[string]*netfilter.PortState {
	ports := map[string]*netfilter.PortState{}
	for i := 0; i < n; i++ {
		mac := fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		ports[portName(i)] = &netfilter.PortState{Mode: netfilter.Enforce,
			Rules: instantiate(b, reg, "clean-traffic", portName(i), mac, policy.Param{Name: "IP", Value: ipOf(i)})}
	}
	return ports
}

func ip10(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff) }

func benchBind(b *testing.B, n int) {
	requireKernelB(b)
	reg := builtinFilters(b)
	all := benchPorts(b, reg, n, ip10)
	ctx := context.Background()
	var total time.Duration
	for it := 0; it < b.N; it++ {
		l := lab.New(b)
		be, _ := hvBackend(b, l, FlavourDefault)
		st := &netfilter.State{Ports: map[string]*netfilter.PortState{}}
		if err := be.Apply(ctx, st); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			st.Ports[portName(i)] = all[portName(i)]
			if err := be.Apply(ctx, st); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
		// The marginal cost: one more binding beside n.
		extra := time.Now()
		st.Ports["nwpextra"] = all[portName(0)]
		if err := be.Apply(ctx, st); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(extra).Microseconds())/1000, "ms/last-binding")
		if err := be.Verify(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(n*b.N), "ms/binding")
}

func BenchmarkBindCleanTraffic100(b *testing.B)  { benchBind(b, 100) }
func BenchmarkBindCleanTraffic1000(b *testing.B) { benchBind(b, 1000) }

func BenchmarkRedefine1000(b *testing.B) {
	requireKernelB(b)
	reg := builtinFilters(b)
	v1 := benchPorts(b, reg, 1000, ip10)
	v2 := benchPorts(b, reg, 1000, func(i int) string { return ip10(i + 1<<20) })
	ctx := context.Background()
	l := lab.New(b)
	be, _ := hvBackend(b, l, FlavourDefault)
	if err := be.Apply(ctx, &netfilter.State{Ports: v1}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		ports := v2
		if it%2 == 1 {
			ports = v1
		}
		if err := be.Apply(ctx, &netfilter.State{Ports: ports}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := be.Verify(ctx); err != nil {
		b.Fatal(err)
	}
}

func requireKernelB(b *testing.B) {
	b.Helper()
	for _, p := range []string{"ebtables-restore", "iptables-restore"} {
		if _, err := lookPath(p); err != nil {
			b.Skipf("needs %s", p)
		}
	}
}

// benchPacketRate floods g0's own frames to g1 for 2 s with clean-traffic
// on both and on extra-2 more ports whose dispatch rules come first,
// and reports the frames g1 received per second.
func benchPacketRate(b *testing.B, ports int) {
	requireKernelB(b)
	l := lab.New(b)
	be, hv := hvBackend(b, l, FlavourDefault)
	g0, g1 := l.AddGuest(), l.AddGuest()
	hv.AddBridge("br0", "", g0.HostIface, g1.HostIface)
	reg := builtinFilters(b)
	st := &netfilter.State{Ports: benchPorts(b, reg, ports-2, ip10)}
	st.Ports[g0.HostIface] = &netfilter.PortState{Mode: netfilter.Enforce, Rules: instantiate(b, reg, "clean-traffic", g0.HostIface, g0.MAC.String(), policy.Param{Name: "IP", Value: "10.77.9.10"})}
	st.Ports[g1.HostIface] = &netfilter.PortState{Mode: netfilter.Enforce, Rules: instantiate(b, reg, "clean-traffic", g1.HostIface, g1.MAC.String(), policy.Param{Name: "IP", Value: "10.77.9.11"})}
	ctx := context.Background()
	if err := be.Apply(ctx, st); err != nil {
		b.Fatal(err)
	}
	frame := udpFrameB(b, g0.MAC, g1.MAC, "10.77.9.10", "10.77.9.11", "nw-rate")
	var rate float64
	for it := 0; it < b.N; it++ {
		capt, err := g1.Capture(g1.Iface, lab.MatchContains([]byte("nw-rate")))
		if err != nil {
			b.Fatal(err)
		}
		const d = 2 * time.Second
		sent, err := g0.Flood(g0.Iface, frame, d)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		_, got := capt.Seen()
		capt.Close()
		rate = float64(got) / d.Seconds()
		b.Logf("%d ports: sent %d, received %d frames in %v", ports, sent, got, d)
	}
	b.ReportMetric(rate, "frames/s")
}

func BenchmarkPacketRate1Port(b *testing.B)     { benchPacketRate(b, 2) }
func BenchmarkPacketRate1000Ports(b *testing.B) { benchPacketRate(b, 1000) }
