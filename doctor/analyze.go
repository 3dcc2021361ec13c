package doctor

import (
	"fmt"
	"slices"
	"strings"
)

// Network is what the analysis needs of one active network.
type Network struct {
	Name   string `json:"name"`
	Bridge string `json:"bridge"`
	// Mode is nat, route, open or isolated.
	Mode string `json:"mode"`
	// IPv4 and IPv6: the bridge has addresses of the family.
	IPv4 bool `json:"ipv4"`
	IPv6 bool `json:"ipv6"`
	// DHCPv4, DHCPv6 and DNS: dnsmasq serves them on the bridge.
	DHCPv4 bool `json:"dhcpv4"`
	DHCPv6 bool `json:"dhcpv6"`
	DNS    bool `json:"dns"`
}

// Severity of a finding.
type Severity string

// Severities: an error is traffic the table drops for certain, a
// warning traffic it may drop (a rule the analysis cannot evaluate
// decides), info something worth knowing that drops nothing certain.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// Finding is one problem of one network with one chain of another table.
type Finding struct {
	Severity Severity `json:"severity"`
	// Table is "family name" (e.g. "inet firewalld").
	Table string `json:"table"`
	Chain string `json:"chain"`
	// Owner is who most likely made the table: firewalld, docker, ufw,
	// iptables, nftables.service, or "" when unknown.
	Owner string `json:"owner,omitempty"`
	// What is the traffic: "DHCP to host", "DNS to host", "DHCP replies
	// from host", "DNS replies from host", "forwarded traffic out",
	// "forwarded traffic in", "forwarded traffic in (replies)", "traffic
	// between guests".
	What string `json:"what"`
	// Why says which policy or rule drops it, or why it may.
	Why string `json:"why"`
	// Fix is a concrete command or setting.
	Fix string `json:"fix"`
}

// NetworkReport is the findings of one network, worst first.
type NetworkReport struct {
	Name     string    `json:"name"`
	Bridge   string    `json:"bridge"`
	Mode     string    `json:"mode"`
	Findings []Finding `json:"findings"`
}

// Report is the doctor's answer: the JSON of the API's Doctor method.
type Report struct {
	Networks []NetworkReport `json:"networks"`
	// Tables lists the other tables inspected, with their owner when
	// recognised: "inet firewalld (firewalld)".
	Tables []string `json:"tables"`
	// Notes say what the doctor could not inspect.
	Notes []string `json:"notes,omitempty"`
}

// Errors counts the error findings.
func (r *Report) Errors() int { return r.count(SeverityError) }

// Warnings counts the warning findings.
func (r *Report) Warnings() int { return r.count(SeverityWarning) }

func (r *Report) count(s Severity) int {
	n := 0
	for _, nr := range r.Networks {
		for _, f := range nr.Findings {
			if f.Severity == s {
				n++
			}
		}
	}
	return n
}

// Own reports whether a table is netwarden's own (never analysed).
func Own(family, name string) bool {
	return strings.HasPrefix(name, "netwarden")
}

// Owner names who most likely made t: firewalld, docker, ufw,
// iptables (an iptables-nft or iptables-legacy table of no other known
// owner), nftables.service, or "".
func Owner(t *Table) string {
	if t.Name == "firewalld" {
		return "firewalld"
	}
	var docker, ufw bool
	for _, c := range t.Chains {
		docker = docker || strings.HasPrefix(c.Name, "DOCKER")
		ufw = ufw || strings.HasPrefix(c.Name, "ufw-") || strings.HasPrefix(c.Name, "ufw6-")
	}
	switch {
	case docker:
		return "docker"
	case ufw:
		return "ufw"
	case t.Legacy, (t.Family == "ip" || t.Family == "ip6") && t.Name == "filter":
		return "iptables"
	case t.Family == "inet" && t.Name == "filter":
		return "nftables.service"
	}
	return ""
}

