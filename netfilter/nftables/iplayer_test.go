package nftables

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/netwarden/netwarden/internal/conformance"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/fwcases"
)

// The suite's cases and the built-ins, shared with the xtables tests.
var (
	firewallDataCases = fwcases.Cases
	builtinFilters    = fwcases.Builtins
	firewallDataDir   = fwcases.Dir
)

// TestIPLayerGolden plans the IP-layer chains of every case of libvirt's
// nwfilterxml2firewalldata suite that has IP-layer rules and compares
// them with testdata/iplayer/<case>.golden (regenerate with -update and
// compare with the case's -linux.args).
func TestIPLayerGolden(t *testing.T) {
	cases := firewallDataCases(t)
	n := 0
	for _, name := range sortedKeys(cases) {
		pr := cases[name]
		if len(pr.IPv4)+len(pr.IPv6) == 0 {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			var got string
			plan, err := planIPLayer(pr)
			switch {
			case errors.Is(err, errIPSet):
				got = fmt.Sprintf("unsupported: %v\n", err)
			case err != nil:
				t.Fatal(err)
			default:
				got = plan.String()
			}
			got = fmt.Sprintf("# %s.xml: the FJ, FP and HJ chains of port vnet0\n%s", name, got)
			checkIPGolden(t, name, got)
		})
	}
	if n < 20 {
		t.Fatalf("only %d cases with IP-layer rules", n)
	}
}

func checkIPGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "iplayer", name+".golden")
	if updateGolden() {
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
		t.Errorf("plan differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// ipRuleOf is a rule for the table tests below.
func ipRuleOf(dir netfilter.Direction, action netfilter.Action, stateMatch bool, proto string, fields ...string) netfilter.Rule {
	r := netfilter.Rule{Direction: dir, Action: action, StateMatch: stateMatch, Protocol: proto, Priority: 500,
		Origin: netfilter.Origin{Filter: "t", Rule: 1}}
	for i := 0; i+1 < len(fields); i += 2 {
		r.Fields = append(r.Fields, netfilter.Field{Attr: fields[i], Value: fields[i+1]})
	}
	return r
}

// TestIPLayerStates pins libvirt's state and chain choices rule by rule
// (iptablesCreateRuleInstance and …StateCtrl).
func TestIPLayerStates(t *testing.T) {
	in, out, inout := netfilter.DirIn, netfilter.DirOut, netfilter.DirInOut
	accept, drop := netfilter.Accept, netfilter.Drop
	tests := []struct {
		name string
		rule netfilter.Rule
		want [numIPChains]string // "state/ctdir/verdict", "-" for no rule
	}{
		{"out accept", ipRuleOf(out, accept, true, "tcp", "dstportstart", "80"),
			[3]string{"NEW,ESTABLISHED/original/return", "ESTABLISHED/reply/accept", "NEW,ESTABLISHED/original/return"}},
		{"in accept", ipRuleOf(in, accept, true, "tcp", "dstportstart", "80"),
			[3]string{"ESTABLISHED/reply/return", "NEW,ESTABLISHED/original/accept", "ESTABLISHED/reply/return"}},
		{"inout accept: no state", ipRuleOf(inout, accept, true, "all"),
			[3]string{"//return", "//accept", "//return"}},
		{"out drop: no state", ipRuleOf(out, drop, true, "udp"),
			[3]string{"//drop", "//drop", "//drop"}},
		{"out accept statematch=false", ipRuleOf(out, accept, false, "tcp", "dstportstart", "80"),
			[3]string{"//return", "//accept", "//return"}},
		{"in with state: FP only", ipRuleOf(in, accept, true, "tcp", "state", "NEW"),
			[3]string{"-", "NEW//accept", "-"}},
		{"out with state: FJ and HJ", ipRuleOf(out, drop, true, "tcp", "state", "NEW,ESTABLISHED"),
			[3]string{"NEW,ESTABLISHED//drop", "-", "NEW,ESTABLISHED//drop"}},
		{"inout with state NONE", ipRuleOf(inout, accept, true, "all", "state", "NONE"),
			[3]string{"//return", "//accept", "//return"}},
		{"state ignored with statematch=false", ipRuleOf(in, accept, false, "tcp", "state", "NEW"),
			[3]string{"//return", "//accept", "//return"}},
		{"connlimit only where not reversed", ipRuleOf(out, drop, true, "tcp", "connlimit-above", "2"),
			[3]string{"//drop", "-", "//drop"}},
		{"icmp type only in its own direction", ipRuleOf(in, accept, true, "icmp", "type", "8"),
			[3]string{"-", "NEW,ESTABLISHED//accept", "-"}},
		{"icmp type inout: nothing", ipRuleOf(inout, accept, true, "icmp", "type", "8"),
			[3]string{"-", "-", "-"}},
		{"srcmacaddr alone is not reversed", ipRuleOf(out, accept, false, "all", "srcmacaddr", "52:54:00:00:00:01"),
			[3]string{"//return", "-", "//return"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planIPLayer(&netfilter.PortRules{IPv4: []netfilter.Rule{tt.rule}})
			if err != nil {
				t.Fatal(err)
			}
			for c := chainFJ; c < numIPChains; c++ {
				got := "-"
				switch rs := p.chains[c]; len(rs) {
				case 0:
				case 1:
					got = rs[0].state + "/" + rs[0].ctdir + "/" + rs[0].verdict
				default:
					t.Fatalf("%s: %d rules", ipChainWords[c], len(rs))
				}
				if got != tt.want[c] {
					t.Errorf("%s: %s, want %s", ipChainWords[c], got, tt.want[c])
				}
			}
		})
	}
}

// TestIPLayerUnsupported: ipset fails the port (it is then dropped).
func TestIPLayerUnsupported(t *testing.T) {
	r := ipRuleOf(netfilter.DirOut, netfilter.Accept, true, "all", "ipset", "x", "ipsetflags", "src")
	if _, err := planIPLayer(&netfilter.PortRules{IPv4: []netfilter.Rule{r}}); !errors.Is(err, errIPSet) {
		t.Fatalf("got %v, want errIPSet", err)
	}
}

// TestIPLayerVerdicts: reject is an ICMP(v6) port unreachable.
func TestIPLayerVerdicts(t *testing.T) {
	r := ipRuleOf(netfilter.DirOut, netfilter.Reject, true, "tcp")
	p, err := planIPLayer(&netfilter.PortRules{IPv4: []netfilter.Rule{r}})
	if err != nil {
		t.Fatal(err)
	}
	last := p.chains[chainFJ][0].exprs[len(p.chains[chainFJ][0].exprs)-1]
	if rej, ok := last.(*expr.Reject); !ok || rej.Code != 1 || rej.Type != 2 {
		t.Fatalf("reject rule ends with %#v", last)
	}
}

// argsRule is what TestIPLayerMatchesLibvirtArgs compares of one of
// libvirt's iptables/ip6tables rules.
type argsRule struct {
	family, chain                   string
	state, ctdir, connlimit, target string
	macSource                       bool
}

// parseLinuxArgs reads the FJ/FP/HJ rules of a -linux.args file.
func parseLinuxArgs(data string) []argsRule {
	var out []argsRule
	var cmd []string
	flush := func() {
		if len(cmd) < 3 {
			cmd = nil
			return
		}
		r := argsRule{family: cmd[0]}
		for i := 1; i < len(cmd); i++ {
			next := ""
			if i+1 < len(cmd) {
				next = cmd[i+1]
			}
			switch cmd[i] {
			case "-A":
				r.chain = next
			case "--ctstate":
				r.state = next
			case "--ctdir":
				r.ctdir = strings.ToLower(next)
			case "--connlimit-above":
				r.connlimit = next
			case "-j":
				r.target = next
			case "--mac-source":
				r.macSource = true
			}
		}
		if strings.HasSuffix(r.chain, "-vnet0") && (strings.HasPrefix(r.chain, "FJ") || strings.HasPrefix(r.chain, "FP") || strings.HasPrefix(r.chain, "HJ")) {
			r.chain = strings.ToLower(r.chain[:2])
			out = append(out, r)
		}
		cmd = nil
	}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "\\"))
		if line == "iptables" || line == "ip6tables" || line == "ebtables" {
			flush()
		}
		// One option and its value per line; a value may hold spaces.
		if opt, val, ok := strings.Cut(line, " "); ok {
			cmd = append(cmd, opt, strings.Trim(val, "'"))
		} else if line != "" {
			cmd = append(cmd, line)
		}
	}
	flush()
	return out
}

