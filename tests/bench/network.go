package main

// Virtual-network benchmarks (the networks issue): net-start and
// net-destroy through the daemon's D-Bus API, the time a guest waits for
// its DHCP lease, the rules one network costs, and a breakdown of
// net-start into its parts. The network XML is the shape libvirt's own
// bench-network.sh times (../shared/bench/libvirt), on the same subnets,
// so the figures line up name for name with libvirt's.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/gopacket/layers"
	vnetns "github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/daemon"
	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/netfilter/nftables"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/tests/lab"
)

const (
	networkIface = "org.netwarden1.Network"
	callTimeout  = time.Minute
)

// netKind is one network shape of libvirt's bench-network.sh.
type netKind struct {
	kind  string // nat, isolated, route (libvirt's names)
	octet int    // second octet of the subnet, as libvirt's script
}

var netKinds = []netKind{{"nat", 213}, {"isolated", 214}, {"route", 215}}

// netXML is bench-network.sh's network: libvirt's default network shape
// (STP on, no delay, DHCP over the whole subnet) in the given mode.
func netXML(k netKind) string {
	fwd := ""
	switch k.kind {
	case "nat", "route":
		fwd = fmt.Sprintf("<forward mode='%s'/>", k.kind)
	}
	return fmt.Sprintf(`<network>
  <name>nwb-%s</name>
  %s
  <bridge name='nwb%s0' stp='on' delay='0'/>
  <ip address='10.%d.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.%d.0.2' end='10.%d.0.254'/>
    </dhcp>
  </ip>
</network>`, k.kind, fwd, k.kind[:3], k.octet, k.octet, k.octet)
}

type netBench struct {
	t    lab.TB
	l    *lab.Lab
	hv   *lab.Netns
	conn *dbus.Conn
	d    *lab.Process
	runs int
}

// runNetworks measures the virtual networks; runs is R, the number of
// start/destroy cycles per network kind; dhcpRuns the number of guests
// that lease an address.
func runNetworks(t lab.TB, netwardend string, runs, dhcpRuns int) {
	l := lab.New(t)
	lab.Require(t, "nft", "dnsmasq", "busybox")
	b := &netBench{t: t, l: l, hv: l.Hypervisor(), runs: runs}
	b.conn = l.BusWithoutSystemServices().Conn()
	l.Upstream() // the hypervisor's uplink, as on a real host
	b.startDaemon(netwardend)

	t.Logf("bench: network lab %s (namespaces %s-*)", l.ID, strings.TrimSuffix(b.hv.Name, "-hv"))
	for _, k := range netKinds {
		b.startDestroy(k)
	}
	b.allThree()
	b.dhcp(dhcpRuns)
	if err := b.d.Stop(); err != nil {
		t.Fatalf("stop netwardend: %v", err)
	}
	b.breakdown(runs)
}

