package nftables

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
)

// The match compiler: one instantiated nwfilter rule (a protocol element
// and its attributes, netfilter.Rule) in, the nftables expressions that
// match the same packets as libvirt's ebtables/iptables rule out.
//
// compileMatch is the entry point; match_ethernet.go holds the
// Ethernet-layer elements (libvirt renders them with ebtables),
// match_ip.go the IP-layer ones (libvirt renders them with iptables and
// ip6tables), values.go the decoding of attribute values.
//
// The compiler works in two steps. A builder first turns the rule's
// fields into checks: each check compares one packet field (loaded from
// a header, possibly masked) with a value or a range, and may carry
// preconditions (comparisons that match='no' does not negate, such as
// the ARP protocol length a sender-IP match needs). compileMatch then
// renders the checks: literal ones as load + cmp/range, shared ones as
// parts of one concatenated set lookup. sharedKey and sharedKeyType run
// the same builder on the shared fields alone, so a set's elements and
// key type always agree with the rule that looks them up.
//
// What the compiler does not do: verdicts, counters, connection
// tracking (state, statematch, the direction of a connection), ipset
// and connlimit-above, and choosing which directions and chains a rule
// goes into; those belong to the caller.

// errUnsupported is wrapped by errors for attributes (or combinations of
// them) that the nftables backend cannot express. The error names the
// protocol element, the attribute and the reason.
//
// Always unsupported here because the caller owns them: state,
// connlimit-above, ipset and ipsetflags (conntrack and ipset decisions).
// Unsupported on nftables at all: gratuitous='true' (it compares two
// packet fields with each other, which nftables expressions cannot do on
// the kernels netwarden supports), and a few shapes of shared lookups
// (see matchOptions.Shared).
var errUnsupported = errors.New("not supported by the nftables backend")

// errNoRule is wrapped by compileMatch's error when libvirt emits no rule
// at all for this rule and direction, so the caller must not emit one
// either. libvirt drops (1) the reply-direction (Swap) rule of an
// IP-layer element whose only match is srcmacaddr (iptables cannot match
// a destination MAC address), (2) every reply-direction rule, and
// both halves of an inout rule, of an icmp/icmpv6 element with a type,
// and (3) the rule compileMatch would render as never matching (icmp
// match='no' type='255', iptables' wildcard type negated).
var errNoRule = errors.New("libvirt emits no rule for this rule and direction")

// matchOptions tune compileMatch.
type matchOptions struct {
	// Dir is the direction the compiled rule serves: DirOut (from the
	// guest: the port is the input interface, meta iifname) or DirIn
	// (to the guest: meta oifname). Never DirInOut (the caller splits).
	// Pass the rule as instantiated: compileMatch reads r.Direction too,
	// because libvirt treats the halves of an inout rule specially
	// (ebtables reverses the outgoing half; iptables drops both halves of
	// an icmp rule with a type).
	//
	// libvirt's iptables halves map to (Dir, Swap) as follows: a rule
	// out is (DirOut, false) in FJ and HJ, (DirIn, true) in FP; a rule
	// in is (DirIn, false) in FP, (DirOut, true) in FJ and HJ; a rule
	// inout is (DirIn, false) in FP, (DirOut, true) in FJ and HJ.
	//
	// Bridged traffic reaches an inet-family chain through br_netfilter
	// with the bridge, not the port, as its input and output interface:
	// a Shared lookup of an IP-layer rule keyed by iifname/oifname
	// therefore only tells ports apart for traffic that is not bridged.
	Dir netfilter.Direction
	// Shared lists indexes into r.Fields whose values are NOT compared
	// literally but looked up, together, in the set Set whose key is the
	// concatenation: port interface name (iifname for DirOut, oifname
	// for DirIn) . field1 . field2 … in this order. Empty: all fields
	// literal, and no interface-name match at all (the caller dispatches
	// by port).
	//
	// A literal mask of a shared address (srcipmask of srcipaddr, …) is
	// applied to the packet before the lookup; pass it to sharedKey too
	// (keyFields does). Not shareable (errUnsupported): masks, the ends
	// of ranges and a start whose range has an end, tcp flags and
	// option, icmp type and code of IP-layer elements, the DSCP of
	// IP-layer elements, stp config fields a literal stp type
	// makes irrelevant, an attribute libvirt ignores in this rule, more
	// than one field with match='no' (libvirt negates each attribute
	// alone, a lookup negates them together), and keys beyond the
	// kernel's 64 bytes or 5 parts. A srcmacaddr of an IP-layer rule
	// that libvirt does not match in a Swap rule is left out of the key
	// (sharedKey does the same); when no shared field is left, there is
	// no lookup at all and the set's elements are unused.
	Shared []int
	// Set is the set for Shared lookups (name/ID as the caller created
	// it, key type from sharedKeyType).
	Set *nftables.Set
	// Swap exchanges source and destination (addresses, ports, MACs
	// where libvirt does) — libvirt's reply-direction rules in its
	// iptables FP/FJ chains. For an Ethernet-layer element (libvirt has
	// no reply rules there) compileMatch reverses by itself where
	// libvirt's ebtables does: the outgoing half (DirOut) of an inout
	// rule; Swap=true reverses too.
	Swap bool
}

