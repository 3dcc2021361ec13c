// Package netfilter is netwarden's backend-neutral rule model and the
// narrow interface its kernel backends implement.
//
// The policy layer (nwfilter instantiation) and the network layer produce
// values of this package; only the backends below it (netfilter/nftables,
// netfilter/xtables) know kernel syntax. A port's filter is a PortRules:
//
//	pr := &netfilter.PortRules{Port: "vnet0", Chains: []*netfilter.Chain{root, ipv4}}
//	fmt.Print(pr) // a stable, readable listing, used by golden files
//
// The model speaks libvirt's nwfilter vocabulary (protocol element and
// attribute names, canonical values as libvirt formats them), because
// that is what users write and what both backends must enforce with the
// same meaning. It holds no kernel names and does no I/O.
package netfilter

import (
	"fmt"
	"strings"
)

// Direction says which way traffic flows relative to the guest.
type Direction uint8

// Directions. They combine as bits: DirInOut is DirIn|DirOut.
const (
	// DirIn is traffic to the guest (leaving the bridge through its port).
	DirIn Direction = 1 << iota
	// DirOut is traffic from the guest (entering the bridge from its port).
	DirOut
	// DirInOut is both.
	DirInOut = DirIn | DirOut
)

// String returns libvirt's word for d: in, out or inout.
func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	case DirInOut:
		return "inout"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Has reports whether d includes all of other.
func (d Direction) Has(other Direction) bool { return d&other == other }

// Action is what a rule does with a matching packet.
type Action uint8

// Actions, with libvirt's meaning.
const (
	// Accept ends evaluation of the port's filter at this layer: the
	// packet passes it.
	Accept Action = iota + 1
	// Drop discards the packet silently.
	Drop
	// Reject discards the packet and answers with an error (ICMP or
	// TCP reset) where the layer allows it.
	Reject
	// Return leaves the current chain and resumes evaluation in the
	// chain that jumped to it (in the root chain it acts as Accept).
	Return
	// Continue does nothing and evaluation goes on with the next rule.
	Continue
	// Jump evaluates the sub-chain named by Rule.Target; the network
	// layer never produces it, the instantiation adds one per
	// sub-chain into the root chain.
	Jump
)

var actionNames = [...]string{Accept: "accept", Drop: "drop", Reject: "reject", Return: "return", Continue: "continue", Jump: "jump"}

