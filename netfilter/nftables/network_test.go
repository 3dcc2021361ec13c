package nftables

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
	"github.com/netwarden/netwarden/netfilter"
)

// The networks' rules of the tests. libvirt's networkxml2firewalldata
// cases (nat-default, nat-ipv6, nat-ipv6-masquerade, nat-many-ips,
// nat-no-dhcp, nat-tftp, route-default) are read from libvirt's expected
// iptables commands (*-linux.args), which say exactly which rules libvirt
// installs and in what order; the network layer's generator is tested
// against the same files. Two more cases are built here: an isolated
// network, and a nat network with an address range, a port range and a
// forward dev (libvirt's SNAT --to-source).

// libvirtNetworkCases reads the seven cases into NetworkRules of network
// "default" on bridge virbr0.
func libvirtNetworkCases(t *testing.T) map[string]*netfilter.NetworkRules {
	t.Helper()
	dir := filepath.Join(conformance.Dir(t), "networkxml2firewalldata")
	files, err := filepath.Glob(filepath.Join(dir, "*-linux.args"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]*netfilter.NetworkRules{}
	for _, f := range files {
		data, err := conformance.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rules, err := parseLibvirtArgs(string(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), "-linux.args")
		cases[name] = &netfilter.NetworkRules{Network: "default", Bridge: "virbr0", Rules: rules}
	}
	if len(cases) != 7 {
		t.Fatalf("%s: %d cases, want 7", dir, len(cases))
	}
	return cases
}

// libvirtChains maps libvirt's private chains (table/chain) to hooks.
var libvirtChains = map[string]netfilter.NetHook{
	"filter/LIBVIRT_INP": netfilter.HookInput,
	"filter/LIBVIRT_OUT": netfilter.HookOutput,
	"filter/LIBVIRT_FWO": netfilter.HookForwardOut,
	"filter/LIBVIRT_FWI": netfilter.HookForwardIn,
	"filter/LIBVIRT_FWX": netfilter.HookForwardCross,
	"nat/LIBVIRT_PRT":    netfilter.HookNAT,
	"mangle/LIBVIRT_PRT": netfilter.HookMangle,
}

// parseLibvirtArgs turns libvirt's iptables/ip6tables commands into
// network rules in evaluation order (--insert puts a rule first).
func parseLibvirtArgs(text string) ([]netfilter.NetRule, error) {
	type key struct {
		fam  netfilter.Family
		hook netfilter.NetHook
	}
	lists := map[key][]netfilter.NetRule{}
	var order []key
	text = strings.ReplaceAll(text, "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		argv := strings.Fields(strings.ReplaceAll(line, "'!'", "!"))
		if len(argv) == 0 {
			continue
		}
		var r netfilter.NetRule
		switch argv[0] {
		case "iptables":
			r.Family = netfilter.IPv4
		case "ip6tables":
			r.Family = netfilter.IPv6
		default:
			return nil, fmt.Errorf("unknown command %q", argv[0])
		}
		table, chain, insert, neg := "filter", "", false, false
		for i := 1; i < len(argv); i++ {
			a := argv[i]
			val := func() string {
				i++
				if i < len(argv) {
					return argv[i]
				}
				return ""
			}
			switch a {
			case "-w", "--match":
				if a == "--match" {
					val()
				}
			case "!":
				neg = true
				continue
			case "--table":
				table = val()
			case "--insert", "--append":
				insert, chain = a == "--insert", val()
			case "--in-interface":
				r.InIface = val()
			case "--out-interface":
				r.OutIface = val()
			case "--protocol", "-p":
				r.Protocol = val()
			case "--destination-port":
				p, err := strconv.ParseUint(val(), 10, 16)
				if err != nil {
					return nil, err
				}
				r.DstPort = uint16(p)
			case "--source", "--destination":
				p, err := netip.ParsePrefix(val())
				if err != nil {
					return nil, err
				}
				if a == "--source" {
					r.Src = p
				} else {
					r.Dst, r.NotDst = p, neg
				}
			case "--ctstate":
				if val() != "ESTABLISHED,RELATED" {
					return nil, fmt.Errorf("unexpected --ctstate in %q", line)
				}
				r.Related = true
			case "--jump":
				switch j := val(); j {
				case "ACCEPT":
					r.Verdict = netfilter.NetAccept
				case "REJECT":
					r.Verdict = netfilter.NetReject
				case "RETURN":
					r.Verdict = netfilter.NetReturn
				case "MASQUERADE":
					r.Verdict = netfilter.NetMasquerade
				case "CHECKSUM":
					r.Verdict = netfilter.NetChecksumFill
				default:
					return nil, fmt.Errorf("unknown target %q", j)
				}
			case "--to-ports":
				lo, hi, _ := strings.Cut(val(), "-")
				a, err1 := strconv.ParseUint(lo, 10, 16)
				b, err2 := strconv.ParseUint(hi, 10, 16)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("bad --to-ports in %q", line)
				}
				r.NAT.PortStart, r.NAT.PortEnd = uint16(a), uint16(b)
			case "--checksum-fill":
			case "--list-rules", "--new-chain":
				chain = ""
				i = len(argv)
			default:
				return nil, fmt.Errorf("unknown option %q in %q", a, line)
			}
			neg = false
		}
		if chain == "" {
			continue
		}
		h, ok := libvirtChains[table+"/"+chain]
		if !ok {
			return nil, fmt.Errorf("unknown chain %s/%s", table, chain)
		}
		r.Hook = h
		k := key{r.Family, h}
		if _, seen := lists[k]; !seen {
			order = append(order, k)
		}
		if insert {
			lists[k] = append([]netfilter.NetRule{r}, lists[k]...)
		} else {
			lists[k] = append(lists[k], r)
		}
	}
	var out []netfilter.NetRule
	for _, k := range order {
		out = append(out, lists[k]...)
	}
	return out, nil
}