// Analyze says, for each network, which base chain of the other tables
// drops or may drop its traffic.
func Analyze(rs Ruleset, nets []Network) Report {
	r := Report{Networks: []NetworkReport{}, Tables: []string{}, Notes: rs.Notes}
	for i := range rs.Tables {
		t := &rs.Tables[i]
		if !t.Legacy && Own(t.Family, t.Name) {
			continue
		}
		id := t.ID()
		if o := Owner(t); o != "" {
			id += " (" + o + ")"
		}
		r.Tables = append(r.Tables, id)
	}
	for _, n := range nets {
		nr := NetworkReport{Name: n.Name, Bridge: n.Bridge, Mode: n.Mode, Findings: []Finding{}}
		for _, cl := range classes(n) {
			for i := range rs.Tables {
				t := &rs.Tables[i]
				if !t.Legacy && Own(t.Family, t.Name) {
					continue
				}
				if !familyApplies(t.Family, cl.pkt.family) {
					continue
				}
				for j := range t.Chains {
					c := &t.Chains[j]
					if c.Hook != cl.pkt.hook || (c.Type != "" && c.Type != "filter") {
						continue
					}
					if f, ok := judge(t, c, n, cl); ok {
						nr.Findings = addFinding(nr.Findings, f)
					}
				}
			}
		}
		slices.SortStableFunc(nr.Findings, func(a, b Finding) int { return b.Severity.rank() - a.Severity.rank() })
		r.Networks = append(r.Networks, nr)
	}
	return r
}

// addFinding adds f unless the same table, chain and traffic is there
// already (the IPv4 and IPv6 verdicts of an inet table); the worse one
// stays.
func addFinding(fs []Finding, f Finding) []Finding {
	for i := range fs {
		if fs[i].Table == f.Table && fs[i].Chain == f.Chain && fs[i].What == f.What {
			if f.Severity.rank() > fs[i].Severity.rank() {
				fs[i] = f
			}
			return fs
		}
	}
	return append(fs, f)
}

// familyApplies reports whether a table of family tf sees packets of
// pf (ipv4, ipv6 or bridge).
func familyApplies(tf, pf string) bool {
	switch tf {
	case "ip":
		return pf == "ipv4"
	case "ip6":
		return pf == "ipv6"
	case "inet":
		return pf == "ipv4" || pf == "ipv6"
	case "bridge":
		return pf == "bridge"
	}
	return false
}

// packet is the traffic of one class, as far as it is known. An
// interface name "" is unknown; notIf is a name the unknown outgoing or
// incoming interface is known not to have (the bridge itself).
type packet struct {
	family           string // ipv4, ipv6, bridge
	hook             string
	iif, oif         string
	notIIF, notOIF   string
	ibr, obr         string
	l4, dport, sport uint16
	ct               uint32
}

// class is one kind of traffic of a network.
type class struct {
	what string
	pkt  packet
	// match is the nft match that accepts it (before "accept"), ipt the
	// iptables one (before "-j ACCEPT").
	match, ipt string
}

const (
	protoTCP = 6
	protoUDP = 17
)

