// Command bench measures filter enforcement and virtual networks in
// throw-away labs and prints "name: value" lines. It is what
// ./scripts/bench runs.
//
//	go build -o bin/netwardend ./cmd/netwardend
//	go build -o bin/bench ./tests/bench && bin/bench -sizes 1,100,1000 -net-runs 20
//
// The network benchmarks (network.go) and the D-Bus API benchmarks
// (api.go) run the real netwardend, found next to this program or named
// by -netwardend, and time its D-Bus API.
//
// It drives the daemon's engine in-process (the code every API call
// reaches), with the nftables backend working in the lab's hypervisor
// namespace. Bindings beyond the two real guests name interfaces that do
// not exist: nftables matches ports by name, so they cost the kernel the
// same as real ones. Run as root.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/daemon"
	"github.com/netwarden/netwarden/netfilter/nftables"
	"github.com/netwarden/netwarden/tests/lab"
)

func main() {
	sizes := flag.String("sizes", "1,100,1000", "comma-separated numbers of bindings")
	ppsTime := flag.Duration("pps-time", 3*time.Second, "how long each packet-rate measurement sends")
	only := flag.String("run", "nwfilter,network,api", "which benchmarks: nwfilter, network, api (comma-separated)")
	netRuns := flag.Int("net-runs", 20, "start/destroy cycles per network kind (R)")
	dhcpRuns := flag.Int("dhcp-runs", 3, "guests that lease an address on the nat network")
	var api apiOptions
	flag.IntVar(&api.calls, "api-calls", 2000, "timed calls per API latency series")
	flag.IntVar(&api.warmup, "api-warmup", 100, "untimed calls before each API latency series")
	flag.DurationVar(&api.duration, "api-time", 5*time.Second, "how long each API throughput run calls")
	flag.IntVar(&api.clients, "api-clients", 8, "concurrent clients of the API throughput run")
	flag.IntVar(&api.bindings, "api-bindings", 1000, "stored bindings for the API's RSS and cold-start figures")
	flag.IntVar(&api.starts, "api-starts", 5, "cold starts of netwardend per binding count (median)")
	netwardend := flag.String("netwardend", "", "the netwardend binary for the network benchmarks (default: netwardend next to this program)")
	flag.Parse()
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		switch p = strings.TrimSpace(p); p {
		case "nwfilter", "network", "api":
			parts[p] = true
		case "firewalld": // firewalld.go; not in the default list
			parts[p] = true
		default:
			fmt.Fprintf(os.Stderr, "bench: unknown benchmark %q (nwfilter, network, api)\n", p)
			os.Exit(2)
		}
	}
	if *netRuns < 1 || *dhcpRuns < 1 || api.calls < 1 || api.warmup < 0 || api.clients < 1 || api.bindings < 1 || api.starts < 1 || api.duration <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -net-runs, -dhcp-runs, -api-calls, -api-clients, -api-bindings, -api-starts and -api-time must be positive")
		os.Exit(2)
	}
	if *netwardend == "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(2)
		}
		*netwardend = filepath.Join(filepath.Dir(self), "netwardend")
	}
	if abs, err := filepath.Abs(*netwardend); err == nil {
		*netwardend = abs
	}
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad size %q\n", f)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	r := &lab.Runner{Out: os.Stderr}
	if parts["nwfilter"] {
		if err := r.Run(func(t lab.TB) { run(t, ns, *ppsTime) }); err != nil {
			os.Exit(1)
		}
	}
	if parts["network"] {
		if err := r.Run(func(t lab.TB) { runNetworks(t, *netwardend, *netRuns, *dhcpRuns) }); err != nil {
			os.Exit(1)
		}
	}
	if parts["api"] {
		if err := r.Run(func(t lab.TB) { runAPI(t, *netwardend, api) }); err != nil {
			os.Exit(1)
		}
	}
	if parts["firewalld"] {
		if err := r.Run(func(t lab.TB) { runFirewalld(t, *netwardend) }); err != nil {
			os.Exit(1)
		}
	}
}

type bench struct {
	t      lab.TB
	l      *lab.Lab
	hv     *lab.Netns
	g0, g1 *lab.Guest
	ns     int
	log    *slog.Logger
}

func out(name string, format string, args ...any) {
	fmt.Printf("%s: %s\n", name, fmt.Sprintf(format, args...))
}