// dhcpDNSRules are libvirt's INP and OUT rules for DHCP (IPv4) and DNS on
// a bridge.
func dhcpDNSRules(br string) []netfilter.NetRule {
	var rs []netfilter.NetRule
	for _, p := range []struct {
		hook netfilter.NetHook
		port uint16
	}{{netfilter.HookInput, 67}, {netfilter.HookInput, 53}, {netfilter.HookOutput, 68}, {netfilter.HookOutput, 53}} {
		for _, proto := range []string{"tcp", "udp"} {
			r := netfilter.NetRule{Hook: p.hook, Family: netfilter.IPv4, Protocol: proto, DstPort: p.port, Verdict: netfilter.NetAccept}
			if p.hook == netfilter.HookInput {
				r.InIface = br
			} else {
				r.OutIface = br
			}
			rs = append(rs, r)
		}
	}
	return rs
}

// closedForwardRules are libvirt's rules for every network with a
// bridge: forwarding between its ports is allowed, any other forwarding
// from or to it rejected (later rules of nat and route come first).
func closedForwardRules(br string) []netfilter.NetRule {
	return []netfilter.NetRule{
		{Hook: netfilter.HookForwardCross, Family: netfilter.IPv4, InIface: br, OutIface: br, Verdict: netfilter.NetAccept},
		{Hook: netfilter.HookForwardOut, Family: netfilter.IPv4, InIface: br, Verdict: netfilter.NetReject},
		{Hook: netfilter.HookForwardIn, Family: netfilter.IPv4, OutIface: br, Verdict: netfilter.NetReject},
	}
}

// isolatedNetwork is an isolated network (no <forward>) with DHCP.
func isolatedNetwork(name, br string) *netfilter.NetworkRules {
	rules := append(dhcpDNSRules(br), closedForwardRules(br)...)
	return &netfilter.NetworkRules{Network: name, Bridge: br, Rules: rules}
}

