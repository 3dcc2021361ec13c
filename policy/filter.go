package policy

import (
	"slices"
	"strconv"
)

// Filter is one nwfilter definition: the typed form of libvirt's <filter>
// element. ParseFilter produces it from XML and validates every value;
// FormatXML turns it back into libvirt-style XML.
type Filter struct {
	// Name is the filter's name (an ASCII NCName of at most MaxNameLength
	// bytes, see ParseFilter).
	Name string
	// UUID is the canonical lower-case 8-4-4-4-12 form, "" when the XML had
	// none (the registry assigns one).
	UUID string
	// Chain is the chain the filter's rules live in: "root" (also when the
	// attribute is absent) or a protocol prefix (mac, stp, vlan, arp, rarp,
	// ipv4, ipv6) optionally followed by a suffix, 12 characters at most.
	Chain string
	// ChainPriority orders the filter's chain among the chains jumped to
	// from the root chain: the explicit priority attribute, or else
	// DefaultChainPriority(Chain).
	ChainPriority int
	// ChainPrioritySet records that the priority attribute was present.
	ChainPrioritySet bool
	// Entries are the filter's rules and references to other filters, in
	// document order.
	Entries []Entry
}

// Entry is one child of a filter: a rule or a reference to another
// filter. Exactly one of Rule and Ref is non-nil.
type Entry struct {
	Rule *Rule
	Ref  *FilterRef
}

// FilterRef is a <filterref>: the named filter is instantiated in place,
// with the given parameters added to the variables it sees.
type FilterRef struct {
	// Filter is the referenced filter's name.
	Filter string
	// Params are the <parameter> children in document order. A name may
	// repeat: the values then form a list, in order. (libvirt formats
	// parameters sorted by name, keeping each name's values in order;
	// FormatXML does the same.)
	Params []Param
}

// Param is one filter parameter: a variable name ([A-Za-z0-9_]+) and a
// value ([A-Za-z0-9_.:]+).
type Param struct {
	Name, Value string
}

// Action is what a rule does with a matching packet.
type Action string

// The rule actions of libvirt's nwfilter language.
const (
	ActionDrop     Action = "drop"
	ActionAccept   Action = "accept"
	ActionReject   Action = "reject"
	ActionReturn   Action = "return"
	ActionContinue Action = "continue"
)

// Direction is the traffic direction a rule applies to, seen from the
// guest: "in" is traffic to the guest, "out" traffic from it.
type Direction string

// The rule directions.
const (
	DirIn    Direction = "in"
	DirOut   Direction = "out"
	DirInOut Direction = "inout"
)

// Rule priorities: a rule's priority orders it within its chain (lower
// first); DefaultRulePriority applies when the attribute is absent.
const (
	MinPriority         = -1000
	MaxPriority         = 1000
	DefaultRulePriority = 500
)

// Rule is one <rule> of a filter.
type Rule struct {
	// Action is what happens to matching packets.
	Action Action
	// Direction is the direction the rule applies to.
	Direction Direction
	// Priority orders the rule in its chain: MinPriority..MaxPriority,
	// DefaultRulePriority when absent. Out of range is an error (libvirt
	// silently uses the default instead).
	Priority int
	// StateMatch is false when the rule had statematch='false' (or '0'):
	// the rule is then not turned into a connection-tracking match.
	StateMatch bool
	// Match is the rule's protocol element, nil for a rule without one
	// (which matches every packet of its chain).
	Match *Match
}

// Protocol names a rule's protocol element.
type Protocol string

// The protocol elements of libvirt's nwfilter language.
const (
	ProtoMAC         Protocol = "mac"
	ProtoVLAN        Protocol = "vlan"
	ProtoSTP         Protocol = "stp"
	ProtoARP         Protocol = "arp"
	ProtoRARP        Protocol = "rarp"
	ProtoIP          Protocol = "ip"
	ProtoIPv6        Protocol = "ipv6"
	ProtoTCP         Protocol = "tcp"
	ProtoUDP         Protocol = "udp"
	ProtoUDPLite     Protocol = "udplite"
	ProtoESP         Protocol = "esp"
	ProtoAH          Protocol = "ah"
	ProtoSCTP        Protocol = "sctp"
	ProtoICMP        Protocol = "icmp"
	ProtoIGMP        Protocol = "igmp"
	ProtoAll         Protocol = "all"
	ProtoTCPIPv6     Protocol = "tcp-ipv6"
	ProtoUDPIPv6     Protocol = "udp-ipv6"
	ProtoUDPLiteIPv6 Protocol = "udplite-ipv6"
	ProtoESPIPv6     Protocol = "esp-ipv6"
	ProtoAHIPv6      Protocol = "ah-ipv6"
	ProtoSCTPIPv6    Protocol = "sctp-ipv6"
	ProtoICMPv6      Protocol = "icmpv6"
	ProtoAllIPv6     Protocol = "all-ipv6"
)

