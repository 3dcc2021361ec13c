// Package fwcases gives the backends' tests libvirt's
// nwfilterxml2firewalldata suite as instantiated port rules, and the
// built-in filters: the inputs both kernel backends render and check
// against their golden files. It is for tests only.
package fwcases

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/policy/builtin"
)

// Params are the variables libvirt's nwfilterxml2firewall test presets.
var Params = []policy.Param{
	{Name: "IP", Value: "10.0.0.11"},
	{Name: "IPSETNAME", Value: "tck_test"},
	{Name: "A", Value: "1.1.1.1"}, {Name: "A", Value: "2.2.2.2"}, {Name: "A", Value: "3.3.3.3"}, {Name: "A", Value: "3.3.3.3"},
	{Name: "B", Value: "80"}, {Name: "B", Value: "90"}, {Name: "B", Value: "80"}, {Name: "B", Value: "80"},
	{Name: "C", Value: "1080"}, {Name: "C", Value: "1090"}, {Name: "C", Value: "1100"}, {Name: "C", Value: "1110"},
}

// Dir is the suite's directory; a missing suite fails the test (or
// skips it outside strict mode, as internal/conformance does).
func Dir(t testing.TB) string {
	t.Helper()
	return filepath.Join(conformance.Dir(t), "nwfilterxml2firewalldata")
}

// Resolver resolves the suite's filter references from its files (named
// by case), then from the built-ins; Top answers for the case itself.
type Resolver struct {
	Dir      string
	Top      *policy.Filter
	Builtins *policy.Registry
}

// Filter implements policy's resolver.
func (r Resolver) Filter(name string) (*policy.Filter, bool) {
	if r.Top != nil && name == r.Top.Name {
		return r.Top, true
	}
	if r.Dir != "" {
		if data, err := conformance.ReadFile(filepath.Join(r.Dir, name+".xml")); err == nil {
			f, err := policy.ParseFilter(data)
			return f, err == nil
		}
	}
	return r.Builtins.Filter(name)
}

// Builtins is a registry of the built-in filters.
func Builtins(t testing.TB) *policy.Registry {
	t.Helper()
	var fs []*policy.Filter
	for name, data := range builtin.Files() {
		f, err := policy.ParseFilter(data)
		if err != nil {
			t.Fatalf("built-in %s: %v", name, err)
		}
		fs = append(fs, f)
	}
	r, err := policy.NewRegistry(fs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Cases instantiates every case of the suite for port vnet0, by case
// name.
func Cases(t testing.TB) map[string]*netfilter.PortRules {
	t.Helper()
	dir := Dir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res := Resolver{Dir: dir, Builtins: Builtins(t)}
	out := map[string]*netfilter.PortRules{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".xml")
		if !ok {
			continue
		}
		f, ok := res.Filter(name)
		if !ok {
			t.Fatalf("cannot read %s", name)
		}
		r := res
		r.Top = f
		inst, err := policy.Instantiate(r, "vnet0", f.Name, "52:54:00:00:00:11", Params)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = inst.Rules
	}
	return out
}