// classes returns the traffic of network n that other tables could drop.
func classes(n Network) []class {
	br := n.Bridge
	q := fmt.Sprintf("%q", br)
	var out []class
	type fam struct {
		name       string
		on, dhcp   bool
		dhcpPort   uint16
		dhcpClient uint16
		label      string
	}
	fams := []fam{
		{"ipv4", n.IPv4, n.DHCPv4, 67, 68, "DHCP"},
		{"ipv6", n.IPv6, n.DHCPv6, 547, 546, "DHCPv6"},
	}
	for _, f := range fams {
		if !f.on {
			continue
		}
		if f.dhcp {
			out = append(out,
				class{what: f.label + " to host", pkt: packet{family: f.name, hook: HookInput, iif: br, l4: protoUDP, dport: f.dhcpPort, ct: CtNew},
					match: fmt.Sprintf("iifname %s udp dport %d", q, f.dhcpPort), ipt: fmt.Sprintf("-i %s -p udp --dport %d", br, f.dhcpPort)},
				class{what: f.label + " replies from host", pkt: packet{family: f.name, hook: HookOutput, oif: br, l4: protoUDP, sport: f.dhcpPort, dport: f.dhcpClient, ct: CtNew},
					match: fmt.Sprintf("oifname %s udp sport %d", q, f.dhcpPort), ipt: fmt.Sprintf("-o %s -p udp --sport %d", br, f.dhcpPort)})
		}
		if n.DNS {
			out = append(out,
				class{what: "DNS to host", pkt: packet{family: f.name, hook: HookInput, iif: br, l4: protoUDP, dport: 53, ct: CtNew},
					match: fmt.Sprintf("iifname %s meta l4proto { tcp, udp } th dport 53", q), ipt: fmt.Sprintf("-i %s -p udp --dport 53", br)},
				class{what: "DNS replies from host", pkt: packet{family: f.name, hook: HookOutput, oif: br, l4: protoUDP, sport: 53, ct: CtEstablished},
					match: fmt.Sprintf("oifname %s ct state established,related", q), ipt: fmt.Sprintf("-o %s -m conntrack --ctstate RELATED,ESTABLISHED", br)})
		}
		forwards := n.Mode == "route" || n.Mode == "open" || (n.Mode == "nat" && f.name == "ipv4")
		if !forwards {
			continue
		}
		out = append(out, class{what: "forwarded traffic out", pkt: packet{family: f.name, hook: HookForward, iif: br, notOIF: br, ct: CtNew},
			match: fmt.Sprintf("iifname %s", q), ipt: fmt.Sprintf("-i %s", br)})
		if n.Mode == "nat" {
			out = append(out, class{what: "forwarded traffic in (replies)", pkt: packet{family: f.name, hook: HookForward, oif: br, notIIF: br, ct: CtEstablished},
				match: fmt.Sprintf("oifname %s ct state established,related", q), ipt: fmt.Sprintf("-o %s -m conntrack --ctstate RELATED,ESTABLISHED", br)})
		} else {
			out = append(out, class{what: "forwarded traffic in", pkt: packet{family: f.name, hook: HookForward, oif: br, notIIF: br, ct: CtNew},
				match: fmt.Sprintf("oifname %s", q), ipt: fmt.Sprintf("-o %s", br)})
		}
	}
	// Bridge-family tables see the frames of the bridge's ports.
	if n.DHCPv4 || n.DHCPv6 || n.DNS {
		what, port := "DNS to host", uint16(53)
		if n.DHCPv4 {
			what, port = "DHCP to host", 67
		} else if n.DHCPv6 {
			what, port = "DHCPv6 to host", 547
		}
		out = append(out, class{what: what, pkt: packet{family: "bridge", hook: HookInput, ibr: br, l4: protoUDP, dport: port, ct: CtNew},
			match: fmt.Sprintf("meta ibrname %s", q)})
	}
	out = append(out, class{what: "traffic between guests", pkt: packet{family: "bridge", hook: HookForward, ibr: br, obr: br, ct: CtNew},
		match: fmt.Sprintf("meta ibrname %s", q)})
	return out
}

// tri is a three-valued truth.
type tri int

const (
	no tri = iota
	yes
	maybe
)

func (t tri) not() tri {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return maybe
}

// matchName tells whether an interface-name condition matches: known is
// the packet's name ("" unknown), not a name it certainly lacks.
func matchName(c Cond, known, not string) tri {
	m := func(name string) bool {
		if c.Prefix {
			return strings.HasPrefix(name, c.Name)
		}
		return name == c.Name
	}
	var r tri
	switch {
	case known != "":
		r = no
		if m(known) {
			r = yes
		}
	case not != "" && !c.Prefix && c.Name == not:
		r = no
	default:
		return maybe
	}
	if c.Neg {
		return r.not()
	}
	return r
}

func matchNum(c Cond, v uint16) tri {
	if v == 0 {
		return maybe
	}
	r := no
	if c.Num == v {
		r = yes
	}
	if c.Neg {
		return r.not()
	}
	return r
}

// matchCond evaluates one condition on p.
func matchCond(c Cond, p packet) tri {
	switch c.Key {
	case CondIIFName:
		if p.family == "bridge" {
			// The port's name is not known, only its bridge.
			return maybe
		}
		return matchName(c, p.iif, p.notIIF)
	case CondOIFName:
		if p.family == "bridge" {
			return maybe
		}
		return matchName(c, p.oif, p.notOIF)
	case CondIBrName:
		if p.family != "bridge" {
			return maybe
		}
		return matchName(c, p.ibr, "")
	case CondOBrName:
		if p.family != "bridge" {
			return maybe
		}
		return matchName(c, p.obr, "")
	case CondNFProto:
		if p.family == "bridge" {
			return maybe
		}
		r := no
		if c.Name == p.family {
			r = yes
		}
		if c.Neg {
			return r.not()
		}
		return r
	case CondL4Proto:
		return matchNum(c, p.l4)
	case CondDPort:
		if p.l4 == 0 {
			return maybe
		}
		return matchNum(c, p.dport)
	case CondSPort:
		if p.l4 == 0 {
			return maybe
		}
		return matchNum(c, p.sport)
	case CondCtState:
		r := no
		if c.Mask&p.ct != 0 {
			r = yes
		}
		if c.Neg {
			return r.not()
		}
		return r
	}
	return maybe
}

