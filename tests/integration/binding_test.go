package integration

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	nwdaemon "github.com/netwarden/netwarden/daemon"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/tests/lab"
)

// TestBindingBeforeInterface: a binding for a port that does not exist
// yet is accepted, and the port is filtered from the moment it appears
// (nftables matches ports by name; nothing waits for the link).
func TestBindingBeforeInterface(t *testing.T) {
	fl := newFilterLab(t, 1)
	ctx := context.Background()
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x01}
	// The lab names the next guest's port vnet1.
	if _, err := fl.engine.CreateBinding(ctx, bindingXML("vnet1", mac, "clean-traffic", [2]string{"IP", "10.77.0.11"})); err != nil {
		t.Fatal(err)
	}
	g1 := fl.l.AddGuest()
	if g1.HostIface != "vnet1" {
		t.Fatalf("new guest's port is %s, want vnet1", g1.HostIface)
	}
	g1.MustRun("ip", "link", "set", "eth0", "address", mac.String())
	g1.SetAddr("10.77.0.11/24")
	fl.hv.MustRun("ip", "link", "set", "vnet1", "master", "br0")
	g0 := fl.guests[0]
	if !delivered(t, g1, g0, udpFrame(t, mac, g0.MAC, "10.77.0.11", "10.77.0.10", "late-own"), "late-own") {
		t.Error("own traffic from the late port was dropped")
	}
	forged := net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x03}
	if delivered(t, g1, g0, udpFrame(t, forged, g0.MAC, "10.77.0.11", "10.77.0.10", "late-forged"), "late-forged") {
		t.Error("forged traffic from the late port passed")
	}
}

// TestBindingErrors: bad bindings are refused with a clear error and
// change nothing.
func TestBindingErrors(t *testing.T) {
	fl := newFilterLab(t, 1)
	ctx := context.Background()
	g := fl.guests[0]
	before := fl.hv.MustRun("nft", "list", "table", "bridge", "netwarden")
	cases := []struct {
		name string
		xml  string
		want func(error) bool
	}{
		{"undefined filter", string(bindingXML(g.HostIface, g.MAC, "no-such-filter")), policy.IsInstantiateError},
		{"missing variable", string(bindingXML(g.HostIface, g.MAC, "clean-traffic", [2]string{"CTRL_IP_LEARNING", "none"})), policy.IsInstantiateError},
		{"value of the wrong type", string(bindingXML(g.HostIface, g.MAC, "clean-traffic", [2]string{"IP", "10.0.0.256"})), policy.IsInstantiateError},
		{"malformed XML", "<filterbinding><portdev name='vnet0'/>", policy.IsValidationError},
		{"port name that could inject", strings.Replace(string(bindingXML(g.HostIface, g.MAC, "clean-traffic", [2]string{"IP", "10.0.0.1"})), "name='vnet0'", "name='vnet0;rm -rf /'", 1), policy.IsValidationError},
	}
	for _, c := range cases {
		_, err := fl.engine.CreateBinding(ctx, []byte(c.xml))
		if err == nil || !c.want(err) {
			t.Errorf("%s: err %v", c.name, err)
		}
	}
	if _, err := fl.engine.CreateBinding(ctx, bindingXML(g.HostIface, g.MAC, "clean-traffic", [2]string{"IP", "10.77.0.10"})); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.engine.CreateBinding(ctx, bindingXML(g.HostIface, g.MAC, "clean-traffic", [2]string{"IP", "10.77.0.10"})); !errors.Is(err, nwdaemon.ErrBindingExists) {
		t.Errorf("second binding on a port: %v, want ErrBindingExists", err)
	}
	if err := fl.engine.DeleteBinding(ctx, "vnet9"); !errors.Is(err, nwdaemon.ErrNoBinding) {
		t.Errorf("delete of a missing binding: %v, want ErrNoBinding", err)
	}
	if err := fl.engine.DeleteBinding(ctx, g.HostIface); err != nil {
		t.Fatal(err)
	}
	if after := fl.hv.MustRun("nft", "list", "table", "bridge", "netwarden"); after != before {
		t.Errorf("refused bindings left traces in the kernel:\n%s\nwant:\n%s", after, before)
	}
}

