package integration

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/firewalld"
	"github.com/netwarden/netwarden/tests/lab"
)

// TestFirewalldReapply runs a nat network under a real firewalld whose
// default zone drops everything, with each of its backends: the bridge is
// in the libvirt zone and the guest leases, resolves and reaches the LAN;
// after a reload, a complete reload and a restart of firewalld the zone
// binding is back and LastFirewallReapply has advanced within a second,
// while a ping from the guest loses at most a second of replies.
func TestFirewalldReapply(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			l := lab.New(t)
			conn := l.Bus().Conn()
			up := l.Upstream()
			fw := l.StartFirewalld(backend)
			if out, err := fw.Cmd("--set-default-zone=drop"); err != nil {
				t.Fatalf("set default zone: %v %s", err, out)
			}
			n := &netLab{l: l, conn: conn, up: up}
			n.d = startDaemon(t, l, "netwardend", nil)
			n.d.waitOwned(t, conn)
			n.d.waitReady(t)
			obj := conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
			var running bool
			if err := obj.StoreProperty(dbusapi.ManagerInterface+".FirewalldRunning", &running); err != nil || !running {
				t.Fatalf("FirewalldRunning = %v, %v; want true", running, err)
			}

			g := l.AddGuest()
			path := n.start(t, natNetwork("default", "nwbr0", "93", net.HardwareAddr{2, 0, 0, 0, 0, 1}))
			n.plug(t, path, g, "")
			zoneOf := func() string {
				out, _ := fw.Cmd("--get-zone-of-interface=nwbr0")
				return strings.TrimSpace(out)
			}
			if z := zoneOf(); z != "libvirt" {
				t.Fatalf("bridge in zone %q, want libvirt\n%s", z, n.d.log(t))
			}
			lease, err := g.DHCPWith(lab.DHCPOptions{Hostname: "fwguest", Timeout: 15 * time.Second})
			if err != nil {
				t.Fatalf("DHCP under firewalld: %v\n%s", err, n.d.log(t))
			}
			if ips, err := g.LookupDNS("10.93.0.1", "fwguest.default.test", 1, 3*time.Second); err != nil || len(ips) == 0 || !ips[0].Equal(lease.IP) {
				t.Errorf("DNS under firewalld: %v %v", ips, err)
			}
			if err := g.Ping(up.Addr.String(), 2, 5*time.Second); err != nil {
				t.Fatalf("guest cannot reach upstream under firewalld: %v", err)
			}

			for _, disturb := range []struct {
				name string
				do   func() error
			}{
				{"reload", func() error { _, err := fw.Cmd("--reload"); return err }},
				{"complete-reload", func() error { _, err := fw.Cmd("--complete-reload"); return err }},
				{"restart", fw.Restart},
			} {
				var before uint64
				if err := obj.StoreProperty(dbusapi.ManagerInterface+".LastFirewallReapply", &before); err != nil {
					t.Fatal(err)
				}
				ping := g.Command(t.Context(), "ping", "-i", "0.05", "-n", up.Addr.String())
				out := &syncBuffer{}
				ping.Stdout, ping.Stderr = out, out
				if err := ping.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond)
				if err := disturb.do(); err != nil {
					t.Fatalf("%s: %v", disturb.name, err)
				}
				done := time.Now()
				reapplied := waitReapply(t, obj, before, 5*time.Second)
				after := time.Since(done)
				if z := zoneOf(); z != "libvirt" {
					t.Errorf("%s: bridge in zone %q afterwards, want libvirt", disturb.name, z)
				}
				time.Sleep(1500 * time.Millisecond)
				_ = ping.Process.Signal(syscall.SIGINT)
				_ = ping.Wait()
				sent, recv := pingCounts(out.String())
				t.Logf("%s: re-applied %v after firewall-cmd returned (%v); ping %d sent, %d received", disturb.name,
					after.Round(time.Millisecond), reapplied, sent, recv)
				if !reapplied || after > time.Second {
					t.Errorf("%s: LastFirewallReapply did not advance within a second (%v)", disturb.name, after)
				}
				if sent == 0 || sent-recv > 20 {
					t.Errorf("%s: ping lost %d of %d (more than a second's worth)\n%s", disturb.name, sent-recv, sent, out.String())
				}
			}
			if err := obj.StoreProperty(dbusapi.ManagerInterface+".FirewalldRunning", &running); err != nil || !running {
				t.Errorf("FirewalldRunning after the restart = %v, %v", running, err)
			}
		})
	}
}