func (b *netBench) startDaemon(bin string) {
	if _, err := os.Stat(bin); err != nil {
		b.t.Fatalf("netwardend binary: %v (build it: go build -o bin/netwardend ./cmd/netwardend)", err)
	}
	cmd := b.hv.Command(context.Background(), bin,
		"--config-dir", filepath.Join(b.l.Dir, "etc"), "--state-dir", filepath.Join(b.l.Dir, "run"))
	b.d = b.l.Start("netwardend", cmd)
	deadline := time.Now().Add(callTimeout)
	for !strings.Contains(b.log(), "msg=ready") {
		if !b.d.Alive() || time.Now().After(deadline) {
			b.t.Fatalf("netwardend not ready; log:\n%s", b.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		var has bool
		if err := b.conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, dbusapi.BusName).Store(&has); err != nil {
			b.t.Fatalf("NameHasOwner: %v", err)
		}
		if has {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("netwardend does not own %s; log:\n%s", dbusapi.BusName, b.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *netBench) log() string {
	data, err := os.ReadFile(b.d.Log)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	return string(data)
}

func (b *netBench) call(path dbus.ObjectPath, method string, args []any, out ...any) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c := b.conn.Object(dbusapi.BusName, path).CallWithContext(ctx, method, 0, args...)
	if c.Err == nil {
		c.Err = c.Store(out...)
	}
	if c.Err != nil {
		b.t.Fatalf("%s: %v\nnetwardend log:\n%s", method, c.Err, b.log())
	}
}

// timedCall is call, timed from the client: the latency a user of the
// API sees (virsh net-start's equivalent without a process start).
func (b *netBench) timedCall(path dbus.ObjectPath, method string) time.Duration {
	start := time.Now()
	b.call(path, method, nil)
	return time.Since(start)
}

// daemonDurations returns the durations the daemon logged for its
// messages msg ("network started", "network destroyed"), oldest first.
func (b *netBench) daemonDurations(msg string) []time.Duration {
	re := regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `".* duration=(\S+)`)
	var ds []time.Duration
	for _, m := range re.FindAllStringSubmatch(b.log(), -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// startDestroy defines a network of kind k and starts and destroys it R
// times through the API, then undefines it.
func (b *netBench) startDestroy(k netKind) {
	p := "net.dbus." + k.kind
	var path dbus.ObjectPath
	start := time.Now()
	b.call(dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkDefineXML", []any{netXML(k)}, &path)
	out(p+".define_ms", "%.1f", ms(time.Since(start)))
	startedBefore := len(b.daemonDurations("network started"))
	destroyedBefore := len(b.daemonDurations("network destroyed"))
	var starts, stops []time.Duration
	for r := 0; r < b.runs; r++ {
		starts = append(starts, b.timedCall(path, networkIface+".Create"))
		if r == 0 {
			b.countRules(k)
		}
		stops = append(stops, b.timedCall(path, networkIface+".Destroy"))
	}
	stats(p+".start", starts)
	stats(p+".destroy", stops)
	stats(p+".start.in_daemon", b.daemonDurations("network started")[startedBefore:])
	stats(p+".destroy.in_daemon", b.daemonDurations("network destroyed")[destroyedBefore:])
	start = time.Now()
	b.call(path, networkIface+".Undefine", nil)
	out(p+".undefine_ms", "%.1f", ms(time.Since(start)))
	rules, chains, _, _ := b.netTable()
	out(p+".after_undefine.rules", "%d", rules)
	out(p+".after_undefine.chains", "%d", chains)
}

func stats(name string, ds []time.Duration) {
	out(name+".median_ms", "%.1f", ms(pct(ds, 50)))
	out(name+".p95_ms", "%.1f", ms(pct(ds, 95)))
	out(name+".min_ms", "%.1f", ms(pct(ds, 0)))
	out(name+".max_ms", "%.1f", ms(pct(ds, 100)))
	out(name+".runs", "%d", len(ds))
}

// countRules prints the kernel objects one active network of kind k
// costs: netwarden's inet table, and the links in the hypervisor.
func (b *netBench) countRules(k netKind) {
	p := "net.kernel." + k.kind
	rules, chains, sets, elems := b.netTable()
	out(p+".nft_rules", "%d", rules)
	out(p+".nft_chains", "%d", chains)
	out(p+".nft_sets_maps", "%d", sets)
	out(p+".nft_set_elements", "%d", elems)
	text := b.hv.MustRun("nft", "list", "ruleset")
	if k.kind == "nat" {
		b.t.Logf("bench: table inet %s with network nwb-nat active:\n%s", nftables.NetTableName,
			b.hv.MustRun("nft", "list", "table", "inet", nftables.NetTableName))
	}
	out(p+".nft_ruleset_lines", "%d", strings.Count(text, "\n"))
	out(p+".dnsmasq_processes", "%d", strings.Count(b.hv.MustRun("sh", "-c", "pgrep -x dnsmasq | while read p; do ip netns identify $p; done"), b.hv.Name))
}

// netTable counts the rules, chains, sets/maps and set elements of table
// inet netwarden-net (zeros when the table does not exist).
func (b *netBench) netTable() (rules, chains, sets, elems int) {
	text, err := b.hv.Run("nft", "-j", "list", "table", "inet", nftables.NetTableName)
	if err != nil {
		return 0, 0, 0, 0
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		b.t.Fatalf("nft -j: %v", err)
	}
	for _, o := range doc.Nftables {
		for kind, raw := range o {
			switch kind {
			case "rule":
				rules++
			case "chain":
				chains++
			case "set", "map":
				sets++
				var s struct {
					Elem []json.RawMessage `json:"elem"`
				}
				if err := json.Unmarshal(raw, &s); err == nil {
					elems += len(s.Elem)
				}
			}
		}
	}
	return rules, chains, sets, elems
}

// allThree counts the kernel objects with the three networks active at
// once (libvirt's script does the same), so the shared part shows.
func (b *netBench) allThree() {
	var paths []dbus.ObjectPath
	for _, k := range netKinds {
		var path dbus.ObjectPath
		b.call(dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkCreateXML", []any{netXML(k)}, &path)
		paths = append(paths, path)
	}
	rules, chains, sets, _ := b.netTable()
	out("net.kernel.all3.nft_rules", "%d", rules)
	out("net.kernel.all3.nft_chains", "%d", chains)
	out("net.kernel.all3.nft_sets_maps", "%d", sets)
	for _, path := range paths {
		b.call(path, networkIface+".Destroy", nil)
	}
}

// dhcp starts the nat network, plugs n guests and times each guest's
// DHCP exchange twice: with an address new to dnsmasq (it pings the
// address before offering it) and again once dnsmasq knows the client.
func (b *netBench) dhcp(n int) {
	k := netKinds[0]
	var path dbus.ObjectPath
	b.call(dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkCreateXML", []any{netXML(k)}, &path)
	var bridge string
	if err := b.conn.Object(dbusapi.BusName, path).StoreProperty(networkIface+".Bridge", &bridge); err != nil {
		b.t.Fatalf("%v", err)
	}
	var first, again, firstWire, againWire []time.Duration
	for i := 0; i < n; i++ {
		g := b.l.AddGuest()
		xml := fmt.Sprintf(`<networkport>
  <owner><name>guest%d</name><uuid>6d2f1a52-0c1e-4b8e-9d3a-0000000000%02d</uuid></owner>
  <mac address='%s'/>
  <plug type='network' bridge='%s' dev='%s'/>
</networkport>`, g.Index, g.Index, g.MAC, bridge, g.HostIface)
		var port dbus.ObjectPath
		b.call(path, networkIface+".PortCreateXML", []any{xml, uint32(0)}, &port)
		b.waitForwarding(g.HostIface)
		d, w := b.lease(g)
		first, firstWire = append(first, d), append(firstWire, w)
		g.MustRun("ip", "addr", "flush", "dev", g.Iface)
		d, w = b.lease(g)
		again, againWire = append(again, d), append(againWire, w)
	}
	stats("dhcp.new_client.client", first)
	stats("dhcp.new_client.discover_to_ack", firstWire)
	stats("dhcp.known_client.client", again)
	stats("dhcp.known_client.discover_to_ack", againWire)
	b.call(path, networkIface+".Destroy", nil)
}

// lease runs the guest's DHCP client and returns how long it ran (process
// start to lease written) and, from a capture on the guest's interface,
// the time from its first DHCPDISCOVER to the DHCPACK.
func (b *netBench) lease(g *lab.Guest) (client, wire time.Duration) {
	c, err := g.Capture(g.Iface, lab.Any(lab.MatchUDP(67), lab.MatchUDP(68)))
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := g.DHCPWith(lab.DHCPOptions{Timeout: 15 * time.Second}); err != nil {
		b.t.Fatalf("%v\nnetwardend log:\n%s", err, b.log())
	}
	client = time.Since(start)
	time.Sleep(50 * time.Millisecond)
	var discover, ack time.Time
	for _, p := range c.Packets() {
		l, ok := p.Layer(layers.LayerTypeDHCPv4).(*layers.DHCPv4)
		if !ok {
			continue
		}
		for _, o := range l.Options {
			if o.Type != layers.DHCPOptMessageType || len(o.Data) != 1 {
				continue
			}
			ts := p.Metadata().Timestamp
			switch layers.DHCPMsgType(o.Data[0]) {
			case layers.DHCPMsgTypeDiscover:
				if discover.IsZero() {
					discover = ts
				}
			case layers.DHCPMsgTypeAck:
				ack = ts
			}
		}
	}
	if discover.IsZero() || ack.IsZero() {
		b.t.Fatalf("DHCP capture on %s: no DISCOVER or ACK among %d packets", g.Name, len(c.Packets()))
	}
	return client, ack.Sub(discover)
}

// waitForwarding waits until the bridge forwards through port dev (with
// STP on, a new port first listens and learns).
func (b *netBench) waitForwarding(dev string) {
	deadline := time.Now().Add(callTimeout)
	for {
		state, err := b.hv.Run("cat", "/sys/class/net/"+dev+"/brport/state")
		if err == nil && strings.TrimSpace(state) == "3" {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("port %s not forwarding (state %q, %v)", dev, state, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// breakdown times the parts of a nat network's start and destroy with
// the daemon's own building blocks, in process, in the same namespace
// (after the daemon has stopped): the bridge (netlink), forwarding
// sysctls, the firewall (one nftables transaction through the engine)
// and dnsmasq (its --test run, then the start until it has bound its
// sockets).
func (b *netBench) breakdown(runs int) {
	ctx := context.Background()
	h, err := vnetns.GetFromName(b.hv.Name)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	defer h.Close()
	links, err := network.NewLinks(h)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	defer links.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(b.l.Dir, "breakdown")
	filters, err := daemon.OpenFilters(filepath.Join(dir, "etc"), quiet)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	e, err := daemon.NewEngine(ctx, quiet, nftables.New(nftables.Config{NetNS: int(h)}), filters, filepath.Join(dir, "run"))
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	dns := filepath.Join(dir, "dnsmasq")
	if err := os.MkdirAll(dns, 0o755); err != nil {
		b.t.Fatalf("%v", err)
	}
	for _, d := range []string{b.l.Dir, dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			b.t.Fatalf("%v", err)
		}
	}
	paths := network.DnsmasqPaths{HostsFile: filepath.Join(dns, "b.hosts"), AddnHostsFile: filepath.Join(dns, "b.addnhosts"),
		PIDFile: filepath.Join(dns, "b.pid"), LeaseFile: filepath.Join(dns, "b.leases")}
	conf := filepath.Join(dns, "b.conf")

	var bridge, fwd, fw, test, dnsStart, dnsStop, fwDel, brDel []time.Duration
	for r := 0; r < runs; r++ {
		n, err := network.Parse([]byte(netXML(netKinds[0])))
		if err != nil {
			b.t.Fatalf("%v", err)
		}
		t0 := time.Now()
		info, err := links.CreateBridge(ctx, n)
		if err != nil {
			b.t.Fatalf("create bridge: %v", err)
		}
		bridge = append(bridge, time.Since(t0))
		n.Bridge.Name, n.MAC = info.Name, info.MAC
		t0 = time.Now()
		if err := links.EnableForwarding(ctx, true, false); err != nil {
			b.t.Fatalf("%v", err)
		}
		fwd = append(fwd, time.Since(t0))
		rules, err := network.FirewallRules(n)
		if err != nil {
			b.t.Fatalf("%v", err)
		}
		t0 = time.Now()
		if err := e.SetNetworkRules(ctx, n.Name, rules); err != nil {
			b.t.Fatalf("%v", err)
		}
		fw = append(fw, time.Since(t0))
		files, err := network.DnsmasqConfig(n, paths, network.DnsmasqOptions{})
		if err != nil {
			b.t.Fatalf("%v", err)
		}
		for f, text := range map[string]string{conf: files.Config, paths.HostsFile: files.HostsFile, paths.AddnHostsFile: files.AddnHosts} {
			if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
				b.t.Fatalf("%v", err)
			}
		}
		t0 = time.Now()
		if _, err := b.hv.Run("dnsmasq", "--conf-file="+conf, "--test"); err != nil {
			b.t.Fatalf("%v", err)
		}
		test = append(test, time.Since(t0))
		d := &network.Dnsmasq{ConfFile: conf, PIDFile: paths.PIDFile, Logger: quiet, Command: b.hv.Command}
		t0 = time.Now()
		if err := d.Start(ctx); err != nil {
			b.t.Fatalf("%v", err)
		}
		dnsStart = append(dnsStart, time.Since(t0))

		t0 = time.Now()
		if err := d.Stop(ctx); err != nil {
			b.t.Fatalf("%v", err)
		}
		dnsStop = append(dnsStop, time.Since(t0))
		t0 = time.Now()
		if err := e.SetNetworkRules(ctx, n.Name, nil); err != nil {
			b.t.Fatalf("%v", err)
		}
		fwDel = append(fwDel, time.Since(t0))
		t0 = time.Now()
		if err := links.DestroyBridge(ctx, n.Bridge.Name); err != nil {
			b.t.Fatalf("%v", err)
		}
		brDel = append(brDel, time.Since(t0))
	}
	p := "net.breakdown.nat."
	out(p+"start.bridge_median_ms", "%.1f", ms(pct(bridge, 50)))
	out(p+"start.forwarding_sysctls_median_ms", "%.1f", ms(pct(fwd, 50)))
	out(p+"start.nft_apply_median_ms", "%.1f", ms(pct(fw, 50)))
	out(p+"start.dnsmasq_test_alone_median_ms", "%.1f", ms(pct(test, 50)))
	out(p+"start.dnsmasq_test_and_start_median_ms", "%.1f", ms(pct(dnsStart, 50)))
	out(p+"destroy.dnsmasq_stop_median_ms", "%.1f", ms(pct(dnsStop, 50)))
	out(p+"destroy.nft_apply_median_ms", "%.1f", ms(pct(fwDel, 50)))
	out(p+"destroy.bridge_median_ms", "%.1f", ms(pct(brDel, 50)))
}
