package nftables

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Ethernet-layer elements: libvirt renders them as ebtables rules in its
// per-port chains of the nat table, so their meaning is that of
// ebtables' basic match (-s, -d, -p) and its arp, ip, ip6, vlan and stp
// matches. They compile for the bridge family, where the link-layer
// header is the frame's Ethernet header (a VLAN tag the driver stripped
// is put back for link-layer loads, as ebtables sees it) and the network
// header starts right after it.
//
// ebtables compares every field as given, with no implicit conditions
// beyond those its matches have (the EtherType libvirt adds with -p,
// the header checks inside ebt_arp and ebt_stp); the preconditions below
// are exactly those. match='no' negates every attribute on its own, as
// libvirt puts '!' before each option; preconditions are never negated.

// Link-layer offsets of the Ethernet header (a VLAN header follows at
// 14 when the frame is tagged).
const (
	llDst       = 0
	llSrc       = 6
	llEtherType = 12
	llVLANTCI   = 14
	llVLANType  = 16
)

// EtherTypes libvirt adds for its elements.
const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeRARP = 0x8035
	etherTypeVLAN = 0x8100
	etherTypeIPv6 = 0x86dd
)

// stpBridgeGroup is the destination of Spanning Tree BPDUs, which libvirt
// matches in every stp rule (and in the jump to an stp chain).
var stpBridgeGroup = []byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}

// etherTypeIs is the precondition that the frame's EtherType is t (-p).
func etherTypeIs(t uint64) cond {
	return cond{at: ll(llEtherType, 2), op: expr.CmpOpEq, value: be16(t)}
}

// buildEthernet builds the checks of an Ethernet-layer element.
func (b *builder) buildEthernet() error {
	switch b.proto {
	case "":
		return nil
	case "mac":
		if err := b.ethHeader(); err != nil {
			return err
		}
		return b.eq("protocolid", ll(llEtherType, 2), nftables.TypeEtherType, etherType)
	case "vlan":
		return b.buildVLAN()
	case "stp":
		return b.buildSTP()
	case "arp", "rarp":
		return b.buildARP()
	case "ip":
		return b.buildIPv4Element()
	case "ipv6":
		return b.buildIPv6Element()
	}
	return fmt.Errorf("unknown Ethernet-layer element %q", b.proto)
}

// ethHeader adds srcmacaddr/srcmacmask and dstmacaddr/dstmacmask (ebtables
// -s and -d, exchanged in a reversed rule).
func (b *builder) ethHeader() error {
	src, dst := uint32(llSrc), uint32(llDst)
	if b.swap {
		src, dst = dst, src
	}
	if err := b.maskedEq("srcmacaddr", "srcmacmask", ll(src, 6), nftables.TypeEtherAddr, macAddr, macMask); err != nil {
		return err
	}
	return b.maskedEq("dstmacaddr", "dstmacmask", ll(dst, 6), nftables.TypeEtherAddr, macAddr, macMask)
}

// buildVLAN: -p 0x8100 and ebt_vlan's --vlan-id (the 12-bit VID of the
// tag) and --vlan-encap (the EtherType inside the tag).
//
// The EtherType precondition comes after the MAC address checks: nft
// reads link-layer fields after "ether type 8021q" as fields of the VLAN
// header, and would show the destination MAC wrongly (the kernel's
// meaning does not depend on the order).
func (b *builder) buildVLAN() error {
	if err := b.ethHeader(); err != nil {
		return err
	}
	vlan := etherTypeIs(etherTypeVLAN)
	vid := ll(llVLANTCI, 2).masked([]byte{0x0f, 0xff})
	if err := b.eq("vlanid", vid, nftables.TypeInetService, func(s string) ([]byte, error) {
		v, err := parseUint(s, 4095)
		return be16(v), err
	}, vlan); err != nil {
		return err
	}
	if err := b.eq("encap-protocol", ll(llVLANType, 2), nftables.TypeEtherType, etherType, vlan); err != nil {
		return err
	}
	b.post = append(b.post, vlan)
	return nil
}

// STP: offsets from the start of the 802.2 LLC header (the network
// header of an 802.3 frame) of the fields ebt_stp reads.
const (
	stpType         = 6
	stpFlags        = 7
	stpRootPriority = 8
	stpRootAddress  = 10
	stpRootCost     = 16
	stpSendPriority = 20
	stpSendAddress  = 22
	stpPort         = 28
	stpMsgAge       = 30
	stpMaxAge       = 32
	stpHelloTime    = 34
	stpFwdDelay     = 36
)

