package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
	"github.com/netwarden/netwarden/netfilter"
)

// firewallDataDir returns libvirt's networkxml2firewalldata directory.
// Unlike the other conformance suites it fails, never skips, when the data
// is missing: it is the proof that FirewallRules means what libvirt does.
func firewallDataDir(t *testing.T) string {
	t.Helper()
	d, err := conformance.Find()
	if err != nil {
		t.Fatalf("conformance data missing: %v", err)
	}
	d = filepath.Join(d, "networkxml2firewalldata")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("conformance data missing: %v", err)
	}
	return d
}

// firewallCases returns the case names of networkxml2firewalldata: every
// X.xml with its X-linux.args.
func firewallCases(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, f := range xmlFiles(t, dir) {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		if _, err := os.Stat(filepath.Join(dir, name+"-linux.args")); err != nil {
			t.Errorf("%s: no expected commands: %v", name, err)
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		t.Fatalf("no cases in %s", dir)
	}
	return names
}

// xtablesHooks maps libvirt's (table, chain) to the hook holding its rules.
var xtablesHooks = map[[2]string]netfilter.NetHook{
	{"filter", "LIBVIRT_INP"}: netfilter.HookInput,
	{"filter", "LIBVIRT_OUT"}: netfilter.HookOutput,
	{"filter", "LIBVIRT_FWO"}: netfilter.HookForwardOut,
	{"filter", "LIBVIRT_FWI"}: netfilter.HookForwardIn,
	{"filter", "LIBVIRT_FWX"}: netfilter.HookForwardCross,
	{"nat", "LIBVIRT_PRT"}:    netfilter.HookNAT,
	{"mangle", "LIBVIRT_PRT"}: netfilter.HookMangle,
}

// parseXtablesArgs reads the iptables/ip6tables commands of a libvirt
// *.args file (each argument on its own line, continued with " \") into
// rules, each (family, hook) group in evaluation order. Every command must
// be an --insert into one of libvirt's private chains; --insert puts a rule
// first, so a chain evaluates its rules in the reverse of the file's order.
func parseXtablesArgs(data []byte) ([]netfilter.NetRule, error) {
	var cmds [][]string
	var cur []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		more := strings.HasSuffix(line, `\`)
		line = strings.TrimSpace(strings.TrimSuffix(line, `\`))
		for _, w := range strings.Fields(line) {
			cur = append(cur, strings.Trim(w, `'`))
		}
		if !more {
			cmds = append(cmds, cur)
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("command not finished at end of file: %q", cur)
	}
	var rules []netfilter.NetRule
	for _, cmd := range cmds {
		r, err := parseXtablesCommand(cmd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(cmd, " "), err)
		}
		rules = append(rules, r)
	}
	slices.Reverse(rules)
	return rules, nil
}