// Registers. Literal comparisons use NFT_REG_1; a shared lookup loads its
// key parts into consecutive 32-bit registers from NFT_REG32_00, each
// part starting on a register boundary as concatenations require.
const (
	regCmp     = unix.NFT_REG_1
	regKey     = unix.NFT_REG32_00
	maxKeyLen  = 64 // NFT_REG32_00 … NFT_REG32_15
	maxKeyPart = 5  // what a set's key type can describe (32 bits / 6)
)

// locKind says how a loc loads its field.
type locKind uint8

const (
	locPayload locKind = iota // a header field (payload expression)
	locMeta                   // packet metadata (meta expression)
	locTCPOpt                 // presence of a TCP option (exthdr expression)
)

// loc is where a compared value comes from, and the mask applied to it.
type loc struct {
	kind   locKind
	base   expr.PayloadBase
	meta   expr.MetaKey
	offset uint32
	len    uint32
	mask   []byte // nil: none
	option uint8  // TCP option kind for locTCPOpt
}

// payload returns the loc of len bytes at offset of the header base.
func payload(base expr.PayloadBase, offset, length uint32) loc {
	return loc{kind: locPayload, base: base, offset: offset, len: length}
}

// ll returns a payload loc in the link-layer header.
func ll(offset, length uint32) loc { return payload(expr.PayloadBaseLLHeader, offset, length) }

// nh returns a payload loc in the network header.
func nh(offset, length uint32) loc { return payload(expr.PayloadBaseNetworkHeader, offset, length) }

// th returns a payload loc in the transport header.
func th(offset, length uint32) loc { return payload(expr.PayloadBaseTransportHeader, offset, length) }

// metaLoc returns the loc of a one-byte meta key (nfproto, l4proto).
func metaLoc(key expr.MetaKey) loc { return loc{kind: locMeta, meta: key, len: 1} }

// masked returns l with a mask applied after loading; a mask of all ones
// is no mask.
func (l loc) masked(mask []byte) loc {
	if mask != nil && !allOnes(mask) {
		l.mask = mask
	}
	return l
}

// load returns the expressions that load the field into reg.
func (l loc) load(reg uint32) []expr.Any {
	var out []expr.Any
	switch l.kind {
	case locMeta:
		out = append(out, &expr.Meta{Key: l.meta, Register: reg})
	case locTCPOpt:
		out = append(out, &expr.Exthdr{
			Op: expr.ExthdrOpTcpopt, Type: l.option, Len: 1,
			Flags: unix.NFT_EXTHDR_F_PRESENT, DestRegister: reg,
		})
	default:
		out = append(out, &expr.Payload{DestRegister: reg, Base: l.base, Offset: l.offset, Len: l.len})
	}
	if l.mask != nil {
		out = append(out, &expr.Bitwise{
			SourceRegister: reg, DestRegister: reg, Len: l.len,
			Mask: l.mask, Xor: make([]byte, l.len),
		})
	}
	return out
}

