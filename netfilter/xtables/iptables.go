package xtables

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/ipplan"
)

// IP-layer rules with libvirt's meaning, as iptables/ip6tables rules in
// three chains per port (libvirt's FJ, FP, HJ): the decisions (which
// halves exist, which are reversed, the conntrack conditions, connlimit)
// come from netfilter/internal/ipplan, shared with the nftables backend,
// rendered here as iptables arguments instead of nftables expressions.

// The per-port chains.
const (
	chainFJ     = ipplan.FJ // FORWARD, from the guest
	numIPChains = ipplan.NumChains
)

var ipChainPrefix = [numIPChains]string{"FJ", "FP", "HJ"}

// ipPlan is a port's IP-layer rules per family and chain, as iptables
// rule arguments (without "-A CHAIN").
type ipPlan struct {
	v4, v6 [numIPChains][]string
}

func (p *ipPlan) empty(v6 bool) bool {
	c := p.v4
	if v6 {
		c = p.v6
	}
	for _, r := range c {
		if len(r) > 0 {
			return false
		}
	}
	return true
}

var errIPSet = fmt.Errorf("ipset matches (ipset, ipsetflags): %w", errUnsupported)

// planIP renders a port's IPv4 and IPv6 rules.
func planIP(pr *netfilter.PortRules) (*ipPlan, error) {
	p := &ipPlan{}
	for fam, list := range [][]netfilter.Rule{pr.IPv4, pr.IPv6} {
		dst := &p.v4
		if fam == 1 {
			dst = &p.v6
		}
		for i := range list {
			r := &list[i]
			if err := addIPRule(dst, r, fam == 1); err != nil {
				return nil, fmt.Errorf("%s rule %d (%s%s): %w", r.Origin.Filter, r.Origin.Rule, r.Action, r.MatchString(), err)
			}
		}
	}
	return p, nil
}

// addIPRule renders the chain rules libvirt's iptables driver makes of
// r (the shared planner decides which, reversed or not, with which
// conntrack conditions).
func addIPRule(dst *[numIPChains][]string, r *netfilter.Rule, v6 bool) error {
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
		args, err := ipArgs(&e.Match, e.Swap, r.Direction == netfilter.DirInOut, v6)
		if err == errNoRule {
			continue
		}
		if err != nil {
			return err
		}
		if e.State != "" {
			args = append(args, "-m", "conntrack", "--ctstate", e.State)
		}
		if e.CtDir != "" {
			args = append(args, "-m", "conntrack", "--ctdir", strings.ToUpper(e.CtDir))
		}
		if e.Connlimit != "" {
			n, err := strconv.ParseUint(e.Connlimit, 10, 32)
			if err != nil {
				return fmt.Errorf("connlimit-above %q: %w", e.Connlimit, err)
			}
			args = append(args, "-m", "connlimit")
			if r.Negate {
				args = append(args, "!")
			}
			args = append(args, "--connlimit-above", strconv.FormatUint(n, 10))
		}
		if r.Comment != "" {
			args = append(args, "-m", "comment", "--comment", quote(r.Comment))
		}
		switch r.Action {
		case netfilter.Accept:
			// libvirt: RETURN in FJ and HJ, ACCEPT in FP. netwarden
			// returns in FP too: an accepted packet goes on to the
			// networks' rules, as in the nftables backend where each
			// table must accept (see the package comment).
			args = append(args, "-j", "RETURN")
		case netfilter.Drop:
			args = append(args, "-j", "DROP")
		case netfilter.Reject:
			args = append(args, "-j", "REJECT")
		case netfilter.Return:
			args = append(args, "-j", "RETURN")
		case netfilter.Continue:
		default:
			return fmt.Errorf("action %s: %w", r.Action, errUnsupported)
		}
		dst[e.Chain] = append(dst[e.Chain], joinArgs(args))
	}
	return nil
}

