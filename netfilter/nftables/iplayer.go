package nftables

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/ipplan"
)

// IP-layer rules (tcp, udp, udplite, esp, ah, sctp, icmp, igmp, all,
// their -ipv6 forms and icmpv6) with libvirt's meaning.
//
// libvirt renders each such rule with iptables/ip6tables into up to three
// per-port chains, reached from the filter table's hooks by physdev
// matches:
//
//	FJ  FORWARD, traffic from the guest  (libvirt-in:      --physdev-in  PORT -g FJ-PORT)
//	FP  FORWARD, traffic to the guest    (libvirt-out:     --physdev-is-bridged --physdev-out PORT -g FP-PORT)
//	HJ  INPUT,   traffic from the guest to the host (libvirt-host-in: --physdev-in PORT -g HJ-PORT)
//
// and, after libvirt-in and libvirt-out, libvirt-in-post ACCEPTs what came
// from a filtered port. FJ returning lets the receiving port's FP decide;
// an FP that does not decide ends in that ACCEPT. In netwarden's own inet
// table the end of a base chain is its accept policy, which is the same
// thing: every table must accept a packet for it to pass.
//
// planIPLayer is the pure half: a port's IPv4 and IPv6 rule lists in, the
// rules of its three chains out, each with the match, reversal,
// connection-tracking conditions and verdict libvirt's driver
// (iptablesCreateRuleInstance, iptablesCreateRuleInstanceStateCtrl,
// _iptablesCreateRuleInstance) gives it. Its String is the golden-file form.
// The kernel half (ipkernel.go) dispatches packets to those chains.

// ipChain is one of libvirt's three per-port IP-layer chains.
type ipChain uint8

const (
	// chainFJ: forwarded traffic from the guest; accept returns.
	chainFJ = ipChain(ipplan.FJ)
	// chainFP: forwarded traffic to the guest; accept accepts.
	chainFP = ipChain(ipplan.FP)
	// chainHJ: traffic from the guest to the host; accept returns.
	chainHJ     = ipChain(ipplan.HJ)
	numIPChains = ipChain(ipplan.NumChains)
)

var ipChainWords = [numIPChains]string{"fj", "fp", "hj"}

var ipChainDescriptions = [numIPChains]string{
	"FJ (forwarded, from the guest)",
	"FP (forwarded, to the guest)",
	"HJ (from the guest to the host)",
}

// Conntrack directions (enum ip_conntrack_dir) as ct direction loads
// them.
const (
	ctDirOriginal = 0
	ctDirReply    = 1
)

// ipRule is one kernel rule of an FJ, FP or HJ chain.
type ipRule struct {
	// src is the instantiated rule it comes from.
	src *netfilter.Rule
	// swap: source and destination are exchanged (libvirt's
	// directionIn argument of _iptablesCreateRuleInstance).
	swap bool
	// state is the --ctstate value ("NEW,ESTABLISHED"), "" for none.
	state string
	// ctdir is "original" or "reply" (--ctdir), "" for none.
	ctdir string
	// connlimit is the connlimit-above value, "" for none; negated
	// with the rule (match='no').
	connlimit string
	// exprs are the rule's expressions, verdict included.
	exprs []expr.Any
	// verdict is the verdict as nft shows it ("" for continue).
	verdict string
}

// ipPlan is a port's IP-layer rules, chain by chain.
type ipPlan struct {
	chains [numIPChains][]ipRule
}

// empty reports whether no chain has a rule.
func (p *ipPlan) empty() bool {
	for _, c := range p.chains {
		if len(c) > 0 {
			return false
		}
	}
	return true
}

// errIPSet: ipset matches refer to kernel ipsets that nftables rules
// cannot look up (they are iptables' set match); such ports are dropped.
var errIPSet = errors.New("ipset matches (ipset, ipsetflags) are not supported by the nftables backend")

