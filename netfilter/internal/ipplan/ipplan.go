// Package ipplan is libvirt's iptables driver for IP-layer nwfilter rules
// (tcp, udp, icmp, all, … and their -ipv6 forms) as a pure function,
// shared by netwarden's backends: one instantiated rule in, the rules of
// the per-port chains it becomes out, with which halves exist, which are
// reversed, their connection-tracking conditions and connlimit.
//
// libvirt renders each such rule into up to three per-port chains:
//
//	FJ  FORWARD, traffic from the guest   (libvirt-in:      --physdev-in PORT -g FJ-PORT)
//	FP  FORWARD, traffic to the guest     (libvirt-out:     --physdev-is-bridged --physdev-out PORT -g FP-PORT)
//	HJ  INPUT, from the guest to the host (libvirt-host-in: --physdev-in PORT -g HJ-PORT)
//
// following iptablesCreateRuleInstance, iptablesCreateRuleInstanceStateCtrl
// and _iptablesCreateRuleInstance. Each backend renders an Entry's match
// its own way (and may find that libvirt emits no rule for it at all,
// e.g. a reversed rule whose only match was srcmacaddr).
package ipplan

import (
	"fmt"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// Chain is one of libvirt's three per-port IP-layer chains.
type Chain uint8

// The chains, in the order Entries lists them.
const (
	// FJ: forwarded traffic from the guest; accept returns.
	FJ Chain = iota
	// FP: forwarded traffic to the guest; accept accepts.
	FP
	// HJ: traffic from the guest to the host; accept returns.
	HJ
	// NumChains is the number of chains.
	NumChains
)

// Entry is one rule of an FJ, FP or HJ chain.
type Entry struct {
	// Chain is the chain the rule goes into.
	Chain Chain
	// Match is the instantiated rule without the attributes this package
	// implements (state, connlimit-above): what the backend compiles.
	Match netfilter.Rule
	// Dir is the direction the chain serves: DirOut (from the guest) in
	// FJ and HJ, DirIn in FP.
	Dir netfilter.Direction
	// Swap: source and destination are exchanged, srcmacaddr dropped
	// (libvirt's directionIn argument of _iptablesCreateRuleInstance).
	Swap bool
	// State is the --ctstate value ("NEW,ESTABLISHED"), "" for none.
	State string
	// CtDir is "original" or "reply" (--ctdir), "" for none.
	CtDir string
	// Connlimit is the connlimit-above value, "" for none; negated with
	// the rule (match='no').
	Connlimit string
}

// States are libvirt's connection state names.
var States = []string{"NEW", "ESTABLISHED", "RELATED", "INVALID"}

// Entries returns the chain rules libvirt's iptables driver makes of r,
// in chain order (FJ, FP, HJ). It does not look at ipset attributes,
// which backends refuse or render themselves.
func Entries(r *netfilter.Rule) ([]Entry, error) {
	if r.Direction != netfilter.DirIn && r.Direction != netfilter.DirOut && r.Direction != netfilter.DirInOut {
		return nil, fmt.Errorf("direction %s", r.Direction)
	}
	// directionIn and inout as libvirt computes them.
	dirIn := r.Direction.Has(netfilter.DirIn)
	inout := r.Direction == netfilter.DirInOut
	stateAttr, hasState := r.Field("state")
	connlimit, hasConnlimit := r.Field("connlimit-above")
	if hasState {
		for _, s := range strings.Split(stateAttr, ",") {
			known := s == "NONE"
			for _, k := range States {
				known = known || s == k
			}
			if !known {
				return nil, fmt.Errorf("state %q: unknown connection state %q", stateAttr, s)
			}
		}
	}
	match := *r
	match.Fields = nil
	for _, f := range r.Fields {
		if f.Attr != "state" && f.Attr != "connlimit-above" {
			match.Fields = append(match.Fields, f)
		}
	}
	_, icmpType := r.Field("type")
	icmpType = icmpType && (r.Protocol == "icmp" || r.Protocol == "icmpv6")

	// libvirt takes iptablesCreateRuleInstanceStateCtrl when the rule has
	// a state attribute and statematch is not false: the state given
	// instead of the default ones, no --ctdir, and only the chains of the
	// rule's own direction (an in rule only in FP, an out rule only in
	// FJ and HJ, inout in all three).
	stateCtrl := hasState && r.StateMatch
	// Otherwise the default states, unless statematch='false' or inout.
	needState := r.StateMatch && !inout

	var out []Entry
	for c := FJ; c < NumChains; c++ {
		swap := dirIn
		if c == FP {
			swap = !dirIn
		}
		e := Entry{Chain: c, Match: match, Swap: swap, Dir: netfilter.DirOut}
		if c == FP {
			e.Dir = netfilter.DirIn
		}
		if stateCtrl {
			if c == FP && !dirIn || c != FP && dirIn && !inout {
				continue
			}
			if stateAttr != "NONE" {
				e.State = stateAttr
			}
		} else {
			if needState {
				e.State = "NEW,ESTABLISHED"
				if swap {
					e.State = "ESTABLISHED"
				}
			}
			// defMatch: only accept rules carry the state match.
			if r.Action != netfilter.Accept {
				e.State = ""
			}
			// iptablesEnforceDirection, not for icmp with a type.
			if e.State != "" && !icmpType && !inout {
				e.CtDir = "original"
				if swap {
					e.CtDir = "reply"
				}
			}
		}
		if hasConnlimit {
			if swap {
				continue // "only support for limit in outgoing dir."
			}
			e.Connlimit = connlimit
			e.State, e.CtDir = "", "" // skipMatch
		}
		out = append(out, e)
	}
	return out, nil
}
