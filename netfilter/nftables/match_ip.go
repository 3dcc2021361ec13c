package nftables

import (
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// IP-layer elements: libvirt renders them as iptables/ip6tables rules in
// its per-port chains (FJ for traffic from the guest, FP to it, HJ to
// the host), so their meaning is that of iptables' -p, -s/-d, and its
// mac, iprange, dscp, tcp/udp/sctp, icmp and icmp6 matches. They compile
// for the inet family: every rule starts with the packet's family (meta
// nfproto) and, except for all/all-ipv6, its layer-4 protocol (meta
// l4proto: for IPv6 the protocol after the extension headers, as
// ip6tables -p).
//
// libvirt's reply-direction rules (an out rule's FP half, an in rule's
// FJ half, an inout rule's FJ and HJ halves) exchange source and
// destination of addresses, ranges and ports, and drop srcmacaddr
// (iptables cannot match a destination MAC): matchOptions.Swap. A Swap
// rule left with no match at all is dropped by libvirt, as is every
// reply-direction or inout rule of an icmp element with a type
// (errNoRule).
//
// Port, TCP flag and ICMP matches load the transport header, which
// nftables does not reach in non-first fragments: such a rule does not
// match them, as in iptables.

// NFPROTO values of meta nfproto.
const (
	nfprotoIPv4 = unix.NFPROTO_IPV4
	nfprotoIPv6 = unix.NFPROTO_IPV6
)

// Transport header offsets.
const (
	thSrcPort  = 0
	thDstPort  = 2
	thTCPDoff  = 12
	thTCPFlags = 13
	thICMPType = 0
	thICMPCode = 1
)

// buildIP builds the checks of an IP-layer element.
func (b *builder) buildIP() error {
	p := ipProtocols[b.proto]
	family := byte(nfprotoIPv4)
	if p.v6 {
		family = nfprotoIPv6
	}
	b.pre = append(b.pre, cond{at: metaLoc(expr.MetaKeyNFPROTO), op: expr.CmpOpEq, value: []byte{family}})
	if p.l4proto != 0 {
		b.pre = append(b.pre, cond{at: metaLoc(expr.MetaKeyL4PROTO), op: expr.CmpOpEq, value: []byte{p.l4proto}})
	}

	// -m mac --mac-source; libvirt leaves it out of reply rules.
	if b.has("srcmacaddr") {
		if b.swap {
			b.omit("srcmacaddr", omitSwapped)
		} else if err := b.eq("srcmacaddr", ll(llSrc, 6), nftables.TypeEtherAddr, macAddr); err != nil {
			return err
		}
	}

	if err := b.ipAddresses(p.v6); err != nil {
		return err
	}

	// -m dscp --dscp: the six upper bits of the TOS byte or the IPv6
	// traffic class.
	if v, ok := b.value("dscp"); ok {
		d, err := parseUint(v, 63)
		if err != nil {
			return b.fail("dscp", err)
		}
		// Without a bit shift (which github.com/google/nftables cannot
		// express) the key would hold the DSCP shifted left, and nft
		// would show misleading elements: not shared.
		const noKey = "a DSCP cannot be part of a set key"
		if p.v6 {
			b.add(check{attr: "dscp", at: nh(0, 2).masked([]byte{0x0f, 0xc0}), lo: be16(d << 6), noKey: noKey})
		} else {
			b.add(check{attr: "dscp", at: nh(ip4TOS, 1).masked([]byte{0xfc}), lo: be8(d << 2), noKey: noKey})
		}
	}

	// --sport/--dport.
	sport, dport := uint32(thSrcPort), uint32(thDstPort)
	if b.swap {
		sport, dport = dport, sport
	}
	u16 := uintDecoder(2)
	if err := b.rangeEq("srcportstart", "srcportend", th(sport, 2), nftables.TypeInetService, u16); err != nil {
		return err
	}
	if err := b.rangeEq("dstportstart", "dstportend", th(dport, 2), nftables.TypeInetService, u16); err != nil {
		return err
	}

	if p.l4proto == unix.IPPROTO_TCP {
		if err := b.tcpExtras(); err != nil {
			return err
		}
	}
	if p.l4proto == unix.IPPROTO_ICMP || p.l4proto == unix.IPPROTO_ICMPV6 {
		if err := b.icmpTypeCode(p.v6); err != nil {
			return err
		}
	}

	if b.swap && b.has("srcmacaddr") && len(b.checks) == 0 && b.noRule == "" {
		b.noRule = "libvirt drops the reply-direction rule when srcmacaddr is its only match (iptables cannot match a destination MAC address)"
	}
	return nil
}

// ipAddresses adds srcipaddr/srcipmask, dstipaddr/dstipmask (iptables
// -s/-d) and the ranges srcipfrom..srcipto, dstipfrom..dstipto (-m
// iprange). libvirt uses a range only when the address of the same side
// is absent, and ignores it otherwise.
func (b *builder) ipAddresses(v6 bool) error {
	width, src, dst := 4, uint32(ip4Src), uint32(ip4Dst)
	addr, typ := ipv4Addr, nftables.TypeIPAddr
	if v6 {
		width, src, dst = 16, ip6Src, ip6Dst
		addr, typ = ipv6Addr, nftables.TypeIP6Addr
	}
	if b.swap {
		src, dst = dst, src
	}
	sides := []struct {
		addr, mask, from, to string
		off                  uint32
	}{
		{"srcipaddr", "srcipmask", "srcipfrom", "srcipto", src},
		{"dstipaddr", "dstipmask", "dstipfrom", "dstipto", dst},
	}
	for _, s := range sides {
		at := nh(s.off, uint32(width))
		if err := b.maskedEq(s.addr, s.mask, at, typ, addr, maskDecoder(width)); err != nil {
			return err
		}
		if b.has(s.addr) {
			for _, a := range []string{s.from, s.to} {
				if b.has(a) {
					b.omit(a, omitIgnored)
				}
			}
			continue
		}
		if err := b.rangeEq(s.from, s.to, at, typ, addr); err != nil {
			return err
		}
	}
	return nil
}

// tcpExtras adds --tcp-flags MASK FLAGS and --tcp-option N.
func (b *builder) tcpExtras() error {
	if v, ok := b.value("flags"); ok {
		mask, flags, err := tcpFlags(v)
		if err != nil {
			return b.fail("flags", err)
		}
		at := th(thTCPFlags, 1)
		at.mask = []byte{mask}
		b.add(check{attr: "flags", at: at, typ: nftables.TypeTCPFlag, lo: []byte{flags},
			noKey: "tcp flags cannot be part of a set key"})
	}
	if v, ok := b.value("option"); ok {
		kind, err := parseUint(v, 0xff)
		if err != nil {
			return b.fail("option", err)
		}
		c := check{attr: "option", at: loc{kind: locTCPOpt, option: byte(kind), len: 1},
			typ: nftables.TypeBoolean, lo: []byte{1},
			noKey: "a tcp option is tested for presence, not looked up"}
		if b.neg {
			// The absence of an option must not match a segment whose
			// TCP header nftables cannot read (a fragment), which the
			// iptables match never matches.
			doff := th(thTCPDoff, 1)
			doff.mask = []byte{0xf0}
			c.pre = []cond{{at: doff, op: expr.CmpOpGte, value: []byte{0x50}}}
		}
		b.add(c)
	}
	return nil
}

// icmpTypeCode adds --icmp-type TYPE[/CODE] or --icmpv6-type TYPE[/CODE].
// Type 255 is iptables' "any type" for ICMP (not for ICMPv6). With
// match='no' the negated match is "not (this type and this code)", one
// comparison of the two adjacent bytes.
func (b *builder) icmpTypeCode(v6 bool) error {
	tv, ok := b.value("type")
	if !ok {
		return nil
	}
	if b.swap || b.inout {
		b.noRule = "libvirt drops the reply-direction rules, and both halves of an inout rule, of an icmp element with a type"
		return nil
	}
	t, err := parseUint(tv, 0xff)
	if err != nil {
		return b.fail("type", err)
	}
	cv, hasCode := b.value("code")
	var c uint64
	if hasCode {
		if c, err = parseUint(cv, 0xff); err != nil {
			return b.fail("code", err)
		}
	}
	const noKey = "icmp type and code cannot be part of a set key"
	typ, codeTyp := nftables.TypeICMPType, nftables.TypeICMPCode
	if v6 {
		typ, codeTyp = nftables.TypeICMP6Type, nftables.TypeICMPV6Code
	}
	switch {
	case !v6 && t == 255:
		if b.neg {
			b.noRule = "match='no' with icmp type 255 (iptables' any type) never matches"
			return nil
		}
		b.omit("type", omitIgnored)
		if hasCode {
			b.omit("code", omitIgnored)
		}
	case hasCode && b.neg:
		b.add(check{attr: "type", with: []string{"code"}, at: th(thICMPType, 2), typ: typ,
			lo: be16(t<<8 | c), asRange: true, noKey: noKey})
	default:
		b.add(check{attr: "type", at: th(thICMPType, 1), typ: typ, lo: be8(t), noKey: noKey})
		if hasCode {
			b.add(check{attr: "code", at: th(thICMPCode, 1), typ: codeTyp, lo: be8(c), noKey: noKey})
		}
	}
	return nil
}
