package firewalld

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/tests/lab"
)

// fake is a firewalld stand-in exported on a lab bus: enough of the API to
// test the client's calls, the fallbacks for an old firewalld and the
// filtering of Watch. old makes it a firewalld 0.8 (no addZone2, no
// policies).
type fake struct {
	conn *dbus.Conn
	old  bool

	mu       sync.Mutex
	zones    []string
	ifaces   map[string]string
	added    map[string]Settings
	oldAdded map[string]zoneTuple
}

func exc(msg string) *dbus.Error {
	return &dbus.Error{Name: ExceptionName, Body: []any{msg}}
}

func startFake(t *testing.T, bus *lab.Bus, old bool) *fake {
	t.Helper()
	f := &fake{conn: bus.Conn(), old: old, zones: []string{"public", "trusted"},
		ifaces: map[string]string{}, added: map[string]Settings{}, oldAdded: map[string]zoneTuple{}}
	version := "1.3.3"
	if old {
		version = "0.8.2"
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.conn.ExportMethodTable(map[string]any{
		"getDefaultZone": func() (string, *dbus.Error) { return "public", nil },
		"reload": func() *dbus.Error {
			if err := f.conn.Emit(Path, Interface+".Reloaded"); err != nil {
				return dbus.MakeFailedError(err)
			}
			return nil
		},
	}, Path, Interface))
	must(f.conn.ExportMethodTable(map[string]any{
		"Get": func(iface, name string) (dbus.Variant, *dbus.Error) {
			switch {
			case iface == Interface && name == "version":
				return dbus.MakeVariant(version), nil
			case iface == ConfigInterface && name == "FirewallBackend":
				return dbus.MakeVariant("nftables"), nil
			}
			return dbus.Variant{}, &dbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []any{"no property"}}
		},
	}, Path, "org.freedesktop.DBus.Properties"))
	must(f.conn.ExportMethodTable(map[string]any{
		"Get": func(iface, name string) (dbus.Variant, *dbus.Error) {
			if iface == ConfigInterface && name == "FirewallBackend" {
				return dbus.MakeVariant("nftables"), nil
			}
			return dbus.Variant{}, &dbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []any{"no property"}}
		},
	}, ConfigPath, "org.freedesktop.DBus.Properties"))
	must(f.conn.ExportMethodTable(map[string]any{
		"getZones": func() ([]string, *dbus.Error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return slices.Clone(f.zones), nil
		},
		"getZoneOfInterface": func(iface string) (string, *dbus.Error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.ifaces[iface], nil
		},
		"changeZoneOfInterface": func(zone, iface string) (string, *dbus.Error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if zone == "" {
				zone = "public"
			}
			if !slices.Contains(f.zones, zone) {
				return "", exc("INVALID_ZONE: " + zone)
			}
			if f.ifaces[iface] == zone {
				return "", exc("ZONE_ALREADY_SET: " + zone)
			}
			f.ifaces[iface] = zone
			return zone, nil
		},
	}, Path, ZoneInterface))
	config := map[string]any{
		"addZone": func(name string, s zoneTuple) (dbus.ObjectPath, *dbus.Error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if _, ok := f.oldAdded[name]; ok || slices.Contains(f.zones, name) {
				return "", exc("NAME_CONFLICT: new_zone(): '" + name + "'")
			}
			f.oldAdded[name] = s
			return ConfigPath + "/zone/9", nil
		},
	}
	if !old {
		config["addZone2"] = func(name string, s map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if _, ok := f.added[name]; ok || slices.Contains(f.zones, name) {
				return "", exc("NAME_CONFLICT: new_zone(): '" + name + "'")
			}
			f.added[name] = s
			return ConfigPath + "/zone/9", nil
		}
		config["addPolicy"] = func(name string, s map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.added["policy:"+name] = s
			return ConfigPath + "/policy/1", nil
		}
		must(f.conn.ExportMethodTable(map[string]any{
			"getPolicies": func() ([]string, *dbus.Error) { return []string{"allow-host-ipv6"}, nil },
		}, Path, PolicyInterface))
	}
	must(f.conn.ExportMethodTable(config, ConfigPath, ConfigInterface))
	f.own(t)
	return f
}

func (f *fake) own(t *testing.T) {
	t.Helper()
	reply, err := f.conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("fake firewalld: RequestName: %v %v", reply, err)
	}
}

func needLab(t *testing.T) *lab.Lab {
	if os.Getenv("NETWARDEN_INTEGRATION") != "1" && os.Getenv("CI") != "true" {
		t.Skip("lab test: set NETWARDEN_INTEGRATION=1 (needs root, dbus-daemon)")
	}
	return lab.New(t)
}

