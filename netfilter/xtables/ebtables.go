package xtables

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// errUnsupported is wrapped by errors for attributes (or combinations)
// the xtables backend cannot express; such a port is drop-all.
var errUnsupported = errors.New("not supported by the xtables backend")

// errNoRule: libvirt emits no rule for this rule and direction (see the
// nftables backend's errNoRule: a reply rule whose only match was
// srcmacaddr, reply or inout halves of an icmp rule with a type, an icmp
// type 255 negated).
var errNoRule = errors.New("libvirt emits no rule for this rule and direction")

// ebArgs renders the match of an Ethernet-layer rule as ebtables
// arguments (libvirt's ebtablesCreateRuleInstance). swap exchanges
// source and destination: libvirt's ebtables reverses the outgoing half
// (from the guest) of an inout rule.
func ebArgs(r *netfilter.Rule, swap bool) ([]string, error) {
	a := &argb{rule: r, neg: r.Negate}
	src, dst := "-s", "-d"
	if swap {
		src, dst = dst, src
	}
	macAttr := func(addr, mask, opt string) {
		if v, ok := r.Field(addr); ok {
			if m, ok := r.Field(mask); ok {
				v += "/" + m
			}
			a.opt(opt, v)
		}
	}
	switch r.Protocol {
	case "":
		if len(r.Fields) > 0 {
			return nil, fmt.Errorf("fields without a protocol element: %w", errUnsupported)
		}
		return nil, nil
	case "mac":
		macAttr("srcmacaddr", "srcmacmask", src)
		macAttr("dstmacaddr", "dstmacmask", dst)
		if v, ok := r.Field("protocolid"); ok {
			et, err := etherType(v)
			if err != nil {
				return nil, err
			}
			a.opt("-p", et)
		}
	case "vlan":
		macAttr("srcmacaddr", "srcmacmask", src)
		macAttr("dstmacaddr", "dstmacmask", dst)
		a.plain("-p", "0x8100")
		if v, ok := r.Field("vlanid"); ok {
			n, err := strconv.ParseUint(v, 0, 16)
			if err != nil {
				return nil, fmt.Errorf("vlanid %q: %w", v, err)
			}
			a.opt("--vlan-id", strconv.FormatUint(n, 10))
		}
		if v, ok := r.Field("encap-protocol"); ok {
			et, err := etherType(v)
			if err != nil {
				return nil, err
			}
			a.opt("--vlan-encap", et)
		}
	case "stp":
		if swap {
			if _, ok := r.Field("srcmacaddr"); ok {
				return nil, fmt.Errorf("stp srcmacaddr in direction inout (libvirt refuses it): %w", errUnsupported)
			}
		}
		macAttr("srcmacaddr", "srcmacmask", "-s")
		a.plain("-d", "01:80:c2:00:00:00")
		if err := a.stp(); err != nil {
			return nil, err
		}
	case "arp", "rarp":
		macAttr("srcmacaddr", "srcmacmask", src)
		macAttr("dstmacaddr", "dstmacmask", dst)
		if r.Protocol == "arp" {
			a.plain("-p", "0x806")
		} else {
			a.plain("-p", "0x8035")
		}
		if v, ok := r.Field("hwtype"); ok {
			a.opt("--arp-htype", dec(v))
		}
		if v, ok := r.Field("protocoltype"); ok {
			et, err := etherType(v) // ebtables reads it as hexadecimal
			if err != nil {
				return nil, err
			}
			a.opt("--arp-ptype", et)
		}
		if v, ok := r.Field("opcode"); ok {
			if n, ok := netfilter.ARPOpcodes.Lookup(v); ok {
				v = strconv.Itoa(int(n))
			}
			a.opt("--arp-opcode", dec(v))
		}
		ipSrc, ipDst, macSrc, macDst := "--arp-ip-src", "--arp-ip-dst", "--arp-mac-src", "--arp-mac-dst"
		if swap {
			ipSrc, ipDst, macSrc, macDst = ipDst, ipSrc, macDst, macSrc
		}
		a.masked("arpsrcipaddr", "arpsrcipmask", ipSrc)
		a.masked("arpdstipaddr", "arpdstipmask", ipDst)
		if v, ok := r.Field("arpsrcmacaddr"); ok {
			a.opt(macSrc, v)
		}
		if v, ok := r.Field("arpdstmacaddr"); ok {
			a.opt(macDst, v)
		}
		if v, ok := r.Field("gratuitous"); ok && v == "true" {
			a.flag("--arp-gratuitous")
		}
	case "ip", "ipv6":
		macAttr("srcmacaddr", "srcmacmask", src)
		macAttr("dstmacaddr", "dstmacmask", dst)
		p := "ip"
		if r.Protocol == "ipv6" {
			p = "ip6"
			a.plain("-p", "0x86dd")
		} else {
			a.plain("-p", "0x800")
		}
		s, d := "--"+p+"-source", "--"+p+"-destination"
		sp, dp := "--"+p+"-source-port", "--"+p+"-destination-port"
		if swap {
			s, d, sp, dp = d, s, dp, sp
		}
		a.masked("srcipaddr", "srcipmask", s)
		a.masked("dstipaddr", "dstipmask", d)
		if v, ok := r.Field("protocol"); ok {
			if n, ok := netfilter.IPProtocols.Lookup(v); ok {
				v = strconv.Itoa(int(n))
			}
			a.opt("--"+p+"-protocol", dec(v))
		}
		hasPorts := false
		for _, x := range []string{"srcportstart", "srcportend", "dstportstart", "dstportend"} {
			_, ok := r.Field(x)
			hasPorts = hasPorts || ok
		}
		if hasPorts {
			pv, _ := r.Field("protocol")
			n, ok := netfilter.IPProtocols.Lookup(pv)
			if !ok {
				x, err := strconv.ParseUint(pv, 0, 8)
				n, ok = uint32(x), err == nil
			}
			if !ok || !(n == 6 || n == 17 || n == 33 || n == 132 || n == 136) || r.Negate {
				return nil, fmt.Errorf("a port match needs protocol tcp, udp, udplite, sctp or 33 (dccp) and no match='no': %w", errUnsupported)
			}
		}
		a.rng("srcportstart", "srcportend", sp)
		a.rng("dstportstart", "dstportend", dp)
		if v, ok := r.Field("dscp"); ok {
			if p == "ip6" {
				return nil, fmt.Errorf("dscp of an ipv6 element: %w", errUnsupported)
			}
			n, err := strconv.ParseUint(v, 0, 8)
			if err != nil || n > 63 {
				return nil, fmt.Errorf("dscp %q: %w", v, errUnsupported)
			}
			a.opt("--ip-tos", fmt.Sprintf("0x%02x", n))
		}
		if p == "ip6" {
			_, t1 := r.Field("type")
			_, t2 := r.Field("typeend")
			_, c1 := r.Field("code")
			_, c2 := r.Field("codeend")
			if t1 || t2 || c1 || c2 {
				lo := func(attr, def string) string {
					if v, ok := r.Field(attr); ok {
						return v
					}
					return def
				}
				ts := lo("type", "0")
				te := lo("typeend", ts)
				if !t1 && !t2 {
					ts, te = "0", "255"
				}
				cs := lo("code", "0")
				ce := lo("codeend", cs)
				if !c1 && !c2 {
					cs, ce = "0", "255"
				}
				a.opt("--ip6-icmp-type", dec(ts)+":"+dec(te)+"/"+dec(cs)+":"+dec(ce))
			}
		}
	default:
		return nil, fmt.Errorf("protocol element %q in an Ethernet-layer chain: %w", r.Protocol, errUnsupported)
	}
	if err := a.unused(); err != nil {
		return nil, err
	}
	return a.args, nil
}

