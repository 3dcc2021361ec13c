package policy

import "strings"

// This file holds the per-protocol attribute tables: which attributes each
// protocol element accepts, of which kind, in which canonical order (the
// order libvirt formats them in), and the rules that tie attributes
// together. The tables follow libvirt 9.0's parser (src/conf/nwfilter_conf.c),
// which differs from its schema in a few places noted below.

// attrSpec is one attribute of a protocol element.
type attrSpec struct {
	name string
	kind Kind
}

// protoSpec describes one protocol element.
type protoSpec struct {
	attrs []attrSpec // canonical order; match and comment are not listed
	// family is 4 or 6 for IP protocols (their address kinds), 0 for
	// Ethernet-level ones.
	family int
}

func macL2Attrs() []attrSpec {
	return []attrSpec{
		{"srcmacaddr", KindMAC}, {"srcmacmask", KindMACMask},
		{"dstmacaddr", KindMAC}, {"dstmacmask", KindMACMask},
	}
}

func portAttrs() []attrSpec {
	return []attrSpec{
		{"srcportstart", KindUint16}, {"srcportend", KindUint16},
		{"dstportstart", KindUint16}, {"dstportend", KindUint16},
	}
}

func addrKinds(family int) (addr, mask Kind) {
	if family == 6 {
		return KindIPv6, KindIPv6Mask
	}
	return KindIPv4, KindIPv4Mask
}

// commonIPAttrs are the attributes of the layer-4 elements (tcp, udp, …,
// all and their -ipv6 forms). dstipto has the address kind of the family;
// libvirt types it as IPv4 even on -ipv6 elements, a bug netwarden does not
// copy.
func commonIPAttrs(family int) []attrSpec {
	addr, mask := addrKinds(family)
	return []attrSpec{
		{"srcmacaddr", KindMAC},
		{"srcipaddr", addr}, {"srcipmask", mask},
		{"dstipaddr", addr}, {"dstipmask", mask},
		{"srcipfrom", addr}, {"srcipto", addr},
		{"dstipfrom", addr}, {"dstipto", addr},
		{"dscp", KindSixBit},
		{"connlimit-above", KindConnLimit},
		{"state", KindStateFlags},
		{"ipset", KindIPSetName}, {"ipsetflags", KindIPSetFlags},
	}
}

