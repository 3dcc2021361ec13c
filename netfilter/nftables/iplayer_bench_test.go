package nftables

import (
	"context"
	"fmt"
	"testing"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/fwcases"
	"github.com/netwarden/netwarden/policy"
)

// benchTCPFilter is clean-traffic with one IP-layer rule, as scripts/bench
// redefines it.
const benchTCPFilter = `<filter name='bench-filter' chain='root'><filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='100'><tcp dstportstart='%d'/></rule></filter>`

// tcpFilterPorts instantiates benchTCPFilter with dstportstart=tcpPort
// for n ports, each with its own MAC and IP.
func tcpFilterPorts(b testing.TB, n, tcpPort int) map[string]*netfilter.PortState {
	b.Helper()
	f, err := policy.ParseFilter([]byte(fmt.Sprintf(benchTCPFilter, tcpPort)))
	if err != nil {
		b.Fatal(err)
	}
	res := fwcases.Resolver{Top: f, Builtins: builtinFilters(b)}
	ports := make(map[string]*netfilter.PortState, n)
	for i := range n {
		name := fmt.Sprintf("vnet%d", i)
		mac := fmt.Sprintf("52:54:00:00:%02x:%02x", i>>8, i&0xff)
		ip := fmt.Sprintf("10.77.%d.%d", i/250, i%250+1)
		inst, err := policy.Instantiate(res, name, f.Name, mac, []policy.Param{{Name: "IP", Value: ip}})
		if err != nil {
			b.Fatal(err)
		}
		ports[name] = enforce(name, inst.Rules)
	}
	return ports
}

// BenchmarkIPLayerRedefine1000Ports measures the Apply of a filter
// redefinition for 1000 ports bound to clean-traffic with one tcp drop
// rule: the tcp port changes for every port at once (scripts/bench's
// redefine_filter_with_tcp_rule, without the daemon).
func BenchmarkIPLayerRedefine1000Ports(b *testing.B) {
	ns := newBenchNS(b)
	ctx := context.Background()
	be := New(Config{NetNS: int(ns)})
	b.Cleanup(func() { _ = be.Remove(ctx) })
	states := [2]*netfilter.State{
		{Ports: tcpFilterPorts(b, 1000, 25)},
		{Ports: tcpFilterPorts(b, 1000, 26)},
	}
	if err := be.Apply(ctx, states[0]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := be.Apply(ctx, states[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := be.Verify(ctx); err != nil {
		b.Fatal(err)
	}
}
