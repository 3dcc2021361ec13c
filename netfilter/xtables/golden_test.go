package xtables

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/fwcases"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The built-ins and the suite's cases, shared with the nftables tests.
var (
	builtinFilters    = fwcases.Builtins
	firewallDataCases = fwcases.Cases
)

// instantiate instantiates a built-in filter for a port.
func instantiate(t testing.TB, reg *policy.Registry, filter, port, mac string, params ...policy.Param) *netfilter.PortRules {
	t.Helper()
	inst, err := policy.Instantiate(reg, port, filter, mac, params)
	if err != nil {
		t.Fatalf("instantiate %s: %v", filter, err)
	}
	return inst.Rules
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it, then review it)", err)
	}
	if got != string(want) {
		t.Errorf("rendering differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// renderFirst renders the restore input of a first Apply (nothing of
// ours in the kernel) for one state, all three tools.
func renderFirst(t *testing.T, st *netfilter.State) (string, map[string]error) {
	t.Helper()
	want := newRuleset()
	want.skeleton()
	failed := map[string]error{}
	for _, name := range st.PortNames() {
		ps := st.Ports[name]
		ps.Port = name
		pr, err := renderPort(ps, '0')
		if err != nil {
			failed[name] = err
			pr, _ = renderPort(&netfilter.PortState{Port: name, Mode: netfilter.DropAll}, '0')
		}
		want.addPort(pr)
	}
	if err := want.addNetworks(st.Networks); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for tl := tool(0); tl < numTools; tl++ {
		fmt.Fprintf(&b, "# %s-restore --noflush\n", tl)
		b.WriteString(restoreInput(tl, nil, want[tl], nil, nil))
	}
	return b.String(), failed
}

// TestPortGolden renders each case of libvirt's nwfilterxml2firewalldata
// as the restore input of a first Apply (testdata/nwfilter/<case>.golden);
// compare with the case's -linux.args.
func TestPortGolden(t *testing.T) {
	cases := firewallDataCases(t)
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, name := range sortedKeys(cases) {
		pr := cases[name]
		t.Run(name, func(t *testing.T) {
			st := &netfilter.State{Ports: map[string]*netfilter.PortState{"vnet0": {Mode: netfilter.Enforce, Rules: pr}}}
			got, failed := renderFirst(t, st)
			head := fmt.Sprintf("# %s.xml for port vnet0\n", name)
			if err := failed["vnet0"]; err != nil {
				if !errors.Is(err, errUnsupported) {
					t.Fatalf("unexpected error: %v", err)
				}
				head += fmt.Sprintf("# unsupported, the port drops all: %v\n", err)
			}
			checkGolden(t, filepath.Join("testdata", "nwfilter", name+".golden"), head+got)
		})
	}
}

// TestNetworkGolden renders each case of libvirt's
// networkxml2firewalldata (testdata/network/<case>.golden).
func TestNetworkGolden(t *testing.T) {
	dir := filepath.Join(conformance.Dir(t), "networkxml2firewalldata")
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("network cases: %v (%d)", err, len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		t.Run(name, func(t *testing.T) {
			data, err := conformance.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n, err := network.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			nr, err := network.FirewallRules(n)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := renderFirst(t, &netfilter.State{Networks: map[string]*netfilter.NetworkRules{nr.Network: nr}})
			checkGolden(t, filepath.Join("testdata", "network", name+".golden"), fmt.Sprintf("# %s.xml\n%s", name, got))
		})
	}
}

func TestChainNames(t *testing.T) {
	for _, n := range []string{"NW-PRE", "NI0-vnet0", "NO1.12-a-b", "FJ0-x", "HJ1-vnet0"} {
		if !isOurs(n) {
			t.Errorf("%s not ours", n)
		}
	}
	for _, n := range []string{"INPUT", "libvirt-I-vnet0", "FJ-vnet0", "NI2-vnet0", "NI0.-x", "NI0.a-x", "DOCKER"} {
		if isOurs(n) {
			t.Errorf("%s ours", n)
		}
	}
	if n := portChainName("NO", '1', 123, "abcdefghijklmno"); len(n) > 28 {
		t.Errorf("%s: %d characters", n, len(n))
	}
}
