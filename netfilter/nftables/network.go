package nftables

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
)

// The firewalls of virtual networks (netfilter.State.Networks) live in a
// table of their own, apart from port filtering:
//
//	table inet netwarden-net
//	  chain input       filter hook input priority filter:        jump n-HASH-inp, per network
//	  chain output      filter hook output priority filter:       jump n-HASH-out
//	  chain forward     filter hook forward priority filter:      every network's fwx,
//	                                                              then every fwi, then every fwo
//	  chain postrouting nat hook postrouting priority srcnat:     jump n-HASH-nat
//	  chain n-HASH-inp, -out, -fwx, -fwi, -fwo, -nat: the network's rules of that hook
//
// HASH is 12 hex digits of the SHA-256 of the network's name, so any name
// gives a valid chain name; the jump rule carries the name in a comment.
// A jump is keyed on the bridge (iifname, oifname or both) when every
// rule of the chain matches that interface, as libvirt's rules of a
// network all do except the nat ones (keyed by source address).
//
// The forward chain keeps libvirt's order of its FORWARD chain: LIBVIRT_FWX
// (traffic between two ports of one bridge), then LIBVIRT_FWI (into a
// network), then LIBVIRT_FWO (out of a network). An accept ends this
// table's evaluation of the hook; it does not override a drop elsewhere
// (every table must accept). Base chains accept by default.
//
// Differences from libvirt's iptables rules: CHECKSUM --checksum-fill
// (mangle, DHCP replies) has no nftables statement and is skipped, as
// libvirt's own nftables backend does; so there is no mangle chain.
// NetReturn leaves the network's chain for the hook, back to the base
// chain (libvirt's RETURN leaves LIBVIRT_PRT; networks' nat rules match
// their own source subnets, which libvirt keeps disjoint, so the outcome
// is the same: the packet is not translated).
//
// The table changes as a whole: an Apply whose networks differ from the
// last one deletes and recreates it in the same netlink batch as the
// ports' changes, so packets meet either the old rules or the new ones;
// an Apply with the same networks does not touch it.

// Base chains of the networks table.
const (
	netChainInput       = "input"
	netChainOutput      = "output"
	netChainForward     = "forward"
	netChainPostrouting = "postrouting"
)

// netHookWord names a hook in a network chain's name.
var netHookWord = map[netfilter.NetHook]string{
	netfilter.HookInput:        "inp",
	netfilter.HookOutput:       "out",
	netfilter.HookForwardCross: "fwx",
	netfilter.HookForwardIn:    "fwi",
	netfilter.HookForwardOut:   "fwo",
	netfilter.HookNAT:          "nat",
}

// netBases are the base chains in creation order, with the hooks whose
// network chains each dispatches to, in evaluation order.
var netBases = []struct {
	name  string
	typ   nftables.ChainType
	hook  *nftables.ChainHook
	prio  *nftables.ChainPriority
	hooks []netfilter.NetHook
}{
	{netChainInput, nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter,
		[]netfilter.NetHook{netfilter.HookInput}},
	{netChainOutput, nftables.ChainTypeFilter, nftables.ChainHookOutput, nftables.ChainPriorityFilter,
		[]netfilter.NetHook{netfilter.HookOutput}},
	{netChainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter,
		[]netfilter.NetHook{netfilter.HookForwardCross, netfilter.HookForwardIn, netfilter.HookForwardOut}},
	{netChainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource,
		[]netfilter.NetHook{netfilter.HookNAT}},
}

// netTable is the table of the networks' firewalls.
func netTable() *nftables.Table {
	return &nftables.Table{Name: NetTableName, Family: nftables.TableFamilyINet}
}

// netPlan is the rendering of a set of networks.
type netPlan struct {
	// sig identifies the networks' content: equal signatures, equal
	// rules.
	sig string
	// networks are the rendered networks, sorted by name.
	networks []*netRender
}

// netRender is one network's chains.
type netRender struct {
	name, bridge string
	hash         string
	// chains holds the network's chain per hook (absent: no rules).
	chains map[netfilter.NetHook]*netChain
}

// netChain is one network chain and the key of its jump.
type netChain struct {
	name string
	// iif, oif: the interfaces every rule matches, keying the jump.
	iif, oif string
	rules    [][]expr.Any
}

// empty reports whether no network is rendered.
func (p *netPlan) empty() bool { return len(p.networks) == 0 }

