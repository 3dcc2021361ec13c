package zones

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/firewalld"
	"github.com/netwarden/netwarden/tests/lab"
)

// TestLabEnsure runs Ensure against a real firewalld in the lab (both
// backends). The lab's firewalld reads the machine's
// /usr/lib/firewalld, where libvirt's package may have installed the
// libvirt zones already; Ensure must then do nothing. A renamed copy of
// the definitions is missing for sure: Ensure adds each to the permanent
// configuration (the lab's --system-config directory, never the
// machine's), reloads once, and a second Ensure does nothing.
func TestLabEnsure(t *testing.T) {
	if os.Getenv("NETWARDEN_INTEGRATION") != "1" && os.Getenv("CI") != "true" {
		t.Skip("lab test: set NETWARDEN_INTEGRATION=1 (needs root, dbus-daemon, firewalld)")
	}
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) { testLabEnsure(t, backend) })
	}
}

func testLabEnsure(t *testing.T, backend string) {
	l := lab.New(t)
	fw := l.StartFirewalld(backend)
	c := firewalld.New(l.Bus().Conn(), firewalld.Options{})
	ctx := context.Background()
	var logbuf strings.Builder
	log := slog.New(slog.NewTextHandler(&logbuf, nil))

	// The real names.
	_, err := os.Stat("/usr/lib/firewalld/zones/libvirt.xml")
	preinstalled := err == nil
	res, err := Ensure(ctx, c, log)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Running || res.PoliciesUnsupported {
		t.Fatalf("Ensure: %+v", res)
	}
	if preinstalled && (len(res.Created) > 0 || res.Reloaded) {
		t.Errorf("Ensure with libvirt's files installed did %+v", res)
	}
	if !preinstalled && len(res.Created) != 5 {
		t.Errorf("Ensure created %v, want all 5", res.Created)
	}
	if res, err := Ensure(ctx, c, log); err != nil || res.Reloaded || len(res.Created) > 0 {
		t.Errorf("second Ensure: %+v, %v", res, err)
	}

	// A renamed set: certainly missing.
	defs := Rename(All(), func(n string) string { return strings.Replace(n, "libvirt", "nwt", 1) })
	res, err = EnsureDefinitions(ctx, c, log, defs)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, logbuf.String())
	}
	want := []string{"zone nwt", "zone nwt-routed", "policy nwt-to-host",
		"policy nwt-routed-in", "policy nwt-routed-out"}
	if !reflect.DeepEqual(res.Created, want) || !res.Reloaded {
		t.Errorf("Ensure: %+v; want created %v and one reload", res, want)
	}
	t.Logf("log:\n%s", logbuf.String())
	for _, w := range want {
		if !strings.Contains(logbuf.String(), "added "+w) {
			t.Errorf("log does not say %q", w)
		}
	}
	// firewalld wrote files with the same meaning into the lab's
	// configuration directory.
	for _, d := range defs {
		data, err := os.ReadFile(filepath.Join(fw.ConfigDir, FilePath(d.Kind, d.Name)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(d.Name, data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, *d) {
			t.Errorf("firewalld wrote %s %s as\n%+v\nwant\n%+v\n%s", d.Kind, d.Name, *got, *d, data)
		}
	}
	out, err := fw.Cmd("--info-zone=nwt")
	if err != nil || !strings.Contains(out, "target: ACCEPT") || !strings.Contains(out, `rule priority="32767" reject`) {
		t.Errorf("firewall-cmd --info-zone: %v\n%s", err, out)
	}
	// Usable at once: a bridge goes into the new zone.
	l.Hypervisor().MustRun("ip", "link", "add", "nwtbr0", "type", "bridge")
	if err := c.ChangeZoneOfInterface(ctx, "nwt-routed", "nwtbr0"); err != nil {
		t.Fatal(err)
	}
	res, err = EnsureDefinitions(ctx, c, log, defs)
	if err != nil || res.Reloaded || len(res.Created) > 0 || len(res.Loaded) > 0 {
		t.Errorf("second Ensure: %+v, %v", res, err)
	}
	if z, _ := c.ZoneOfInterface(ctx, "nwtbr0"); z != "nwt-routed" {
		t.Errorf("bridge in %q after a second Ensure, which must not reload", z)
	}

	// Without firewalld: nothing.
	if err := fw.Process.Stop(); err != nil {
		t.Fatal(err)
	}
	if res, err := Ensure(ctx, c, log); err != nil || res.Running {
		t.Errorf("Ensure without firewalld: %+v, %v", res, err)
	}
}