// planIPLayer computes the FJ, FP and HJ rules of a port's IP-layer rules
// (IPv4 first, then IPv6: every rule tests the packet's family first, so
// the two lists never see each other's packets, as iptables and ip6tables
// do not). An error names the rule that cannot be rendered.
func planIPLayer(pr *netfilter.PortRules) (*ipPlan, error) {
	p := &ipPlan{}
	for _, list := range [][]netfilter.Rule{pr.IPv4, pr.IPv6} {
		for i := range list {
			if err := p.add(&list[i]); err != nil {
				r := &list[i]
				return nil, fmt.Errorf("%s rule %d (%s%s): %w", r.Origin.Filter, r.Origin.Rule, r.Action, r.MatchString(), err)
			}
		}
	}
	return p, nil
}

// ctStateBits maps libvirt's state names to conntrack state bits.
var ctStateBits = map[string]uint32{
	"NEW":         expr.CtStateBitNEW,
	"ESTABLISHED": expr.CtStateBitESTABLISHED,
	"RELATED":     expr.CtStateBitRELATED,
	"INVALID":     expr.CtStateBitINVALID,
}

// add appends the rules libvirt's iptables driver makes of r: the chains,
// reversals and conntrack conditions come from the shared planner
// (netfilter/internal/ipplan, which the xtables backend uses too), the
// expressions from compileMatch.
func (p *ipPlan) add(r *netfilter.Rule) error {
	if _, ok := r.Field("ipset"); ok {
		return errIPSet
	}
	if _, ok := r.Field("ipsetflags"); ok {
		return errIPSet
	}
	entries, err := ipplan.Entries(r)
	if err != nil {
		return err
	}
	for _, e := range entries {
		c := ipChain(e.Chain)
		ir := ipRule{src: r, swap: e.Swap, state: e.State, ctdir: e.CtDir, connlimit: e.Connlimit}
		exprs, err := compileMatch(nftables.TableFamilyINet, &e.Match, matchOptions{Dir: e.Dir, Swap: e.Swap})
		if errors.Is(err, errNoRule) {
			continue // libvirt emits nothing for this half
		}
		if err != nil {
			return err
		}
		ir.exprs = exprs
		if ir.state != "" {
			ir.exprs = append(ir.exprs, ctStateExprs(ir.state)...)
		}
		if ir.ctdir != "" {
			d := byte(ctDirOriginal)
			if ir.ctdir == "reply" {
				d = ctDirReply
			}
			ir.exprs = append(ir.exprs,
				&expr.Ct{Key: expr.CtKeyDIRECTION, Register: regCmp},
				&expr.Cmp{Op: expr.CmpOpEq, Register: regCmp, Data: []byte{d}})
		}
		if ir.connlimit != "" {
			cl, err := connlimitExprs(ir.connlimit, r.Negate, c, len(p.chains[c])+1, ipProtocols[r.Protocol].v6)
			if err != nil {
				return err
			}
			ir.exprs = append(ir.exprs, cl...)
		}
		v, verdict := ipVerdict(r.Action, c)
		ir.exprs = append(ir.exprs, v...)
		ir.verdict = verdict
		p.chains[c] = append(p.chains[c], ir)
	}
	return nil
}