// waitReapply waits until LastFirewallReapply is later than before.
func waitReapply(t *testing.T, obj dbus.BusObject, before uint64, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var v uint64
		if err := obj.StoreProperty(dbusapi.ManagerInterface+".LastFirewallReapply", &v); err != nil {
			t.Fatal(err)
		}
		if v > before {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// TestFirewalldHundredReloads: a hundred firewalld reloads in a row while
// a guest's traffic flows through a nat network and a bound port: the
// binding and the zone stay, netwarden's tables come out exactly as they
// were (no duplicate rule), and the daemon's memory stays flat.
func TestFirewalldHundredReloads(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	up := l.Upstream()
	fw := l.StartFirewalld("nftables")
	n := &netLab{l: l, conn: conn, up: up}
	n.d = startDaemon(t, l, "netwardend", nil)
	n.d.waitOwned(t, conn)
	n.d.waitReady(t)
	obj := conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
	g := l.AddGuest()
	path := n.start(t, natNetwork("default", "nwbr0", "94", net.HardwareAddr{2, 0, 0, 0, 0, 1}))
	n.plug(t, path, g, "\n  <filterref filter='clean-traffic'><parameter name='IP' value='10.94.0.120'/></filterref>")
	g.SetAddr("10.94.0.120/24")
	g.MustRun("ip", "route", "replace", "default", "via", "10.94.0.1")
	if err := g.Ping(up.Addr.String(), 1, 5*time.Second); err != nil {
		t.Fatalf("guest cannot reach upstream: %v", err)
	}
	hv := l.Hypervisor()
	ours := func() string {
		var b strings.Builder
		for _, tbl := range [][]string{{"bridge", "netwarden"}, {"inet", "netwarden-net"}} {
			b.WriteString(hv.MustRun("nft", "list", "table", tbl[0], tbl[1]))
		}
		return b.String()
	}
	want := ours()
	rss := func() int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.d.PID))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var kb int
				_, _ = fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
				return kb
			}
		}
		return 0
	}
	rss0 := rss()

	ping := g.Command(t.Context(), "ping", "-i", "0.1", "-n", up.Addr.String())
	out := &syncBuffer{}
	ping.Stdout, ping.Stderr = out, out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	client := firewalld.New(conn, firewalld.Options{})
	var last uint64
	rssWarm := 0
	for i := 0; i < 100; i++ {
		if i == 20 {
			// Memory is compared from here: the first reloads warm up
			// the runtime's pools.
			rssWarm = rss()
		}
		if err := obj.StoreProperty(dbusapi.ManagerInterface+".LastFirewallReapply", &last); err != nil {
			t.Fatal(err)
		}
		if err := client.Reload(t.Context()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	took := time.Since(start)
	if !waitReapply(t, obj, last, 5*time.Second) {
		t.Fatal("no re-apply after the last reload")
	}
	time.Sleep(500 * time.Millisecond)
	_ = ping.Process.Signal(syscall.SIGINT)
	_ = ping.Wait()
	sent, recv := pingCounts(out.String())
	t.Logf("100 reloads in %v; ping %d sent, %d received; RSS %d kB at start, %d after 20 reloads, %d after 100",
		took.Round(time.Millisecond), sent, recv, rss0, rssWarm, rss())

	if z, _ := fw.Cmd("--get-zone-of-interface=nwbr0"); strings.TrimSpace(z) != "libvirt" {
		t.Errorf("bridge in zone %q after the reloads", strings.TrimSpace(z))
	}
	if got := ours(); got != want {
		t.Errorf("netwarden's tables changed across the reloads:\n%s\nwant\n%s", got, want)
	}
	var bindings []dbus.ObjectPath
	if err := call(conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".ListNWFilterBindings", []any{uint32(0)}, &bindings); err != nil || len(bindings) != 1 {
		t.Errorf("bindings after the reloads: %v %v", bindings, err)
	}
	if sent == 0 || float64(recv) < 0.9*float64(sent) {
		t.Errorf("traffic suffered: %d of %d pings answered", recv, sent)
	}
	if grow := rss() - rssWarm; grow > 2048 {
		t.Errorf("daemon memory grew by %d kB over the last 80 reloads", grow)
	}
}