func matchRule(r *Rule, p packet) tri {
	res := yes
	for _, c := range r.Conds {
		switch matchCond(c, p) {
		case no:
			return no
		case maybe:
			res = maybe
		}
	}
	return res
}

// outcome is the result of a walk through a chain.
type outcome struct {
	// v is accept, drop, or "" (fell through or returned).
	v Verdict
	// by is the rule that decided, "chain: rule".
	by string
	// mayAccept and mayDrop are rules that may have decided otherwise
	// before: their conditions could not be evaluated.
	mayAccept, mayDrop []string
}

const maxDepth = 16

func walk(t *Table, c *Chain, p packet, depth int) outcome {
	var o outcome
	if depth > maxDepth {
		o.mayAccept = append(o.mayAccept, c.Name+": chains nested too deep to follow")
		o.mayDrop = append(o.mayDrop, c.Name+": chains nested too deep to follow")
		return o
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		m := matchRule(r, p)
		if m == no {
			continue
		}
		desc := fmt.Sprintf("chain %s: %s", c.Name, r)
		switch r.Verdict {
		case VerdictNone:
		case VerdictAccept:
			if m == yes {
				o.v, o.by = VerdictAccept, desc
				return o
			}
			o.mayAccept = append(o.mayAccept, desc)
		case VerdictDrop, VerdictReject:
			if m == yes {
				o.v, o.by = VerdictDrop, desc
				return o
			}
			o.mayDrop = append(o.mayDrop, desc)
		case VerdictReturn:
			if m == yes {
				return o
			}
			o.mayAccept = append(o.mayAccept, desc)
			o.mayDrop = append(o.mayDrop, desc)
		case VerdictJump, VerdictGoto:
			sub := t.chain(r.Target)
			if sub == nil || sub.Hook != "" {
				o.mayAccept = append(o.mayAccept, desc+" (chain not found)")
				o.mayDrop = append(o.mayDrop, desc+" (chain not found)")
				continue
			}
			so := walk(t, sub, p, depth+1)
			o.mayAccept = append(o.mayAccept, so.mayAccept...)
			o.mayDrop = append(o.mayDrop, so.mayDrop...)
			if m == yes {
				if so.v != "" {
					o.v, o.by = so.v, so.by
					return o
				}
				if r.Verdict == VerdictGoto {
					return o
				}
				continue
			}
			switch so.v {
			case VerdictAccept:
				o.mayAccept = append(o.mayAccept, so.by)
			case VerdictDrop:
				o.mayDrop = append(o.mayDrop, so.by)
			}
		default:
			o.mayAccept = append(o.mayAccept, desc)
			o.mayDrop = append(o.mayDrop, desc)
		}
	}
	return o
}

// judge evaluates base chain c for traffic cl of network n.
func judge(t *Table, c *Chain, n Network, cl class) (Finding, bool) {
	o := walk(t, c, cl.pkt, 0)
	if o.v == "" {
		o.v = VerdictAccept
		if c.Policy == "drop" {
			o.v = VerdictDrop
			o.by = "policy drop"
			if len(c.Rules) > 0 {
				o.by = "policy drop, and no rule accepts it"
			}
		}
	}
	f := Finding{Table: t.ID(), Chain: c.Name, Owner: Owner(t), What: cl.what}
	hint := fmt.Sprintf(" (%s hook", c.Hook)
	if !t.Legacy {
		hint += fmt.Sprintf(", priority %d", c.Priority)
	}
	hint += ")"
	switch {
	case o.v == VerdictDrop && len(o.mayAccept) == 0:
		f.Severity = SeverityError
		f.Why = fmt.Sprintf("drops it%s: %s", hint, o.by)
	case o.v == VerdictDrop:
		f.Severity = SeverityWarning
		f.Why = fmt.Sprintf("may drop it%s: %s; it may be accepted before by %s, which netwarden cannot evaluate",
			hint, o.by, strings.Join(limit(o.mayAccept), "; "))
	case len(o.mayDrop) > 0:
		f.Severity = SeverityInfo
		f.Why = fmt.Sprintf("accepts it%s, but some of it may be dropped by %s, which netwarden cannot evaluate",
			hint, strings.Join(limit(o.mayDrop), "; "))
	default:
		return Finding{}, false
	}
	f.Fix = fix(t, c, n, cl, f.Owner)
	return f, true
}

