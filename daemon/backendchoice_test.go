package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/netfilter/xtables"
)

// TestDecideAuto: --backend auto by the kernel's legacy tables and
// firewalld's presence and backend.
func TestDecideAuto(t *testing.T) {
	const legacy = "the kernel has legacy iptables tables (/proc/net/ip_tables_names: filter)"
	for _, c := range []struct {
		name    string
		in      autoInputs
		xt      bool
		flavour xtables.Flavour
		reason  string
	}{
		{"bare host", autoInputs{}, false, "", "firewalld does not run"},
		{"legacy tables", autoInputs{LegacyTables: legacy, LegacyPrograms: true}, true, xtables.FlavourLegacy, "legacy iptables tables"},
		{"legacy tables without legacy programs", autoInputs{LegacyTables: legacy}, true, xtables.FlavourDefault, "programs are missing"},
		{"firewalld on nftables", autoInputs{FirewalldRunning: true, FirewalldBackend: "nftables"}, false, "", "FirewallBackend=nftables"},
		{"firewalld on iptables", autoInputs{FirewalldRunning: true, FirewalldBackend: "iptables"}, true, xtables.FlavourDefault, "FirewallBackend=iptables"},
		{"firewalld on iptables, legacy tables", autoInputs{LegacyTables: legacy, LegacyPrograms: true, FirewalldRunning: true, FirewalldBackend: "iptables"},
			true, xtables.FlavourLegacy, "legacy iptables tables"},
		{"firewalld on nftables, legacy tables", autoInputs{LegacyTables: legacy, LegacyPrograms: true, FirewalldRunning: true, FirewalldBackend: "nftables"},
			true, xtables.FlavourLegacy, "legacy iptables tables"},
		{"firewalld's backend unknown", autoInputs{FirewalldRunning: true, FirewalldErr: errors.New("no such property")}, false, "", "no such property"},
		{"firewalld stopped", autoInputs{FirewalldBackend: "iptables"}, false, "", "does not run"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := decideAuto(c.in)
			if d.XTables != c.xt || d.Flavour != c.flavour || !strings.Contains(d.Reason, c.reason) {
				t.Errorf("got %+v, want xtables=%v flavour=%q reason containing %q", d, c.xt, c.flavour, c.reason)
			}
		})
	}
}

type askFake struct {
	running    bool
	runningErr error
	backend    string
	backendErr error
}

func (f askFake) Running(context.Context) (bool, error)   { return f.running, f.runningErr }
func (f askFake) Backend(context.Context) (string, error) { return f.backend, f.backendErr }

// TestAskFirewalld: the backend is asked only of a running firewalld.
func TestAskFirewalld(t *testing.T) {
	ctx := context.Background()
	if r, b, err := askFirewalld(ctx, nil); r || b != "" || err != nil {
		t.Errorf("nil: %v %q %v", r, b, err)
	}
	if r, b, err := askFirewalld(ctx, askFake{backend: "iptables"}); r || b != "" || err != nil {
		t.Errorf("stopped: %v %q %v", r, b, err)
	}
	if r, b, err := askFirewalld(ctx, askFake{running: true, backend: "iptables"}); !r || b != "iptables" || err != nil {
		t.Errorf("running: %v %q %v", r, b, err)
	}
	if r, _, err := askFirewalld(ctx, askFake{runningErr: errors.New("bus")}); r || err == nil {
		t.Errorf("bus error: %v %v", r, err)
	}
}

// TestChooseBackendFirewalldIPTables: auto with firewalld on its
// iptables backend picks xtables, whatever the host's tables; the
// backend exposes the xtables watch through the switch wrapper.
func TestChooseBackendFirewalldIPTables(t *testing.T) {
	b, err := chooseBackend(context.Background(), Config{Backend: BackendAuto}, askFake{running: true, backend: "iptables"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "xtables" {
		t.Fatalf("backend %s, want xtables", b.Name())
	}
	if _, ok := b.(interface {
		Watch(context.Context) (<-chan struct{}, error)
	}); !ok {
		t.Error("the chosen xtables backend is no Watcher")
	}
}