// Match is a rule's protocol element with its attributes.
type Match struct {
	// Protocol is the element's name.
	Protocol Protocol
	// Negate is true for match='no': the rule applies to packets that do
	// not match the attributes.
	Negate bool
	// Fields are the attributes present, except match and comment, in the
	// fixed canonical order of the protocol (the order libvirt formats
	// them in; see Attributes).
	Fields []Field
	// Comment is the comment attribute, at most MaxCommentLength bytes.
	Comment string
}

// Field is one attribute of a protocol element.
type Field struct {
	// Attr is the attribute's name, e.g. "dstportstart".
	Attr string
	// Kind is the type of its values.
	Kind Kind
	// Value is a literal or a variable reference.
	Value Value
}

// Value is an attribute value: a literal or a variable reference.
type Value struct {
	// Literal is the canonical text of a literal, as libvirt formats it
	// (see Kind.Parse); "" when Var is set.
	Literal string
	// Var is non-nil for $X, $X[N] and $X[@K].
	Var *VarRef
}

// String returns the value as it is written in XML: the literal, or the
// variable reference with its '$'.
func (v Value) String() string {
	if v.Var != nil {
		return v.Var.String()
	}
	return v.Literal
}

// VarAccess says how a variable reference walks the variable's list of
// values.
type VarAccess int

// The variable access forms.
const (
	// AccessDefault is $X: every value of X, walked by iterator 0 (the
	// same as $X[@0], which parses to AccessDefault).
	AccessDefault VarAccess = iota
	// AccessIndex is $X[N]: only the value at index N.
	AccessIndex
	// AccessIterator is $X[@K]: every value of X, walked by iterator K
	// (1..MaxIteratorID); references with the same iterator walk their
	// lists in parallel, different iterators form all combinations.
	AccessIterator
)

// MaxIteratorID is the largest K accepted in $X[@K] (libvirt's limit).
const MaxIteratorID = 1000

// VarRef is a reference to a filter variable.
type VarRef struct {
	// Name is the variable's name, [A-Za-z0-9_]+.
	Name string
	// Access is the access form.
	Access VarAccess
	// Index is N for AccessIndex, K for AccessIterator, 0 otherwise.
	Index int
}

// String returns the reference as libvirt formats it: "$X", "$X[N]" or
// "$X[@K]".
func (r *VarRef) String() string {
	switch r.Access {
	case AccessIndex:
		return "$" + r.Name + "[" + strconv.Itoa(r.Index) + "]"
	case AccessIterator:
		if r.Index != 0 {
			return "$" + r.Name + "[@" + strconv.Itoa(r.Index) + "]"
		}
	}
	return "$" + r.Name
}

// References returns the names of the filters this filter references
// directly, in document order, each once.
func (f *Filter) References() []string {
	var names []string
	for _, e := range f.Entries {
		if e.Ref != nil && !slices.Contains(names, e.Ref.Filter) {
			names = append(names, e.Ref.Filter)
		}
	}
	return names
}

// Variables returns the names of the variables the filter's own rules use
// (not those of the filters it references), sorted, each once.
func (f *Filter) Variables() []string {
	var names []string
	for _, e := range f.Entries {
		if e.Rule == nil || e.Rule.Match == nil {
			continue
		}
		for _, fl := range e.Rule.Match.Fields {
			if fl.Value.Var != nil {
				names = append(names, fl.Value.Var.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Rules returns the filter's rules in document order (its Entries without
// the filter references).
func (f *Filter) Rules() []*Rule {
	var rules []*Rule
	for _, e := range f.Entries {
		if e.Rule != nil {
			rules = append(rules, e.Rule)
		}
	}
	return rules
}

// DefaultChainPriority returns the priority libvirt gives a chain whose
// filter has no priority attribute: root 0, mac -800, vlan -750, ipv4 -700,
// ipv6 -600, arp -500, rarp -400, chosen by the chain's prefix.
//
// stp chains get 0, not the -810 libvirt's documentation lists: libvirt's
// lookup table has no stp entry, and its own test output (stp-test) shows a
// chain='stp-xyz' filter formatted without a priority, i.e. with 0.
func DefaultChainPriority(chain string) int {
	switch chainPrefix(chain) {
	case "mac":
		return -800
	case "vlan":
		return -750
	case "ipv4":
		return -700
	case "ipv6":
		return -600
	case "arp":
		return -500
	case "rarp":
		return -400
	}
	return 0
}
