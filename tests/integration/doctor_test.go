package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/doctor"
	"github.com/netwarden/netwarden/tests/lab"
)

// doctorAPI calls the Manager's Doctor method and decodes its report.
func (n *netLab) doctorAPI(t *testing.T) doctor.Report {
	t.Helper()
	var js string
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".Doctor", []any{uint32(0)}, &js); err != nil {
		t.Fatalf("Doctor: %v\n%s", err, n.d.log(t))
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("Doctor's report %q: %v", js, err)
	}
	return r
}

// finding returns the finding of network name about table, chain and
// what, if any.
func finding(r doctor.Report, name, table, chain, what string) (doctor.Finding, bool) {
	for _, nr := range r.Networks {
		if nr.Name != name {
			continue
		}
		for _, f := range nr.Findings {
			if f.Table == table && f.Chain == chain && f.What == what {
				return f, true
			}
		}
	}
	return doctor.Finding{}, false
}

// TestDoctor: tables planted in the hypervisor's namespace that drop a
// nat network's forwarded traffic, or its DHCP and DNS, are named by
// `netwarden doctor` and the API with a fix; the guest indeed loses that
// traffic; the fixes the doctor gives for DHCP and DNS make it flow
// again; without the
// planted tables the doctor reports no error.
func TestDoctor(t *testing.T) {
	n := newNetLab(t)
	hv := n.l.Hypervisor()
	g := n.l.AddGuest()
	net0 := n.start(t, natNetwork("default", "nwbr0", "83", g.MAC))
	n.plug(t, net0, g, "")
	if _, err := g.DHCPWith(lab.DHCPOptions{Timeout: 15 * time.Second}); err != nil {
		t.Fatalf("DHCP: %v\n%s", err, n.d.log(t))
	}
	if err := g.Ping(n.up.Addr.String(), 1, 5*time.Second); err != nil {
		t.Fatalf("guest cannot reach upstream before anything is planted: %v", err)
	}
	if r := n.cli(t, 0, "", "doctor"); !strings.Contains(r.stdout, "network default (bridge nwbr0, nat):\n  ok:") {
		t.Errorf("doctor before planting:\n%s", r.stdout)
	}

	// A forward chain with policy drop.
	hv.MustRun("nft", "add", "table", "inet", "planted")
	// nft's command line cannot name a chain fwd (a keyword); its JSON
	// input can.
	hv.MustRun("sh", "-c", `echo '{"nftables":[{"add":{"chain":{"family":"inet","table":"planted","name":"fwd","type":"filter","hook":"forward","prio":0,"policy":"drop"}}}]}' | nft -j -f -`)
	r := n.cli(t, 1, "", "doctor")
	for _, s := range []string{
		"error: table inet planted, chain fwd: forwarded traffic out\n    why: drops it (forward hook, priority 0): policy drop\n    fix: nft insert rule inet planted fwd iifname \"nwbr0\" accept",
		"error: table inet planted, chain fwd: forwarded traffic in (replies)\n",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("doctor's report lacks %q:\n%s", s, r.stdout)
		}
	}
	rep := n.doctorAPI(t)
	for _, what := range []string{"forwarded traffic out", "forwarded traffic in (replies)"} {
		f, ok := finding(rep, "default", "inet planted", "fwd", what)
		if !ok || f.Severity != doctor.SeverityError || f.Fix == "" || f.Why == "" {
			t.Fatalf("API report has no error for %s in inet planted fwd: %+v", what, rep)
		}
	}
	// The finding is real: the guest cannot reach upstream.
	if err := g.Ping(n.up.Addr.String(), 1, 2*time.Second); err == nil {
		t.Fatal("guest reached upstream through the planted drop policy")
	}
	hv.MustRun("nft", "delete", "table", "inet", "planted")
	if rep := n.doctorAPI(t); rep.Errors() != 0 {
		t.Errorf("errors without the planted table: %+v", rep)
	}

	// An input chain with policy drop: DHCP and DNS to the host.
	hv.MustRun("nft", "add", "table", "ip", "planted-in")
	hv.MustRun("nft", "add", "chain", "ip", "planted-in", "guard", "{ type filter hook input priority 10; policy drop; }")
	hv.MustRun("nft", "add", "rule", "ip", "planted-in", "guard", "ct", "state", "established,related", "accept")
	r = n.cli(t, 1, "", "doctor")
	for _, s := range []string{
		"error: table ip planted-in, chain guard: DHCP to host\n",
		"fix: nft insert rule ip planted-in guard iifname \"nwbr0\" udp dport 67 accept",
		"error: table ip planted-in, chain guard: DNS to host\n",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("doctor's report lacks %q:\n%s", s, r.stdout)
		}
	}
	rep = n.doctorAPI(t)
	var fixes []string
	for _, what := range []string{"DHCP to host", "DNS to host"} {
		f, ok := finding(rep, "default", "ip planted-in", "guard", what)
		if !ok || f.Severity != doctor.SeverityError {
			t.Fatalf("API report has no error for %s in ip planted-in guard: %+v", what, rep)
		}
		fixes = append(fixes, f.Fix)
	}
	// Real: the guest's names no longer resolve, nor does it lease.
	if ips, err := g.LookupDNS("10.83.0.1", "printer", layers.DNSTypeA, 2*time.Second); err == nil {
		t.Errorf("guest resolved through the planted input drop: %v", ips)
	}
	if _, err := g.DHCPWith(lab.DHCPOptions{Timeout: 4 * time.Second}); err == nil {
		t.Error("guest leased through the planted input drop")
	}
	// The fixes the doctor gives make it flow again, and content it.
	for _, fix := range fixes {
		cmd, _, _ := strings.Cut(fix, " — ")
		if !strings.HasPrefix(cmd, "nft insert rule ") {
			t.Fatalf("fix %q is not an nft command", fix)
		}
		hv.MustRun("sh", "-c", cmd)
	}
	if ips, err := g.LookupDNS("10.83.0.1", "printer", layers.DNSTypeA, 3*time.Second); err != nil || len(ips) == 0 {
		t.Errorf("guest cannot resolve after the doctor's fixes: %v %v", ips, err)
	}
	if r := n.cli(t, 0, "", "doctor"); !strings.Contains(r.stdout, "0 error(s)") {
		t.Errorf("doctor after the fixes:\n%s", r.stdout)
	}
	hv.MustRun("nft", "delete", "table", "ip", "planted-in")
	if r := n.cli(t, 0, "", "doctor"); !strings.Contains(r.stdout, "0 error(s), 0 warning(s)") {
		t.Errorf("doctor after removing the planted tables:\n%s", r.stdout)
	}
	if _, err := g.DHCPWith(lab.DHCPOptions{Timeout: 15 * time.Second}); err != nil {
		t.Errorf("guest cannot lease after removal: %v", err)
	}
	if ips, err := g.LookupDNS("10.83.0.1", "printer", layers.DNSTypeA, 3*time.Second); err != nil || len(ips) == 0 {
		t.Errorf("guest cannot resolve after removal: %v %v", ips, err)
	}
}