// ruleCounts maps each chain of the plan to its number of rules.
func (p *netPlan) ruleCounts() map[string]int {
	counts := map[string]int{}
	if p.empty() {
		return counts
	}
	for _, b := range netBases {
		counts[b.name] = 0
		for _, h := range b.hooks {
			for _, n := range p.networks {
				if n.chains[h] != nil {
					counts[b.name]++
				}
			}
		}
	}
	for _, n := range p.networks {
		for _, c := range n.chains {
			counts[c.name] = len(c.rules)
		}
	}
	return counts
}

// netChainName is network's chain for hook h, e.g. "n-37a8eec1ce19-fwo".
func netChainName(hash string, h netfilter.NetHook) string {
	return "n-" + hash + "-" + netHookWord[h]
}

// planNetworks renders the networks. An invalid network is an error
// naming it; nothing is rendered then.
func planNetworks(nets map[string]*netfilter.NetworkRules) (*netPlan, error) {
	p := &netPlan{}
	var sig strings.Builder
	hashes := map[string]string{}
	for _, name := range sortedKeys(nets) {
		nr := nets[name]
		if nr == nil {
			continue
		}
		r, err := renderNetwork(name, nr)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", name, err)
		}
		if other, dup := hashes[r.hash]; dup {
			return nil, fmt.Errorf("networks %q and %q: chain names collide", other, name)
		}
		hashes[r.hash] = name
		p.networks = append(p.networks, r)
		fmt.Fprintf(&sig, "%q\n", name)
		sig.WriteString(nr.String())
	}
	p.sig = sig.String()
	return p, nil
}

// checkBridge validates a bridge name as the kernel takes an interface
// name: 1…15 bytes, no '/', no whitespace, no NUL.
func checkBridge(name string) error {
	if len(name) == 0 || len(name) >= 16 {
		return fmt.Errorf("interface name %q: length %d outside 1..15", name, len(name))
	}
	if strings.ContainsAny(name, "/:\x00 \t\n") {
		return fmt.Errorf("interface name %q: invalid character", name)
	}
	return nil
}

// renderNetwork renders one network's rules into chains.
func renderNetwork(name string, nr *netfilter.NetworkRules) (*netRender, error) {
	if name == "" {
		return nil, errors.New("empty network name")
	}
	if err := checkBridge(nr.Bridge); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	r := &netRender{name: name, bridge: nr.Bridge, hash: shortHash(name),
		chains: map[netfilter.NetHook]*netChain{}}
	for i := range nr.Rules {
		rule := &nr.Rules[i]
		exprs, err := netRuleExprs(rule)
		if err != nil {
			return nil, fmt.Errorf("rule %d (%s): %w", i+1, rule, err)
		}
		if exprs == nil {
			continue // checksum-fill: no nftables equivalent
		}
		c := r.chains[rule.Hook]
		if c == nil {
			c = &netChain{name: netChainName(r.hash, rule.Hook), iif: rule.InIface, oif: rule.OutIface}
			r.chains[rule.Hook] = c
		}
		if c.iif != rule.InIface {
			c.iif = ""
		}
		if c.oif != rule.OutIface {
			c.oif = ""
		}
		c.rules = append(c.rules, exprs)
	}
	return r, nil
}

// Registers of network rules: reg 1 for matches and the NAT range's
// first value, 2…4 for the others (16-byte registers).
const (
	netRegAddrMin  = 1
	netRegAddrMax  = 2
	netRegProtoMin = 3
	netRegProtoMax = 4
)