// TestIPLayerMatchesLibvirtArgs compares, for every case of the suite,
// the plan's rules chain by chain with the iptables and ip6tables rules
// libvirt's test expects (its -linux.args): the same number of rules in
// the same order, with the same conntrack state and direction, connlimit,
// target and presence of the source MAC match.
func TestIPLayerMatchesLibvirtArgs(t *testing.T) {
	dir := firewallDataDir(t)
	cases := firewallDataCases(t)
	for _, name := range sortedKeys(cases) {
		pr := cases[name]
		if len(pr.IPv4)+len(pr.IPv6) == 0 {
			continue
		}
		data, err := conformance.ReadFile(filepath.Join(dir, name+"-linux.args"))
		if err != nil {
			continue // ref, ref-rule: libvirt's test has no expectation
		}
		t.Run(name, func(t *testing.T) {
			plan, err := planIPLayer(pr)
			if name == "ipset" {
				// Known gap: ipset matches are refused (the port is then
				// dropped, fail closed), never rendered half.
				if !errors.Is(err, errIPSet) {
					t.Fatalf("ipset case: err %v, want errIPSet", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []argsRule
			for _, fam := range []string{"iptables", "ip6tables"} {
				for c := chainFJ; c < numIPChains; c++ {
					for _, r := range plan.chains[c] {
						if (fam == "ip6tables") != ipProtocols[r.src.Protocol].v6 {
							continue
						}
						target := map[string]string{"accept": "ACCEPT", "return": "RETURN", "drop": "DROP", "reject": "REJECT", "": "CONTINUE"}[r.verdict]
						_, mac := r.src.Field("srcmacaddr")
						got = append(got, argsRule{family: fam, chain: ipChainWords[c], state: r.state, ctdir: r.ctdir,
							connlimit: r.connlimit, target: target, macSource: mac && !r.swap})
					}
				}
			}
			var want []argsRule
			for _, fam := range []string{"iptables", "ip6tables"} {
				for c := chainFJ; c < numIPChains; c++ {
					for _, r := range parseLinuxArgs(string(data)) {
						if r.family == fam && r.chain == ipChainWords[c] {
							want = append(want, r)
						}
					}
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d rules, libvirt has %d:\n got %v\nwant %v", len(got), len(want), got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("rule %d: got %+v, libvirt has %+v", i, got[i], want[i])
				}
			}
		})
	}
}