// quote makes s one restore-file word: iptables-restore takes a
// double-quoted string; quotes and backslashes inside become ' and /.
func quote(s string) string {
	s = strings.NewReplacer(`"`, `'`, `\`, `/`, "\n", " ").Replace(s)
	if len(s) > 255 {
		s = s[:255]
	}
	return `"` + s + `"`
}

// ipElements are the IP-layer protocol elements and their -p value.
var ipElements = map[string]struct {
	p  string
	v6 bool
}{
	"tcp": {"tcp", false}, "udp": {"udp", false}, "udplite": {"udplite", false}, "esp": {"esp", false},
	"ah": {"ah", false}, "sctp": {"sctp", false}, "icmp": {"icmp", false}, "igmp": {"igmp", false}, "all": {"all", false},
	"tcp-ipv6": {"tcp", true}, "udp-ipv6": {"udp", true}, "udplite-ipv6": {"udplite", true}, "esp-ipv6": {"esp", true},
	"ah-ipv6": {"ah", true}, "sctp-ipv6": {"sctp", true}, "icmpv6": {"icmpv6", true}, "all-ipv6": {"all", true},
}

var ipKnown = map[string]bool{
	"srcmacaddr": true, "srcipaddr": true, "srcipmask": true, "dstipaddr": true, "dstipmask": true,
	"srcipfrom": true, "srcipto": true, "dstipfrom": true, "dstipto": true, "dscp": true,
	"srcportstart": true, "srcportend": true, "dstportstart": true, "dstportend": true,
	"flags": true, "option": true, "type": true, "code": true, "comment": true,
}

// ipArgs renders the match of an IP-layer rule (libvirt's
// _iptablesCreateRuleInstance): swap exchanges source and destination
// and leaves srcmacaddr out.
func ipArgs(r *netfilter.Rule, swap, inout, v6 bool) ([]string, error) {
	el, ok := ipElements[r.Protocol]
	if !ok || el.v6 != v6 {
		return nil, fmt.Errorf("protocol element %q in the IPv%d list: %w", r.Protocol, map[bool]int{false: 4, true: 6}[v6], errUnsupported)
	}
	for _, f := range r.Fields {
		if !ipKnown[f.Attr] {
			return nil, fmt.Errorf("%s attribute %s: %w", r.Protocol, f.Attr, errUnsupported)
		}
	}
	a := &argb{rule: r, neg: r.Negate}
	// iptables' negation precedes the option.
	nopt := func(opt, v string) {
		if a.neg {
			a.args = append(a.args, "!")
		}
		a.args = append(a.args, opt, v)
	}
	a.args = append(a.args, "-p", el.p)
	matched := 0
	if v, ok := r.Field("srcmacaddr"); ok && !swap {
		a.args = append(a.args, "-m", "mac")
		nopt("--mac-source", v)
		matched++
	}
	s, d := "--source", "--destination"
	sr, dr := "--src-range", "--dst-range"
	sp, dp := "--sport", "--dport"
	if swap {
		s, d, sr, dr, sp, dp = d, s, dr, sr, dp, sp
	}
	addr := func(attr, mask, opt string) {
		if v, ok := r.Field(attr); ok {
			if m, ok := r.Field(mask); ok {
				v += "/" + m
			} else if v6 {
				v += "/128"
			} else {
				v += "/32"
			}
			nopt(opt, v)
			matched++
		}
	}
	addr("srcipaddr", "srcipmask", s)
	addr("dstipaddr", "dstipmask", d)
	rangeOf := func(from, to, opt string) {
		f, okf := r.Field(from)
		t, okt := r.Field(to)
		if okf {
			if !okt {
				t = f
			}
			a.args = append(a.args, "-m", "iprange")
			nopt(opt, f+"-"+t)
			matched++
		}
	}
	rangeOf("srcipfrom", "srcipto", sr)
	rangeOf("dstipfrom", "dstipto", dr)
	if v, ok := r.Field("dscp"); ok {
		a.args = append(a.args, "-m", "dscp")
		nopt("--dscp", dec(v))
		matched++
	}
	port := func(lo, hi, opt string) {
		l, okl := r.Field(lo)
		h, okh := r.Field(hi)
		if okl {
			l = dec(l)
			if okh {
				l += ":" + dec(h)
			}
			nopt(opt, l)
			matched++
		}
	}
	switch el.p {
	case "tcp", "udp", "udplite", "sctp":
		if el.p == "udplite" {
			for _, x := range []string{"srcportstart", "srcportend", "dstportstart", "dstportend"} {
				if _, ok := r.Field(x); ok {
					return nil, fmt.Errorf("udplite ports: %w", errUnsupported)
				}
			}
		}
		port("srcportstart", "srcportend", sp)
		port("dstportstart", "dstportend", dp)
		if v, ok := r.Field("flags"); ok {
			mask, flags, ok := strings.Cut(v, "/")
			if !ok {
				return nil, fmt.Errorf("tcp flags %q", v)
			}
			if a.neg {
				a.args = append(a.args, "!")
			}
			a.args = append(a.args, "--tcp-flags", mask, flags)
			matched++
		}
		if v, ok := r.Field("option"); ok {
			nopt("--tcp-option", dec(v))
			matched++
		}
	case "icmp", "icmpv6":
		t, hasType := r.Field("type")
		if hasType {
			if swap || inout {
				return nil, errNoRule
			}
			t = dec(t)
			if c, ok := r.Field("code"); ok {
				t += "/" + dec(c)
			}
			if strings.HasPrefix(t, "255") && a.neg {
				return nil, errNoRule
			}
			opt := "--icmp-type"
			if el.p == "icmpv6" {
				opt = "--icmpv6-type"
			}
			nopt(opt, t)
			matched++
		}
	}
	if swap && matched == 0 {
		if _, ok := r.Field("srcmacaddr"); ok {
			return nil, errNoRule
		}
	}
	return a.args, nil
}
