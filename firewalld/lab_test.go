package firewalld

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// TestLabFirewalld runs the client against a real firewalld in the lab's
// hypervisor namespace, with each backend: presence, version, backend,
// zones of a bridge, error codes, a permanent zone that appears after a
// reload, and the Reloaded / Stopped / Started events of firewall-cmd
// --reload and of firewalld killed and started again.
func TestLabFirewalld(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) { testLabFirewalld(t, backend) })
	}
}

func testLabFirewalld(t *testing.T, backend string) {
	l := needLab(t)
	fw := l.StartFirewalld(backend)
	hv := l.Hypervisor()
	c := New(l.Bus().Conn(), Options{})
	ctx := context.Background()

	if run, err := c.Running(ctx); err != nil || !run {
		t.Fatalf("Running = %v, %v", run, err)
	}
	v, err := c.Version(ctx)
	if err != nil || !SupportsPolicies(v) || !SupportsZonesOnNftables(v) {
		t.Fatalf("Version = %q, %v", v, err)
	}
	if b, err := c.Backend(ctx); err != nil || b != backend {
		t.Errorf("Backend = %q, %v; want %s", b, err, backend)
	}
	def, err := c.DefaultZone(ctx)
	if err != nil || def == "" {
		t.Fatalf("DefaultZone = %q, %v", def, err)
	}
	want, _ := fw.Cmd("--get-default-zone")
	if def != strings.TrimSpace(want) {
		t.Errorf("DefaultZone %q, firewall-cmd says %q", def, want)
	}
	zones, err := c.Zones(ctx)
	if err != nil || !slices.Contains(zones, "trusted") || !slices.Contains(zones, def) {
		t.Fatalf("Zones = %v, %v", zones, err)
	}
	if _, err := c.Policies(ctx); err != nil {
		t.Fatalf("Policies: %v", err)
	}

	hv.MustRun("ip", "link", "add", "nwfwbr0", "type", "bridge")
	hv.MustRun("ip", "link", "set", "nwfwbr0", "up")
	if z, err := c.ZoneOfInterface(ctx, "nwfwbr0"); err != nil || z != "" {
		t.Errorf("ZoneOfInterface before = %q, %v; want none", z, err)
	}
	if err := c.ChangeZoneOfInterface(ctx, "trusted", "nwfwbr0"); err != nil {
		t.Fatal(err)
	}
	if z, err := c.ZoneOfInterface(ctx, "nwfwbr0"); err != nil || z != "trusted" {
		t.Errorf("ZoneOfInterface = %q, %v; want trusted", z, err)
	}
	if out, _ := fw.Cmd("--get-zone-of-interface=nwfwbr0"); strings.TrimSpace(out) != "trusted" {
		t.Errorf("firewall-cmd says the bridge is in %q", out)
	}
	if err := c.ChangeZoneOfInterface(ctx, "trusted", "nwfwbr0"); err != nil {
		t.Errorf("same zone again: %v, want success", err)
	}
	err = c.ChangeZoneOfInterface(ctx, "nwfw-nosuch", "nwfwbr0")
	if !IsInvalidZone(err) {
		t.Errorf("unknown zone: %v, want INVALID_ZONE", err)
	}
	t.Logf("unknown zone: %v", err)

	// A permanent zone: usable only after a reload.
	s := Settings{"short": dbus.MakeVariant("nwfw test"), "target": dbus.MakeVariant("ACCEPT"),
		"services": dbus.MakeVariant([]string{"dns"})}
	if err := c.AddZone(ctx, "nwfwtest", s); err != nil {
		t.Fatal(err)
	}
	err = c.AddZone(ctx, "nwfwtest", s)
	if !IsNameConflict(err) {
		t.Errorf("AddZone twice: %v, want NAME_CONFLICT", err)
	}
	t.Logf("AddZone twice: %v", err)
	if ok, _ := c.ZoneExists(ctx, "nwfwtest"); ok {
		t.Error("permanent zone in the run-time zones before a reload")
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := c.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func(want EventKind, d time.Duration) Event {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("events closed, want %v", want)
			}
			if e.Kind != want {
				t.Fatalf("event %v, want %v", e.Kind, want)
			}
			return e
		case <-time.After(d):
			t.Fatalf("no %v event within %v", want, d)
		}
		return Event{}
	}

	start := time.Now()
	if out, err := fw.Cmd("--reload"); err != nil {
		t.Fatalf("firewall-cmd --reload: %v %s", err, out)
	}
	next(Reloaded, 10*time.Second)
	t.Logf("firewall-cmd --reload → Reloaded in %v", time.Since(start))
	if ok, err := c.ZoneExists(ctx, "nwfwtest"); err != nil || !ok {
		t.Errorf("zone added permanently not there after reload: %v %v", ok, err)
	}
	if z, err := c.ZoneOfInterface(ctx, "nwfwbr0"); err != nil || z != "" {
		t.Errorf("ZoneOfInterface after reload = %q, %v; run-time binding should be gone", z, err)
	}

	// Reload through the client too.
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	next(Reloaded, 10*time.Second)

	// Killed, then started again: Stopped, Started, never Reloaded.
	owner, _ := c.Owner(ctx)
	if err := fw.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if e := next(Stopped, 10*time.Second); e.Owner != owner {
		t.Errorf("Stopped owner %q, want %q", e.Owner, owner)
	}
	if run, err := c.Running(ctx); err != nil || run {
		t.Errorf("Running after kill = %v, %v", run, err)
	}
	if _, err := c.DefaultZone(ctx); !IsNotRunning(err) {
		t.Errorf("call without firewalld: %v, want IsNotRunning", err)
	}
	if err := fw.Restart(); err != nil {
		t.Fatal(err)
	}
	e := next(Started, 30*time.Second)
	if now, _ := c.Owner(ctx); e.Owner != now || now == owner {
		t.Errorf("Started owner %q, now %q, before %q", e.Owner, now, owner)
	}
	select {
	case e := <-events:
		t.Errorf("unexpected event after restart: %v", e)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	for range events {
	}
}
