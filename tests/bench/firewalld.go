package main

// Recovery benchmarks (the firewalld issue): the real netwardend under a
// lab firewalld (nftables backend) with fwNetworks nat networks and
// fwBindings clean-traffic bindings, side by side with libvirt's
// bench-recovery.sh -m firewalld (../shared/bench/libvirt).
//
//	firewalld.reload_to_reapply.{median,p95}_ms  firewalld's Reloaded signal → the daemon's
//	                                             PropertiesChanged of LastFirewallReapply
//	firewalld.reload_to_reapply.in_daemon.*      the daemon's own "re-applied" durations
//	firewalld.reload.restores                    re-applies during the reloads that found
//	                                             netwarden's tables damaged (0: never unfiltered)
//	firewalld.change_zone_of_interface.*         one bridge put back into its zone (one firewalld
//	                                             call, as the daemon makes per network)
//	flush.to_restored.{median,p95}_ms            `nft flush ruleset` committed → PropertiesChanged
//	                                             of Restores (tables checked equal afterwards)
//	flush.spoof_window.{median,p95}_ms           the same interval: while it lasts, a bound
//	                                             port's spoofed frame could pass
//
// Both ends are taken where the bench receives them on one bus
// connection, in the order the bus delivered them. The flush is one
// netlink transaction sent by the bench into the hypervisor namespace,
// timed from just before it is sent: an upper bound of the window.

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	gnft "github.com/google/nftables"
	vnetns "github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/firewalld"
	"github.com/netwarden/netwarden/tests/lab"
)

var (
	fwReps     = flag.Int("fw-reps", 20, "firewalld reloads and ruleset flushes timed (each)")
	fwNetworks = flag.Int("fw-networks", 10, "nat networks running during the firewalld benchmarks")
	fwBindings = flag.Int("fw-bindings", 1000, "stored clean-traffic bindings during the firewalld benchmarks")
)

// fwEvent is one signal as the bench received it.
type fwEvent struct {
	at       time.Time
	reloaded bool   // firewalld's Reloaded
	reapply  uint64 // LastFirewallReapply in a PropertiesChanged, 0 if absent
	restores uint64 // Restores in a PropertiesChanged
	hasRest  bool
}

type fwBench struct {
	t      lab.TB
	nb     *netBench
	events chan fwEvent
}