// TestRedefineFilterReenforces: redefining a filter changes what every
// port using it enforces before the define returns.
func TestRedefineFilterReenforces(t *testing.T) {
	fl := newFilterLab(t, 2)
	g0, g1 := fl.guests[0], fl.guests[1]
	ctx := context.Background()
	def := `<filter name='only-mac-%s' chain='root'>
  <rule action='return' direction='out'><mac srcmacaddr='$MAC'/></rule>
  <rule action='%s' direction='out'/>
</filter>`
	if _, _, err := fl.engine.DefineFilter(ctx, []byte(strings.ReplaceAll(strings.Replace(def, "%s", "x", 1), "%s", "drop"))); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.engine.CreateBinding(ctx, bindingXML(g0.HostIface, g0.MAC, "only-mac-x")); err != nil {
		t.Fatal(err)
	}
	forged := net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x04}
	if delivered(t, g0, g1, udpFrame(t, forged, g1.MAC, "10.77.0.10", "10.77.0.11", "redef-1"), "redef-1") {
		t.Fatal("forged MAC passed before the redefinition")
	}
	// The same filter now accepts everything else.
	if _, _, err := fl.engine.DefineFilter(ctx, []byte(strings.ReplaceAll(strings.Replace(def, "%s", "x", 1), "%s", "accept"))); err != nil {
		t.Fatal(err)
	}
	if !delivered(t, g0, g1, udpFrame(t, forged, g1.MAC, "10.77.0.10", "10.77.0.11", "redef-2"), "redef-2") {
		t.Fatal("forged MAC dropped after the redefinition accepts it")
	}
	// Undefine is refused while the binding uses the filter.
	if err := fl.engine.UndefineFilter(ctx, "only-mac-x"); !errors.Is(err, policy.ErrInUse) {
		t.Fatalf("undefine of a used filter: %v, want ErrInUse", err)
	}
}

// TestStatusReportsStatefulPath: the daemon says which backend it uses
// and how rules needing connection tracking are enforced.
func TestStatusReportsStatefulPath(t *testing.T) {
	l := lab.New(t)
	lab.Require(t, "nft")
	conn := l.Bus().Conn()
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)
	d.waitReady(t)
	for prop, want := range map[string]string{"Backend": `s "nftables"`, "StatefulFiltering": `s "br_netfilter"`} {
		out, err := l.Bus().Busctl("get-property", "org.netwarden1", "/org/netwarden1", "org.netwarden1.Manager", prop)
		if err != nil || strings.TrimSpace(out) != want {
			t.Errorf("%s = %q, %v; want %s", prop, strings.TrimSpace(out), err, want)
		}
	}
	if !strings.Contains(d.log(t), "stateful_filtering=br_netfilter") {
		t.Errorf("log does not say how stateful rules are enforced:\n%s", d.log(t))
	}
}

// TestRestoreAfterFlush: after someone flushes the whole ruleset, the
// daemon's verification (periodic, or at once on SIGHUP) puts its rules
// back through the same path as every other change.
func TestRestoreAfterFlush(t *testing.T) {
	bl := newBoundDaemonLab(t)
	hv, g0, g1, d := bl.hv, bl.g0, bl.g1, bl.d
	want := hv.MustRun("nft", "list", "table", "bridge", "netwarden")
	forged := udpFrame(t, net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x05}, g1.MAC, "10.77.0.99", "10.77.0.11", "after-flush")

	// No SIGHUP: the daemon sees the flush through the kernel's
	// notifications and restores at once.
	for round := 0; round < 5; round++ {
		start := time.Now()
		hv.MustRun("nft", "flush", "ruleset")
		flushed := time.Now()
		deadline := time.Now().Add(timeout)
		for {
			got, err := hv.Run("nft", "list", "table", "bridge", "netwarden")
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rules not restored after a flush; log:\n%s", d.log(t))
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("round %d: restored %v after the flush (nft ran %v)", round, time.Since(flushed).Round(time.Millisecond),
			flushed.Sub(start).Round(time.Millisecond))
		if time.Since(flushed) > time.Second {
			t.Errorf("restore took %v, want within a second", time.Since(flushed))
		}
	}
	if delivered(t, g0, g1, forged, "after-flush") {
		t.Error("forged frame passed after the restore")
	}
	if !strings.Contains(d.log(t), "restoring") {
		t.Errorf("the log does not mention the restore:\n%s", d.log(t))
	}
}
