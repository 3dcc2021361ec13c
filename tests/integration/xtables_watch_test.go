package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/tests/lab"
)

// newBoundXtablesDaemonLab is newBoundDaemonLab with a daemon started
// with --backend xtables (the system's iptables: iptables-nft here).
func newBoundXtablesDaemonLab(t *testing.T) *boundDaemonLab {
	t.Helper()
	l := lab.New(t)
	lab.Require(t, "iptables", "ebtables", "iptables-restore", "ebtables-restore")
	bl := &boundDaemonLab{l: l, hv: l.Hypervisor()}
	bl.g0, bl.g1 = l.AddGuest(), l.AddGuest()
	bl.g0.SetAddr("10.77.0.10/24")
	bl.g1.SetAddr("10.77.0.11/24")
	bl.hv.AddBridge("br0", "10.77.0.1/24", bl.g0.HostIface, bl.g1.HostIface)
	bl.conn = l.Bus().Conn()
	stateDir := filepath.Join(l.Dir, "run")
	if err := os.MkdirAll(filepath.Join(stateDir, "bindings"), 0o700); err != nil {
		t.Fatal(err)
	}
	xml := bindingXML(bl.g0.HostIface, bl.g0.MAC, "clean-traffic", [2]string{"IP", "10.77.0.10"})
	if err := os.WriteFile(filepath.Join(stateDir, "bindings", bl.g0.HostIface+".xml"), xml, 0o600); err != nil {
		t.Fatal(err)
	}
	bl.d = startDaemon(t, l, "netwardend-0", nil, "--backend", "xtables")
	bl.d.waitOwned(t, bl.conn)
	bl.d.waitReady(t)
	return bl
}

// TestXtablesRestoreAfterFlush: on the xtables backend, a flush of the
// iptables or ebtables tables in the hypervisor's namespace is seen
// through the nf_tables notifications (iptables-nft) and the rules are
// back within a second, without SIGHUP; forged frames stay dropped.
func TestXtablesRestoreAfterFlush(t *testing.T) {
	bl := newBoundXtablesDaemonLab(t)
	hv, g0, g1, d := bl.hv, bl.g0, bl.g1, bl.d
	if !strings.Contains(hv.MustRun("iptables", "--version"), "nf_tables") {
		t.Skip("the system's iptables is not iptables-nft: flushes are seen by the periodic check only")
	}
	rules := func() string {
		return hv.MustRun("iptables", "-S") + hv.MustRun("iptables", "-t", "nat", "-S") +
			hv.MustRun("ip6tables", "-S") + hv.MustRun("ebtables", "-t", "nat", "-L")
	}
	want := rules()
	if !strings.Contains(want, "NI0-"+g0.HostIface) {
		t.Fatalf("the port's chain is missing:\n%s", want)
	}
	forged := udpFrame(t, net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x06}, g1.MAC, "10.77.0.99", "10.77.0.11", "after-xt-flush")
	for round, flush := range [][][]string{
		{{"iptables", "-F"}},
		{{"ebtables", "-t", "nat", "-F"}},
		{{"iptables", "-F"}, {"iptables", "-X"}},
		{{"ebtables", "-t", "nat", "-F"}, {"ebtables", "-t", "nat", "-X"}},
		{{"ip6tables", "-F"}},
		{{"iptables", "-t", "nat", "-F"}},
	} {
		start := time.Now()
		for _, c := range flush {
			hv.MustRun(c...)
		}
		flushed := time.Now()
		deadline := flushed.Add(timeout)
		for rules() != want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d %v: rules not restored; log:\n%s", round, flush, d.log(t))
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("round %d %v: restored %v after the flush (the commands ran %v)", round, flush,
			time.Since(flushed).Round(time.Millisecond), flushed.Sub(start).Round(time.Millisecond))
		if time.Since(flushed) > time.Second {
			t.Errorf("round %d: restore took %v, want within a second", round, time.Since(flushed))
		}
	}
	if delivered(t, g0, g1, forged, "after-xt-flush") {
		t.Error("forged frame passed after the restore")
	}
	if !strings.Contains(d.log(t), "restoring") {
		t.Errorf("the log does not mention the restore:\n%s", d.log(t))
	}
}