// etherType renders a protocolid/encap-protocol value as ebtables takes it.
func etherType(v string) (string, error) {
	if n, ok := netfilter.EtherTypes.Lookup(v); ok {
		return fmt.Sprintf("0x%x", n), nil
	}
	n, err := strconv.ParseUint(v, 0, 16)
	if err != nil {
		return "", fmt.Errorf("EtherType %q: %w", v, err)
	}
	return fmt.Sprintf("0x%x", n), nil
}

// stpAttrs are libvirt's stp attributes with ebtables' options; a *-hi
// attribute extends its base into a range.
var stpAttrs = []struct{ attr, opt string }{
	{"root-priority", "--stp-root-prio"}, {"root-cost", "--stp-root-cost"},
	{"sender-priority", "--stp-sender-prio"}, {"port", "--stp-port"},
	{"age", "--stp-msg-age"}, {"max-age", "--stp-max-age"},
	{"hello-time", "--stp-hello-time"}, {"forward-delay", "--stp-forward-delay"},
}

func (a *argb) stp() error {
	r := a.rule
	if v, ok := r.Field("type"); ok {
		a.opt("--stp-type", dec(v))
	}
	if v, ok := r.Field("flags"); ok {
		a.opt("--stp-flags", dec(v))
	}
	for _, x := range stpAttrs {
		a.rng(x.attr, x.attr+"-hi", x.opt)
	}
	for _, x := range []struct{ attr, opt string }{{"root-address", "--stp-root-addr"}, {"sender-address", "--stp-sender-addr"}} {
		if v, ok := r.Field(x.attr); ok {
			if m, ok := r.Field(x.attr + "-mask"); ok {
				v += "/" + m
			}
			a.opt(x.opt, v)
		}
	}
	return nil
}