// key identifies the loaded value (for de-duplicating preconditions).
func (l loc) key() string {
	return fmt.Sprintf("%d/%d/%d/%d/%d/%x/%d", l.kind, l.base, l.meta, l.offset, l.len, l.mask, l.option)
}

// cond is a precondition: a comparison that match='no' does not negate.
type cond struct {
	at    loc
	op    expr.CmpOp
	value []byte
}

// key identifies the comparison.
func (c cond) key() string { return fmt.Sprintf("%s/%d/%x", c.at.key(), c.op, c.value) }

// exprs renders the precondition.
func (c cond) exprs() []expr.Any {
	return append(c.at.load(regCmp), &expr.Cmp{Op: c.op, Register: regCmp, Data: c.value})
}

// check compares one attribute's packet field with its value.
type check struct {
	// attr is the attribute whose value is compared: the key part when
	// the attribute is shared.
	attr string
	// with are the attributes folded into this comparison (a mask, a
	// range end, an icmp code).
	with []string
	// pre are preconditions emitted before the comparison.
	pre []cond
	// at is the packet field.
	at loc
	// typ is the set key type of the field.
	typ nftables.SetDatatype
	// neg negates the comparison (match='no').
	neg bool
	// lo is the value (already masked); with hi set, the range lo..hi.
	lo, hi []byte
	// asRange renders an equality as the range lo..lo: nft shows a
	// comparison of two header fields at once as two comparisons, which
	// reads wrongly when negated; a range it shows as one.
	asRange bool
	// noKey is why attr cannot be a key part ("" when it can).
	noKey string
}

// exprs renders a literal check (not its preconditions).
func (c *check) exprs() []expr.Any {
	out := c.at.load(regCmp)
	op := expr.CmpOpEq
	if c.neg {
		op = expr.CmpOpNeq
	}
	if c.hi != nil || c.asRange {
		hi := c.hi
		if hi == nil {
			hi = c.lo
		}
		return append(out, &expr.Range{Op: op, Register: regCmp, FromData: c.lo, ToData: hi})
	}
	return append(out, &expr.Cmp{Op: op, Register: regCmp, Data: c.lo})
}

// omitReason says why an attribute produced no check.
type omitReason uint8

const (
	// omitSwapped: libvirt does not match the attribute in this
	// direction (srcmacaddr of an IP-layer rule with Swap); a shared
	// one is left out of the key.
	omitSwapped omitReason = iota + 1
	// omitIgnored: libvirt ignores the attribute in this rule (a false
	// gratuitous, srcipfrom next to srcipaddr, stp config fields under a
	// type that is not a configuration BPDU); it cannot be shared.
	omitIgnored
)

// builder turns a rule's fields into checks. One builder runs per
// compileMatch, sharedKey or sharedKeyType call.
type builder struct {
	proto  string
	fields []netfilter.Field
	// swap reverses source and destination (see matchOptions.Swap).
	swap bool
	// neg is match='no': every check is negated.
	neg bool
	// inout is true when the rule's direction is inout.
	inout bool
	// partial is set when only key fields are given (sharedKey,
	// sharedKeyType): rules tying attributes together are not checked.
	partial bool

	pre     []cond // the element's own preconditions (EtherType, family, protocol)
	post    []cond // preconditions emitted after the checks (see buildVLAN)
	checks  []check
	omitted map[string]omitReason
	// noRule is set when libvirt emits no rule (see errNoRule).
	noRule string
}

// value returns the value of attr and whether the rule has it.
func (b *builder) value(attr string) (string, bool) {
	for _, f := range b.fields {
		if f.Attr == attr {
			return f.Value, true
		}
	}
	return "", false
}

// has reports whether the rule has attr.
func (b *builder) has(attr string) bool {
	_, ok := b.value(attr)
	return ok
}

// fail wraps err with the element, attribute and value.
func (b *builder) fail(attr string, err error) error {
	v, _ := b.value(attr)
	return fmt.Errorf("%s: %s=%q: %w", b.element(), attr, v, err)
}

