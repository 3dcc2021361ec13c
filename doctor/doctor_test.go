package doctor

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

var natNet = Network{Name: "default", Bridge: "virbr0", Mode: "nat", IPv4: true, DHCPv4: true, DNS: true}

func iif(n string) Cond { return Cond{Key: CondIIFName, Name: n} }
func oif(n string) Cond { return Cond{Key: CondOIFName, Name: n} }
func ct(mask uint32) Cond {
	return Cond{Key: CondCtState, Mask: mask}
}
func udp(port uint16) []Cond {
	return []Cond{{Key: CondL4Proto, Num: protoUDP}, {Key: CondDPort, Num: port}}
}
func tcp(port uint16) []Cond {
	return []Cond{{Key: CondL4Proto, Num: protoTCP}, {Key: CondDPort, Num: port}}
}
func accept(c ...Cond) Rule { return Rule{Conds: c, Verdict: VerdictAccept} }
func base(name, hook, policy string, rules ...Rule) Chain {
	return Chain{Name: name, Hook: hook, Type: "filter", Policy: policy, Rules: rules}
}

// want is one expected finding: severity, table, chain, what, and words
// the fix must contain.
type want struct {
	sev                Severity
	table, chain, what string
	fix                string
}

func TestAnalyze(t *testing.T) {
	established := ct(CtEstablished | CtRelated)
	firewalld := func(zoneRule Rule) Table {
		return Table{Family: "inet", Name: "firewalld", Chains: []Chain{
			base("filter_INPUT", HookInput, "accept",
				accept(established),
				Rule{Verdict: VerdictJump, Target: "filter_INPUT_ZONES"},
				Rule{Conds: []Cond{ct(CtInvalid)}, Verdict: VerdictDrop},
				Rule{Verdict: VerdictReject}),
			{Name: "filter_INPUT_ZONES", Rules: []Rule{zoneRule, {Verdict: VerdictGoto, Target: "filter_IN_public"}}},
			{Name: "filter_IN_libvirt", Rules: []Rule{accept()}},
			{Name: "filter_IN_public", Rules: []Rule{accept(tcp(22)...)}},
		}}
	}
	tests := []struct {
		name  string
		rs    Ruleset
		nets  []Network
		want  []want
		owner string
	}{
		{
			name: "planted forward drop",
			rs:   Ruleset{Tables: []Table{{Family: "inet", Name: "planted", Chains: []Chain{base("fwd", HookForward, "drop")}}}},
			nets: []Network{natNet},
			want: []want{
				{SeverityError, "inet planted", "fwd", "forwarded traffic out", `nft insert rule inet planted fwd iifname "virbr0" accept`},
				{SeverityError, "inet planted", "fwd", "forwarded traffic in (replies)", `oifname "virbr0" ct state established,related accept`},
			},
		},
		{
			name: "own tables are not judged",
			rs: Ruleset{Tables: []Table{{Family: "inet", Name: "netwarden-net", Chains: []Chain{base("fwd", HookForward, "drop")}},
				{Family: "bridge", Name: "netwarden", Chains: []Chain{base("in", HookInput, "drop")}}}},
			nets: []Network{natNet},
		},
		{
			name: "nftables.service input drop",
			rs: Ruleset{Tables: []Table{{Family: "inet", Name: "filter", Chains: []Chain{
				base("input", HookInput, "drop", accept(established), accept(iif("lo")), accept(tcp(22)...)),
				base("forward", HookForward, "accept"),
				base("output", HookOutput, "accept"),
			}}}},
			nets: []Network{natNet},
			want: []want{
				{SeverityError, "inet filter", "input", "DHCP to host", "/etc/nftables.conf"},
				{SeverityError, "inet filter", "input", "DNS to host", `iifname "virbr0" meta l4proto { tcp, udp } th dport 53 accept`},
			},
		},
		{
			name: "nftables.service accepting the bridge",
			rs: Ruleset{Tables: []Table{{Family: "inet", Name: "filter", Chains: []Chain{
				base("input", HookInput, "drop", accept(established), accept(iif("virbr0"))),
				base("forward", HookForward, "drop", accept(established), accept(Cond{Key: CondIIFName, Name: "virbr", Prefix: true})),
			}}}},
			nets: []Network{natNet},
		},
		{
			name: "only DHCP accepted: DNS dropped",
			rs: Ruleset{Tables: []Table{{Family: "ip", Name: "mine", Chains: []Chain{
				base("in", HookInput, "drop", accept(append([]Cond{iif("virbr0")}, udp(67)...)...)),
			}}}},
			nets: []Network{natNet},
			want: []want{{SeverityError, "ip mine", "in", "DNS to host", "nft delete table ip mine"}},
		},
		{
			name: "ip6 table does not touch an IPv4 network",
			rs:   Ruleset{Tables: []Table{{Family: "ip6", Name: "six", Chains: []Chain{base("fwd", HookForward, "drop")}}}},
			nets: []Network{natNet},
		},
		{
			name: "isolated network: no forwarding findings",
			rs:   Ruleset{Tables: []Table{{Family: "inet", Name: "planted", Chains: []Chain{base("fwd", HookForward, "drop")}}}},
			nets: []Network{{Name: "iso", Bridge: "virbr1", Mode: "isolated", IPv4: true, DHCPv4: true, DNS: true}},
		},
		{
			name: "routed network: new traffic in",
			rs: Ruleset{Tables: []Table{{Family: "inet", Name: "filter", Chains: []Chain{
				base("forward", HookForward, "drop", accept(established), accept(iif("virbr2"))),
			}}}},
			nets: []Network{{Name: "r", Bridge: "virbr2", Mode: "route", IPv4: true}},
			want: []want{{SeverityError, "inet filter", "forward", "forwarded traffic in", `oifname "virbr2" accept`}},
		},
		{
			name: "docker FORWARD policy drop",
			rs: Ruleset{Tables: []Table{{Family: "ip", Name: "filter", Chains: []Chain{
				base("FORWARD", HookForward, "drop",
					Rule{Verdict: VerdictJump, Target: "DOCKER-USER"},
					Rule{Verdict: VerdictJump, Target: "DOCKER-FORWARD"}),
				{Name: "DOCKER-USER"},
				{Name: "DOCKER-FORWARD", Rules: []Rule{
					{Conds: []Cond{oif("docker0"), established}, Verdict: VerdictAccept},
					{Conds: []Cond{iif("docker0")}, Verdict: VerdictAccept},
				}},
			}}}},
			nets: []Network{natNet},
			want: []want{
				{SeverityError, "ip filter", "FORWARD", "forwarded traffic out", "iptables -I DOCKER-USER -i virbr0 -j ACCEPT"},
				// Replies could come in from docker0, which is accepted: only "may".
				{SeverityWarning, "ip filter", "FORWARD", "forwarded traffic in (replies)", "ip-forward-no-drop"},
			},
			owner: "docker",
		},
		{
			name: "firewalld, bridge in zone libvirt",
			rs:   Ruleset{Tables: []Table{firewalld(Rule{Conds: []Cond{iif("virbr0")}, Verdict: VerdictGoto, Target: "filter_IN_libvirt"})}},
			nets: []Network{natNet},
		},
		{
			name: "firewalld, bridge in the default zone",
			rs:   Ruleset{Tables: []Table{firewalld(Rule{Conds: []Cond{iif("eth0")}, Verdict: VerdictGoto, Target: "filter_IN_libvirt"})}},
			nets: []Network{natNet},
			want: []want{
				{SeverityError, "inet firewalld", "filter_INPUT", "DHCP to host", "firewall-cmd --zone=libvirt --change-interface=virbr0"},
				{SeverityError, "inet firewalld", "filter_INPUT", "DNS to host", "zone libvirt"},
			},
			owner: "firewalld",
		},
		{
			name: "set lookup before the policy: may drop",
			rs: Ruleset{Tables: []Table{{Family: "inet", Name: "x", Chains: []Chain{
				base("fwd", HookForward, "drop", Rule{Conds: []Cond{{Key: CondOther, Desc: "iifname @trusted"}}, Verdict: VerdictAccept}),
			}}}},
			nets: []Network{natNet},
			want: []want{
				{SeverityWarning, "inet x", "fwd", "forwarded traffic out", "nft insert rule"},
				{SeverityWarning, "inet x", "fwd", "forwarded traffic in (replies)", "nft insert rule"},
			},
		},
		{
			name: "accepting chain with an uncertain drop: info",
			rs: Ruleset{Tables: []Table{{Family: "ip", Name: "y", Chains: []Chain{
				base("in", HookInput, "accept", Rule{Conds: []Cond{{Key: CondOther, Desc: "ip saddr @bad"}}, Verdict: VerdictDrop}),
			}}}},
			nets: []Network{{Name: "n", Bridge: "br9", Mode: "isolated", IPv4: true, DHCPv4: true}},
			want: []want{{SeverityInfo, "ip y", "in", "DHCP to host", ""}},
		},
		{
			name: "output drop: replies from host",
			rs: Ruleset{Tables: []Table{{Family: "inet", Name: "z", Chains: []Chain{
				base("out", HookOutput, "drop", accept(established)),
			}}}},
			nets: []Network{natNet},
			want: []want{{SeverityError, "inet z", "out", "DHCP replies from host", `oifname "virbr0" udp sport 67 accept`}},
		},
		{
			name: "bridge family forward drop",
			rs: Ruleset{Tables: []Table{{Family: "bridge", Name: "b", Chains: []Chain{
				base("fwd", HookForward, "drop"),
			}}}},
			nets: []Network{natNet},
			want: []want{{SeverityError, "bridge b", "fwd", "traffic between guests", `meta ibrname "virbr0" accept`}},
		},
		{
			name: "ufw",
			rs: Ruleset{Tables: []Table{{Family: "ip", Name: "filter", Chains: []Chain{
				base("INPUT", HookInput, "drop", Rule{Verdict: VerdictJump, Target: "ufw-before-input"}),
				{Name: "ufw-before-input", Rules: []Rule{accept(iif("lo"))}},
			}}}},
			nets:  []Network{natNet},
			owner: "ufw",
			want: []want{
				{SeverityError, "ip filter", "INPUT", "DHCP to host", "ufw allow in on virbr0 to any port 67 proto udp"},
				{SeverityError, "ip filter", "INPUT", "DNS to host", "ufw allow in on virbr0 to any port 53"},
			},
		},
		{
			name: "iptables-legacy FORWARD DROP",
			rs: Ruleset{Tables: ParseIptablesSave("ip", `# Generated by iptables-save
*nat
:POSTROUTING ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -i eth0 -j ACCEPT
COMMIT
`)},
			nets:  []Network{natNet},
			owner: "iptables",
			want: []want{
				{SeverityError, "ip filter (iptables-legacy)", "FORWARD", "forwarded traffic out", "iptables-legacy -I FORWARD -i virbr0 -j ACCEPT"},
				// Replies may come in from eth0, which is accepted.
				{SeverityWarning, "ip filter (iptables-legacy)", "FORWARD", "forwarded traffic in (replies)", "-o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"},
			},
		},
		{
			name: "iptables-legacy accepting the bridge",
			rs: Ruleset{Tables: ParseIptablesSave("ip", `*filter
:FORWARD DROP [0:0]
:LIBVIRT [0:0]
-A FORWARD -j LIBVIRT
-A LIBVIRT -i virbr+ -m comment --comment "guests out" -j ACCEPT
-A LIBVIRT -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
`)},
			nets: []Network{natNet},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Analyze(tc.rs, tc.nets)
			if len(r.Networks) != len(tc.nets) {
				t.Fatalf("%d network reports, want %d", len(r.Networks), len(tc.nets))
			}
			var got []Finding
			for _, n := range r.Networks {
				got = append(got, n.Findings...)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("findings:\n%s\nwant %d", r.Text(), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Severity != w.sev || g.Table != w.table || g.Chain != w.chain || g.What != w.what || !strings.Contains(g.Fix, w.fix) {
					t.Errorf("finding %d = %+v\nwant %+v", i, g, w)
				}
				if tc.owner != "" && g.Owner != tc.owner {
					t.Errorf("finding %d: owner %q, want %q", i, g.Owner, tc.owner)
				}
				if g.Why == "" {
					t.Errorf("finding %d has no why", i)
				}
			}
			wantErr := 0
			for _, w := range tc.want {
				if w.sev == SeverityError {
					wantErr++
				}
			}
			if r.Errors() != wantErr {
				t.Errorf("Errors() = %d, want %d", r.Errors(), wantErr)
			}
		})
	}
}