// stpHeader is what ebt_stp requires before it looks at any field: LLC
// DSAP and SSAP 0x42, UI control, protocol 0 and version 0.
var stpHeader = []byte{0x42, 0x42, 0x03, 0x00, 0x00, 0x00}

// stpConfigAttrs are the stp attributes ebt_stp reads from a
// Configuration BPDU only (its EBT_STP_CONFIG_MASK).
var stpConfigAttrs = []string{"flags", "root-priority", "root-address", "root-cost",
	"sender-priority", "sender-address", "port", "age", "max-age", "hello-time", "forward-delay",
	"root-priority-hi", "root-address-mask", "root-cost-hi", "sender-priority-hi",
	"sender-address-mask", "port-hi", "age-hi", "max-age-hi", "hello-time-hi", "forward-delay-hi"}

// buildSTP: -d 01:80:c2:00:00:00 and ebt_stp. libvirt refuses an stp rule
// with srcmacaddr in the reversed half of an inout rule (the source
// would become -d and clash with the group address).
//
// ebt_stp checks the LLC/BPDU header and --stp-type for any BPDU, and the
// other fields only in a Configuration BPDU (type 0): for any other type
// they are not checked and the rule matches. One nftables rule cannot
// say "type is not 0, or the fields match", so:
//   - with a type that excludes configuration BPDUs (type=T, T≠0, or
//     match='no' with type=0) the config fields are irrelevant and
//     dropped, exactly as ebtables never evaluates them;
//   - with type=0 they are checked, exactly as ebtables does;
//   - otherwise (no type, or match='no' with type=T≠0) the rule matches
//     configuration BPDUs whose fields match, and not the other BPDU
//     types ebtables would let match vacuously (documented deviation).
func (b *builder) buildSTP() error {
	if b.swap && b.has("srcmacaddr") {
		return b.fail("srcmacaddr", errors.New("libvirt refuses stp rules with srcmacaddr in direction inout"))
	}
	b.pre = append(b.pre, cond{at: ll(llDst, 6), op: expr.CmpOpEq, value: stpBridgeGroup})
	if err := b.maskedEq("srcmacaddr", "srcmacmask", ll(llSrc, 6), nftables.TypeEtherAddr, macAddr, macMask); err != nil {
		return err
	}
	stpFields := b.has("type")
	config := false
	for _, a := range stpConfigAttrs {
		if b.has(a) {
			stpFields, config = true, true
		}
	}
	if !stpFields {
		return nil
	}
	header := cond{at: nh(0, 6), op: expr.CmpOpEq, value: stpHeader}
	if err := b.eq("type", nh(stpType, 1), nftables.TypeICMPCode, uintDecoder(1), header); err != nil {
		return err
	}
	if !config {
		return nil
	}
	configPre := []cond{header}
	if t, ok := b.value("type"); ok && !b.partial {
		v, err := parseUint(t, 0xff)
		if err != nil {
			return b.fail("type", err)
		}
		if (v != 0) != b.neg {
			// Not a configuration BPDU: ebt_stp never reads the fields.
			for _, a := range stpConfigAttrs {
				if b.has(a) {
					b.omit(a, omitIgnored)
				}
			}
			return nil
		}
		if b.neg {
			configPre = append(configPre, cond{at: nh(stpType, 1), op: expr.CmpOpEq, value: []byte{0}})
		}
		// Checking the fields of a type the lookup does not know
		// cannot be expressed: refused when type is shared (below).
		b.checks[len(b.checks)-1].noKey = "the stp config fields depend on a literal type"
	} else if !b.partial {
		configPre = append(configPre, cond{at: nh(stpType, 1), op: expr.CmpOpEq, value: []byte{0}})
	}
	steps := []struct {
		attr, hi, mask string
		at             loc
		typ            nftables.SetDatatype
		width          int
	}{
		{"flags", "", "", nh(stpFlags, 1), nftables.TypeICMPCode, 1},
		{"root-priority", "root-priority-hi", "", nh(stpRootPriority, 2), nftables.TypeInetService, 2},
		{"root-address", "", "root-address-mask", nh(stpRootAddress, 6), nftables.TypeEtherAddr, 6},
		// No nft type shows a big-endian 32-bit number; ipv4_addr at
		// least shows its bytes in order.
		{"root-cost", "root-cost-hi", "", nh(stpRootCost, 4), nftables.TypeIPAddr, 4},
		{"sender-priority", "sender-priority-hi", "", nh(stpSendPriority, 2), nftables.TypeInetService, 2},
		{"sender-address", "", "sender-address-mask", nh(stpSendAddress, 6), nftables.TypeEtherAddr, 6},
		{"port", "port-hi", "", nh(stpPort, 2), nftables.TypeInetService, 2},
		{"age", "age-hi", "", nh(stpMsgAge, 2), nftables.TypeInetService, 2},
		{"max-age", "max-age-hi", "", nh(stpMaxAge, 2), nftables.TypeInetService, 2},
		{"hello-time", "hello-time-hi", "", nh(stpHelloTime, 2), nftables.TypeInetService, 2},
		{"forward-delay", "forward-delay-hi", "", nh(stpFwdDelay, 2), nftables.TypeInetService, 2},
	}
	for _, s := range steps {
		var err error
		switch {
		case s.mask != "":
			err = b.maskedEq(s.attr, s.mask, s.at, s.typ, macAddr, macMask, configPre...)
		case s.hi != "":
			err = b.rangeEq(s.attr, s.hi, s.at, s.typ, uintDecoder(s.width), configPre...)
		default:
			err = b.eq(s.attr, s.at, s.typ, uintDecoder(s.width), configPre...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ARP header offsets (network header), for an Ethernet/IPv4 ARP packet
// (hardware address length 6, protocol address length 4).
const (
	arpHType  = 0
	arpPType  = 2
	arpHLen   = 4
	arpPLen   = 5
	arpOpcode = 6
	arpSHA    = 8
	arpSPA    = 14
	arpTHA    = 18
	arpTPA    = 24
)

// buildARP: -p 0x0806 (arp) or 0x8035 (rarp) and ebt_arp.
//
// ebt_arp compares the sender/target IP addresses only in packets whose
// protocol is IPv4 with 4-byte addresses, and the sender/target MAC
// addresses only in packets whose hardware is Ethernet with 6-byte
// addresses; those conditions hold whether or not the match is negated,
// and are preconditions here. ebt_arp finds the fields after the
// sender MAC by the packet's own address lengths; nftables reads fixed
// offsets, so the IP matches also require 6-byte hardware addresses and
// the target MAC match 4-byte protocol addresses (the only layout of
// ARP for IPv4 over Ethernet).
func (b *builder) buildARP() error {
	et := uint64(etherTypeARP)
	if b.proto == "rarp" {
		et = etherTypeRARP
	}
	b.pre = append(b.pre, etherTypeIs(et))
	if err := b.ethHeader(); err != nil {
		return err
	}
	u16 := uintDecoder(2)
	// nft's iface_type is host-endian; inet_service shows the number.
	if err := b.eq("hwtype", nh(arpHType, 2), nftables.TypeInetService, u16); err != nil {
		return err
	}
	if err := b.eq("protocoltype", nh(arpPType, 2), nftables.TypeEtherType, u16); err != nil {
		return err
	}
	if err := b.eq("opcode", nh(arpOpcode, 2), nftables.TypeARPOp, arpOpcodeValue); err != nil {
		return err
	}
	hlen6 := cond{at: nh(arpHLen, 1), op: expr.CmpOpEq, value: []byte{6}}
	plen4 := cond{at: nh(arpPLen, 1), op: expr.CmpOpEq, value: []byte{4}}
	ipv4 := cond{at: nh(arpPType, 2), op: expr.CmpOpEq, value: be16(etherTypeIPv4)}
	ether := cond{at: nh(arpHType, 2), op: expr.CmpOpEq, value: be16(1)}

	spa, tpa := uint32(arpSPA), uint32(arpTPA)
	sha, tha := uint32(arpSHA), uint32(arpTHA)
	if b.swap {
		spa, tpa = tpa, spa
		sha, tha = tha, sha
	}
	ipMask := maskDecoder(4)
	if err := b.maskedEq("arpsrcipaddr", "arpsrcipmask", nh(spa, 4), nftables.TypeIPAddr, ipv4Addr, ipMask, hlen6, plen4, ipv4); err != nil {
		return err
	}
	if err := b.maskedEq("arpdstipaddr", "arpdstipmask", nh(tpa, 4), nftables.TypeIPAddr, ipv4Addr, ipMask, hlen6, plen4, ipv4); err != nil {
		return err
	}
	macPre := func(off uint32) []cond {
		if off == arpTHA {
			return []cond{hlen6, plen4, ether}
		}
		return []cond{hlen6, ether}
	}
	if err := b.eq("arpsrcmacaddr", nh(sha, 6), nftables.TypeEtherAddr, macAddr, macPre(sha)...); err != nil {
		return err
	}
	if err := b.eq("arpdstmacaddr", nh(tha, 6), nftables.TypeEtherAddr, macAddr, macPre(tha)...); err != nil {
		return err
	}
	if v, ok := b.value("gratuitous"); ok {
		grat, err := boolean(v)
		if err != nil {
			return b.fail("gratuitous", err)
		}
		if grat {
			return b.unsupported("gratuitous", "it compares the sender and target IP addresses with each other, which nftables expressions cannot do (ebtables' arp match cannot be used through nft_compat without the rule's compat protocol, which github.com/google/nftables does not let us set)")
		}
		// libvirt emits nothing for gratuitous='false'.
		b.omit("gratuitous", omitIgnored)
	}
	return nil
}

// IPv4 header offsets (network header).
const (
	ip4TOS      = 1
	ip4Protocol = 9
	ip4Src      = 12
	ip4Dst      = 16
	ip6Src      = 8
	ip6Dst      = 24
)

// portProtocols are the IP protocols the kernel's ebt_ip and ebt_ip6
// accept port matches for (tcp, udp, dccp, sctp, udplite).
var portProtocols = map[byte]bool{6: true, 17: true, 33: true, 132: true, 136: true}

// buildIPv4Element: -p ipv4 and ebt_ip. --ip-tos compares the whole TOS
// byte with the dscp value (libvirt passes the DSCP number to --ip-tos
// unshifted), --ip-protocol the header's protocol field, and the ports
// the transport header of unfragmented packets.
func (b *builder) buildIPv4Element() error {
	b.pre = append(b.pre, etherTypeIs(etherTypeIPv4))
	if err := b.ethHeader(); err != nil {
		return err
	}
	src, dst := uint32(ip4Src), uint32(ip4Dst)
	if b.swap {
		src, dst = dst, src
	}
	mask := maskDecoder(4)
	if err := b.maskedEq("srcipaddr", "srcipmask", nh(src, 4), nftables.TypeIPAddr, ipv4Addr, mask); err != nil {
		return err
	}
	if err := b.maskedEq("dstipaddr", "dstipmask", nh(dst, 4), nftables.TypeIPAddr, ipv4Addr, mask); err != nil {
		return err
	}
	if err := b.eq("protocol", nh(ip4Protocol, 1), nftables.TypeInetProto, protoBytes); err != nil {
		return err
	}
	if err := b.elementPorts(); err != nil {
		return err
	}
	v, ok := b.value("dscp")
	if !ok {
		return nil
	}
	tos, err := parseUint(v, 63)
	if err != nil {
		return b.fail("dscp", err)
	}
	// nft's dscp type shows the byte as the number the user wrote.
	b.add(check{attr: "dscp", at: nh(ip4TOS, 1), typ: nftables.TypeDSCP, lo: be8(tos), asRange: b.neg})
	return nil
}

// protoBytes decodes an IP protocol into its one-byte value.
func protoBytes(s string) ([]byte, error) {
	p, err := ipProtocol(s)
	return []byte{p}, err
}

// elementPorts adds the port ranges of an ip or ipv6 element, which
// ebtables accepts only with a literal, non-negated protocol that has
// ports.
func (b *builder) elementPorts() error {
	hasPorts := false
	for _, a := range portAttrNames {
		hasPorts = hasPorts || b.has(a)
	}
	if !hasPorts {
		return nil
	}
	if !b.partial {
		pv, ok := b.value("protocol")
		if !ok {
			return b.fail(firstPresent(b, portAttrNames), errors.New("a port match needs protocol tcp, udp, udplite, sctp or 33 (dccp); ebtables refuses it otherwise"))
		}
		p, err := ipProtocol(pv)
		if err != nil {
			return b.fail("protocol", err)
		}
		if !portProtocols[p] {
			return b.fail("protocol", errors.New("a port match needs protocol tcp, udp, udplite, sctp or 33 (dccp); ebtables refuses it otherwise"))
		}
		if b.neg {
			return b.fail("protocol", errors.New("match='no' would negate the protocol of a port match, which ebtables refuses"))
		}
	}
	sport, dport := uint32(0), uint32(2)
	if b.swap {
		sport, dport = dport, sport
	}
	u16 := uintDecoder(2)
	if err := b.rangeEq("srcportstart", "srcportend", th(sport, 2), nftables.TypeInetService, u16); err != nil {
		return err
	}
	return b.rangeEq("dstportstart", "dstportend", th(dport, 2), nftables.TypeInetService, u16)
}

// firstPresent returns the first of attrs the rule has.
func firstPresent(b *builder, attrs []string) string {
	for _, a := range attrs {
		if b.has(a) {
			return a
		}
	}
	return attrs[0]
}

// buildIPv6Element: -p ipv6 and ebt_ip6. --ip6-protocol is the protocol
// after the extension headers (meta l4proto), the ports and ICMPv6
// type/code are read from the header that follows them.
//
// libvirt renders type/typeend/code/codeend as --ip6-icmp-type
// TYPE:TYPEEND/CODE:CODEEND, a missing type as 0:255 (any), a missing
// end as the start; the kernel accepts it only with protocol icmpv6,
// not negated.
func (b *builder) buildIPv6Element() error {
	b.pre = append(b.pre, etherTypeIs(etherTypeIPv6))
	if err := b.ethHeader(); err != nil {
		return err
	}
	src, dst := uint32(ip6Src), uint32(ip6Dst)
	if b.swap {
		src, dst = dst, src
	}
	mask := maskDecoder(16)
	if err := b.maskedEq("srcipaddr", "srcipmask", nh(src, 16), nftables.TypeIP6Addr, ipv6Addr, mask); err != nil {
		return err
	}
	if err := b.maskedEq("dstipaddr", "dstipmask", nh(dst, 16), nftables.TypeIP6Addr, ipv6Addr, mask); err != nil {
		return err
	}
	if err := b.eq("protocol", metaLoc(expr.MetaKeyL4PROTO), nftables.TypeInetProto, protoBytes); err != nil {
		return err
	}
	if err := b.elementPorts(); err != nil {
		return err
	}
	icmp := []string{"type", "typeend", "code", "codeend"}
	if !b.has("type") && !b.has("typeend") && !b.has("code") && !b.has("codeend") {
		return nil
	}
	if !b.partial {
		pv, ok := b.value("protocol")
		p, err := ipProtocol(pv)
		if !ok || err != nil || p != 58 {
			return b.fail(firstPresent(b, icmp), errors.New("an ICMPv6 type or code match needs protocol icmpv6; ebtables refuses it otherwise"))
		}
		if b.neg {
			return b.fail("protocol", errors.New("match='no' would negate the protocol of an ICMPv6 type match, which ebtables refuses"))
		}
	}
	u8 := uintDecoder(1)
	if b.has("typeend") && !b.has("type") {
		// libvirt's --ip6-icmp-type 0:END.
		if err := b.rangeFrom("typeend", "0", th(0, 1), nftables.TypeICMP6Type, u8); err != nil {
			return err
		}
	} else if err := b.rangeEq("type", "typeend", th(0, 1), nftables.TypeICMP6Type, u8); err != nil {
		return err
	}
	if b.has("codeend") && !b.has("code") {
		return b.rangeFrom("codeend", "0", th(1, 1), nftables.TypeICMPV6Code, u8)
	}
	return b.rangeEq("code", "codeend", th(1, 1), nftables.TypeICMPV6Code, u8)
}

// rangeFrom adds the range lo..value-of-hiAttr, for an end given without
// its start (libvirt starts such a range at 0).
func (b *builder) rangeFrom(hiAttr, lo string, at loc, typ nftables.SetDatatype, decode func(string) ([]byte, error)) error {
	v, _ := b.value(hiAttr)
	hi, err := decode(v)
	if err != nil {
		return b.fail(hiAttr, err)
	}
	l, err := decode(lo)
	if err != nil {
		return b.fail(hiAttr, err)
	}
	b.add(check{attr: hiAttr, at: at, typ: typ, lo: l, hi: hi, noKey: "a range end cannot be part of a set key"})
	return nil
}