// unsupported returns an errUnsupported error naming attr and reason.
func (b *builder) unsupported(attr, reason string) error {
	v, _ := b.value(attr)
	return fmt.Errorf("%s: %s=%q: %s: %w", b.element(), attr, v, reason, errUnsupported)
}

// element names the protocol element for messages.
func (b *builder) element() string {
	if b.proto == "" {
		return "rule without protocol element"
	}
	return b.proto
}

// omit records that attr produced no check.
func (b *builder) omit(attr string, why omitReason) {
	if b.omitted == nil {
		b.omitted = make(map[string]omitReason)
	}
	b.omitted[attr] = why
}

// add appends a check for attr (negated by match='no').
func (b *builder) add(c check) {
	c.neg = b.neg
	b.checks = append(b.checks, c)
}

// eq adds an equality check of attr, decoding its value with decode.
func (b *builder) eq(attr string, at loc, typ nftables.SetDatatype, decode func(string) ([]byte, error), pre ...cond) error {
	v, ok := b.value(attr)
	if !ok {
		return nil
	}
	val, err := decode(v)
	if err != nil {
		return b.fail(attr, err)
	}
	b.add(check{attr: attr, at: at, typ: typ, lo: val, pre: pre})
	return nil
}

// maskedEq adds a check of attr under the mask maskAttr (when present):
// (field & mask) == (value & mask), as ebtables and iptables compare
// addresses with masks.
func (b *builder) maskedEq(attr, maskAttr string, at loc, typ nftables.SetDatatype,
	decode, decodeMask func(string) ([]byte, error), pre ...cond) error {
	v, ok := b.value(attr)
	if !ok {
		return nil
	}
	val, err := decode(v)
	if err != nil {
		return b.fail(attr, err)
	}
	c := check{attr: attr, at: at, typ: typ, lo: val, pre: pre}
	if mv, ok := b.value(maskAttr); ok {
		mask, err := decodeMask(mv)
		if err != nil {
			return b.fail(maskAttr, err)
		}
		c.at = at.masked(mask)
		c.lo = and(val, mask)
		c.with = []string{maskAttr}
	}
	b.add(c)
	return nil
}

// rangeEq adds a check of attr, or of the range attr..hiAttr when hiAttr
// is present (libvirt's start/end and x/x-hi pairs; ends are inclusive).
func (b *builder) rangeEq(attr, hiAttr string, at loc, typ nftables.SetDatatype,
	decode func(string) ([]byte, error), pre ...cond) error {
	v, ok := b.value(attr)
	if !ok {
		return nil
	}
	lo, err := decode(v)
	if err != nil {
		return b.fail(attr, err)
	}
	c := check{attr: attr, at: at, typ: typ, lo: lo, pre: pre}
	if hv, ok := b.value(hiAttr); ok {
		hi, err := decode(hv)
		if err != nil {
			return b.fail(hiAttr, err)
		}
		if slices.Compare(lo, hi) > 0 {
			return b.fail(hiAttr, fmt.Errorf("below %s %s", attr, v))
		}
		c.hi = hi
		c.with = []string{hiAttr}
		c.noKey = fmt.Sprintf("a range (%s..%s) cannot be part of a set key", attr, hiAttr)
	}
	b.add(c)
	return nil
}

// uintDecoder returns a decoder of numbers of width bytes.
func uintDecoder(width int) func(string) ([]byte, error) {
	return func(s string) ([]byte, error) { return uintBytes(s, width) }
}

// maskDecoder returns a decoder of prefix lengths for addresses of width
// bytes.
func maskDecoder(width int) func(string) ([]byte, error) {
	return func(s string) ([]byte, error) { return prefixMask(s, width) }
}

