// Package doctor tells, for each active virtual network, which of the
// host's other firewall tables (firewalld, docker, ufw, nftables.service,
// iptables, anything else) would drop its DHCP, DNS or forwarded traffic,
// and what to do about it.
//
// The analysis is pure: it works on a Ruleset, a cheap snapshot of the
// kernel's nftables tables (ReadNftables takes one) and, optionally, of
// iptables-legacy (ParseIptablesSave). It never changes anything. It is
// conservative: a rule it cannot evaluate (a set lookup, an address match,
// an xtables match) makes the verdict uncertain, reported as "may drop"
// with a warning rather than an error.
package doctor

import (
	"fmt"
	"strings"
)

// Hook names, as nft prints them.
const (
	HookPrerouting  = "prerouting"
	HookInput       = "input"
	HookForward     = "forward"
	HookOutput      = "output"
	HookPostrouting = "postrouting"
)

// Ruleset is a snapshot of the host's firewall.
type Ruleset struct {
	Tables []Table `json:"tables"`
	// Notes say what the snapshot could not see (e.g. iptables-legacy
	// present but unreadable); the report repeats them.
	Notes []string `json:"notes,omitempty"`
}

// Table is one nftables table, or one iptables-legacy table (Legacy).
type Table struct {
	// Family is ip, ip6, inet, bridge, arp or netdev.
	Family string `json:"family"`
	Name   string `json:"name"`
	// Legacy: the table is iptables-legacy's (or ip6tables-legacy's),
	// not an nftables table.
	Legacy bool    `json:"legacy,omitempty"`
	Chains []Chain `json:"chains"`
}

// ID is how the report names the table: "inet firewalld", or
// "ip filter (iptables-legacy)".
func (t *Table) ID() string {
	s := t.Family + " " + t.Name
	if t.Legacy {
		if t.Family == "ip6" {
			return s + " (ip6tables-legacy)"
		}
		return s + " (iptables-legacy)"
	}
	return s
}

// chain returns the table's chain called name, or nil.
func (t *Table) chain(name string) *Chain {
	for i := range t.Chains {
		if t.Chains[i].Name == name {
			return &t.Chains[i]
		}
	}
	return nil
}

// Chain is one chain. A base chain has a Hook.
type Chain struct {
	Name string `json:"name"`
	// Hook is "" for a regular chain.
	Hook     string `json:"hook,omitempty"`
	Priority int    `json:"priority,omitempty"`
	// Type is filter, nat or route.
	Type string `json:"type,omitempty"`
	// Policy is accept or drop (base chains only).
	Policy string `json:"policy,omitempty"`
	Rules  []Rule `json:"rules,omitempty"`
}

// Rule is the cheap view of one rule: the conditions the analysis
// understands, and its verdict.
type Rule struct {
	Conds   []Cond  `json:"conds,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Target is the chain of a jump or goto.
	Target  string `json:"target,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Verdict is what a rule does when it matches.
type Verdict string

// Verdicts. VerdictNone is a rule that only counts, logs or marks;
// VerdictUnknown one whose verdict cannot be told (a verdict map, a queue,
// an unknown xtables target).
const (
	VerdictNone    Verdict = ""
	VerdictAccept  Verdict = "accept"
	VerdictDrop    Verdict = "drop"
	VerdictReject  Verdict = "reject"
	VerdictReturn  Verdict = "return"
	VerdictJump    Verdict = "jump"
	VerdictGoto    Verdict = "goto"
	VerdictUnknown Verdict = "unknown"
)

// CondKey is what a condition matches.
type CondKey string

// Condition keys. CondOther is anything the analysis does not evaluate.
const (
	CondIIFName CondKey = "iifname"
	CondOIFName CondKey = "oifname"
	// CondIBrName and CondOBrName are meta ibrname/obrname: the bridge
	// of a bridged frame's ports.
	CondIBrName CondKey = "ibrname"
	CondOBrName CondKey = "obrname"
	// CondNFProto is meta nfproto (ipv4 or ipv6) in inet tables.
	CondNFProto CondKey = "nfproto"
	CondL4Proto CondKey = "l4proto"
	CondDPort   CondKey = "dport"
	CondSPort   CondKey = "sport"
	// CondCtState matches when the packet's conntrack state bit is in
	// Mask.
	CondCtState CondKey = "ct state"
	CondOther   CondKey = "other"
)

// Conntrack state bits, as the kernel numbers them.
const (
	CtInvalid     uint32 = 1
	CtEstablished uint32 = 2
	CtRelated     uint32 = 4
	CtNew         uint32 = 8
	CtUntracked   uint32 = 64
)

// Cond is one condition of a rule.
type Cond struct {
	Key CondKey `json:"key"`
	Neg bool    `json:"neg,omitempty"`
	// Name is an interface name for the *name keys, the family (ipv4,
	// ipv6) for CondNFProto; Prefix makes it a wildcard (virbr*).
	Name   string `json:"name,omitempty"`
	Prefix bool   `json:"prefix,omitempty"`
	// Num is the protocol number or the port.
	Num uint16 `json:"num,omitempty"`
	// Mask holds conntrack state bits.
	Mask uint32 `json:"mask,omitempty"`
	// Desc describes a CondOther, for the report.
	Desc string `json:"desc,omitempty"`
}

func (c Cond) String() string {
	neg := ""
	if c.Neg {
		neg = "!= "
	}
	switch c.Key {
	case CondIIFName, CondOIFName, CondIBrName, CondOBrName, CondNFProto:
		n := c.Name
		if c.Prefix {
			n += "*"
		}
		return fmt.Sprintf("%s %s%q", c.Key, neg, n)
	case CondL4Proto:
		return fmt.Sprintf("meta l4proto %s%s", neg, protoName(c.Num))
	case CondDPort, CondSPort:
		return fmt.Sprintf("th %s %s%d", c.Key, neg, c.Num)
	case CondCtState:
		return fmt.Sprintf("ct state %s%s", neg, ctNames(c.Mask))
	}
	return c.Desc
}

// String renders the rule in nft-like words.
func (r Rule) String() string {
	var parts []string
	for _, c := range r.Conds {
		parts = append(parts, c.String())
	}
	switch r.Verdict {
	case VerdictNone:
	case VerdictJump, VerdictGoto:
		parts = append(parts, string(r.Verdict)+" "+r.Target)
	default:
		parts = append(parts, string(r.Verdict))
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}

func protoName(p uint16) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "ipv6-icmp"
	}
	return fmt.Sprint(p)
}

func ctNames(mask uint32) string {
	var s []string
	for _, b := range []struct {
		bit  uint32
		name string
	}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}, {CtUntracked, "untracked"}} {
		if mask&b.bit != 0 {
			s = append(s, b.name)
		}
	}
	return strings.Join(s, ",")
}