// TestFakeCalls: the client's calls and firewalld's error codes against a
// fake firewalld 1.3 on a private bus.
func TestFakeCalls(t *testing.T) {
	l := needLab(t)
	bus := l.Bus()
	c := New(bus.Conn(), Options{CallTimeout: 10 * time.Second})
	ctx := context.Background()

	if run, err := c.Running(ctx); err != nil || run {
		t.Fatalf("Running before the fake = %v, %v", run, err)
	}
	_, err := c.DefaultZone(ctx)
	if !IsNotRunning(err) {
		t.Fatalf("DefaultZone without firewalld: %v, want IsNotRunning", err)
	}
	startFake(t, bus, false)
	if run, err := c.Running(ctx); err != nil || !run {
		t.Fatalf("Running = %v, %v", run, err)
	}
	if v, err := c.Version(ctx); err != nil || v != "1.3.3" {
		t.Errorf("Version = %q, %v", v, err)
	}
	if b, err := c.Backend(ctx); err != nil || b != "nftables" {
		t.Errorf("Backend = %q, %v", b, err)
	}
	if z, err := c.DefaultZone(ctx); err != nil || z != "public" {
		t.Errorf("DefaultZone = %q, %v", z, err)
	}
	if z, err := c.ZoneOfInterface(ctx, "br0"); err != nil || z != "" {
		t.Errorf("ZoneOfInterface = %q, %v", z, err)
	}
	if err := c.ChangeZoneOfInterface(ctx, "trusted", "br0"); err != nil {
		t.Fatal(err)
	}
	if z, err := c.ZoneOfInterface(ctx, "br0"); err != nil || z != "trusted" {
		t.Errorf("ZoneOfInterface = %q, %v", z, err)
	}
	// The fake answers ZONE_ALREADY_SET like an old firewalld: success.
	if err := c.ChangeZoneOfInterface(ctx, "trusted", "br0"); err != nil {
		t.Errorf("second change: %v, want success", err)
	}
	if err := c.ChangeZoneOfInterface(ctx, "nosuch", "br0"); !IsInvalidZone(err) {
		t.Errorf("unknown zone: %v, want INVALID_ZONE", err)
	}
	if ok, err := c.ZoneExists(ctx, "trusted"); err != nil || !ok {
		t.Errorf("ZoneExists(trusted) = %v, %v", ok, err)
	}
	if ok, err := c.PolicyExists(ctx, "allow-host-ipv6"); err != nil || !ok {
		t.Errorf("PolicyExists = %v, %v", ok, err)
	}
	s := Settings{"target": dbus.MakeVariant("ACCEPT"), "services": dbus.MakeVariant([]string{"dns"})}
	if err := c.AddZone(ctx, "z1", s); err != nil {
		t.Fatal(err)
	}
	if err := c.AddZone(ctx, "public", s); !IsNameConflict(err) {
		t.Errorf("AddZone(public): %v, want NAME_CONFLICT", err)
	}
	if err := c.AddPolicy(ctx, "p1", Settings{"priority": dbus.MakeVariant(int32(-1))}); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFakeOldFirewalld: a firewalld 0.8 has no addZone2 (AddZone falls
// back to addZone with the settings tuple) and no policies.
func TestFakeOldFirewalld(t *testing.T) {
	l := needLab(t)
	bus := l.Bus()
	f := startFake(t, bus, true)
	c := New(bus.Conn(), Options{})
	ctx := context.Background()
	if v, _ := c.Version(ctx); SupportsPolicies(v) || !SupportsZonesOnNftables(v) {
		t.Errorf("version %q gated wrongly", v)
	}
	s := Settings{"short": dbus.MakeVariant("z1"), "target": dbus.MakeVariant("ACCEPT"),
		"services": dbus.MakeVariant([]string{"dns"}), "rules_str": dbus.MakeVariant([]string{`rule priority="32767" reject`}),
		"forward": dbus.MakeVariant(true)}
	if err := c.AddZone(ctx, "z1", s); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	got := f.oldAdded["z1"]
	f.mu.Unlock()
	if got.Short != "z1" || got.Target != "ACCEPT" || !slices.Equal(got.Services, []string{"dns"}) || len(got.RichRules) != 1 {
		t.Errorf("addZone got %+v", got)
	}
	if err := c.AddZone(ctx, "z1", s); !IsNameConflict(err) {
		t.Errorf("second AddZone: %v, want NAME_CONFLICT", err)
	}
	if _, err := c.Policies(ctx); !errors.Is(err, ErrPoliciesUnsupported) {
		t.Errorf("Policies: %v, want ErrPoliciesUnsupported", err)
	}
	if err := c.AddPolicy(ctx, "p", Settings{}); !errors.Is(err, ErrPoliciesUnsupported) {
		t.Errorf("AddPolicy: %v, want ErrPoliciesUnsupported", err)
	}
}

// TestFakeWatch: Watch turns firewalld's Reloaded and the owner changes of
// its name into events, and ignores look-alikes: Reloaded from a
// connection that does not own the name, on another path, and other
// signals the connection receives.
func TestFakeWatch(t *testing.T) {
	l := needLab(t)
	bus := l.Bus()
	conn := bus.Conn()
	c := New(conn, Options{})
	// Another subscriber on the same connection, as the daemon has.
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("org.example.Other")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := c.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func(want EventKind) Event {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("events closed, want %v", want)
			}
			if e.Kind != want {
				t.Fatalf("event %v (%s), want %v", e.Kind, e.Owner, want)
			}
			return e
		case <-time.After(5 * time.Second):
			t.Fatalf("no %v event", want)
		}
		return Event{}
	}
	f := startFake(t, bus, false)
	e := next(Started)
	if e.Owner != f.conn.Names()[0] {
		t.Errorf("Started owner %q, want %q", e.Owner, f.conn.Names()[0])
	}
	// Look-alikes first: none may become an event.
	impostor := bus.Conn()
	if err := impostor.Emit(Path, Interface+".Reloaded"); err != nil {
		t.Fatal(err)
	}
	if err := f.conn.Emit(Path+"/zone", Interface+".Reloaded"); err != nil {
		t.Fatal(err)
	}
	if err := f.conn.Emit("/org/example", "org.example.Other.Reloaded"); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	next(Reloaded)
	// firewalld stops: its connection goes away.
	f.conn.Close()
	next(Stopped)
	f2 := startFake(t, bus, false)
	if e := next(Started); e.Owner != f2.conn.Names()[0] {
		t.Errorf("Started owner %q", e.Owner)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	next(Reloaded)
	select {
	case e := <-events:
		t.Fatalf("unexpected event %v", e)
	case <-time.After(200 * time.Millisecond):
	}
	// The match rules go with the context; the channel closes.
	cancel()
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events not closed after cancel")
	}
}