// ethernetProtocols are the elements libvirt renders with ebtables, with
// the attributes each accepts; "" is a rule without a protocol element.
var ethernetProtocols = map[string][]string{
	"":     nil,
	"mac":  {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "protocolid"},
	"vlan": {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "vlanid", "encap-protocol"},
	"stp": {"srcmacaddr", "srcmacmask", "type", "flags", "root-priority", "root-priority-hi",
		"root-address", "root-address-mask", "root-cost", "root-cost-hi", "sender-priority",
		"sender-priority-hi", "sender-address", "sender-address-mask", "port", "port-hi", "age",
		"age-hi", "max-age", "max-age-hi", "hello-time", "hello-time-hi", "forward-delay",
		"forward-delay-hi"},
	"arp": arpAttrs, "rarp": arpAttrs,
	"ip": {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "srcipaddr", "srcipmask",
		"dstipaddr", "dstipmask", "protocol", "srcportstart", "srcportend", "dstportstart",
		"dstportend", "dscp"},
	"ipv6": {"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "srcipaddr", "srcipmask",
		"dstipaddr", "dstipmask", "protocol", "srcportstart", "srcportend", "dstportstart",
		"dstportend", "type", "typeend", "code", "codeend"},
}

var arpAttrs = []string{"srcmacaddr", "srcmacmask", "dstmacaddr", "dstmacmask", "hwtype",
	"protocoltype", "opcode", "arpsrcmacaddr", "arpdstmacaddr", "arpsrcipaddr", "arpsrcipmask",
	"arpdstipaddr", "arpdstipmask", "gratuitous"}

// ipCommonAttrs are the attributes of every IP-layer element.
var ipCommonAttrs = []string{"srcmacaddr", "srcipaddr", "srcipmask", "dstipaddr", "dstipmask",
	"srcipfrom", "srcipto", "dstipfrom", "dstipto", "dscp", "connlimit-above", "state", "ipset",
	"ipsetflags"}

var portAttrNames = []string{"srcportstart", "srcportend", "dstportstart", "dstportend"}

// ipProtocols are the elements libvirt renders with iptables/ip6tables:
// their extra attributes (besides ipCommonAttrs), IP version and layer-4
// protocol (0: any).
var ipProtocols = map[string]struct {
	attrs   []string
	v6      bool
	l4proto byte
}{
	"tcp":          {append(slices.Clone(portAttrNames), "option", "flags"), false, unix.IPPROTO_TCP},
	"udp":          {portAttrNames, false, unix.IPPROTO_UDP},
	"sctp":         {portAttrNames, false, unix.IPPROTO_SCTP},
	"udplite":      {nil, false, unix.IPPROTO_UDPLITE},
	"esp":          {nil, false, unix.IPPROTO_ESP},
	"ah":           {nil, false, unix.IPPROTO_AH},
	"igmp":         {nil, false, unix.IPPROTO_IGMP},
	"icmp":         {[]string{"type", "code"}, false, unix.IPPROTO_ICMP},
	"all":          {nil, false, 0},
	"tcp-ipv6":     {append(slices.Clone(portAttrNames), "option"), true, unix.IPPROTO_TCP},
	"udp-ipv6":     {portAttrNames, true, unix.IPPROTO_UDP},
	"sctp-ipv6":    {portAttrNames, true, unix.IPPROTO_SCTP},
	"udplite-ipv6": {nil, true, unix.IPPROTO_UDPLITE},
	"esp-ipv6":     {nil, true, unix.IPPROTO_ESP},
	"ah-ipv6":      {nil, true, unix.IPPROTO_AH},
	"icmpv6":       {[]string{"type", "code"}, true, unix.IPPROTO_ICMPV6},
	"all-ipv6":     {nil, true, 0},
}

// callerAttrs are the attributes the caller implements (conntrack and
// ipset); compileMatch refuses them so they are never silently dropped.
var callerAttrs = map[string]string{
	"state":           "connection states are the caller's (conntrack)",
	"connlimit-above": "connection limits are the caller's (conntrack)",
	"ipset":           "ipset matches are the caller's",
	"ipsetflags":      "ipset matches are the caller's",
}

// protocolFamily returns the table family a protocol element compiles
// for, and whether the element is known.
func protocolFamily(proto string) (nftables.TableFamily, bool) {
	if _, ok := ethernetProtocols[proto]; ok {
		return nftables.TableFamilyBridge, true
	}
	if _, ok := ipProtocols[proto]; ok {
		return nftables.TableFamilyINet, true
	}
	return 0, false
}

