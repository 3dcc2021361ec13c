package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/policy/builtin"
)

// builtinRegistry is a registry of the shipped built-in filters.
func builtinRegistry(t testing.TB) *Registry {
	t.Helper()
	var fs []*Filter
	for name, data := range builtin.Files() {
		f, err := ParseFilter(data)
		if err != nil {
			t.Fatalf("built-in %s: %v", name, err)
		}
		fs = append(fs, f)
	}
	r, err := NewRegistry(fs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// goldenParams are the binding parameters the built-in goldens use: two
// IPv4 and two IPv6 addresses, one trusted DHCP server of each family.
var goldenParams = []Param{
	{"IP", "10.0.0.11"}, {"IP", "10.0.0.12"},
	{"IPV6", "2001:db8::11"}, {"IPV6", "fe80::5054:ff:fe00:11"},
	{"DHCPSERVER", "10.0.0.1"},
	{"DHCPSERVERV6", "fe80::1"},
	{"GATEWAY_MAC", "52:54:00:00:00:01"},
}

const goldenMAC = "52:54:00:00:00:11"

// checkGolden compares got with testdata/instantiate/<name>.golden, or
// rewrites the file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "instantiate", name+".golden")
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
		t.Fatalf("%v (run go test ./policy -run %s -update to create it, then review it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("instantiation differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGoldenBuiltins instantiates every built-in filter for one port and
// compares the readable rule list with its golden file.
func TestGoldenBuiltins(t *testing.T) {
	reg := builtinRegistry(t)
	for _, name := range builtin.Names() {
		t.Run(name, func(t *testing.T) {
			params := goldenParams
			if name == "allow-dhcpv6-server" {
				// libvirt's filter takes its IPv6 server from $DHCPSERVER.
				params = append([]Param{{"DHCPSERVER", "fe80::1"}}, goldenParams[4:]...)
				params = append(params, goldenParams[:4]...)
				params = withoutParam(params, "DHCPSERVER", "10.0.0.1")
			}
			inst, err := Instantiate(reg, "vnet0", name, goldenMAC, params)
			if err != nil {
				t.Fatal(err)
			}
			if inst.Rules == nil {
				t.Fatalf("no rules (learn %v)", inst.Learn)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# %s for port vnet0, MAC %s\n# parameters:", name, goldenMAC)
			for _, p := range params {
				fmt.Fprintf(&b, " %s=%s", p.Name, p.Value)
			}
			fmt.Fprintf(&b, "\n# filters used: %s\n", strings.Join(inst.Filters, ", "))
			b.WriteString(inst.Rules.String())
			checkGolden(t, "builtin/"+name, b.String())
		})
	}
}

// firewallDataParams are the variables libvirt's nwfilterxml2firewall
// test presets for every case of that suite, plus an IP address for the
// two cases (ref, ref-rule) that reference clean-traffic, which libvirt's
// test does not run; their MAC comes from the port as in the daemon.
var firewallDataParams = []Param{
	{"IP", "10.0.0.11"},
	{"IPSETNAME", "tck_test"},
	{"A", "1.1.1.1"}, {"A", "2.2.2.2"}, {"A", "3.3.3.3"}, {"A", "3.3.3.3"},
	{"B", "80"}, {"B", "90"}, {"B", "80"}, {"B", "80"},
	{"C", "1080"}, {"C", "1090"}, {"C", "1100"}, {"C", "1110"},
}

// fileResolver resolves filter references of the firewall-data suite
// from the files of that directory, as libvirt's test does (files are
// named by case, not by the filter they define); top answers for the
// case being instantiated.
type fileResolver struct {
	t        testing.TB
	dir      string
	top      *Filter
	builtins *Registry
}

func (r fileResolver) Filter(name string) (*Filter, bool) {
	if r.top != nil && name == r.top.Name {
		return r.top, true
	}
	data, err := readConformanceFile(filepath.Join(r.dir, name+".xml"))
	if err != nil {
		return r.builtins.Filter(name)
	}
	f, err := ParseFilter(data)
	if err != nil {
		r.t.Fatalf("%s: %v", name, err)
	}
	return f, true
}

// TestGoldenFirewallData instantiates every input of libvirt's
// nwfilterxml2firewalldata suite with that suite's preset variables.
func TestGoldenFirewallData(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "nwfilterxml2firewalldata")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res := fileResolver{t: t, dir: dir, builtins: builtinRegistry(t)}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ".xml")
		n++
		t.Run(name, func(t *testing.T) {
			f, ok := res.Filter(name)
			if !ok {
				t.Fatalf("cannot read %s", name)
			}
			res := res
			res.top = f
			inst, err := Instantiate(res, "vnet0", f.Name, goldenMAC, firewallDataParams)
			if err != nil {
				t.Fatal(err)
			}
			if inst.Rules == nil || inst.Rules.RuleCount() == 0 {
				t.Fatalf("no rules: %+v", inst)
			}
			checkGolden(t, "firewalldata/"+name, "# "+name+".xml with libvirt's test variables\n"+inst.Rules.String())
		})
	}
	t.Logf("nwfilterxml2firewalldata: %d inputs instantiated", n)
	if n == 0 {
		t.Fatal("no inputs found")
	}
}

func benchmarkInstantiate(b *testing.B, addrs int) {
	reg := builtinRegistry(b)
	params := []Param{{"MAC", goldenMAC}}
	for i := 0; i < addrs; i++ {
		n := i + 1
		params = append(params, Param{"IP", fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Instantiate(reg, "vnet0", "clean-traffic", goldenMAC, params); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInstantiateCleanTraffic measures clean-traffic's instantiation
// with 1, 16 and 256 addresses in $IP.
func BenchmarkInstantiateCleanTraffic(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("ips=%d", n), func(b *testing.B) { benchmarkInstantiate(b, n) })
	}
}

// withoutParam returns ps without the parameter name=value.
func withoutParam(ps []Param, name, value string) []Param {
	var out []Param
	for _, p := range ps {
		if p.Name != name || p.Value != value {
			out = append(out, p)
		}
	}
	return out
}
