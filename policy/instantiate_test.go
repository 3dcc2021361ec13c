package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/netfilter"
)

// mapResolver resolves filters from XML texts, for tests.
type mapResolver map[string]*Filter

func (m mapResolver) Filter(name string) (*Filter, bool) {
	f, ok := m[name]
	return f, ok
}

func resolverOf(t testing.TB, docs ...string) mapResolver {
	t.Helper()
	m := mapResolver{}
	for _, d := range docs {
		f, err := ParseFilter([]byte(d))
		if err != nil {
			t.Fatalf("parse %s: %v", d, err)
		}
		m[f.Name] = f
	}
	return m
}

// ruleLines renders the rules of a chain (or IP list) compactly as
// "action match" lines, for assertions.
func ruleLines(rules []netfilter.Rule) []string {
	var out []string
	for i := range rules {
		r := &rules[i]
		s := r.Action.String()
		if r.Action == netfilter.Jump {
			s += " " + r.Target
		}
		out = append(out, r.Direction.String()+" "+s+r.MatchString())
	}
	return out
}

func TestIteratorSemantics(t *testing.T) {
	tests := []struct {
		name   string
		match  string // attributes of a <tcp> element
		params []Param
		want   []string // srcipaddr/srcportstart/dstportstart values, one line per rule
	}{
		{
			name:   "one list",
			match:  `srcipaddr='$A'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}},
			want:   []string{"srcipaddr=1.1.1.1", "srcipaddr=2.2.2.2"},
		},
		{
			name:   "plain variables walk in parallel",
			match:  `srcipaddr='$A' srcportstart='$B'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}, {"B", "80"}, {"B", "90"}},
			want:   []string{"srcipaddr=1.1.1.1 srcportstart=80", "srcipaddr=2.2.2.2 srcportstart=90"},
		},
		{
			name:   "same iterator walks in parallel",
			match:  `srcipaddr='$A[@1]' srcportstart='$B[@1]'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}, {"B", "80"}, {"B", "90"}},
			want:   []string{"srcipaddr=1.1.1.1 srcportstart=80", "srcipaddr=2.2.2.2 srcportstart=90"},
		},
		{
			name:   "different iterators form the cross product, first turns fastest",
			match:  `srcipaddr='$A[@1]' srcportstart='$B[@2]'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}, {"B", "80"}, {"B", "90"}},
			want: []string{
				"srcipaddr=1.1.1.1 srcportstart=80", "srcipaddr=2.2.2.2 srcportstart=80",
				"srcipaddr=1.1.1.1 srcportstart=90", "srcipaddr=2.2.2.2 srcportstart=90",
			},
		},
		{
			name:   "duplicate tuples are skipped",
			match:  `srcipaddr='$A' srcportstart='$B'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}, {"A", "1.1.1.1"}, {"B", "80"}, {"B", "90"}, {"B", "80"}},
			want:   []string{"srcipaddr=1.1.1.1 srcportstart=80", "srcipaddr=2.2.2.2 srcportstart=90"},
		},
		{
			name:   "duplicate values in one list",
			match:  `srcipaddr='$A'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "1.1.1.1"}},
			want:   []string{"srcipaddr=1.1.1.1"},
		},
		{
			name:   "element access",
			match:  `srcipaddr='$A[1]' srcportstart='$B'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}, {"B", "80"}, {"B", "90"}},
			want:   []string{"srcipaddr=2.2.2.2 srcportstart=80", "srcipaddr=2.2.2.2 srcportstart=90"},
		},
		{
			name:   "one variable through two iterators",
			match:  `srcipaddr='$A[@1]' dstipaddr='$A[@2]'`,
			params: []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}},
			want: []string{
				"srcipaddr=1.1.1.1 dstipaddr=1.1.1.1", "srcipaddr=2.2.2.2 dstipaddr=1.1.1.1",
				"srcipaddr=1.1.1.1 dstipaddr=2.2.2.2", "srcipaddr=2.2.2.2 dstipaddr=2.2.2.2",
			},
		},
		{
			name:   "values are canonicalised",
			match:  `srcmacaddr='$M'`,
			params: []Param{{"M", "1:2:3:4:5:6"}},
			want:   []string{"srcmacaddr=01:02:03:04:05:06"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resolverOf(t, `<filter name='f' chain='root'><rule action='accept' direction='out'><tcp `+tt.match+`/></rule></filter>`)
			inst, err := Instantiate(res, "vnet0", "f", "", tt.params)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range inst.Rules.IPv4 {
				var parts []string
				for _, f := range r.Fields {
					parts = append(parts, f.Attr+"="+f.Value)
				}
				got = append(got, strings.Join(parts, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestInstantiateErrors(t *testing.T) {
	tests := []struct {
		name     string
		docs     []string
		filter   string
		params   []Param
		variable string // expected InstantiateError.Variable
		reason   string // expected substring of the reason
	}{
		{
			name:     "missing variable",
			docs:     []string{`<filter name='f'><rule action='drop' direction='out'><tcp dstportstart='$PORT'/></rule></filter>`},
			filter:   "f",
			variable: "PORT", reason: "has no value",
		},
		{
			name:     "cardinality mismatch",
			docs:     []string{`<filter name='f'><rule action='drop' direction='out'><tcp srcipaddr='$A' dstportstart='$B'/></rule></filter>`},
			filter:   "f",
			params:   []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}, {"B", "80"}},
			variable: "B", reason: "in parallel",
		},
		{
			name:     "index out of range",
			docs:     []string{`<filter name='f'><rule action='drop' direction='out'><tcp srcipaddr='$A[2]'/></rule></filter>`},
			filter:   "f",
			params:   []Param{{"A", "1.1.1.1"}, {"A", "2.2.2.2"}},
			variable: "A", reason: "out of range",
		},
		{
			name:     "value of the wrong type",
			docs:     []string{`<filter name='f'><rule action='drop' direction='out'><tcp dstportstart='$P'/></rule></filter>`},
			filter:   "f",
			params:   []Param{{"P", "70000"}},
			variable: "P", reason: "not valid for dstportstart",
		},
		{
			name:   "undefined referenced filter",
			docs:   []string{`<filter name='f'><filterref filter='nowhere'/></filter>`},
			filter: "f",
			reason: `referenced by filter "f"`,
		},
		{
			name:   "undefined filter",
			filter: "nowhere",
			reason: "is not defined",
		},
		{
			name:     "IP missing and learning off",
			docs:     []string{`<filter name='f'><rule action='return' direction='out'><ip srcipaddr='$IP'/></rule></filter>`},
			filter:   "f",
			params:   []Param{{ParamIPLearning, "none"}},
			variable: "IP", reason: "has no value",
		},
		{
			name:     "bad learning mode",
			docs:     []string{`<filter name='f'/>`},
			filter:   "f",
			params:   []Param{{ParamIPLearning, "sometimes"}},
			variable: ParamIPLearning, reason: "want any, dhcp or none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Instantiate(resolverOf(t, tt.docs...), "vnet0", tt.filter, "", tt.params)
			var ie *InstantiateError
			if !errors.As(err, &ie) {
				t.Fatalf("err %v: want an *InstantiateError", err)
			}
			if ie.Variable != tt.variable || !strings.Contains(ie.Reason, tt.reason) {
				t.Fatalf("err %v: want variable %q and a reason containing %q", err, tt.variable, tt.reason)
			}
		})
	}
}

func TestInstantiateLearning(t *testing.T) {
	res := resolverOf(t,
		`<filter name='f' chain='root'><filterref filter='g'/><rule action='return' direction='out'><ipv6 srcipaddr='$IPV6'/></rule></filter>`,
		`<filter name='g' chain='ipv4'><rule action='return' direction='out'><ip srcipaddr='$IP'/></rule></filter>`)
	for _, mode := range []string{"", LearnAny, LearnDHCP} {
		var params []Param
		if mode != "" {
			params = []Param{{ParamIPLearning, mode}}
		}
		inst, err := Instantiate(res, "vnet0", "f", "52:54:00:00:00:01", params)
		if err != nil {
			t.Fatalf("mode %q: %v", mode, err)
		}
		if strings.Join(inst.Learn, ",") != "IP,IPV6" || inst.Rules != nil {
			t.Fatalf("mode %q: learn %v rules %v; want IP,IPV6 to learn and no rules yet", mode, inst.Learn, inst.Rules)
		}
		want := mode
		if want == "" {
			want = LearnAny
		}
		if inst.Learning != want {
			t.Fatalf("learning %q, want %q", inst.Learning, want)
		}
	}
	inst, err := Instantiate(res, "vnet0", "f", "", []Param{{"IP", "10.0.0.1"}, {"IPV6", "2001:db8::1"}})
	if err != nil || len(inst.Learn) != 0 || inst.Rules == nil {
		t.Fatalf("with addresses: %+v, %v", inst, err)
	}
}

// The referencing context's values win over a filter reference's own
// parameters (libvirt's order), and reference parameters reach only the
// referenced filter's subtree.
func TestParameterPrecedence(t *testing.T) {
	res := resolverOf(t,
		`<filter name='top' chain='root'>
		   <filterref filter='leaf'><parameter name='A' value='9.9.9.9'/><parameter name='B' value='99'/></filterref>
		 </filter>`,
		`<filter name='leaf' chain='root'><rule action='accept' direction='out'><tcp srcipaddr='$A' srcportstart='$B'/></rule></filter>`)
	inst, err := Instantiate(res, "vnet0", "top", "", []Param{{"A", "1.1.1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ruleLines(inst.Rules.IPv4)
	want := "out accept tcp srcipaddr=$A:1.1.1.1 srcportstart=$B:99"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Chains, jumps and their order follow libvirt: root rules and jumps
// interleaved by priority (a jump before a rule of equal priority), sub-
// chains with their filters' rules, IP-layer rules of root filters first.
func TestChainOrdering(t *testing.T) {
	res := resolverOf(t,
		`<filter name='top' chain='root'>
		   <rule action='accept' direction='out' priority='-700'><mac protocolid='0x1234'/></rule>
		   <filterref filter='arpf'/>
		   <filterref filter='ipf'/>
		   <rule action='drop' direction='inout' priority='1000'/>
		   <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
		 </filter>`,
		`<filter name='arpf' chain='arp' priority='-500'>
		   <rule action='return' direction='out'><arp arpsrcmacaddr='$MAC'/></rule>
		   <rule action='drop' direction='inout' priority='-900'/>
		 </filter>`,
		`<filter name='ipf' chain='ipv4'>
		   <rule action='return' direction='out' priority='10'><ip srcipaddr='10.0.0.1'/></rule>
		   <rule action='accept' direction='out' priority='-800'><udp dstportstart='53'/></rule>
		 </filter>`)
	inst, err := Instantiate(res, "vnet0", "top", "52:54:00:00:00:01", nil)
	if err != nil {
		t.Fatal(err)
	}
	pr := inst.Rules
	check := func(what string, got, want []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	check("root", ruleLines(pr.Chain("root").Rules), []string{
		"out jump ipv4 mac protocolid=ipv4",
		"out accept mac protocolid=0x1234",
		"out jump arp mac protocolid=arp",
		"in jump arp mac protocolid=arp",
		"inout drop",
	})
	check("arp", ruleLines(pr.Chain("arp").Rules), []string{
		"inout drop",
		"out return arp arpsrcmacaddr=$MAC:52:54:00:00:00:01",
	})
	check("ipv4", ruleLines(pr.Chain("ipv4").Rules), []string{
		"out return ip srcipaddr=10.0.0.1",
	})
	check("ip layer", ruleLines(pr.IPv4), []string{
		"in accept tcp dstportstart=22",
		"out accept udp dstportstart=53",
	})
	if pr.Chains[1].Name != "ipv4" || pr.Chains[2].Name != "arp" {
		t.Errorf("sub-chains %s, %s: want ipv4 (-700) before arp (-500)", pr.Chains[1].Name, pr.Chains[2].Name)
	}
}