// allowedAttr reports whether the protocol element accepts attr.
func allowedAttr(proto, attr string) bool {
	if attrs, ok := ethernetProtocols[proto]; ok {
		return slices.Contains(attrs, attr)
	}
	p, ok := ipProtocols[proto]
	return ok && (slices.Contains(ipCommonAttrs, attr) || slices.Contains(p.attrs, attr))
}

// newBuilder validates the element and its attribute names and returns a
// builder for them.
func newBuilder(proto string, fields []netfilter.Field) (*builder, error) {
	if _, ok := protocolFamily(proto); !ok {
		return nil, fmt.Errorf("unknown protocol element %q", proto)
	}
	b := &builder{proto: proto, fields: fields}
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if !allowedAttr(proto, f.Attr) {
			return nil, fmt.Errorf("%s: unknown attribute %q", b.element(), f.Attr)
		}
		if seen[f.Attr] {
			return nil, fmt.Errorf("%s: attribute %s given twice", b.element(), f.Attr)
		}
		seen[f.Attr] = true
	}
	return b, nil
}

// build runs the element's builder.
func (b *builder) build() error {
	if _, ok := ethernetProtocols[b.proto]; ok {
		return b.buildEthernet()
	}
	return b.buildIP()
}

// compileMatch returns the nftables expressions that match the rule's
// protocol element and fields, with libvirt's meaning, ending WITHOUT a
// verdict (the caller appends counters and verdicts).
//
// fam is nftables.TableFamilyBridge for Ethernet-layer protocols ("" i.e.
// no protocol element, mac, vlan, stp, arp, rarp, ip, ipv6) and
// nftables.TableFamilyINet for IP-layer ones (tcp, udp, udplite, esp, ah,
// sctp, icmp, igmp, all and tcp-ipv6 … all-ipv6, icmpv6).
//
// An attribute it cannot express returns an error wrapping errUnsupported
// naming protocol, attribute and reason; state, connlimit-above, ipset
// and ipsetflags always do (the caller handles them, as it handles
// r.Action, r.StateMatch, directions and counters). An error wrapping
// errNoRule means libvirt emits no rule for this rule and direction.
// Other errors are bad input: an unknown element or attribute, a value
// that does not parse, DirInOut, or a rule libvirt itself refuses.
func compileMatch(fam nftables.TableFamily, r *netfilter.Rule, o matchOptions) ([]expr.Any, error) {
	if o.Dir != netfilter.DirIn && o.Dir != netfilter.DirOut {
		return nil, fmt.Errorf("compile match: direction must be in or out, not %s", o.Dir)
	}
	want, ok := protocolFamily(r.Protocol)
	if !ok {
		return nil, fmt.Errorf("compile match: unknown protocol element %q", r.Protocol)
	}
	if fam != want {
		return nil, fmt.Errorf("compile match: %s rules compile for the %s family, not %s", elementName(r.Protocol), familyName(want), familyName(fam))
	}
	b, err := newBuilder(r.Protocol, r.Fields)
	if err != nil {
		return nil, err
	}
	for _, f := range r.Fields {
		if reason, ok := callerAttrs[f.Attr]; ok {
			return nil, b.unsupported(f.Attr, reason)
		}
	}
	b.neg = r.Negate
	b.inout = r.Direction == netfilter.DirInOut
	b.swap = o.Swap
	if fam == nftables.TableFamilyBridge && b.inout && o.Dir == netfilter.DirOut {
		// libvirt's ebtables reverses the outgoing half of an inout rule.
		b.swap = true
	}
	if err := b.build(); err != nil {
		return nil, err
	}
	if b.noRule != "" {
		return nil, fmt.Errorf("%s: %s: %w", b.element(), b.noRule, errNoRule)
	}
	shared, err := b.sharedChecks(r.Fields, o.Shared)
	if err != nil {
		return nil, err
	}
	if len(o.Shared) > 0 && o.Set == nil {
		return nil, fmt.Errorf("%s: shared fields need a set", b.element())
	}

	var out []expr.Any
	// seen holds the comparisons already made, so that a precondition
	// equal to one (the ARP hardware type 1 a MAC match needs, next to
	// hwtype='1') is not repeated.
	seen := make(map[string]bool)
	emit := func(cs []cond) {
		for _, c := range cs {
			if k := c.key(); !seen[k] {
				seen[k] = true
				out = append(out, c.exprs()...)
			}
		}
	}
	emit(b.pre)
	for i := range b.checks {
		c := &b.checks[i]
		emit(c.pre)
		if !slices.Contains(shared, c) {
			out = append(out, c.exprs()...)
			if !c.neg && c.hi == nil && !c.asRange {
				seen[cond{at: c.at, op: expr.CmpOpEq, value: c.lo}.key()] = true
			}
		}
	}
	emit(b.post)
	if len(shared) == 0 {
		// No field left to look up (a Swap rule's srcmacaddr): a lookup
		// of the port name alone would only select the set's ports, and
		// inverted (match='no') none at all.
		return out, nil
	}
	port := expr.MetaKeyIIFNAME
	if o.Dir == netfilter.DirIn {
		port = expr.MetaKeyOIFNAME
	}
	out = append(out, &expr.Meta{Key: port, Register: regKey})
	reg := uint32(regKey + ifNameSize/4)
	for _, c := range shared {
		out = append(out, c.at.load(reg)...)
		reg += (c.at.len + 3) / 4
	}
	out = append(out, &expr.Lookup{SourceRegister: regKey, SetName: o.Set.Name, SetID: o.Set.ID, Invert: r.Negate})
	return out, nil
}