// natNetwork is libvirt's default nat network (IPv4 DHCP) on subnet sub
// of bridge br; with dev, forwarding and NAT are limited to that
// interface, and a non-zero nat range gives SNAT instead of masquerade.
func natNetwork(name, br, sub, dev string, nat netfilter.NATRange) *netfilter.NetworkRules {
	p := netip.MustParsePrefix(sub)
	v4 := netfilter.IPv4
	rules := dhcpDNSRules(br)
	rules = append(rules,
		netfilter.NetRule{Hook: netfilter.HookForwardCross, Family: v4, InIface: br, OutIface: br, Verdict: netfilter.NetAccept},
		netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: v4, InIface: br, OutIface: dev, Src: p, Verdict: netfilter.NetAccept},
		netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: v4, InIface: br, Verdict: netfilter.NetReject},
		netfilter.NetRule{Hook: netfilter.HookForwardIn, Family: v4, InIface: dev, OutIface: br, Dst: p, Related: true, Verdict: netfilter.NetAccept},
		netfilter.NetRule{Hook: netfilter.HookForwardIn, Family: v4, OutIface: br, Verdict: netfilter.NetReject},
		netfilter.NetRule{Hook: netfilter.HookNAT, Family: v4, OutIface: dev, Src: p, Dst: netip.MustParsePrefix("224.0.0.0/24"), Verdict: netfilter.NetReturn},
		netfilter.NetRule{Hook: netfilter.HookNAT, Family: v4, OutIface: dev, Src: p, Dst: netip.MustParsePrefix("255.255.255.255/32"), Verdict: netfilter.NetReturn},
	)
	ports := nat
	ports.PortStart, ports.PortEnd = 1024, 65535
	if nat.PortStart != 0 {
		ports.PortStart, ports.PortEnd = nat.PortStart, nat.PortEnd
	}
	addrOnly := nat
	addrOnly.PortStart, addrOnly.PortEnd = 0, 0
	for _, proto := range []string{"tcp", "udp", ""} {
		n := ports
		if proto == "" {
			n = addrOnly
		}
		rules = append(rules, netfilter.NetRule{Hook: netfilter.HookNAT, Family: v4, OutIface: dev, Protocol: proto,
			Src: p, Dst: p, NotDst: true, Verdict: netfilter.NetMasquerade, NAT: n})
	}
	rules = append(rules, netfilter.NetRule{Hook: netfilter.HookMangle, Family: v4, OutIface: br, Protocol: "udp", DstPort: 68, Verdict: netfilter.NetChecksumFill})
	return &netfilter.NetworkRules{Network: name, Bridge: br, Rules: rules}
}

// routeNetwork is a route-mode network: forwarded both ways, no NAT.
func routeNetwork(name, br, sub string) *netfilter.NetworkRules {
	p := netip.MustParsePrefix(sub)
	v4 := netfilter.IPv4
	rules := dhcpDNSRules(br)
	rules = append(rules,
		netfilter.NetRule{Hook: netfilter.HookForwardCross, Family: v4, InIface: br, OutIface: br, Verdict: netfilter.NetAccept},
		netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: v4, InIface: br, Src: p, Verdict: netfilter.NetAccept},
		netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: v4, InIface: br, Verdict: netfilter.NetReject},
		netfilter.NetRule{Hook: netfilter.HookForwardIn, Family: v4, OutIface: br, Dst: p, Verdict: netfilter.NetAccept},
		netfilter.NetRule{Hook: netfilter.HookForwardIn, Family: v4, OutIface: br, Verdict: netfilter.NetReject},
	)
	return &netfilter.NetworkRules{Network: name, Bridge: br, Rules: rules}
}

// networkCases are every rendering case: libvirt's seven and ours.
func networkCases(t *testing.T) map[string]*netfilter.NetworkRules {
	cases := libvirtNetworkCases(t)
	cases["isolated"] = isolatedNetwork("isolated net/ü \"quoted\"", "virbr1")
	cases["nat-ranges-dev"] = natNetwork("nat ranges", "virbr2", "192.168.140.0/24", "eth1", netfilter.NATRange{
		AddrStart: netip.MustParseAddr("203.0.113.10"), AddrEnd: netip.MustParseAddr("203.0.113.20"),
		PortStart: 2000, PortEnd: 3000})
	return cases
}

// TestLibvirtArgsParsed checks the test's reading of libvirt's commands
// on the default network: the rules of nat-default in evaluation order.
func TestLibvirtArgsParsed(t *testing.T) {
	got := libvirtNetworkCases(t)["nat-default"].String()
	path := filepath.Join("testdata", "network", "nat-default.rules")
	if updateGolden() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readFileOr(t, path)
	if got != want {
		t.Errorf("nat-default rules:\n%s", lineDiff(want, got))
	}
}