// connlimitExprs renders iptables' "-m connlimit --connlimit-above N"
// (with match='no', "! --connlimit-above N") of rule number idx of chain
// c: connections are counted per source address (its /32 or /128, as
// iptables' default --connlimit-saddr does) and per rule, in the set
// connlimitSetName(c, v6) whose key is the port and rule (the mark's
// half naming this port, the rule number in the other half) and the
// packet's source address:
//
//	add @connlimit-fj-ip { meta mark & 0x0000ffff ^ IDX<<16 . ip saddr ct count over N }
//
// The sets belong to the table, not to a port: counts are of live
// connections (conntrack entries), and an element goes when its count
// drops to zero. A rule that takes the number of another after a change
// of the port's filter sees that rule's live connections. The rule
// number is the rule's place in its chain, part of the chain's rules and
// so of its hash (ipChainHash); ports sharing the chain count apart, by
// the port half the packet's mark brings.
func connlimitExprs(limit string, negate bool, c ipChain, idx int, v6 bool) ([]expr.Any, error) {
	n, err := strconv.ParseUint(limit, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("connlimit-above %q: %w", limit, err)
	}
	if idx > 0xffff {
		return nil, fmt.Errorf("connlimit-above in rule %d of a chain: more than %d rules: %w", idx, 0xffff, errUnsupported)
	}
	// The port is the mark's low half in FJ and HJ (the sender), its
	// high half in FP (the receiver); the rule number takes the other.
	portMask, ruleBits := uint32(0x0000ffff), uint32(idx)<<16
	if c == chainFP {
		portMask, ruleBits = 0xffff0000, uint32(idx)
	}
	src, width := uint32(ip4Src), uint32(4)
	if v6 {
		src, width = ip6Src, 16
	}
	// Flags 1 (invert) is "ct count over N": count > N.
	flags := uint32(1)
	if negate {
		flags = 0
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regKey},
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: nativeU32(portMask), Xor: nativeU32(ruleBits)},
		&expr.Payload{DestRegister: regKey + 1, Base: expr.PayloadBaseNetworkHeader, Offset: src, Len: width},
		&expr.Dynset{SrcRegKey: regKey, SetName: connlimitSetName(c, v6), Operation: unix.NFT_DYNSET_OP_ADD,
			Exprs: []expr.Any{&expr.Connlimit{Count: uint32(n), Flags: flags}}},
	}, nil
}

// ctStateExprs matches a --ctstate list: ct state & bits != 0.
func ctStateExprs(states string) []expr.Any {
	var bits uint32
	for _, s := range strings.Split(states, ",") {
		bits |= ctStateBits[s]
	}
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: regCmp},
		&expr.Bitwise{SourceRegister: regCmp, DestRegister: regCmp, Len: 4,
			Mask: nativeU32(bits), Xor: nativeU32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regCmp, Data: nativeU32(0)},
	}
}

// ipVerdict is the statement ending a rule of chain c: libvirt's accept
// is RETURN in FJ and HJ (the receiving port's FP, or the host's own
// INPUT rules, still decide) and ACCEPT in FP; reject is iptables'
// default REJECT, an ICMP(v6) port unreachable; continue has none.
func ipVerdict(a netfilter.Action, c ipChain) ([]expr.Any, string) {
	switch a {
	case netfilter.Accept:
		if c == chainFP {
			return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, "accept"
		}
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}, "return"
	case netfilter.Drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, "drop"
	case netfilter.Reject:
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}}, "reject"
	case netfilter.Return:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}, "return"
	}
	return nil, ""
}

// String renders the plan as the golden files show it: per chain, one
// line per rule with the libvirt rule, "reversed" where source and
// destination are exchanged, the conntrack conditions and the verdict.
func (p *ipPlan) String() string {
	var b strings.Builder
	for c := chainFJ; c < numIPChains; c++ {
		fmt.Fprintf(&b, "%s\n", ipChainDescriptions[c])
		for _, r := range p.chains[c] {
			b.WriteString(" ")
			m := *r.src
			m.Fields = nil
			for _, f := range r.src.Fields {
				if f.Attr != "state" && f.Attr != "connlimit-above" {
					m.Fields = append(m.Fields, f)
				}
			}
			m.Comment = ""
			m.StateMatch = true
			b.WriteString(m.MatchString())
			if r.swap {
				b.WriteString(" reversed")
			}
			if r.state != "" {
				fmt.Fprintf(&b, " | ct state %s", strings.ToLower(r.state))
			}
			if r.ctdir != "" {
				fmt.Fprintf(&b, " | ct direction %s", r.ctdir)
			}
			if r.connlimit != "" {
				if r.src.Negate {
					fmt.Fprintf(&b, " | ct count %s", r.connlimit)
				} else {
					fmt.Fprintf(&b, " | ct count over %s", r.connlimit)
				}
			}
			if r.verdict == "" {
				b.WriteString(" | (continue)")
			} else {
				fmt.Fprintf(&b, " | %s", r.verdict)
			}
			fmt.Fprintf(&b, "  # %s rule %d\n", r.src.Origin.Filter, r.src.Origin.Rule)
		}
	}
	return b.String()
}