// sharedChecks returns the checks of the shared fields, in key order, or
// errUnsupported when they cannot form a set key.
func (b *builder) sharedChecks(fields []netfilter.Field, idx []int) ([]*check, error) {
	var out []*check
	keyLen := uint32(ifNameSize)
	seen := make(map[int]bool)
	for _, i := range idx {
		if i < 0 || i >= len(fields) {
			return nil, fmt.Errorf("%s: shared field index %d out of range (%d fields)", b.element(), i, len(fields))
		}
		if seen[i] {
			return nil, fmt.Errorf("%s: shared field %s listed twice", b.element(), fields[i].Attr)
		}
		seen[i] = true
		c, err := b.keyCheck(fields[i].Attr)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		out = append(out, c)
		keyLen += (c.at.len + 3) / 4 * 4
	}
	if b.neg && len(out) > 1 {
		return nil, b.unsupported(fields[idx[0]].Attr, "match='no' negates each attribute alone; a lookup of several shared fields would negate them together")
	}
	if len(out)+1 > maxKeyPart || keyLen > maxKeyLen {
		return nil, b.unsupported(fields[idx[0]].Attr, fmt.Sprintf("a set key of %d parts and %d bytes exceeds the kernel's %d parts and %d bytes", len(out)+1, keyLen, maxKeyPart, maxKeyLen))
	}
	return out, nil
}

// keyCheck returns the check that makes attr a key part, nil when attr is
// legitimately left out of the key, or errUnsupported.
func (b *builder) keyCheck(attr string) (*check, error) {
	for i := range b.checks {
		c := &b.checks[i]
		if c.attr == attr {
			if c.noKey != "" {
				return nil, b.unsupported(attr, c.noKey)
			}
			return c, nil
		}
		if slices.Contains(c.with, attr) {
			return nil, b.unsupported(attr, fmt.Sprintf("it qualifies %s and cannot be looked up; share %s only", c.attr, c.attr))
		}
	}
	switch b.omitted[attr] {
	case omitSwapped:
		return nil, nil
	case omitIgnored:
		return nil, b.unsupported(attr, "libvirt ignores it in this rule, so there is nothing to look up")
	}
	return nil, b.unsupported(attr, "not matched by this rule")
}