// TestPlanNetworksErrors: invalid networks are refused with the network
// named, and nothing is rendered.
func TestPlanNetworksErrors(t *testing.T) {
	v4, v6 := netfilter.IPv4, netfilter.IPv6
	p4 := netip.MustParsePrefix("10.0.0.0/24")
	for _, tc := range []struct {
		name string
		rule netfilter.NetRule
		br   string
		want string
	}{
		{"bridge too long", netfilter.NetRule{Hook: netfilter.HookInput, Family: v4, Verdict: netfilter.NetAccept}, "abcdefghijklmnop", "length 16"},
		{"bridge with slash", netfilter.NetRule{Hook: netfilter.HookInput, Family: v4, Verdict: netfilter.NetAccept}, "a/b", "invalid character"},
		{"family mismatch", netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: v6, Src: p4, Verdict: netfilter.NetAccept}, "br0", "is not ipv6"},
		{"ports without protocol", netfilter.NetRule{Hook: netfilter.HookNAT, Family: v4, Src: p4, Verdict: netfilter.NetMasquerade,
			NAT: netfilter.NATRange{PortStart: 1024, PortEnd: 65535}}, "br0", "needs protocol tcp or udp"},
		{"masquerade in forward", netfilter.NetRule{Hook: netfilter.HookForwardOut, Family: v4, Verdict: netfilter.NetMasquerade}, "br0", "masquerade in hook"},
		{"accept in nat", netfilter.NetRule{Hook: netfilter.HookNAT, Family: v4, Verdict: netfilter.NetAccept}, "br0", "accept in hook nat"},
		{"dport without protocol", netfilter.NetRule{Hook: netfilter.HookInput, Family: v4, DstPort: 53, Verdict: netfilter.NetAccept}, "br0", "without protocol"},
		{"unknown protocol", netfilter.NetRule{Hook: netfilter.HookInput, Family: v4, Protocol: "sctp", Verdict: netfilter.NetAccept}, "br0", "unsupported protocol"},
		{"empty NAT range", netfilter.NetRule{Hook: netfilter.HookNAT, Family: v4, Verdict: netfilter.NetMasquerade,
			NAT: netfilter.NATRange{AddrStart: netip.MustParseAddr("10.0.0.9"), AddrEnd: netip.MustParseAddr("10.0.0.1")}}, "br0", "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nets := map[string]*netfilter.NetworkRules{"n1": {Network: "n1", Bridge: tc.br, Rules: []netfilter.NetRule{tc.rule}}}
			p, err := planNetworks(nets)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"n1"`) {
				t.Fatalf("got %v, %v; want an error naming n1 with %q", p, err, tc.want)
			}
		})
	}
}

// TestPlanNetworksChains: chain names are safe whatever the network's
// name, the jump is keyed on the bridge where every rule matches it,
// checksum-fill is skipped, and the signature follows the content.
func TestPlanNetworksChains(t *testing.T) {
	n := natNetwork("a name with spaces/and;semicolons", "virbr9", "10.9.0.0/24", "", netfilter.NATRange{})
	p, err := planNetworks(map[string]*netfilter.NetworkRules{n.Network: n})
	if err != nil {
		t.Fatal(err)
	}
	r := p.networks[0]
	want := map[netfilter.NetHook][3]string{ // chain name suffix, iif key, oif key
		netfilter.HookInput:        {"inp", "virbr9", ""},
		netfilter.HookOutput:       {"out", "", "virbr9"},
		netfilter.HookForwardCross: {"fwx", "virbr9", "virbr9"},
		netfilter.HookForwardIn:    {"fwi", "", "virbr9"},
		netfilter.HookForwardOut:   {"fwo", "virbr9", ""},
		netfilter.HookNAT:          {"nat", "", ""},
	}
	if len(r.chains) != len(want) {
		t.Errorf("%d chains, want %d (no mangle chain)", len(r.chains), len(want))
	}
	for h, w := range want {
		c := r.chains[h]
		if c == nil {
			t.Errorf("no %s chain", h)
			continue
		}
		if c.name != "n-"+shortHash(n.Network)+"-"+w[0] || c.iif != w[1] || c.oif != w[2] {
			t.Errorf("%s: chain %s iif %q oif %q, want suffix %s iif %q oif %q", h, c.name, c.iif, c.oif, w[0], w[1], w[2])
		}
	}
	n2 := *n
	n2.Rules = append([]netfilter.NetRule(nil), n.Rules...)
	n2.Rules[0].DstPort = 99
	p2, err := planNetworks(map[string]*netfilter.NetworkRules{n.Network: &n2})
	if err != nil {
		t.Fatal(err)
	}
	if p2.sig == p.sig {
		t.Error("signature unchanged after a rule changed")
	}
	p3, _ := planNetworks(map[string]*netfilter.NetworkRules{n.Network: natNetwork(n.Network, "virbr9", "10.9.0.0/24", "", netfilter.NATRange{})})
	if p3.sig != p.sig {
		t.Error("signature differs for equal content")
	}
}