func runFirewalld(t lab.TB, bin string) {
	if *fwReps < 1 || *fwNetworks < 0 || *fwNetworks > 100 || *fwBindings < 0 {
		t.Fatalf("-fw-reps must be positive, -fw-networks 0..100, -fw-bindings not negative")
	}
	l := lab.New(t)
	lab.Require(t, "nft", "dnsmasq", "firewalld", "firewall-cmd")
	bus := l.Bus()
	l.Upstream()
	fw := l.StartFirewalld("nftables")
	if *fwBindings > 0 {
		(&apiBench{t: t}).storeBindings(l.Dir, *fwBindings) // adopted at start
	}
	nb := &netBench{t: t, l: l, hv: l.Hypervisor(), conn: bus.Conn()}
	nb.startDaemon(bin)
	t.Logf("bench: firewalld lab %s", l.ID)
	defer func() {
		if err := nb.d.Stop(); err != nil {
			t.Fatalf("stop netwardend: %v", err)
		}
	}()

	var paths []dbus.ObjectPath
	nb.call(dbusapi.ObjectPath, dbusapi.ManagerInterface+".ListNWFilterBindings", []any{uint32(0)}, &paths)
	if len(paths) != *fwBindings {
		t.Fatalf("daemon adopted %d bindings, want %d; log:\n%s", len(paths), *fwBindings, nb.log())
	}
	for i := 0; i < *fwNetworks; i++ {
		dhcp := ""
		if i == 0 {
			dhcp = fmt.Sprintf("\n    <dhcp><range start='10.%d.0.2' end='10.%d.0.254'/></dhcp>", 120+i, 120+i)
		}
		xml := fmt.Sprintf(`<network>
  <name>nwfw-%d</name>
  <forward mode='nat'/>
  <bridge name='nwfw%d' stp='on' delay='0'/>
  <ip address='10.%d.0.1' netmask='255.255.255.0'>%s
  </ip>
</network>`, i, i, 120+i, dhcp)
		var p dbus.ObjectPath
		nb.call(dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkCreateXML", []any{xml}, &p)
	}
	if *fwNetworks > 0 {
		if z, err := fw.Cmd(fmt.Sprintf("--get-zone-of-interface=nwfw%d", *fwNetworks-1)); strings.TrimSpace(z) != "libvirt" {
			t.Fatalf("bridge nwfw%d in zone %q (%v), want libvirt", *fwNetworks-1, strings.TrimSpace(z), err)
		}
	}
	out("firewalld.networks", "%d", *fwNetworks)
	out("firewalld.bindings", "%d", len(paths))

	// Signals: firewalld's Reloaded and the manager's PropertiesChanged,
	// on a connection of their own, stamped as they arrive.
	conn := bus.Conn()
	for _, m := range [][]dbus.MatchOption{
		{dbus.WithMatchInterface(firewalld.Interface), dbus.WithMatchMember("Reloaded")},
		{dbus.WithMatchObjectPath(dbusapi.ObjectPath), dbus.WithMatchInterface("org.freedesktop.DBus.Properties"),
			dbus.WithMatchMember("PropertiesChanged"), dbus.WithMatchArg(0, dbusapi.ManagerInterface)},
	} {
		if err := conn.AddMatchSignal(m...); err != nil {
			t.Fatalf("AddMatch: %v", err)
		}
	}
	raw := make(chan *dbus.Signal, 256)
	conn.Signal(raw)
	b := &fwBench{t: t, nb: nb, events: make(chan fwEvent, 256)}
	go func() {
		for s := range raw {
			ev := fwEvent{at: time.Now()}
			switch {
			case s.Name == firewalld.Interface+".Reloaded":
				ev.reloaded = true
			case s.Name == "org.freedesktop.DBus.Properties.PropertiesChanged" && len(s.Body) >= 2:
				changed, _ := s.Body[1].(map[string]dbus.Variant)
				if v, ok := changed["LastFirewallReapply"]; ok {
					ev.reapply, _ = v.Value().(uint64)
				}
				if v, ok := changed["Restores"]; ok {
					ev.restores, _ = v.Value().(uint64)
					ev.hasRest = true
				}
			default:
				continue
			}
			b.events <- ev
		}
	}()
	obj := conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
	prop := func(name string) uint64 {
		var v uint64
		if err := obj.StoreProperty(dbusapi.ManagerInterface+"."+name, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	ours := func() string {
		s := nb.hv.MustRun("nft", "list", "table", "bridge", "netwarden")
		if *fwNetworks > 0 {
			s += nb.hv.MustRun("nft", "list", "table", "inet", "netwarden-net")
		}
		return s
	}
	want := ours()

	// firewalld reloads.
	client := firewalld.New(conn, firewalld.Options{})
	reapplied := len(fwReapplied(nb.log()))
	restores0 := prop("Restores")
	var reload []time.Duration
	for i := 0; i < *fwReps; i++ {
		b.settle()
		before := prop("LastFirewallReapply")
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := client.Reload(ctx)
		cancel()
		if err != nil {
			t.Fatalf("firewalld reload %d: %v", i, err)
		}
		var start time.Time
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case ev := <-b.events:
				switch {
				case ev.reloaded && start.IsZero():
					start = ev.at
				case !start.IsZero() && ev.reapply > before:
					reload = append(reload, ev.at.Sub(start))
					break wait
				}
			case <-deadline:
				t.Fatalf("reload %d: no Reloaded then LastFirewallReapply change within 10 s (Reloaded seen: %v); log:\n%s",
					i, !start.IsZero(), nb.log())
			}
		}
	}
	stats("firewalld.reload_to_reapply", reload)
	stats("firewalld.reload_to_reapply.in_daemon", fwReapplied(nb.log())[reapplied:])
	b.settle()
	// firewalld's nftables backend reloads its own tables only: a
	// re-apply that had to repair netwarden's would count here.
	out("firewalld.reload.restores", "%d", prop("Restores")-restores0)
	if got := ours(); got != want {
		t.Fatalf("netwarden's tables differ after the reloads:\n%s\nwant\n%s", got, want)
	}
	if *fwNetworks > 0 {
		if z, err := fw.Cmd("--get-zone-of-interface=nwfw0"); strings.TrimSpace(z) != "libvirt" {
			t.Fatalf("bridge nwfw0 in zone %q (%v) after the reloads, want libvirt", strings.TrimSpace(z), err)
		}
		// What one network costs a re-apply: firewalld forgets the
		// bridges' zones on reload, and the daemon puts each back with
		// one call. The bench takes nwfw0 out of its zone (untimed) and
		// makes that call, timed.
		var zone []time.Duration
		for i := 0; i < *fwReps; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			err := client.RemoveInterface(ctx, "libvirt", "nwfw0")
			start := time.Now()
			if err == nil {
				err = client.ChangeZoneOfInterface(ctx, "libvirt", "nwfw0")
			}
			zone = append(zone, time.Since(start))
			cancel()
			if err != nil {
				t.Fatalf("take nwfw0 out of its zone and put it back: %v", err)
			}
		}
		stats("firewalld.change_zone_of_interface", zone)
	}

	// nft flush ruleset in the hypervisor namespace.
	h, err := vnetns.GetFromName(nb.hv.Name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer h.Close()
	nft, err := gnft.New(gnft.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	var flush []time.Duration
	for i := 0; i < *fwReps; i++ {
		b.settle()
		before := prop("Restores")
		nft.FlushRuleset()
		start := time.Now()
		if err := nft.Flush(); err != nil {
			t.Fatalf("flush ruleset: %v", err)
		}
		deadline := time.After(10 * time.Second)
	wait2:
		for {
			select {
			case ev := <-b.events:
				if ev.hasRest && ev.restores > before {
					flush = append(flush, ev.at.Sub(start))
					break wait2
				}
			case <-deadline:
				t.Fatalf("flush %d: Restores did not increase within 10 s; log:\n%s", i, nb.log())
			}
		}
		b.settle()
		if got := ours(); got != want {
			t.Fatalf("flush %d: netwarden's tables differ after the restore:\n%s\nwant\n%s", i, got, want)
		}
	}
	stats("flush.to_restored", flush)
	stats("flush.spoof_window", flush)
}

// settle waits until no signal has arrived for 300 ms (a coalesced
// second re-apply, a periodic check), dropping what arrives.
func (b *fwBench) settle() {
	for {
		select {
		case <-b.events:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// fwReapplied returns the durations of the daemon's "re-applied" log
// lines (one per triggered reconcile), oldest first.
func fwReapplied(log string) []time.Duration {
	var ds []time.Duration
	for _, m := range regexp.MustCompile(`msg="?re-applied"? .*duration=(\S+)`).FindAllStringSubmatch(log, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			ds = append(ds, d)
		}
	}
	return ds
}