// argb accumulates arguments; unused checks that every attribute is one
// it renders, so that an attribute it does not know makes the rule
// unsupported rather than silently wider.
type argb struct {
	rule *netfilter.Rule
	neg  bool
	args []string
}

// opt adds "opt [!] value" (ebtables' negation follows the option).
func (a *argb) opt(opt, v string) {
	a.args = append(a.args, opt)
	if a.neg {
		a.args = append(a.args, "!")
	}
	a.args = append(a.args, v)
}

// plain adds an option that is a precondition, never negated.
func (a *argb) plain(opt, v string) { a.args = append(a.args, opt, v) }

func (a *argb) flag(opt string) {
	if a.neg {
		a.args = append(a.args, "!")
	}
	a.args = append(a.args, opt)
}

func (a *argb) masked(addr, mask, opt string) {
	if v, ok := a.rule.Field(addr); ok {
		if m, ok := a.rule.Field(mask); ok {
			v += "/" + m
		}
		a.opt(opt, v)
	}
}

func (a *argb) rng(lo, hi, opt string) {
	l, okl := a.rule.Field(lo)
	h, okh := a.rule.Field(hi)
	switch {
	case okl && okh:
		a.opt(opt, dec(l)+":"+dec(h))
	case okl:
		a.opt(opt, dec(l))
	case okh:
		a.opt(opt, "0:"+dec(h))
	}
}

// ebKnown are the attributes ebArgs renders, per element.
var ebKnown = map[string][]string{
	"mac":  {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "protocolid", "comment"},
	"vlan": {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "vlanid", "encap-protocol", "comment"},
	"stp": {"srcmacaddr", "srcmacmask", "type", "flags", "root-priority", "root-priority-hi", "root-address", "root-address-mask",
		"root-cost", "root-cost-hi", "sender-priority", "sender-priority-hi", "sender-address", "sender-address-mask",
		"port", "port-hi", "age", "age-hi", "max-age", "max-age-hi", "hello-time", "hello-time-hi",
		"forward-delay", "forward-delay-hi", "comment"},
	"arp": {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "hwtype", "protocoltype", "opcode",
		"arpsrcmacaddr", "arpdstmacaddr", "arpsrcipaddr", "arpsrcipmask", "arpdstipaddr", "arpdstipmask", "gratuitous", "comment"},
	"ip": {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "srcipaddr", "srcipmask", "dstipaddr", "dstipmask",
		"protocol", "srcportstart", "srcportend", "dstportstart", "dstportend", "dscp", "comment"},
	"ipv6": {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "srcipaddr", "srcipmask", "dstipaddr", "dstipmask",
		"protocol", "srcportstart", "srcportend", "dstportstart", "dstportend", "type", "typeend", "code", "codeend", "comment"},
}

func init() { ebKnown["rarp"] = ebKnown["arp"] }

func (a *argb) unused() error {
	known := ebKnown[a.rule.Protocol]
	for _, f := range a.rule.Fields {
		ok := false
		for _, k := range known {
			ok = ok || k == f.Attr
		}
		if !ok {
			return fmt.Errorf("%s attribute %s: %w", a.rule.Protocol, f.Attr, errUnsupported)
		}
	}
	if a.rule.Protocol == "arp" || a.rule.Protocol == "rarp" {
		if v, ok := a.rule.Field("gratuitous"); ok && v != "true" && v != "false" {
			return fmt.Errorf("gratuitous %q: %w", v, errUnsupported)
		}
	}
	return nil
}

// ebVerdict is the target of an Ethernet-layer rule: libvirt's reject
// is DROP (ebtables cannot answer), continue is CONTINUE.
func ebVerdict(r *netfilter.Rule) (string, error) {
	switch r.Action {
	case netfilter.Accept:
		return "ACCEPT", nil
	case netfilter.Drop, netfilter.Reject:
		return "DROP", nil
	case netfilter.Return:
		return "RETURN", nil
	case netfilter.Continue:
		return "CONTINUE", nil
	}
	return "", fmt.Errorf("action %s: %w", r.Action, errUnsupported)
}

func joinArgs(args []string) string { return strings.Join(args, " ") }

// dec renders a number libvirt may write in hexadecimal ("0x12") in
// decimal, as ebtables and iptables read most numbers; other text is
// returned as it is.
func dec(v string) string {
	if n, err := strconv.ParseUint(v, 0, 64); err == nil {
		return strconv.FormatUint(n, 10)
	}
	return v
}