func concatAttrs(lists ...[]attrSpec) []attrSpec {
	var out []attrSpec
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var protocolSpecs = buildProtocolSpecs()

func buildProtocolSpecs() map[Protocol]*protoSpec {
	arp := concatAttrs(macL2Attrs(), []attrSpec{
		{"hwtype", KindUint16}, {"protocoltype", KindUint16}, {"opcode", KindARPOpcode},
		{"arpsrcmacaddr", KindMAC}, {"arpdstmacaddr", KindMAC},
		// arpsrcipmask and arpdstipmask are missing from libvirt's schema
		// but accepted and used by its parser and drivers.
		{"arpsrcipaddr", KindIPv4}, {"arpsrcipmask", KindIPv4Mask},
		{"arpdstipaddr", KindIPv4}, {"arpdstipmask", KindIPv4Mask},
		{"gratuitous", KindBool},
	})
	ipLayer := func(family int) []attrSpec {
		addr, mask := addrKinds(family)
		return concatAttrs(macL2Attrs(), []attrSpec{
			{"srcipaddr", addr}, {"srcipmask", mask},
			{"dstipaddr", addr}, {"dstipmask", mask},
			{"protocol", KindIPProtocol},
		}, portAttrs())
	}
	stp := []attrSpec{
		{"srcmacaddr", KindMAC}, {"srcmacmask", KindMACMask},
		{"type", KindUint8}, {"flags", KindUint8},
		{"root-priority", KindUint16}, {"root-priority-hi", KindUint16},
		{"root-address", KindMAC}, {"root-address-mask", KindMACMask},
		{"root-cost", KindUint32}, {"root-cost-hi", KindUint32},
		{"sender-priority", KindUint16}, {"sender-priority-hi", KindUint16},
		{"sender-address", KindMAC}, {"sender-address-mask", KindMACMask},
		{"port", KindUint16}, {"port-hi", KindUint16},
		{"age", KindUint16}, {"age-hi", KindUint16},
		{"max-age", KindUint16}, {"max-age-hi", KindUint16},
		{"hello-time", KindUint16}, {"hello-time-hi", KindUint16},
		{"forward-delay", KindUint16}, {"forward-delay-hi", KindUint16},
	}
	icmp := []attrSpec{{"type", KindUint8}, {"code", KindUint8}}
	// option (a TCP option kind to match) is accepted and used by
	// libvirt's parser and drivers although the schema omits it; flags is
	// in the schema for tcp-ipv6 too, but libvirt ignores it there.
	tcpExtra := []attrSpec{{"option", KindUint8}}
	tcpFlags := []attrSpec{{"flags", KindTCPFlags}}

	m := map[Protocol]*protoSpec{
		ProtoMAC:  {attrs: concatAttrs(macL2Attrs(), []attrSpec{{"protocolid", KindMACProtocolID}})},
		ProtoVLAN: {attrs: concatAttrs(macL2Attrs(), []attrSpec{{"vlanid", KindVLANID}, {"encap-protocol", KindVLANEncap}})},
		ProtoSTP:  {attrs: stp},
		ProtoARP:  {attrs: arp},
		ProtoRARP: {attrs: arp},
		ProtoIP:   {attrs: concatAttrs(ipLayer(4), []attrSpec{{"dscp", KindSixBit}}), family: 4},
		ProtoIPv6: {attrs: concatAttrs(ipLayer(6), []attrSpec{
			{"type", KindUint8}, {"typeend", KindUint8}, {"code", KindUint8}, {"codeend", KindUint8},
		}), family: 6},
		ProtoTCP:         {attrs: concatAttrs(commonIPAttrs(4), portAttrs(), tcpExtra, tcpFlags), family: 4},
		ProtoUDP:         {attrs: concatAttrs(commonIPAttrs(4), portAttrs()), family: 4},
		ProtoSCTP:        {attrs: concatAttrs(commonIPAttrs(4), portAttrs()), family: 4},
		ProtoUDPLite:     {attrs: commonIPAttrs(4), family: 4},
		ProtoESP:         {attrs: commonIPAttrs(4), family: 4},
		ProtoAH:          {attrs: commonIPAttrs(4), family: 4},
		ProtoAll:         {attrs: commonIPAttrs(4), family: 4},
		ProtoIGMP:        {attrs: commonIPAttrs(4), family: 4},
		ProtoICMP:        {attrs: concatAttrs(commonIPAttrs(4), icmp), family: 4},
		ProtoTCPIPv6:     {attrs: concatAttrs(commonIPAttrs(6), portAttrs(), tcpExtra), family: 6},
		ProtoUDPIPv6:     {attrs: concatAttrs(commonIPAttrs(6), portAttrs()), family: 6},
		ProtoSCTPIPv6:    {attrs: concatAttrs(commonIPAttrs(6), portAttrs()), family: 6},
		ProtoUDPLiteIPv6: {attrs: commonIPAttrs(6), family: 6},
		ProtoESPIPv6:     {attrs: commonIPAttrs(6), family: 6},
		ProtoAHIPv6:      {attrs: commonIPAttrs(6), family: 6},
		ProtoAllIPv6:     {attrs: commonIPAttrs(6), family: 6},
		ProtoICMPv6:      {attrs: concatAttrs(commonIPAttrs(6), icmp), family: 6},
	}
	return m
}

// Protocols returns every protocol element name, in libvirt's order.
func Protocols() []Protocol {
	return []Protocol{
		ProtoMAC, ProtoVLAN, ProtoSTP, ProtoARP, ProtoRARP, ProtoIP, ProtoIPv6,
		ProtoTCP, ProtoICMP, ProtoIGMP, ProtoUDP, ProtoUDPLite, ProtoESP, ProtoAH, ProtoSCTP, ProtoAll,
		ProtoTCPIPv6, ProtoICMPv6, ProtoUDPIPv6, ProtoUDPLiteIPv6, ProtoESPIPv6, ProtoAHIPv6, ProtoSCTPIPv6, ProtoAllIPv6,
	}
}

// Attributes returns the attributes the protocol element accepts besides
// match and comment, in canonical order; nil for an unknown protocol.
func Attributes(p Protocol) []string {
	spec := protocolSpecs[p]
	if spec == nil {
		return nil
	}
	out := make([]string, len(spec.attrs))
	for i, a := range spec.attrs {
		out[i] = a.name
	}
	return out
}

// AttributeKind returns the kind of the protocol element's attribute, and
// false when the element has no such attribute.
func AttributeKind(p Protocol, attr string) (Kind, bool) {
	spec := protocolSpecs[p]
	if spec == nil {
		return 0, false
	}
	if i := spec.index(attr); i >= 0 {
		return spec.attrs[i].kind, true
	}
	return 0, false
}

func (s *protoSpec) index(attr string) int {
	for i, a := range s.attrs {
		if a.name == attr {
			return i
		}
	}
	return -1
}

// attrNeeds lists attributes that are meaningless without another one: libvirt
// silently ignores the first when the second is absent, netwarden refuses
// the rule.
var attrNeeds = []struct{ attr, base string }{
	{"srcmacmask", "srcmacaddr"}, {"dstmacmask", "dstmacaddr"},
	{"srcipmask", "srcipaddr"}, {"dstipmask", "dstipaddr"},
	{"srcipto", "srcipfrom"}, {"dstipto", "dstipfrom"},
	{"srcportend", "srcportstart"}, {"dstportend", "dstportstart"},
	{"arpsrcipmask", "arpsrcipaddr"}, {"arpdstipmask", "arpdstipaddr"},
	{"root-priority-hi", "root-priority"}, {"root-address-mask", "root-address"},
	{"root-cost-hi", "root-cost"}, {"sender-priority-hi", "sender-priority"},
	{"sender-address-mask", "sender-address"}, {"port-hi", "port"},
	{"age-hi", "age"}, {"max-age-hi", "max-age"}, {"hello-time-hi", "hello-time"},
	{"forward-delay-hi", "forward-delay"},
	{"ipsetflags", "ipset"}, {"ipset", "ipsetflags"},
}

// attrRanges lists attribute pairs that form a range: when both are literals
// the first must not exceed the second.
var attrRanges = []struct{ lo, hi string }{
	{"srcportstart", "srcportend"}, {"dstportstart", "dstportend"},
	{"srcipfrom", "srcipto"}, {"dstipfrom", "dstipto"},
	{"type", "typeend"}, {"code", "codeend"},
	{"root-priority", "root-priority-hi"}, {"root-cost", "root-cost-hi"},
	{"sender-priority", "sender-priority-hi"}, {"port", "port-hi"},
	{"age", "age-hi"}, {"max-age", "max-age-hi"}, {"hello-time", "hello-time-hi"},
	{"forward-delay", "forward-delay-hi"},
}

// portProtocols are the IP protocol numbers libvirt accepts with port
// attributes on an ip or ipv6 element: tcp, udp, dccp, sctp.
var portProtocols = map[string]bool{"tcp": true, "udp": true, "33": true, "0x21": true, "sctp": true}

// Chain names.
const (
	// ChainRoot is the chain every port's traffic enters.
	ChainRoot = "root"
	// MaxChainLength is the longest chain name (libvirt's limit, from
	// the kernel's table name size).
	MaxChainLength = 12
)

// chainPrefixes are the protocol prefixes a chain name may start with.
var chainPrefixes = []string{"mac", "vlan", "stp", "arp", "rarp", "ipv4", "ipv6"}

// chainPrefix returns the protocol prefix of a chain name ("root" for the
// root chain), "" when it has none.
func chainPrefix(chain string) string {
	if chain == ChainRoot {
		return ChainRoot
	}
	for _, p := range chainPrefixes {
		if strings.HasPrefix(chain, p) {
			return p
		}
	}
	return ""
}

// ChainProtocol returns the protocol prefix of a chain name (mac, vlan,
// stp, arp, rarp, ipv4, ipv6), or "root" for the root chain: the
// protocol whose packets the chain sees.
func ChainProtocol(chain string) string { return chainPrefix(chain) }