func TestText(t *testing.T) {
	rs := Ruleset{Tables: []Table{{Family: "inet", Name: "planted", Chains: []Chain{base("fwd", HookForward, "drop")}}},
		Notes: []string{"iptables-legacy not inspected"}}
	r := Analyze(rs, []Network{natNet, {Name: "iso", Bridge: "virbr1", Mode: "isolated"}})
	txt := r.Text()
	for _, s := range []string{
		"Other firewall tables: inet planted\n",
		"note: iptables-legacy not inspected\n",
		"network default (bridge virbr0, nat):\n  error: table inet planted, chain fwd: forwarded traffic out\n    why: drops it (forward hook, priority 0): policy drop\n    fix: nft insert rule inet planted fwd iifname \"virbr0\" accept",
		"network iso (bridge virbr1, isolated):\n  ok: no other table drops its traffic\n",
		"2 error(s), 0 warning(s)\n",
	} {
		if !strings.Contains(txt, s) {
			t.Errorf("report lacks %q:\n%s", s, txt)
		}
	}
}

func TestRuleFromExprs(t *testing.T) {
	ne := func(v uint32) []byte { b := make([]byte, 4); binary.NativeEndian.PutUint32(b, v); return b }
	name := func(s string) []byte { b := make([]byte, 16); copy(b, s); return b }
	tests := []struct {
		name  string
		exprs []expr.Any
		ud    []byte
		want  Rule
	}{
		{"iifname exact accept", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name("virbr0")},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}, []byte{0, 4, 'h', 'i', '!', 0}, Rule{Conds: []Cond{iif("virbr0")}, Verdict: VerdictAccept, Comment: "hi!"}},
		{"oifname wildcard negated jump", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte("vir")},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: "c"},
		}, nil, Rule{Conds: []Cond{{Key: CondOIFName, Neg: true, Name: "vir", Prefix: true}}, Verdict: VerdictJump, Target: "c"}},
		{"ct state established,related accept", []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne(CtEstablished | CtRelated), Xor: ne(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ne(0)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}, nil, Rule{Conds: []Cond{ct(CtEstablished | CtRelated)}, Verdict: VerdictAccept}},
		{"udp dport 67 reject", []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 67}},
			&expr.Reject{},
		}, nil, Rule{Conds: udp(67), Verdict: VerdictReject}},
		{"saddr in set, vmap", []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: "bad"},
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: "__map0", IsDestRegSet: true},
		}, nil, Rule{Conds: []Cond{{Key: CondOther, Desc: "@nh,96,32 @bad"}}, Verdict: VerdictUnknown}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RuleFromExprs(tc.exprs, tc.ud)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseIptablesSave(t *testing.T) {
	got := ParseIptablesSave("ip", `*filter
:INPUT ACCEPT [1:2]
:FORWARD DROP [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD ! -i docker0 -o docker0 -j NFQUEUE --queue-num 1
-A DOCKER-USER -i virbr0 -p udp --dport 53 -m comment --comment "a b" -j RETURN
COMMIT
`)
	want := []Table{{Family: "ip", Name: "filter", Legacy: true, Chains: []Chain{
		{Name: "INPUT", Hook: HookInput, Type: "filter", Policy: "accept"},
		{Name: "FORWARD", Hook: HookForward, Type: "filter", Policy: "drop", Rules: []Rule{
			{Verdict: VerdictJump, Target: "DOCKER-USER"},
			{Conds: []Cond{{Key: CondIIFName, Neg: true, Name: "docker0"}, oif("docker0")}, Verdict: VerdictUnknown, Target: "NFQUEUE"},
		}},
		{Name: "DOCKER-USER", Rules: []Rule{{Conds: append([]Cond{iif("virbr0")}, udp(53)...), Verdict: VerdictReturn, Comment: "a b"}}},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if o := Owner(&got[0]); o != "docker" {
		t.Errorf("owner %q", o)
	}
}