// keyChecks builds the checks of the given key fields (see sharedKey).
func keyChecks(proto string, fields []netfilter.Field, swap bool) (*builder, []*check, error) {
	b, err := newBuilder(proto, fields)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fields {
		if reason, ok := callerAttrs[f.Attr]; ok {
			return nil, nil, b.unsupported(f.Attr, reason)
		}
	}
	b.partial = true
	b.swap = swap
	if err := b.build(); err != nil {
		return nil, nil, err
	}
	var out []*check
	for _, f := range fields {
		if isQualifier(b, f.Attr) {
			continue
		}
		c, err := b.keyCheck(f.Attr)
		if err != nil {
			return nil, nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return b, out, nil
}

// isQualifier reports whether attr only qualifies another attribute's
// check (a mask) rather than being compared itself.
func isQualifier(b *builder, attr string) bool {
	for _, c := range b.checks {
		if c.attr == attr {
			return false
		}
	}
	for _, c := range b.checks {
		if slices.Contains(c.with, attr) {
			return true
		}
	}
	return false
}

// sharedKeyType returns the set key type for a Shared lookup of these
// fields of a rule of protocol proto: ifname followed by each field's
// type (nftables.ConcatSetType), consistent with what compileMatch loads.
// fields are as for sharedKey.
func sharedKeyType(proto string, fields []netfilter.Field, swap bool) (nftables.SetDatatype, error) {
	_, checks, err := keyChecks(proto, fields, swap)
	if err != nil {
		return nftables.SetDatatype{}, err
	}
	types := []nftables.SetDatatype{nftables.TypeIFName}
	for _, c := range checks {
		types = append(types, c.typ)
	}
	if len(types) > maxKeyPart {
		return nftables.SetDatatype{}, fmt.Errorf("%s: a set key of %d parts exceeds the kernel's %d: %w", elementName(proto), len(types), maxKeyPart, errUnsupported)
	}
	return nftables.ConcatSetType(types...)
}

// sharedKey encodes one set element key: port name then the fields'
// values, each padded as the kernel expects for concatenations (4-byte
// register alignment), consistent with compileMatch's loads.
//
// fields are the shared fields in key order (r.Fields[i] for i in
// matchOptions.Shared) plus the literal masks of shared addresses, which
// are applied to the address rather than forming key parts, as
// compileMatch applies them to the packet: keyFields(r, shared) returns
// exactly that list. swap is matchOptions.Swap.
func sharedKey(port string, proto string, fields []netfilter.Field, swap bool) ([]byte, error) {
	key, err := ifnameKey(port)
	if err != nil {
		return nil, err
	}
	_, checks, err := keyChecks(proto, fields, swap)
	if err != nil {
		return nil, err
	}
	for _, c := range checks {
		part := make([]byte, (len(c.lo)+3)/4*4)
		copy(part, c.lo)
		key = append(key, part...)
	}
	if len(checks)+1 > maxKeyPart || len(key) > maxKeyLen {
		return nil, fmt.Errorf("%s: a set key of %d parts and %d bytes exceeds the kernel's limits: %w", elementName(proto), len(checks)+1, len(key), errUnsupported)
	}
	return key, nil
}

// maskOf maps an address attribute to the mask attribute that qualifies
// it.
var maskOf = map[string]string{
	"srcmacaddr": "srcmacmask", "dstmacaddr": "dstmacmask",
	"srcipaddr": "srcipmask", "dstipaddr": "dstipmask",
	"arpsrcipaddr": "arpsrcipmask", "arpdstipaddr": "arpdstipmask",
	"root-address": "root-address-mask", "sender-address": "sender-address-mask",
}

// keyFields returns the fields to pass to sharedKey and sharedKeyType for
// a lookup of r.Fields[shared…]: the shared fields in order, each
// followed by its mask when the rule has one that is not itself shared.
func keyFields(r *netfilter.Rule, shared []int) []netfilter.Field {
	var out []netfilter.Field
	for _, i := range shared {
		if i < 0 || i >= len(r.Fields) {
			continue
		}
		f := r.Fields[i]
		out = append(out, f)
		m, ok := maskOf[f.Attr]
		if !ok {
			continue
		}
		for j, g := range r.Fields {
			if g.Attr == m && !slices.Contains(shared, j) {
				out = append(out, g)
			}
		}
	}
	return out
}

// elementName names a protocol element for messages.
func elementName(proto string) string {
	if proto == "" {
		return "rule without protocol element"
	}
	return proto
}

// familyName names a table family for messages.
func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyARP:
		return "arp"
	}
	return strings.ToLower(fmt.Sprintf("family(%d)", f))
}