// limit keeps the first three of a list of rules.
func limit(s []string) []string {
	s = slices.Compact(s)
	if len(s) > 3 {
		return append(slices.Clone(s[:3]), fmt.Sprintf("%d more", len(s)-3))
	}
	return s
}

// fix says what to do about traffic cl dropped by chain c of table t.
func fix(t *Table, c *Chain, n Network, cl class, owner string) string {
	br := n.Bridge
	forward := cl.pkt.hook == HookForward
	out := cl.pkt.hook == HookOutput
	nftRule := fmt.Sprintf("nft insert rule %s %s %s %s accept", t.Family, t.Name, c.Name, cl.match)
	iptables := "iptables"
	if t.Family == "ip6" {
		iptables = "ip6tables"
	}
	iptRule := fmt.Sprintf("%s -I %s %s -j ACCEPT", iptables, c.Name, cl.ipt)
	if t.Legacy {
		iptRule = fmt.Sprintf("%s-legacy -I %s %s -j ACCEPT", iptables, c.Name, cl.ipt)
	}
	switch owner {
	case "firewalld":
		zone := "libvirt"
		if n.Mode == "route" || n.Mode == "open" {
			zone = "libvirt-routed"
		}
		s := fmt.Sprintf("put bridge %s in firewalld zone %s: firewall-cmd --zone=%s --change-interface=%s (netwardend does this at network start when the zone exists; check with firewall-cmd --get-zone-of-interface=%s)",
			br, zone, zone, br, br)
		if forward {
			s += "; forwarding needs firewalld ≥ 0.9 with the libvirt policies (libvirt-to-host, libvirt-routed-in/out) installed"
		}
		return s
	case "docker":
		if forward {
			return fmt.Sprintf("docker sets the FORWARD policy to DROP: allow the bridge in DOCKER-USER (%s; make it persistent with a unit ordered after docker.service), or with Docker ≥ 28 set \"ip-forward-no-drop\": true in /etc/docker/daemon.json",
				strings.Replace(iptRule, "-I "+c.Name, "-I DOCKER-USER", 1))
		}
		return iptRule
	case "ufw":
		switch {
		case forward && strings.HasPrefix(cl.what, "forwarded traffic out"):
			return fmt.Sprintf("ufw route allow in on %s (or DEFAULT_FORWARD_POLICY=\"ACCEPT\" in /etc/default/ufw, then ufw reload)", br)
		case forward:
			return fmt.Sprintf("ufw route allow out on %s (or DEFAULT_FORWARD_POLICY=\"ACCEPT\" in /etc/default/ufw, then ufw reload)", br)
		case out:
			return fmt.Sprintf("ufw allow out on %s", br)
		case cl.pkt.dport == 53:
			return fmt.Sprintf("ufw allow in on %s to any port 53", br)
		}
		return fmt.Sprintf("ufw allow in on %s to any port %d proto udp", br, cl.pkt.dport)
	case "iptables":
		return iptRule + " (and save it where the host's iptables rules are kept, e.g. /etc/sysconfig/iptables or /etc/iptables/rules.v4)"
	case "nftables.service":
		return fmt.Sprintf("add `%s accept` to chain %s of table %s %s in /etc/nftables.conf (now: %s)", cl.match, c.Name, t.Family, t.Name, nftRule)
	}
	if t.Legacy {
		return iptRule
	}
	return fmt.Sprintf("%s — or, if the table is stale, nft delete table %s %s", nftRule, t.Family, t.Name)
}