// netRuleExprs compiles one network rule: nil (and no error) for a rule
// nftables cannot express and that may be skipped (checksum-fill).
func netRuleExprs(r *netfilter.NetRule) ([]expr.Any, error) {
	if _, ok := netHookWord[r.Hook]; !ok && r.Hook != netfilter.HookMangle {
		return nil, fmt.Errorf("unknown hook %s", r.Hook)
	}
	var (
		nfproto  byte
		addrLen  uint32
		srcOff   uint32
		dstOff   uint32
		natFam   uint32
		rejCode  uint8
		is4      bool
		wantAddr func(netip.Addr) bool
	)
	switch r.Family {
	case netfilter.IPv4:
		nfproto, addrLen, srcOff, dstOff, natFam, rejCode, is4 = unix.NFPROTO_IPV4, 4, 12, 16, unix.NFPROTO_IPV4, 3, true // ICMP_PORT_UNREACH
	case netfilter.IPv6:
		nfproto, addrLen, srcOff, dstOff, natFam, rejCode = unix.NFPROTO_IPV6, 16, 8, 24, unix.NFPROTO_IPV6, 4 // ICMPV6_PORT_UNREACH
	default:
		return nil, fmt.Errorf("unknown family %s", r.Family)
	}
	wantAddr = func(a netip.Addr) bool { return a.Is4() == is4 && (is4 || !a.Is4In6()) }

	// What the verdict allows.
	switch r.Verdict {
	case netfilter.NetAccept, netfilter.NetReject:
		if r.Hook == netfilter.HookNAT || r.Hook == netfilter.HookMangle {
			return nil, fmt.Errorf("%s in hook %s", r.Verdict, r.Hook)
		}
	case netfilter.NetReturn:
		if r.Hook == netfilter.HookMangle {
			return nil, fmt.Errorf("%s in hook %s", r.Verdict, r.Hook)
		}
	case netfilter.NetMasquerade:
		if r.Hook != netfilter.HookNAT {
			return nil, fmt.Errorf("masquerade in hook %s", r.Hook)
		}
	case netfilter.NetChecksumFill:
		if r.Hook != netfilter.HookMangle {
			return nil, fmt.Errorf("checksum-fill in hook %s", r.Hook)
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("unknown verdict %s", r.Verdict)
	}
	if r.Hook == netfilter.HookMangle {
		return nil, fmt.Errorf("hook %s takes checksum-fill only", r.Hook)
	}

	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
	}
	for _, m := range []struct {
		key   expr.MetaKey
		iface string
	}{{expr.MetaKeyIIFNAME, r.InIface}, {expr.MetaKeyOIFNAME, r.OutIface}} {
		if m.iface == "" {
			continue
		}
		if err := checkBridge(m.iface); err != nil {
			return nil, err
		}
		e = append(e, &expr.Meta{Key: m.key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(m.iface)})
	}
	switch r.Protocol {
	case "":
		if r.DstPort != 0 {
			return nil, errors.New("destination port without protocol")
		}
	case "tcp", "udp":
		proto := byte(unix.IPPROTO_TCP)
		if r.Protocol == "udp" {
			proto = unix.IPPROTO_UDP
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
		if r.DstPort != 0 {
			e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.DstPort)})
		}
	default:
		return nil, fmt.Errorf("unsupported protocol %q", r.Protocol)
	}
	for _, m := range []struct {
		p   netip.Prefix
		off uint32
		neg bool
	}{{r.Src, srcOff, false}, {r.Dst, dstOff, r.NotDst}} {
		if !m.p.IsValid() {
			continue
		}
		if !wantAddr(m.p.Addr()) {
			return nil, fmt.Errorf("address %s is not %s", m.p, r.Family)
		}
		e = append(e, prefixExprs(m.p.Masked(), m.off, addrLen, m.neg)...)
	}
	if r.Related {
		e = append(e, ctStateExprs("ESTABLISHED,RELATED")...)
	}
	switch r.Verdict {
	case netfilter.NetAccept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case netfilter.NetReject:
		e = append(e, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: rejCode})
	case netfilter.NetReturn:
		e = append(e, &expr.Verdict{Kind: expr.VerdictReturn})
	case netfilter.NetMasquerade:
		nat, err := natExprs(r, natFam, wantAddr)
		if err != nil {
			return nil, err
		}
		e = append(e, nat...)
	}
	return e, nil
}