// String returns libvirt's word for a.
func (a Action) String() string {
	if int(a) < len(actionNames) && actionNames[a] != "" {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Field is one match of a rule: a libvirt attribute and its canonical
// value (already type-checked; variables already substituted).
type Field struct {
	// Attr is the attribute name as in nwfilter XML, e.g. "srcipaddr".
	Attr string
	// Value is the canonical text of the value as libvirt formats it,
	// e.g. "10.0.0.1", "24", "01:02:03:04:05:06", "0x800".
	Value string
	// Var is the variable access the value came from ("IP", "A[@1]",
	// "B[2]"), empty for a literal. Rules of one origin differ only in
	// such fields, which is what a backend may share between ports.
	Var string
}

// Origin names the filter rule an instantiated rule came from. Rules with
// the same origin differ only in the values of their variables, which is
// what lets a backend share one kernel rule between ports.
type Origin struct {
	// Filter is the filter's name.
	Filter string
	// Rule is the 1-based index of the rule among the filter's <rule>
	// elements.
	Rule int
}

// Binding is the value one variable took in an instantiated rule.
type Binding struct {
	Name  string
	Value string
}

// Rule is one instantiated filtering rule.
type Rule struct {
	// Direction is which way the rule applies.
	Direction Direction
	// Action is the verdict for a matching packet.
	Action Action
	// Target is the sub-chain a Jump goes to.
	Target string
	// Priority is the rule's priority (or, for a jump, the sub-chain's
	// priority); lower runs first.
	Priority int
	// StateMatch is false when the rule opted out of connection
	// tracking (statematch='false'); meaningful for IP-layer rules.
	StateMatch bool
	// Protocol is the nwfilter protocol element (mac, arp, ip, tcp,
	// tcp-ipv6, …); empty for a rule that matches every packet.
	Protocol string
	// Negate inverts the protocol element's match (match='no').
	Negate bool
	// Fields are the element's attributes, in canonical order.
	Fields []Field
	// Comment is the element's comment attribute.
	Comment string
	// Origin is where the rule came from; zero for jumps.
	Origin Origin
	// Vars are the variable values substituted into this rule, sorted
	// by name.
	Vars []Binding
}

// Field returns the value of the named attribute and whether it is set.
func (r *Rule) Field(attr string) (string, bool) {
	for _, f := range r.Fields {
		if f.Attr == attr {
			return f.Value, true
		}
	}
	return "", false
}

// Chain is an Ethernet-layer chain of a port's filter: the root chain or
// a sub-chain that the root chain jumps to for one protocol.
type Chain struct {
	// Name is the filter chain name: "root", or a name starting with
	// mac, stp, vlan, arp, rarp, ipv4 or ipv6.
	Name string
	// Priority orders the jump to this chain among the root chain's
	// rules; 0 for root.
	Priority int
	// Rules are the chain's rules in evaluation order. The root chain
	// holds its own rules and the jumps to the sub-chains, interleaved
	// by priority.
	Rules []Rule
}

// JumpMatch is what a jump into a sub-chain of this name matches, as a
// libvirt protocol element and fields: the EtherType for vlan, arp,
// rarp, ipv4 and ipv6 chains, the bridge group address for stp chains,
// and nothing for mac chains.
func JumpMatch(chain string) (protocol string, fields []Field) {
	switch {
	case strings.HasPrefix(chain, "mac"):
		return "", nil
	case strings.HasPrefix(chain, "stp"):
		return "mac", []Field{{Attr: "dstmacaddr", Value: "01:80:c2:00:00:00"}}
	case strings.HasPrefix(chain, "vlan"):
		return "mac", []Field{{Attr: "protocolid", Value: "vlan"}}
	case strings.HasPrefix(chain, "arp"):
		return "mac", []Field{{Attr: "protocolid", Value: "arp"}}
	case strings.HasPrefix(chain, "rarp"):
		return "mac", []Field{{Attr: "protocolid", Value: "rarp"}}
	case strings.HasPrefix(chain, "ipv4"):
		return "mac", []Field{{Attr: "protocolid", Value: "ipv4"}}
	case strings.HasPrefix(chain, "ipv6"):
		return "mac", []Field{{Attr: "protocolid", Value: "ipv6"}}
	}
	return "", nil
}

// PortRules is the complete, ordered filter of one port: what every
// backend must enforce for it.
type PortRules struct {
	// Port is the guest's interface on the host (a TAP or veth name).
	Port string
	// Chains are the Ethernet-layer chains; Chains[0] is root. Empty
	// when the filter has no Ethernet-layer rules.
	Chains []*Chain
	// IPv4 are the IPv4-layer rules (tcp, udp, icmp, all, …) in
	// evaluation order.
	IPv4 []Rule
	// IPv6 are the IPv6-layer rules (tcp-ipv6, icmpv6, …) in evaluation
	// order.
	IPv6 []Rule
}

// Chain returns the Ethernet-layer chain with the given name, or nil.
func (p *PortRules) Chain(name string) *Chain {
	for _, c := range p.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// RuleCount returns the number of rules, jumps included.
func (p *PortRules) RuleCount() int {
	n := len(p.IPv4) + len(p.IPv6)
	for _, c := range p.Chains {
		n += len(c.Rules)
	}
	return n
}

// String renders the rules as a stable, readable listing: one line per
// rule with its direction, priority, action, match and origin. Golden
// files hold this form.
func (p *PortRules) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %s\n", p.Port)
	for _, c := range p.Chains {
		if c.Name == "root" {
			b.WriteString("ethernet chain root\n")
		} else {
			fmt.Fprintf(&b, "ethernet chain %s (priority %d)\n", c.Name, c.Priority)
		}
		for i := range c.Rules {
			writeRule(&b, &c.Rules[i])
		}
	}
	if len(p.IPv4) > 0 {
		b.WriteString("ipv4\n")
		for i := range p.IPv4 {
			writeRule(&b, &p.IPv4[i])
		}
	}
	if len(p.IPv6) > 0 {
		b.WriteString("ipv6\n")
		for i := range p.IPv6 {
			writeRule(&b, &p.IPv6[i])
		}
	}
	return b.String()
}

func writeRule(b *strings.Builder, r *Rule) {
	fmt.Fprintf(b, "  %-5s %5d %s", r.Direction, r.Priority, r.Action)
	if r.Action == Jump {
		fmt.Fprintf(b, " %s", r.Target)
	}
	b.WriteString(r.MatchString())
	if r.Origin.Filter != "" {
		fmt.Fprintf(b, "  # %s rule %d", r.Origin.Filter, r.Origin.Rule)
	}
	b.WriteByte('\n')
}

// MatchString renders the rule's match as " proto attr=value …" (a value
// from a variable as attr=$VAR:value), with "!" for a negated match and
// "statematch=false" where set.
func (r *Rule) MatchString() string {
	var b strings.Builder
	if r.Protocol != "" {
		b.WriteByte(' ')
		if r.Negate {
			b.WriteByte('!')
		}
		b.WriteString(r.Protocol)
	}
	for _, f := range r.Fields {
		if f.Var != "" {
			fmt.Fprintf(&b, " %s=$%s:%s", f.Attr, f.Var, f.Value)
		} else {
			fmt.Fprintf(&b, " %s=%s", f.Attr, f.Value)
		}
	}
	if !r.StateMatch && r.Action != Jump {
		b.WriteString(" statematch=false")
	}
	if r.Comment != "" {
		fmt.Fprintf(&b, " comment=%q", r.Comment)
	}
	return b.String()
}