func run(t lab.TB, sizes []int, ppsTime time.Duration) {
	l := lab.New(t)
	b := &bench{t: t, l: l, hv: l.Hypervisor(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	b.g0, b.g1 = l.AddGuest(), l.AddGuest()
	b.g0.SetAddr("10.77.0.10/24")
	b.g1.SetAddr("10.77.0.11/24")
	b.hv.AddBridge("br0", "10.77.0.1/24", b.g0.HostIface, b.g1.HostIface)
	h, err := vnetns.GetFromName(b.hv.Name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer h.Close()
	b.ns = int(h)
	ctx := context.Background()

	for _, n := range sizes {
		dir := filepath.Join(l.Dir, fmt.Sprintf("n%d", n))
		e := b.engine(dir)
		lat := b.createN(ctx, e, n, "clean-traffic")
		total := time.Duration(0)
		for _, d := range lat {
			total += d
		}
		out(fmt.Sprintf("create_clean_traffic.n%d.total_ms", n), "%.1f", ms(total))
		out(fmt.Sprintf("create_clean_traffic.n%d.p50_ms", n), "%.3f", ms(pct(lat, 50)))
		out(fmt.Sprintf("create_clean_traffic.n%d.p95_ms", n), "%.3f", ms(pct(lat, 95)))
		rules, chains, elems := b.kernelObjects()
		out(fmt.Sprintf("kernel.n%d.rules", n), "%d", rules)
		out(fmt.Sprintf("kernel.n%d.chains", n), "%d", chains)
		out(fmt.Sprintf("kernel.n%d.set_elements", n), "%d", elems)
		out(fmt.Sprintf("kernel.n%d.set_elements_per_port", n), "%.1f", float64(elems)/float64(n))

		if n == sizes[len(sizes)-1] {
			// Adoption: a new daemon start with n stored bindings.
			start := time.Now()
			b.engine(dir)
			out(fmt.Sprintf("adopt.n%d_ms", n), "%.1f", ms(time.Since(start)))

			// Packet rate through one bound port with n bound ports
			// and with that port alone, alternating three times (each
			// switch is a daemon start adopting the other state).
			one := filepath.Join(l.Dir, "pps1")
			e1 := b.engine(one)
			b.createN(ctx, e1, 1, "clean-traffic")
			var many, single []float64
			for round := 0; round < 3; round++ {
				b.engine(dir)
				many = append(many, b.pps(ppsTime))
				b.engine(one)
				single = append(single, b.pps(ppsTime))
			}
			e = b.engine(dir)
			pm, p1 := median(many), median(single)
			out(fmt.Sprintf("pps.bound_ports_%d", n), "%.0f", pm)
			out("pps.bound_ports_1", "%.0f", p1)
			out(fmt.Sprintf("pps.ratio_%d_vs_1", n), "%.3f", pm/p1)
		}
		var del []time.Duration
		for _, p := range e.Bindings() {
			start := time.Now()
			if err := e.DeleteBinding(ctx, p); err != nil {
				t.Fatalf("%v", err)
			}
			del = append(del, time.Since(start))
		}
		out(fmt.Sprintf("delete.n%d.p50_ms", n), "%.3f", ms(pct(del, 50)))
	}

	// Redefining a filter used by n bindings: no-ip-spoofing, which
	// every clean-traffic binding reaches (libvirt's bench redefines the
	// same filter), then a filter with an IP-layer (tcp) rule.
	n := sizes[len(sizes)-1]
	dir := filepath.Join(l.Dir, "redefine")
	e := b.engine(dir)
	b.createN(ctx, e, n, "clean-traffic")
	spoof := `<filter name='no-ip-spoofing' chain='ipv4-ip'>
  <rule action='return' direction='out' priority='%d'><ip srcipaddr='0.0.0.0' protocol='udp'/></rule>
  <rule action='return' direction='out'><ip srcipaddr='$IP'/></rule>
  <rule action='drop' direction='out' priority='1000'/>
</filter>`
	for i, prio := range []int{90, 100} {
		start := time.Now()
		if _, _, err := e.DefineFilter(ctx, []byte(fmt.Sprintf(spoof, prio))); err != nil {
			t.Fatalf("%v", err)
		}
		if i == 1 {
			out(fmt.Sprintf("redefine_no_ip_spoofing.n%d_ms", n), "%.1f", ms(time.Since(start)))
		}
	}
	for _, p := range e.Bindings() {
		_ = e.DeleteBinding(ctx, p)
	}
	dir = filepath.Join(l.Dir, "redefine-tcp")
	e = b.engine(dir)
	filter := `<filter name='bench-filter' chain='root'><filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='100'><tcp dstportstart='%d'/></rule></filter>`
	if _, _, err := e.DefineFilter(ctx, []byte(fmt.Sprintf(filter, 25))); err != nil {
		t.Fatalf("%v", err)
	}
	lat := b.createN(ctx, e, n, "bench-filter")
	out(fmt.Sprintf("create_tcp25_clean_traffic.n%d.p50_ms", n), "%.3f", ms(pct(lat, 50)))
	start := time.Now()
	if _, _, err := e.DefineFilter(ctx, []byte(fmt.Sprintf(filter, 26))); err != nil {
		t.Fatalf("%v", err)
	}
	out(fmt.Sprintf("redefine_filter_with_tcp_rule.n%d_ms", n), "%.1f", ms(time.Since(start)))
}

// engine starts an engine on dir (config and state), as a daemon start.
func (b *bench) engine(dir string) *daemon.Engine {
	filters, err := daemon.OpenFilters(filepath.Join(dir, "etc"), b.log)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	e, err := daemon.NewEngine(context.Background(), b.log, nftables.New(nftables.Config{NetNS: b.ns}), filters, filepath.Join(dir, "run"))
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	return e
}

// createN creates n bindings one call at a time: the first on guest 0's
// real port, the others on port names that do not exist.
func (b *bench) createN(ctx context.Context, e *daemon.Engine, n int, filter string) []time.Duration {
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		port, mac, ip := b.g0.HostIface, b.g0.MAC, "10.77.0.10"
		if i > 0 {
			port = fmt.Sprintf("bench%d", i)
			mac = net.HardwareAddr{0x52, 0x54, 0x01, byte(i >> 16), byte(i >> 8), byte(i)}
			ip = fmt.Sprintf("10.%d.%d.%d", 100+i>>16, i>>8&255, i&255)
		}
		xml := fmt.Sprintf(`<filterbinding><owner><name>vm%d</name><uuid>d54df46f-1ab5-4a22-8618-%012d</uuid></owner>
<portdev name='%s'/><mac address='%s'/><filterref filter='%s'><parameter name='IP' value='%s'/></filterref></filterbinding>`,
			i, i, port, mac, filter, ip)
		start := time.Now()
		if _, err := e.CreateBinding(ctx, []byte(xml)); err != nil {
			b.t.Fatalf("binding %d: %v", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

// kernelObjects counts netwarden's rules, chains and set elements.
func (b *bench) kernelObjects() (rules, chains, elems int) {
	text := b.hv.MustRun("nft", "list", "table", "bridge", nftables.TableName)
	sc := bufio.NewScanner(strings.NewReader(text))
	inSet, inElems := false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "chain "):
			chains++
			inSet = false
		case strings.HasPrefix(line, "set ") || strings.HasPrefix(line, "map "):
			inSet = true
		case inSet && strings.HasPrefix(line, "elements = {"):
			inElems = true
			elems += strings.Count(line, ",") + 1
			if strings.HasSuffix(line, "}") {
				inElems = false
			}
		case inElems:
			elems += strings.Count(line, ",") + 1
			if strings.HasSuffix(line, "}") {
				inElems = false
			}
			if strings.HasSuffix(line, ",") {
				elems--
			}
		case line == "}" || line == "":
			inSet = inSet && line != "}"
		case !inSet && line != "" && !strings.HasPrefix(line, "type ") && !strings.HasPrefix(line, "table "):
			rules++
		}
	}
	return rules, chains, elems
}

// pps sends valid UDP frames from guest 0 to guest 1 for d and returns
// the rate guest 1's interface received them at.
func (b *bench) pps(d time.Duration) float64 {
	frame, err := lab.UDPFrame(b.g0.MAC, b.g1.MAC, net.ParseIP("10.77.0.10"), net.ParseIP("10.77.0.11"), 4000, 4001, []byte("bench"))
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	before := b.rxPackets()
	start := time.Now()
	if _, err := b.g0.Flood(b.g0.Iface, frame, d); err != nil {
		b.t.Fatalf("%v", err)
	}
	time.Sleep(100 * time.Millisecond)
	return float64(b.rxPackets()-before) / time.Since(start).Seconds()
}

func (b *bench) rxPackets() uint64 {
	text := b.g1.MustRun("cat", "/sys/class/net/"+b.g1.Iface+"/statistics/rx_packets")
	v, err := strconv.ParseUint(strings.TrimSpace(text), 10, 64)
	if err != nil {
		b.t.Fatalf("rx_packets: %v", err)
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