// prefixExprs matches the address at offset off of the network header
// against p (== or !=).
func prefixExprs(p netip.Prefix, off, n uint32, neg bool) []expr.Any {
	op := expr.CmpOpEq
	if neg {
		op = expr.CmpOpNeq
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < int(n*8) {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, &expr.Cmp{Op: op, Register: 1, Data: p.Addr().AsSlice()})
}

// natExprs is a masquerade rule's translation: masquerade, with a port
// range if given (tcp and udp only, as iptables' --to-ports), or snat to
// the address range (and ports).
func natExprs(r *netfilter.NetRule, fam uint32, wantAddr func(netip.Addr) bool) ([]expr.Any, error) {
	n := r.NAT
	pmin, pmax := n.PortStart, n.PortEnd
	if pmax == 0 {
		pmax = pmin
	}
	if pmin != 0 {
		if r.Protocol != "tcp" && r.Protocol != "udp" {
			return nil, errors.New("a NAT port range needs protocol tcp or udp")
		}
		if pmax < pmin {
			return nil, fmt.Errorf("NAT port range %d-%d is empty", pmin, pmax)
		}
	}
	var e []expr.Any
	if !n.AddrStart.IsValid() {
		if n.AddrEnd.IsValid() {
			return nil, errors.New("NAT address range without start")
		}
		if pmin == 0 {
			return []expr.Any{&expr.Masq{}}, nil
		}
		return []expr.Any{
			&expr.Immediate{Register: netRegAddrMin, Data: binaryutil.BigEndian.PutUint16(pmin)},
			&expr.Immediate{Register: netRegAddrMax, Data: binaryutil.BigEndian.PutUint16(pmax)},
			&expr.Masq{ToPorts: true, RegProtoMin: netRegAddrMin, RegProtoMax: netRegAddrMax},
		}, nil
	}
	end := n.AddrEnd
	if !end.IsValid() {
		end = n.AddrStart
	}
	if !wantAddr(n.AddrStart) || !wantAddr(end) {
		return nil, fmt.Errorf("NAT range %s-%s is not %s", n.AddrStart, end, r.Family)
	}
	if end.Less(n.AddrStart) {
		return nil, fmt.Errorf("NAT range %s-%s is empty", n.AddrStart, end)
	}
	nat := &expr.NAT{Type: expr.NATTypeSourceNAT, Family: fam, RegAddrMin: netRegAddrMin, RegAddrMax: netRegAddrMax}
	e = append(e,
		&expr.Immediate{Register: netRegAddrMin, Data: n.AddrStart.AsSlice()},
		&expr.Immediate{Register: netRegAddrMax, Data: end.AsSlice()})
	if pmin != 0 {
		e = append(e,
			&expr.Immediate{Register: netRegProtoMin, Data: binaryutil.BigEndian.PutUint16(pmin)},
			&expr.Immediate{Register: netRegProtoMax, Data: binaryutil.BigEndian.PutUint16(pmax)})
		nat.RegProtoMin, nat.RegProtoMax = netRegProtoMin, netRegProtoMax
	}
	return append(e, nat), nil
}

// netComment is the comment of a network's jump rules: its name, made
// safe for a listing (printable ASCII without quotes and backslashes, at
// most 100 bytes; the chain's hash identifies the network exactly).
func netComment(name string) []byte {
	var b strings.Builder
	b.WriteString("network ")
	for _, r := range name {
		if b.Len() >= 100 {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			b.WriteByte('_')
			continue
		}
		b.WriteRune(r)
	}
	return userdata.AppendString(nil, userdata.TypeComment, b.String())
}

// replaceNetworks queues the replacement of the networks table by p: the
// old table (if any) is deleted and the new one created in the same
// transaction. An empty plan leaves no table. absent says the table is
// known not to exist (the last Apply left none, and Verify checks that):
// then nothing is deleted, which spares the kernel a deletion's RCU
// grace period (about 10 ms here) when the first network starts.
func (t *txn) replaceNetworks(p *netPlan, absent bool) {
	tb := netTable()
	if !absent {
		t.c.AddTable(tb) // so that the deletion cannot fail
		t.c.DelTable(tb)
	}
	if p.empty() {
		return
	}
	t.c.AddTable(tb)
	policy := nftables.ChainPolicyAccept
	bases := make([]*nftables.Chain, len(netBases))
	for i, b := range netBases {
		bases[i] = t.c.AddChain(&nftables.Chain{Name: b.name, Table: tb, Type: b.typ,
			Hooknum: b.hook, Priority: b.prio, Policy: &policy})
	}
	// Network chains and their rules before the jumps to them.
	for _, n := range p.networks {
		for _, h := range []netfilter.NetHook{netfilter.HookInput, netfilter.HookOutput, netfilter.HookForwardCross,
			netfilter.HookForwardIn, netfilter.HookForwardOut, netfilter.HookNAT} {
			c := n.chains[h]
			if c == nil {
				continue
			}
			ch := t.c.AddChain(&nftables.Chain{Name: c.name, Table: tb})
			for _, r := range c.rules {
				t.c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: r})
			}
		}
	}
	for i, b := range netBases {
		for _, h := range b.hooks {
			for _, n := range p.networks {
				c := n.chains[h]
				if c == nil {
					continue
				}
				var e []expr.Any
				if c.iif != "" {
					e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(c.iif)})
				}
				if c.oif != "" {
					e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(c.oif)})
				}
				e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: c.name})
				t.c.AddRule(&nftables.Rule{Table: tb, Chain: bases[i], Exprs: e, UserData: netComment(n.name)})
			}
		}
	}
}