// parseXtablesCommand parses one "iptables -w --table T --insert CHAIN ..."
// command into a rule.
func parseXtablesCommand(cmd []string) (netfilter.NetRule, error) {
	var r netfilter.NetRule
	switch cmd[0] {
	case "iptables":
		r.Family = netfilter.IPv4
	case "ip6tables":
		r.Family = netfilter.IPv6
	default:
		return r, fmt.Errorf("not an iptables command: %q", cmd[0])
	}
	table, chain, jump := "filter", "", ""
	var not, checksumFill bool
	args := cmd[1:]
	next := func(opt string) (string, error) {
		if len(args) == 0 {
			return "", fmt.Errorf("%s without a value", opt)
		}
		v := args[0]
		args = args[1:]
		return v, nil
	}
	prefix := func(opt string) (netip.Prefix, error) {
		v, err := next(opt)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.ParsePrefix(v)
	}
	for len(args) > 0 {
		opt := args[0]
		args = args[1:]
		if opt != "!" && opt != "--destination" && not {
			return r, fmt.Errorf("'!' before %s is not supported", opt)
		}
		var err error
		var v string
		switch opt {
		case "-w":
		case "!":
			not = true
		case "--table", "-t":
			table, err = next(opt)
		case "--insert", "-I":
			chain, err = next(opt)
		case "--in-interface", "-i":
			r.InIface, err = next(opt)
		case "--out-interface", "-o":
			r.OutIface, err = next(opt)
		case "--protocol", "-p":
			r.Protocol, err = next(opt)
		case "--destination-port", "--dport":
			if v, err = next(opt); err == nil {
				var p uint64
				p, err = strconv.ParseUint(v, 10, 16)
				r.DstPort = uint16(p)
			}
		case "--source", "-s":
			r.Src, err = prefix(opt)
		case "--destination", "-d":
			r.Dst, err = prefix(opt)
			r.NotDst, not = not, false
		case "--match", "-m":
			if v, err = next(opt); err == nil && v != "conntrack" {
				err = fmt.Errorf("match %q not supported", v)
			}
		case "--ctstate":
			if v, err = next(opt); err == nil && v != "ESTABLISHED,RELATED" {
				err = fmt.Errorf("ctstate %q not supported", v)
			}
			r.Related = true
		case "--jump", "-j":
			jump, err = next(opt)
		case "--to-ports":
			if v, err = next(opt); err == nil {
				r.NAT.PortStart, r.NAT.PortEnd, err = parsePortRange(v)
			}
		case "--to-source":
			if v, err = next(opt); err == nil {
				err = parseToSource(v, &r.NAT)
			}
		case "--checksum-fill":
			checksumFill = true
		default:
			err = fmt.Errorf("option %q not supported", opt)
		}
		if err != nil {
			return r, err
		}
	}
	if not {
		return r, errors.New("dangling '!'")
	}
	hook, ok := xtablesHooks[[2]string{table, chain}]
	if !ok {
		return r, fmt.Errorf("not an insert into a private chain: table %q chain %q", table, chain)
	}
	r.Hook = hook
	switch jump {
	case "ACCEPT":
		r.Verdict = netfilter.NetAccept
	case "REJECT":
		r.Verdict = netfilter.NetReject
	case "RETURN":
		r.Verdict = netfilter.NetReturn
	case "MASQUERADE", "SNAT":
		r.Verdict = netfilter.NetMasquerade
	case "CHECKSUM":
		if !checksumFill {
			return r, errors.New("CHECKSUM without --checksum-fill")
		}
		r.Verdict = netfilter.NetChecksumFill
	default:
		return r, fmt.Errorf("jump %q not supported", jump)
	}
	if (jump == "SNAT") != r.NAT.AddrStart.IsValid() {
		return r, errors.New("SNAT needs --to-source, and only SNAT has one")
	}
	return r, nil
}

// parsePortRange parses "1024-65535".
func parsePortRange(s string) (uint16, uint16, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	lo, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	hi, err := strconv.ParseUint(b, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	return uint16(lo), uint16(hi), nil
}

// parseToSource parses SNAT's "a[-b][:p-q]" (IPv4 addresses).
func parseToSource(s string, nat *netfilter.NATRange) error {
	addrs, ports, hasPorts := strings.Cut(s, ":")
	a, b, ok := strings.Cut(addrs, "-")
	if !ok {
		b = a
	}
	var err error
	if nat.AddrStart, err = netip.ParseAddr(a); err != nil {
		return err
	}
	if nat.AddrEnd, err = netip.ParseAddr(b); err != nil {
		return err
	}
	if hasPorts {
		nat.PortStart, nat.PortEnd, err = parsePortRange(ports)
	}
	return err
}

// groupRules renders rules per "family hook", each group in its order.
func groupRules(rules []netfilter.NetRule) map[string][]string {
	g := map[string][]string{}
	for i := range rules {
		r := &rules[i]
		k := r.Family.String() + " " + r.Hook.String()
		g[k] = append(g[k], r.String())
	}
	return g
}

// diffRules compares two rule lists group by group (family and hook): the
// same rules in the same order. It returns "" when they agree, else a
// listing of every differing group, lines prefixed "-" (only in want), "+"
// (only in got) or " " (in both).
func diffRules(got, want []netfilter.NetRule) string {
	g, w := groupRules(got), groupRules(want)
	var keys []string
	for k := range g {
		keys = append(keys, k)
	}
	for k := range w {
		if _, ok := g[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		if slices.Equal(g[k], w[k]) {
			continue
		}
		fmt.Fprintf(&b, "%s (want %d rules, got %d):\n", k, len(w[k]), len(g[k]))
		b.WriteString(lineDiff(w[k], g[k]))
	}
	return b.String()
}

// lineDiff is a small LCS diff of two line lists.
func lineDiff(a, b []string) string {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var s strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			fmt.Fprintf(&s, "     %s\n", a[i])
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&s, "  +  %s\n", b[j])
			j++
		default:
			fmt.Fprintf(&s, "  -  %s\n", a[i])
			i++
		}
	}
	return s.String()
}

