package xtables

import (
	"fmt"
	"sort"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// tool is one of the three programs whose rules the backend writes.
type tool uint8

const (
	toolEB tool = iota
	toolIP4
	toolIP6
	numTools
)

var toolNames = [numTools]string{"ebtables", "iptables", "ip6tables"}

func (t tool) String() string { return toolNames[t] }

// tables are the tables the backend writes, per tool.
var tables = [numTools][]string{{"nat"}, {"filter", "nat", "mangle"}, {"filter", "nat", "mangle"}}

// chainSpec is one chain of ours: its rules (arguments after "-A NAME")
// in order. A dispatch chain is a set of rules whose order does not
// matter (each matches one port): Apply changes it rule by rule rather
// than rewriting it.
type chainSpec struct {
	rules    []string
	dispatch bool
}

func (c *chainSpec) equal(o *chainSpec) bool {
	if c == nil || o == nil || len(c.rules) != len(o.rules) {
		return false
	}
	for i := range c.rules {
		if c.rules[i] != o.rules[i] {
			return false
		}
	}
	return true
}

// hook is a jump from a built-in chain to one of ours, inserted first.
type hook struct{ builtin, chain string }

// tableRules is what the backend wants in one table of one tool.
type tableRules struct {
	chains map[string]*chainSpec
	hooks  []hook
}

// ruleset is everything the backend wants in the kernel.
type ruleset [numTools]map[string]*tableRules

func newRuleset() *ruleset {
	var rs ruleset
	for t := tool(0); t < numTools; t++ {
		rs[t] = map[string]*tableRules{}
		for _, tb := range tables[t] {
			rs[t][tb] = &tableRules{chains: map[string]*chainSpec{}}
		}
	}
	return &rs
}

func (rs *ruleset) chain(t tool, table, name string) *chainSpec {
	c := rs[t][table].chains[name]
	if c == nil {
		c = &chainSpec{}
		rs[t][table].chains[name] = c
	}
	return c
}

// Fixed chains. ebtables (table nat): NW-PRE from PREROUTING (frames
// from guests, by input port), NW-POST from POSTROUTING (frames to
// guests, by output port). iptables and ip6tables (table filter):
// NW-INPUT, NW-FORWARD, NW-OUTPUT from the built-in chains; NW-FROM
// (libvirt-in), NW-TO (libvirt-out), NW-HOST (libvirt-host-in) dispatch
// by physdev to the ports' FJ/FP/HJ chains; NW-NET-INP, -OUT, -FWX, -FWI,
// -FWO hold the networks' rules (libvirt's LIBVIRT_INP …); tables nat and
// mangle: NW-POSTROUTING from POSTROUTING (LIBVIRT_PRT).
const (
	ebPre  = "NW-PRE"
	ebPost = "NW-POST"

	ipInput   = "NW-INPUT"
	ipForward = "NW-FORWARD"
	ipOutput  = "NW-OUTPUT"
	ipFrom    = "NW-FROM"
	ipTo      = "NW-TO"
	ipHost    = "NW-HOST"
	ipPost    = "NW-POSTROUTING"
)

var netChains = map[netfilter.NetHook]string{
	netfilter.HookInput:        "NW-NET-INP",
	netfilter.HookOutput:       "NW-NET-OUT",
	netfilter.HookForwardCross: "NW-NET-FWX",
	netfilter.HookForwardIn:    "NW-NET-FWI",
	netfilter.HookForwardOut:   "NW-NET-FWO",
	netfilter.HookNAT:          ipPost,
	netfilter.HookMangle:       ipPost,
}

// skeleton adds the fixed chains and hooks.
func (rs *ruleset) skeleton() {
	rs.chain(toolEB, "nat", ebPre).dispatch = true
	rs.chain(toolEB, "nat", ebPost).dispatch = true
	rs[toolEB]["nat"].hooks = []hook{{"PREROUTING", ebPre}, {"POSTROUTING", ebPost}}
	for _, t := range []tool{toolIP4, toolIP6} {
		f := rs[t]["filter"]
		f.hooks = []hook{{"INPUT", ipInput}, {"FORWARD", ipForward}, {"OUTPUT", ipOutput}}
		for _, d := range []string{ipFrom, ipTo, ipHost} {
			rs.chain(t, "filter", d).dispatch = true
		}
		for _, h := range []netfilter.NetHook{netfilter.HookInput, netfilter.HookOutput, netfilter.HookForwardCross, netfilter.HookForwardIn, netfilter.HookForwardOut} {
			rs.chain(t, "filter", netChains[h])
		}
		rs.chain(t, "filter", ipInput).rules = []string{"-j " + ipHost, "-j NW-NET-INP"}
		rs.chain(t, "filter", ipForward).rules = []string{"-j " + ipFrom, "-j " + ipTo, "-j NW-NET-FWX", "-j NW-NET-FWI", "-j NW-NET-FWO"}
		rs.chain(t, "filter", ipOutput).rules = []string{"-j NW-NET-OUT"}
		for _, tb := range []string{"nat", "mangle"} {
			rs.chain(t, tb, ipPost)
			rs[t][tb].hooks = []hook{{"POSTROUTING", ipPost}}
		}
	}
}

// portChainName is the name of a port's chain: a prefix (NI, NO for
// ebtables from/to the guest; FJ, FP, HJ for iptables), the port's
// generation (0 or 1, flipped whenever its rules change, so that new
// chains are built beside the old ones and the jump swapped), for an
// Ethernet sub-chain a dot and its index, a dash, the port:
//
//	NI0-vnet0  NI0.2-vnet0  NO1-vnet0  FJ0-vnet0
//
// The prefix has no dash, so the port is everything after the first.
// At most 3+4+1+15 = 23 characters: within ebtables' 31 and iptables' 28.
func portChainName(prefix string, gen byte, sub int, port string) string {
	if sub > 0 {
		return fmt.Sprintf("%s%c.%d-%s", prefix, gen, sub, port)
	}
	return fmt.Sprintf("%s%c-%s", prefix, gen, port)
}

// isOurs tells the chains of the backend from others' by name.
func isOurs(name string) bool {
	if strings.HasPrefix(name, "NW-") {
		return true
	}
	pre, _, ok := strings.Cut(name, "-")
	if !ok || len(pre) < 3 {
		return false
	}
	switch pre[:2] {
	case "NI", "NO", "FJ", "FP", "HJ":
	default:
		return false
	}
	if pre[2] != '0' && pre[2] != '1' {
		return false
	}
	rest := pre[3:]
	if rest == "" {
		return true
	}
	if rest[0] != '.' || len(rest) == 1 {
		return false
	}
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// portRender is one port's rendering: its chains per tool and table and
// its dispatch rules (chain → rule).
type portRender struct {
	chains   [numTools]map[string]*chainSpec // table of every port chain: eb nat, ip filter
	dispatch [numTools][][2]string
}

// renderPort renders a port in generation gen. Drop-all ports have no
// chains: their dispatch rules drop.
func renderPort(ps *netfilter.PortState, gen byte) (*portRender, error) {
	pr := &portRender{}
	for t := range pr.chains {
		pr.chains[t] = map[string]*chainSpec{}
	}
	port := ps.Port
	if ps.Mode == netfilter.DropAll {
		pr.dropAll(port)
		return pr, nil
	}
	rules := ps.Rules
	if rules == nil {
		return pr, nil
	}
	if len(rules.Chains) > 0 {
		if err := pr.ethernet(rules, port, gen); err != nil {
			return nil, err
		}
	}
	if len(rules.IPv4)+len(rules.IPv6) > 0 {
		plan, err := planIP(rules)
		if err != nil {
			return nil, err
		}
		for fam, t := range []tool{toolIP4, toolIP6} {
			if plan.empty(fam == 1) {
				continue
			}
			cs := plan.v4
			if fam == 1 {
				cs = plan.v6
			}
			for c := chainFJ; c < numIPChains; c++ {
				name := portChainName(ipChainPrefix[c], gen, 0, port)
				pr.chains[t][name] = &chainSpec{rules: cs[c]}
			}
			pr.dispatch[t] = append(pr.dispatch[t],
				[2]string{ipFrom, "-m physdev --physdev-in " + port + " -g " + portChainName("FJ", gen, 0, port)},
				[2]string{ipTo, "-m physdev --physdev-is-bridged --physdev-out " + port + " -g " + portChainName("FP", gen, 0, port)},
				[2]string{ipHost, "-m physdev --physdev-in " + port + " -g " + portChainName("HJ", gen, 0, port)})
		}
	}
	return pr, nil
}

func (pr *portRender) dropAll(port string) {
	pr.dispatch[toolEB] = [][2]string{{ebPre, "-i " + port + " -j DROP"}, {ebPost, "-o " + port + " -j DROP"}}
}

// ethernet renders the Ethernet-layer chains: per direction a root
// chain and one chain per sub-chain, as libvirt's libvirt-I-/libvirt-O-
// chains and their I-/O- sub-chains.
func (pr *portRender) ethernet(rules *netfilter.PortRules, port string, gen byte) error {
	index := map[string]int{}
	for i, c := range rules.Chains {
		index[c.Name] = i
	}
	for _, d := range []struct {
		dir    netfilter.Direction
		prefix string
		disp   string
		iface  string
	}{{netfilter.DirOut, "NI", ebPre, "-i"}, {netfilter.DirIn, "NO", ebPost, "-o"}} {
		// A sub-chain without rules in this direction is left out with
		// the jumps to it: it would return at once.
		used := map[int]bool{0: true}
		for i, c := range rules.Chains {
			for j := range c.Rules {
				if c.Rules[j].Direction.Has(d.dir) && c.Rules[j].Action != netfilter.Jump {
					used[i] = true
				}
			}
		}
		for i, c := range rules.Chains {
			if !used[i] {
				continue
			}
			spec := &chainSpec{rules: []string{}}
			for j := range c.Rules {
				r := &c.Rules[j]
				if !r.Direction.Has(d.dir) {
					continue
				}
				var args []string
				if r.Action == netfilter.Jump {
					k, ok := index[r.Target]
					if !ok {
						return fmt.Errorf("jump to unknown chain %q", r.Target)
					}
					if !used[k] {
						continue
					}
					proto, fields := netfilter.JumpMatch(r.Target)
					jm := netfilter.Rule{Protocol: proto, Fields: fields}
					m, err := ebArgs(&jm, false)
					if err != nil {
						return err
					}
					args = append(m, "-j", portChainName(d.prefix, gen, k, port))
				} else {
					swap := r.Direction == netfilter.DirInOut && d.dir == netfilter.DirOut
					m, err := ebArgs(r, swap)
					if err != nil {
						return fmt.Errorf("%s rule %d (%s%s): %w", r.Origin.Filter, r.Origin.Rule, r.Action, r.MatchString(), err)
					}
					v, err := ebVerdict(r)
					if err != nil {
						return err
					}
					args = append(m, "-j", v)
				}
				spec.rules = append(spec.rules, joinArgs(args))
			}
			pr.chains[toolEB][portChainName(d.prefix, gen, i, port)] = spec
		}
		pr.dispatch[toolEB] = append(pr.dispatch[toolEB], [2]string{d.disp, d.iface + " " + port + " -j " + portChainName(d.prefix, gen, 0, port)})
	}
	return nil
}

// add puts the port's rendering into rs.
func (rs *ruleset) addPort(pr *portRender) {
	for t := tool(0); t < numTools; t++ {
		table := "filter"
		if t == toolEB {
			table = "nat"
		}
		for name, c := range pr.chains[t] {
			rs[t][table].chains[name] = c
		}
		for _, d := range pr.dispatch[t] {
			c := rs.chain(t, table, d[0])
			c.rules = append(c.rules, d[1])
		}
	}
}

// addNetworks renders the networks' rules, networks in name order.
func (rs *ruleset) addNetworks(nets map[string]*netfilter.NetworkRules) error {
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for i := range nets[n].Rules {
			r := &nets[n].Rules[i]
			t := toolIP4
			if r.Family == netfilter.IPv6 {
				t = toolIP6
			} else if r.Family != netfilter.IPv4 {
				return fmt.Errorf("network %s: rule %q: family %s", n, r.String(), r.Family)
			}
			table := "filter"
			switch r.Hook {
			case netfilter.HookNAT:
				table = "nat"
			case netfilter.HookMangle:
				table = "mangle"
			}
			chain, ok := netChains[r.Hook]
			if !ok {
				return fmt.Errorf("network %s: rule %q: hook %s", n, r.String(), r.Hook)
			}
			args, err := netArgs(r)
			if err != nil {
				return fmt.Errorf("network %s: rule %q: %w", n, r.String(), err)
			}
			c := rs.chain(t, table, chain)
			c.rules = append(c.rules, args)
		}
	}
	return nil
}

// netArgs renders a network rule as libvirt's network driver does.
func netArgs(r *netfilter.NetRule) (string, error) {
	var a []string
	if r.Src.IsValid() {
		a = append(a, "-s", r.Src.String())
	}
	if r.Dst.IsValid() {
		if r.NotDst {
			a = append(a, "!")
		}
		a = append(a, "-d", r.Dst.String())
	}
	if r.InIface != "" {
		a = append(a, "-i", r.InIface)
	}
	if r.OutIface != "" {
		a = append(a, "-o", r.OutIface)
	}
	if r.Protocol != "" {
		a = append(a, "-p", r.Protocol)
		if r.DstPort != 0 {
			a = append(a, "-m", r.Protocol, "--dport", fmt.Sprint(r.DstPort))
		}
	} else if r.DstPort != 0 {
		return "", fmt.Errorf("a port without a protocol")
	}
	if r.Related {
		a = append(a, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED")
	}
	switch r.Verdict {
	case netfilter.NetAccept:
		a = append(a, "-j", "ACCEPT")
	case netfilter.NetReject:
		a = append(a, "-j", "REJECT")
	case netfilter.NetReturn:
		a = append(a, "-j", "RETURN")
	case netfilter.NetChecksumFill:
		a = append(a, "-j", "CHECKSUM", "--checksum-fill")
	case netfilter.NetMasquerade:
		n := r.NAT
		ports := ""
		if n.PortStart != 0 {
			if r.Protocol != "tcp" && r.Protocol != "udp" {
				return "", fmt.Errorf("NAT ports need protocol tcp or udp")
			}
			ports = fmt.Sprintf("%d-%d", n.PortStart, n.PortEnd)
		}
		if n.AddrStart.IsValid() {
			to := n.AddrStart.String()
			if n.AddrEnd.IsValid() && n.AddrEnd != n.AddrStart {
				to += "-" + n.AddrEnd.String()
			}
			if ports != "" {
				to += ":" + ports
			}
			a = append(a, "-j", "SNAT", "--to-source", to)
		} else {
			a = append(a, "-j", "MASQUERADE")
			if ports != "" {
				a = append(a, "--to-ports", ports)
			}
		}
	default:
		return "", fmt.Errorf("verdict %s", r.Verdict)
	}
	return joinArgs(a), nil
}

// restoreInput renders the restore file for one tool that makes the
// kernel go from cur (nil: unknown; existing lists the chains of ours
// the kernel has, hookCount the jumps from built-in chains) to want.
// It returns "" when nothing changes.
//
// Each table's part is one transaction (nf_tables) or one table
// replacement (legacy), so its order is free; deletions come first
// because iptables-nft and ebtables-nft take time proportional to the
// batch so far for each flush (14000 flushes after 40000 additions took
// 25 s, before them 0.1 s).
func restoreInput(t tool, cur, want map[string]*tableRules, existing map[string]map[string]bool, hookCount map[string]map[hook]int) string {
	var b strings.Builder
	for _, table := range tables[t] {
		w := want[table]
		var c *tableRules
		if cur != nil {
			c = cur[table]
		}
		var del, decl, add strings.Builder
		// Only the chains that differ from cur are listed and sorted: an
		// unchanged port keeps its chainSpec values, so most compare by
		// pointer.
		var names, gone []string
		for n, spec := range w.chains {
			if c != nil {
				if old := c.chains[n]; old == spec || old.equal(spec) {
					continue
				}
			}
			names = append(names, n)
		}
		sort.Strings(names)
		if c != nil {
			for n := range c.chains {
				if w.chains[n] == nil {
					gone = append(gone, n)
				}
			}
			sort.Strings(gone)
		} else {
			for _, n := range sortedKeys(existing[table]) {
				if w.chains[n] == nil {
					gone = append(gone, n)
				}
			}
			for _, h := range w.hooks {
				for i := 0; i < hookCount[table][h]; i++ {
					fmt.Fprintf(&del, "-D %s -j %s\n", h.builtin, h.chain)
				}
			}
		}
		var flush []string
		for _, n := range names {
			spec := w.chains[n]
			var old *chainSpec
			if c != nil {
				old = c.chains[n]
			}
			exists := old != nil || c == nil && existing[table][n]
			if old != nil && spec.dispatch && old.dispatch {
				// Rule by rule: delete the rules that go, append the new.
				had := map[string]bool{}
				for _, r := range old.rules {
					had[r] = true
				}
				keep := map[string]bool{}
				for _, r := range spec.rules {
					keep[r] = true
				}
				for _, r := range old.rules {
					if !keep[r] {
						fmt.Fprintf(&del, "-D %s %s\n", n, r)
					}
				}
				for _, r := range spec.rules {
					if !had[r] {
						fmt.Fprintf(&add, "-A %s %s\n", n, r)
					}
				}
				continue
			}
			if exists {
				flush = append(flush, n)
			} else if t == toolEB {
				fmt.Fprintf(&decl, ":%s RETURN\n", n)
			} else {
				fmt.Fprintf(&decl, ":%s - [0:0]\n", n)
			}
			for _, r := range spec.rules {
				fmt.Fprintf(&add, "-A %s %s\n", n, r)
			}
		}
		for _, n := range append(flush, gone...) {
			fmt.Fprintf(&del, "-F %s\n", n)
		}
		for _, n := range gone {
			fmt.Fprintf(&del, "-X %s\n", n)
		}
		if c == nil {
			for _, h := range w.hooks {
				fmt.Fprintf(&add, "-I %s 1 -j %s\n", h.builtin, h.chain)
			}
		}
		if del.Len()+decl.Len()+add.Len() == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n%s%s%s", table, del.String(), decl.String(), add.String())
		if t != toolEB {
			b.WriteString("COMMIT\n")
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