// TestFirewallConformance compares FirewallRules of every case of libvirt's
// networkxml2firewalldata with the iptables commands libvirt 9.0 runs for
// it (X-linux.args; base.args is the chain setup and not compared): the
// same rules for each family and hook, in the same evaluation order.
func TestFirewallConformance(t *testing.T) {
	dir := firewallDataDir(t)
	names := firewallCases(t, dir)
	passed := 0
	for _, name := range names {
		ok := t.Run(name, func(t *testing.T) {
			doc, err := readConformanceFile(filepath.Join(dir, name+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			n, err := Parse(doc)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			args, err := readConformanceFile(filepath.Join(dir, name+"-linux.args"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseXtablesArgs(args)
			if err != nil {
				t.Fatalf("libvirt's commands: %v", err)
			}
			got, err := FirewallRules(n)
			if err != nil {
				t.Fatalf("FirewallRules: %v", err)
			}
			if got == nil {
				t.Fatal("FirewallRules: no rules")
			}
			if got.Bridge != n.Bridge.Name || got.Network != n.Name {
				t.Errorf("network %q bridge %q, want %q %q", got.Network, got.Bridge, n.Name, n.Bridge.Name)
			}
			if d := diffRules(got.Rules, want); d != "" {
				t.Errorf("rules differ from libvirt's (- libvirt, + netwarden):\n%s", d)
			}
		})
		if ok {
			passed++
		}
	}
	t.Logf("networkxml2firewalldata: %d/%d cases agree with libvirt 9.0", passed, len(names))
}

// TestFirewallArgsParser checks the test's own reader of libvirt's
// commands on the forms FirewallRules does not meet in libvirt's data.
func TestFirewallArgsParser(t *testing.T) {
	tests := []struct {
		name, args, want, err string
	}{
		{"snat", "iptables \\\n-w \\\n--table nat \\\n--insert LIBVIRT_PRT \\\n--source 10.0.0.0/8 \\\n-p tcp '!' \\\n--destination 10.0.0.0/8 \\\n--out-interface eth0 \\\n--jump SNAT \\\n--to-source 192.0.2.1-192.0.2.9:2000-3000\n",
			"ipv4 nat oif=eth0 proto=tcp src=10.0.0.0/8 dst!=10.0.0.0/8 masquerade to=192.0.2.1-192.0.2.9 ports=2000-3000", ""},
		{"snat-one-address", "iptables -w --table nat --insert LIBVIRT_PRT --source 10.0.0.0/8 --jump SNAT --to-source 192.0.2.1\n",
			"ipv4 nat src=10.0.0.0/8 masquerade to=192.0.2.1-192.0.2.1", ""},
		{"fwi-dev", "ip6tables -w --table filter --insert LIBVIRT_FWI --destination fd00::/64 --in-interface eth0 --out-interface br0 --jump ACCEPT\n",
			"ipv6 forward-in iif=eth0 oif=br0 dst=fd00::/64 accept", ""},
		{"list", "iptables -w --table filter --list-rules\n", "", "not supported"},
		{"append", "iptables -w --table filter --append LIBVIRT_INP --jump ACCEPT\n", "", "not supported"},
		{"other-chain", "iptables -w --table filter --insert INPUT --jump LIBVIRT_INP\n", "", "not an insert into a private chain"},
		{"not-source", "iptables -w --table filter --insert LIBVIRT_FWO '!' --source 10.0.0.0/8 --jump ACCEPT\n", "", "'!' before --source"},
		{"unfinished", "iptables \\\n-w \\\n", "", "not finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := parseXtablesArgs([]byte(tt.args))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rules) != 1 || rules[0].String() != tt.want {
				t.Fatalf("got %v\nwant %s", rules, tt.want)
			}
		})
	}
	// Two inserts into one chain: the later one is evaluated first.
	rules, err := parseXtablesArgs([]byte("iptables -w --table filter --insert LIBVIRT_FWO --in-interface b --jump REJECT\n" +
		"iptables -w --table filter --insert LIBVIRT_FWO --in-interface b --source 10.0.0.0/8 --jump ACCEPT\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].Verdict != netfilter.NetAccept || rules[1].Verdict != netfilter.NetReject {
		t.Fatalf("evaluation order: %v", rules)
	}
}

// extraFirewallCases are golden cases of netwarden's own, beside libvirt's.
var extraFirewallCases = []struct{ name, xml string }{
	{"route-forward-dev", `<network><name>routed</name><bridge name='virbr3'/>
		<forward mode='route' dev='eth1'/>
		<ip address='10.10.0.1' prefix='24'><dhcp><range start='10.10.0.10' end='10.10.0.20'/></dhcp></ip>
		<ip family='ipv6' address='fd00:10::1' prefix='64'/></network>`},
	{"nat-address-port", `<network><name>natrange</name><bridge name='virbr4'/>
		<forward><nat ipv6='yes'><address start='192.0.2.10' end='192.0.2.20'/><port start='20000' end='30000'/></nat></forward>
		<ip address='192.168.50.1' netmask='255.255.255.0'/>
		<ip family='ipv6' address='fd00:50::1' prefix='64'/></network>`},
	{"nat-dev", `<network><name>natdev</name><bridge name='virbr5'/>
		<forward mode='nat' dev='eth0'/>
		<ip address='192.168.60.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' ip='192.168.60.5'/></dhcp></ip></network>`},
	{"isolated", `<network><name>isolated</name><bridge name='virbr6'/>
		<ip address='192.168.70.1' prefix='24'><dhcp><range start='192.168.70.2' end='192.168.70.9'/></dhcp></ip></network>`},
	{"isolated-ipv6-nogw", `<network ipv6='yes'><name>nogw</name><bridge name='virbr7'/></network>`},
	{"open", `<network><name>open</name><bridge name='virbr8'/><forward mode='open'/>
		<ip address='192.168.80.1' prefix='24'/></network>`},
	{"bridge", `<network><name>host-bridge</name><forward mode='bridge'/><bridge name='br0'/></network>`},
	{"nat-two-ipv4-one-ipv6", `<network><name>multi</name><bridge name='virbr9'/><forward/>
		<ip address='10.1.0.1' prefix='16'><dhcp><range start='10.1.0.2' end='10.1.0.200'/></dhcp></ip>
		<ip address='172.20.0.1' prefix='24'/>
		<ip family='ipv6' address='fd00:1::1' prefix='64'><dhcp><range start='fd00:1::10' end='fd00:1::ff'/></dhcp></ip></network>`},
	{"tftp-no-dhcp", `<network><name>tftp</name><bridge name='virbr10'/><forward/>
		<ip address='192.168.90.1' prefix='24'><tftp root='/srv/tftp'/></ip></network>`},
	{"dns-disabled", `<network><name>nodns</name><bridge name='virbr11'/><dns enable='no'/>
		<ip address='192.168.100.1' prefix='24'/></network>`},
}

// TestFirewallGolden compares the rules of every libvirt case and of
// netwarden's own cases with testdata/firewall/<case>.rules
// (NetworkRules.String(), or "no rules" for networks without any).
// Regenerate with go test ./network -run FirewallGolden -update.
func TestFirewallGolden(t *testing.T) {
	dir := firewallDataDir(t)
	golden := filepath.Join("testdata", "firewall")
	if *update {
		if err := os.MkdirAll(golden, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	type goldenCase struct {
		name string
		doc  func() ([]byte, error)
	}
	var cases []goldenCase
	for _, name := range firewallCases(t, dir) {
		cases = append(cases, goldenCase{name, func() ([]byte, error) {
			return readConformanceFile(filepath.Join(dir, name+".xml"))
		}})
	}
	for _, c := range extraFirewallCases {
		cases = append(cases, goldenCase{c.name, func() ([]byte, error) { return []byte(c.xml), nil }})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := c.doc()
			if err != nil {
				t.Fatal(err)
			}
			n, err := Parse(doc)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			rules, err := FirewallRules(n)
			if err != nil {
				t.Fatalf("FirewallRules: %v", err)
			}
			got := "no rules\n"
			if rules != nil {
				got = rules.String()
			}
			p := filepath.Join(golden, c.name+".rules")
			if *update {
				if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("%v (regenerate with -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (regenerate with -update if intended):\n%s", p,
					lineDiff(strings.Split(string(want), "\n"), strings.Split(got, "\n")))
			}
		})
	}
}

// TestFirewallRulesEdges covers the corners of libvirt's rules: which
// rules must be there (has), must not (hasNot), or the error.
func TestFirewallRulesEdges(t *testing.T) {
	const ip4 = `<ip address='192.168.1.1' prefix='24'/>`
	net := func(attrs, body string) string {
		return `<network` + attrs + `><name>t</name><bridge name='br9'/>` + body + `</network>`
	}
	tests := []struct {
		name        string
		xml         string
		none        bool
		has, hasNot []string
		err         string
	}{
		{name: "dns-disabled-still-open", xml: net("", `<dns enable='no'/>`+ip4),
			has: []string{"ipv4 input iif=br9 proto=udp dport=53 accept", "ipv4 output oif=br9 proto=tcp dport=53 accept"}},
		{name: "dhcp-ports-without-dhcp", xml: net("", `<forward/>`+ip4),
			has:    []string{"ipv4 input iif=br9 proto=udp dport=67 accept", "ipv4 output oif=br9 proto=udp dport=68 accept"},
			hasNot: []string{"ipv4 mangle oif=br9 proto=udp dport=68 checksum-fill"}},
		{name: "dhcp-hosts-only-checksum", xml: net("", `<ip address='192.168.1.1' prefix='24'><dhcp><host mac='52:54:00:00:00:02' ip='192.168.1.7'/></dhcp></ip>`),
			has: []string{"ipv4 mangle oif=br9 proto=udp dport=68 checksum-fill"}},
		{name: "ipv6-dhcp-no-checksum", xml: net("", `<ip family='ipv6' address='fd00::1' prefix='64'><dhcp><range start='fd00::10' end='fd00::20'/></dhcp></ip>`),
			has:    []string{"ipv6 input iif=br9 proto=udp dport=547 accept", "ipv6 output oif=br9 proto=udp dport=546 accept"},
			hasNot: []string{"ipv4 mangle oif=br9 proto=udp dport=68 checksum-fill"}},
		{name: "no-ip-still-ipv4-general", xml: net("", ``),
			has:    []string{"ipv4 forward-out iif=br9 reject", "ipv4 forward-in oif=br9 reject", "ipv4 forward-cross iif=br9 oif=br9 accept", "ipv4 input iif=br9 proto=tcp dport=67 accept"},
			hasNot: []string{"ipv6 forward-out iif=br9 reject"}},
		{name: "ipv6-nogw-no-services", xml: net(" ipv6='yes'", ip4),
			has:    []string{"ipv6 forward-out iif=br9 reject", "ipv6 forward-cross iif=br9 oif=br9 accept"},
			hasNot: []string{"ipv6 input iif=br9 proto=udp dport=53 accept", "ipv6 input iif=br9 proto=udp dport=547 accept"}},
		{name: "tftp-after-dhcp-ip-ignored", xml: net("", `<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.1.2' end='192.168.1.9'/></dhcp></ip>
			<ip address='192.168.2.1' prefix='24'><tftp root='/srv'/></ip>`),
			hasNot: []string{"ipv4 input iif=br9 proto=udp dport=69 accept"}},
		{name: "tftp-before-dhcp-ip", xml: net("", `<ip address='192.168.2.1' prefix='24'><tftp root='/srv'/></ip>
			<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.1.2' end='192.168.1.9'/></dhcp></ip>`),
			has: []string{"ipv4 input iif=br9 proto=udp dport=69 accept", "ipv4 output oif=br9 proto=udp dport=69 accept", "ipv4 mangle oif=br9 proto=udp dport=68 checksum-fill"}},
		{name: "nat-ipv6-routed", xml: net("", `<forward/><ip family='ipv6' address='fd00::1' prefix='64'/>`),
			has:    []string{"ipv6 forward-in oif=br9 dst=fd00::/64 accept", "ipv6 forward-out iif=br9 src=fd00::/64 accept"},
			hasNot: []string{"ipv6 nat src=fd00::/64 dst!=fd00::/64 masquerade"}},
		{name: "nat-ipv6-masquerade-no-snat", xml: net("", `<forward><nat ipv6='yes'><address start='192.0.2.1' end='192.0.2.1'/></nat></forward><ip family='ipv6' address='fd00::1' prefix='64'/>`),
			has: []string{"ipv6 nat src=fd00::/64 dst!=fd00::/64 masquerade", "ipv6 nat proto=tcp src=fd00::/64 dst!=fd00::/64 masquerade ports=1024-65535",
				"ipv6 nat src=fd00::/64 dst=ff02::/16 return", "ipv6 forward-in oif=br9 dst=fd00::/64 related accept"},
			hasNot: []string{"ipv6 nat src=fd00::/64 dst=255.255.255.255/32 return"}},
		{name: "nat-snat-one-address", xml: net("", `<forward><nat><address start='192.0.2.1' end='192.0.2.1'/></nat></forward>`+ip4),
			has: []string{"ipv4 nat src=192.168.1.0/24 dst!=192.168.1.0/24 masquerade to=192.0.2.1-192.0.2.1",
				"ipv4 nat proto=udp src=192.168.1.0/24 dst!=192.168.1.0/24 masquerade to=192.0.2.1-192.0.2.1 ports=1024-65535"}},
		{name: "nat-dev-everywhere", xml: net("", `<forward dev='eth0'/>`+ip4),
			has: []string{"ipv4 forward-out iif=br9 oif=eth0 src=192.168.1.0/24 accept", "ipv4 forward-in iif=eth0 oif=br9 dst=192.168.1.0/24 related accept",
				"ipv4 nat oif=eth0 src=192.168.1.0/24 dst=224.0.0.0/24 return", "ipv4 nat oif=eth0 proto=tcp src=192.168.1.0/24 dst!=192.168.1.0/24 masquerade ports=1024-65535"}},
		{name: "nat-first-interface", xml: net("", `<forward mode='nat'><interface dev='eth2'/></forward>`+ip4),
			has: []string{"ipv4 forward-out iif=br9 oif=eth2 src=192.168.1.0/24 accept"}},
		{name: "route-dev", xml: net("", `<forward mode='route' dev='eth1'/>`+ip4),
			has:    []string{"ipv4 forward-in iif=eth1 oif=br9 dst=192.168.1.0/24 accept"},
			hasNot: []string{"ipv4 nat src=192.168.1.0/24 dst!=192.168.1.0/24 masquerade"}},
		{name: "nat-one-port", xml: net("", `<forward><nat><port start='2000' end='2000'/></nat></forward>`+ip4), err: "port range 2000-2000"},
		{name: "open", xml: net("", `<forward mode='open'/>`+ip4), none: true},
		{name: "bridge", xml: `<network><name>t</name><forward mode='bridge'/><bridge name='br0'/></network>`, none: true},
		{name: "private", xml: `<network><name>t</name><forward mode='private' dev='eth0'/></network>`, none: true},
		{name: "vepa", xml: `<network><name>t</name><forward mode='vepa' dev='eth0'/></network>`, none: true},
		{name: "passthrough", xml: `<network><name>t</name><forward mode='passthrough' dev='eth0'/></network>`, none: true},
		{name: "hostdev", xml: `<network><name>t</name><forward mode='hostdev' managed='yes'><pf dev='eth0'/></forward></network>`, none: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse([]byte(tt.xml))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			rules, err := FirewallRules(n)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), `network "t"`) {
					t.Fatalf("error %v, want one naming the network with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.none {
				if rules != nil {
					t.Fatalf("want no rules, got\n%s", rules)
				}
				return
			}
			if rules == nil {
				t.Fatal("no rules")
			}
			var lines []string
			for i := range rules.Rules {
				lines = append(lines, rules.Rules[i].String())
			}
			for _, h := range tt.has {
				if !slices.Contains(lines, h) {
					t.Errorf("missing %s\nin\n%s", h, rules)
				}
			}
			for _, h := range tt.hasNot {
				if slices.Contains(lines, h) {
					t.Errorf("unexpected %s\nin\n%s", h, rules)
				}
			}
		})
	}
}

// TestFirewallRulesBuiltInCode covers networks built in code rather than
// parsed: what the daemon must fill in, and values the parser refuses.
func TestFirewallRulesBuiltInCode(t *testing.T) {
	base := func() *Network {
		return &Network{Name: "c", Bridge: Bridge{Name: "virbr0"}, Forward: &Forward{Mode: ForwardNAT},
			IPs: []IP{{Address: netip.MustParseAddr("192.168.5.1"), Prefix: 24}}}
	}
	tests := []struct {
		name   string
		change func(n *Network)
		err    string
	}{
		{"ok", func(*Network) {}, ""},
		{"no-bridge-name", func(n *Network) { n.Bridge.Name = "" }, "bridge has no name"},
		{"classless-no-prefix", func(n *Network) { n.IPs[0] = IP{Address: netip.MustParseAddr("240.0.0.1")} }, "no usable prefix"},
		{"prefix-too-long", func(n *Network) { n.IPs[0].Prefix = 40 }, "does not fit"},
		{"port-start-zero", func(n *Network) { n.Forward.NAT = &NAT{PortEnd: 100} }, "port range 0-100"},
		{"nat-without-end-address", func(n *Network) { n.Forward.NAT = &NAT{AddressStart: netip.MustParseAddr("192.0.2.1")} }, ""},
		{"open-without-bridge-name", func(n *Network) { n.Forward.Mode = ForwardOpen; n.Bridge.Name = "" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base()
			tt.change(n)
			rules, err := FirewallRules(n)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Forward.Mode == ForwardOpen {
				if rules != nil {
					t.Fatalf("open network has rules:\n%s", rules)
				}
				return
			}
			if rules == nil || rules.Bridge != "virbr0" || rules.Network != "c" {
				t.Fatalf("rules %v", rules)
			}
			if n.Forward.NAT != nil && n.Forward.NAT.AddressStart.IsValid() {
				want := "ipv4 nat src=192.168.5.0/24 dst!=192.168.5.0/24 masquerade to=192.0.2.1-192.0.2.1"
				if !strings.Contains(rules.String(), want) {
					t.Errorf("missing %s in\n%s", want, rules)
				}
			}
		})
	}
	if _, err := FirewallRules(nil); err == nil {
		t.Error("FirewallRules(nil) succeeded")
	}
}

// TestFirewallRulesOrder checks the evaluation order libvirt's inserts
// give: a subnet's accept before the bridge's reject, later <ip>s first,
// NAT exemptions before the masquerading.
func TestFirewallRulesOrder(t *testing.T) {
	n, err := Parse([]byte(`<network><name>o</name><bridge name='br1'/><forward/>
		<ip address='10.0.0.1' prefix='24'/><ip address='10.0.1.1' prefix='24'/></network>`))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := FirewallRules(n)
	if err != nil {
		t.Fatal(err)
	}
	g := groupRules(rules.Rules)
	want := map[string][]string{
		"ipv4 forward-out": {
			"ipv4 forward-out iif=br1 src=10.0.1.0/24 accept",
			"ipv4 forward-out iif=br1 src=10.0.0.0/24 accept",
			"ipv4 forward-out iif=br1 reject",
		},
		"ipv4 nat": {
			"ipv4 nat src=10.0.1.0/24 dst=224.0.0.0/24 return",
			"ipv4 nat src=10.0.1.0/24 dst=255.255.255.255/32 return",
			"ipv4 nat proto=tcp src=10.0.1.0/24 dst!=10.0.1.0/24 masquerade ports=1024-65535",
			"ipv4 nat proto=udp src=10.0.1.0/24 dst!=10.0.1.0/24 masquerade ports=1024-65535",
			"ipv4 nat src=10.0.1.0/24 dst!=10.0.1.0/24 masquerade",
			"ipv4 nat src=10.0.0.0/24 dst=224.0.0.0/24 return",
			"ipv4 nat src=10.0.0.0/24 dst=255.255.255.255/32 return",
			"ipv4 nat proto=tcp src=10.0.0.0/24 dst!=10.0.0.0/24 masquerade ports=1024-65535",
			"ipv4 nat proto=udp src=10.0.0.0/24 dst!=10.0.0.0/24 masquerade ports=1024-65535",
			"ipv4 nat src=10.0.0.0/24 dst!=10.0.0.0/24 masquerade",
		},
	}
	for k, w := range want {
		if !slices.Equal(g[k], w) {
			t.Errorf("%s:\n%s", k, lineDiff(w, g[k]))
		}
	}
}
