package nftables

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
)

// The kernel half of the IP layer: how packets reach a port's FJ, FP and
// HJ chains (planned by iplayer.go), which ports with the same rules
// share.
//
// This kernel's bridge family has no connection tracking, so the chains
// live in "table inet netwarden", which bridged IP traffic reaches through
// br_netfilter. There the input and output interfaces are the bridge, not
// the port, so the ports travel in the packet mark, set in the bridge
// family before br_netfilter's hooks (priority 0 on prerouting, −1 on
// forward) run:
//
//	table bridge netwarden
//	  map ip-port-ids  { type ifname : mark }  port → its id (1…65535)
//	  set ip-to-bit-K  { type ifname }          ports whose id has bit K (K = 0…15)
//	  chain ip-mark-from  prerouting, −250:   meta mark set iifname map @ip-port-ids
//	  chain ip-mark-to    forward,    −250:   16 rules
//	      oifname @ip-to-bit-K meta mark set meta mark | 1<<(16+K)
//	table inet netwarden
//	  map from-port, to-port, host-from-port { type mark : verdict }
//	  chain forward  forward, 0:  meta mark & 0x0000ffff vmap @from-port   → jump ip-HASH-fj
//	                              meta mark & 0xffff0000 vmap @to-port     → jump ip-HASH-fp
//	  chain input    input,   0:  meta mark & 0x0000ffff vmap @host-from-port → jump ip-HASH-hj
//	  chain ip-HASH-fj, ip-HASH-fp, ip-HASH-hj: rules, shared by every port
//	      whose chain of that kind has them (HASH: ipChainHash)
//	  set connlimit-{fj,fp,hj}-{ip,ip6}  connection counts of connlimit-above
//	      rules, keyed by port, rule and source address (see connlimitExprs)
//
// The low 16 bits of the mark carry the sending port's id (a failed map
// lookup leaves the mark alone), the high 16 bits the receiving port's id,
// one bit per rule: the rules are constant in the number of ports and a
// packet meets at most 18 of them in the bridge family and two lookups in
// the inet family. An FJ chain that returns leaves the decision to the
// receiving port's FP chain, as libvirt's libvirt-in (goto FJ) is followed
// by libvirt-out (goto FP); an FP chain that returns, and the end of the
// base chain, accept (libvirt-in-post). Routed traffic from a guest meets
// its FJ chain too (libvirt's physdev-in matches it); routed traffic to a
// guest never passes the bridge forward hook and meets no FP chain
// (libvirt's libvirt-out requires --physdev-is-bridged); traffic from the
// host to a guest is not filtered at this layer at all (libvirt filters
// only FORWARD and INPUT).
//
// libvirt has three chains per port (FJ-PORT, FP-PORT, HJ-PORT). Here a
// chain is named by a hash of its rules and shared, with a reference
// count in the installed state, by every port whose chain of that kind
// has the same rules: a port's per-port values (an instantiated $IP)
// are literals in its rules and give it chains of its own, and nothing
// in a chain names the port (connlimit-above counts by the mark's port
// half, read per packet). A port's chains are then three verdict-map
// elements: changing the filter of a thousand ports adds the new
// chains, replaces 3000 elements and deletes the old chains, in one
// transaction, instead of rewriting 3000 chains. The chains a port
// stops using go in the same transaction as the last element jumping to
// them.
//
// What this costs the rest of the system: netwarden owns the packet mark
// of bridged traffic from and to ports with IP-layer rules (a mark set by
// someone else before is replaced, for traffic from such a port, or has
// bits ORed into it); a mark whose low 16 bits equal a port's id on
// traffic that did not come from that port (a local socket's SO_MARK, for
// instance) would meet that port's chains.
//
// The objects exist only while some port has IP-layer rules; the
// bridge-nf-call-iptables and -ip6tables sysctls of the backend's
// namespace are set to 1 then (br_netfilter passes bridged IP traffic to
// the inet hooks only with them).

// ipPort is what one port has at the IP layer.
type ipPort struct {
	// id is the port's number in the packet mark; stable while the port
	// keeps IP-layer rules.
	id   uint16
	plan *ipPlan
	// chains are the names of the port's FJ, FP and HJ chains
	// (ipChainName of the hash of plan's rules), shared with every
	// port whose chain of that kind has the same rules.
	chains [numIPChains]string
}

// newIPPort names the chains of a port's plan.
func newIPPort(plan *ipPlan) (*ipPort, error) {
	ip := &ipPort{plan: plan}
	for c := chainFJ; c < numIPChains; c++ {
		h, err := ipChainHash(c, plan.chains[c])
		if err != nil {
			return nil, err
		}
		ip.chains[c] = ipChainName(h, c)
	}
	return ip, nil
}

// ipChainHash is 12 hex digits of the SHA-256 of chain c's kind and
// rules as the kernel receives them (each expression's netlink
// encoding; set ids, which only name a set created in the same
// transaction, left out). Two chains with the same hash are the same
// chain: a rule's per-port values (an $IP in srcipaddr) are literals in
// its expressions, so they make the hash differ, while the port itself
// is no part of a chain (connlimit-above counts by the mark's port
// half, read when the packet passes).
func ipChainHash(c ipChain, rules []ipRule) (string, error) {
	h := sha256.New()
	var n [4]byte
	word := func(v int) {
		binary.BigEndian.PutUint32(n[:], uint32(v))
		h.Write(n[:])
	}
	h.Write([]byte(ipChainWords[c]))
	word(len(rules))
	for _, r := range rules {
		word(len(r.exprs))
		for _, e := range r.exprs {
			switch x := e.(type) {
			case *expr.Dynset:
				y := *x
				y.SetID = 0
				e = &y
			case *expr.Lookup:
				y := *x
				y.SetID = 0
				e = &y
			}
			b, err := expr.Marshal(byte(nftables.TableFamilyINet), e)
			if err != nil {
				return "", fmt.Errorf("IP-layer chain %s: %w", ipChainWords[c], err)
			}
			word(len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:6]), nil
}

// connlimitSetSize bounds each connlimit set (sources × rules × ports).
const connlimitSetSize = 65535

// maxPortID is the highest id: ids use 16 bits, 0 is "no port".
const maxPortID = 0xffff

// errNoPortID: every id is taken.
var errNoPortID = errors.New("no free IP-layer port id (65535 ports with IP-layer rules)")

// nativeU32 encodes v as the kernel holds a mark: host byte order.
func nativeU32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

// hasIP reports whether any installed port has IP-layer rules.
func (s *installed) hasIP() bool {
	for _, pi := range s.ports {
		if pi.ip != nil {
			return true
		}
	}
	return false
}

// hasIPAfter reports whether any port has IP-layer rules once d is
// applied to cur.
func (d *delta) hasIPAfter(cur *installed) bool {
	for _, pi := range d.set {
		if pi.ip != nil {
			return true
		}
	}
	gone := make(map[string]bool, len(d.del))
	for _, name := range d.del {
		gone[name] = true
	}
	for name, pi := range cur.ports {
		if _, changed := d.set[name]; !changed && !gone[name] && pi.ip != nil {
			return true
		}
	}
	return false
}

// ipPorts counts the installed ports with IP-layer rules.
func (s *installed) ipPorts() int {
	n := 0
	for _, pi := range s.ports {
		if pi.ip != nil {
			n++
		}
	}
	return n
}

// finishIP gives the new and changed ports of d with IP-layer rules their
// ids (a changed port keeps its id; a new one takes the lowest id no port
// of cur has, so an id is never reused within one transaction) and makes
// sure br_netfilter passes bridged IP traffic to the inet hooks. A port
// that gets no id, or all of them when br_netfilter cannot be enabled, is
// installed as drop-all with the reason.
func (b *Backend) finishIP(cur *installed, d *delta) {
	names := make([]string, 0, len(d.set))
	for name, pi := range d.set {
		if pi.ip != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	if err := b.ensureBridgeNF(); err != nil {
		for _, name := range names {
			d.set[name] = &portInstall{state: d.set[name].state, from: "drop", to: "drop",
				err: fmt.Errorf("port %s: IP-layer rules need br_netfilter: %w", name, err)}
		}
		return
	}
	used := map[uint16]bool{}
	for _, pi := range cur.ports {
		if pi.ip != nil {
			used[pi.ip.id] = true
		}
	}
	next := uint32(1)
	for _, name := range names {
		pi := d.set[name]
		if o := cur.ports[name]; o != nil && o.ip != nil {
			pi.ip.id = o.ip.id
			continue
		}
		for next <= maxPortID && used[uint16(next)] {
			next++
		}
		if next > maxPortID {
			d.set[name] = &portInstall{state: pi.state, from: "drop", to: "drop", err: fmt.Errorf("port %s: %w", name, errNoPortID)}
			continue
		}
		pi.ip.id = uint16(next)
		used[uint16(next)] = true
	}
}

// bridgeNFSysctls are the switches that make br_netfilter pass bridged
// IPv4 and IPv6 traffic to the inet hooks.
var bridgeNFSysctls = []string{
	"/proc/sys/net/bridge/bridge-nf-call-iptables",
	"/proc/sys/net/bridge/bridge-nf-call-ip6tables",
}

// ensureBridgeNF sets the bridge-nf-call sysctls of the backend's
// namespace to 1 where they are not, and logs what it changed.
// Where br_netfilter is a module that is not loaded (distribution
// kernels), the sysctls are missing; it is loaded with modprobe once.
func (b *Backend) ensureBridgeNF() error {
	if _, err := os.Stat(bridgeNFSysctls[0]); errors.Is(err, os.ErrNotExist) {
		out, merr := exec.Command("modprobe", "br_netfilter").CombinedOutput()
		if merr != nil {
			return fmt.Errorf("br_netfilter is not loaded and modprobe br_netfilter failed: %v: %s", merr, strings.TrimSpace(string(out)))
		}
		b.log().Info("loaded br_netfilter for IP-layer filter rules")
	}
	return inNetNS(b.cfg.NetNS, func() error {
		for _, path := range bridgeNFSysctls {
			cur, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("br_netfilter: %w", err)
			}
			if strings.TrimSpace(string(cur)) == "1" {
				continue
			}
			if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("br_netfilter: %w", err)
			}
			b.log().Info("enabled br_netfilter for IP-layer filter rules", "sysctl", strings.TrimPrefix(path, "/proc/sys/"), "was", strings.TrimSpace(string(cur)))
		}
		return nil
	})
}

// inNetNS runs fn on a thread in the network namespace fd (0: the
// process's own), so that what fn opens in /proc/sys/net is that
// namespace's. fn runs on a goroutine of its own whose thread is
// discarded if it cannot return to its namespace, so the caller's thread
// never changes namespace.
func inNetNS(fd int, fn func() error) error {
	if fd == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current network namespace: %w", err)
			return // the locked thread ends with this goroutine
		}
		defer orig.Close()
		if err := netns.Set(netns.NsHandle(fd)); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// ipTable is netwarden's inet table.
func ipTable() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// ipMaps returns the inet table's verdict maps keyed by mark.
func ipMaps(t *nftables.Table) (from, to, host *nftables.Set) {
	mk := func(name string) *nftables.Set {
		return &nftables.Set{Table: t, Name: name, IsMap: true,
			KeyType: nftables.TypeMark, DataType: nftables.TypeVerdict,
			KeyByteOrder: binaryutil.NativeEndian}
	}
	return mk(mapIPFrom), mk(mapIPTo), mk(mapIPHost)
}

// ipPortIDMap is the bridge table's port → id map.
func ipPortIDMap(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: mapIPPortIDs, IsMap: true,
		KeyType: nftables.TypeIFName, DataType: nftables.TypeMark,
		KeyByteOrder: binaryutil.NativeEndian}
}

// ipBitSet is the bridge table's set of ports whose id has bit k.
func ipBitSet(t *nftables.Table, k int) *nftables.Set {
	return &nftables.Set{Table: t, Name: ipToBitSetName(k), KeyType: nftables.TypeIFName,
		KeyByteOrder: binaryutil.NativeEndian}
}

// addIPInfra queues the IP layer's fixed objects: the bridge table's mark
// map, bit sets and chains, and the inet table (which must not exist)
// with its maps and base chains.
func (t *txn) addIPInfra() {
	// Bridge side.
	ids := ipPortIDMap(t.table)
	t.addSet(ids, nil)
	bits := make([]*nftables.Set, 16)
	for k := range bits {
		bits[k] = ipBitSet(t.table, k)
		t.addSet(bits[k], nil)
	}
	prio := nftables.ChainPriority(int32(priorityIPMark))
	policy := nftables.ChainPolicyAccept
	from := t.c.AddChain(&nftables.Chain{Name: chainIPMarkFrom, Table: t.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: &prio, Policy: &policy})
	t.c.AddRule(&nftables.Rule{Table: t.table, Chain: from, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: ids.Name, SetID: ids.ID},
		// The map's values are big endian (github.com/google/nftables
		// cannot record a host-endian data byte order for nft to show
		// them right); the mark is host endian.
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderNtoh, Len: 4, Size: 4},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}})
	to := t.c.AddChain(&nftables.Chain{Name: chainIPMarkTo, Table: t.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: &prio, Policy: &policy})
	for k, s := range bits {
		bit := uint32(1) << (16 + k)
		t.c.AddRule(&nftables.Rule{Table: t.table, Chain: to, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(^bit), Xor: nativeU32(bit)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}})
	}

	// Inet side.
	it := ipTable()
	t.c.AddTable(it)
	mFrom, mTo, mHost := ipMaps(it)
	for _, m := range []*nftables.Set{mFrom, mTo, mHost} {
		_ = t.c.AddSet(m, nil)
		t.ipSets[m.Name] = m
	}
	for c := chainFJ; c < numIPChains; c++ {
		for _, v6 := range []bool{false, true} {
			addr := nftables.TypeIPAddr
			if v6 {
				addr = nftables.TypeIP6Addr
			}
			key, err := nftables.ConcatSetType(nftables.TypeMark, addr)
			if err != nil {
				panic(err) // two fixed types
			}
			s := &nftables.Set{Table: it, Name: connlimitSetName(c, v6), KeyType: key, Concatenation: true,
				Dynamic: true, Size: connlimitSetSize}
			_ = t.c.AddSet(s, nil)
			t.ipSets[s.Name] = s
		}
	}
	iprio := nftables.ChainPriority(int32(priorityIP))
	dispatch := func(ch *nftables.Chain, mask uint32, m *nftables.Set) {
		t.c.AddRule(&nftables.Rule{Table: it, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(mask), Xor: nativeU32(0)},
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		}})
	}
	fwd := t.c.AddChain(&nftables.Chain{Name: chainIPForward, Table: it, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: &iprio, Policy: &policy})
	dispatch(fwd, 0x0000ffff, mFrom)
	dispatch(fwd, 0xffff0000, mTo)
	in := t.c.AddChain(&nftables.Chain{Name: chainIPInput, Table: it, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &iprio, Policy: &policy})
	dispatch(in, 0x0000ffff, mHost)
}

// delIPInfra queues the removal of the IP layer's fixed objects (after
// the shared chains and the elements).
func (t *txn) delIPInfra() {
	for _, name := range []string{chainIPMarkFrom, chainIPMarkTo} {
		ch := &nftables.Chain{Name: name, Table: t.table}
		t.c.FlushChain(ch)
		t.c.DelChain(ch)
	}
	t.c.DelSet(ipPortIDMap(t.table))
	for k := 0; k < 16; k++ {
		t.c.DelSet(ipBitSet(t.table, k))
	}
	t.c.DelTable(ipTable())
}

// ipSet returns the inet map of that name, as created in this
// transaction or by name.
func (t *txn) ipSet(name string) *nftables.Set {
	if s := t.ipSets[name]; s != nil {
		return s
	}
	from, to, host := ipMaps(ipTable())
	for _, s := range []*nftables.Set{from, to, host} {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// addIPChains queues those of ip's chains that are in want and not yet
// in added (new chains, with their rules), and records them in added.
func (t *txn) addIPChains(ip *ipPort, want, added map[string]bool) {
	it := ipTable()
	for c := chainFJ; c < numIPChains; c++ {
		name := ip.chains[c]
		if !want[name] || added[name] {
			continue
		}
		added[name] = true
		ch := t.c.AddChain(&nftables.Chain{Name: name, Table: it})
		t.addIPRules(ch, ip.plan.chains[c])
	}
}

// delIPChain queues the removal of a shared chain (after the last map
// element jumping to it).
func (t *txn) delIPChain(name string) {
	ch := &nftables.Chain{Name: name, Table: ipTable()}
	t.c.FlushChain(ch)
	t.c.DelChain(ch)
}

func (t *txn) addIPRules(ch *nftables.Chain, rules []ipRule) {
	for _, r := range rules {
		for _, e := range r.exprs {
			if d, ok := e.(*expr.Dynset); ok {
				if s := t.ipSets[d.SetName]; s != nil {
					d.SetID = s.ID
				}
			}
		}
		t.c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: r.exprs})
	}
}

// ipElems are the map and set elements of IP-layer ports.
type ipElems struct {
	ids        []nftables.SetElement
	bits       [16][]nftables.SetElement
	from, to   []nftables.SetElement
	host       []nftables.SetElement
	withValues bool
}

// add adds all of port's elements: its id and bits in the bridge table
// and its three verdict-map elements (with values when e.withValues,
// keys only for deletion otherwise).
func (e *ipElems) add(port string, ip *ipPort) {
	id := uint32(ip.id)
	key := nftables.SetElement{Key: ifname(port)}
	if e.withValues {
		key.Val = binaryutil.BigEndian.PutUint32(id)
	}
	e.ids = append(e.ids, key)
	for k := 0; k < 16; k++ {
		if id&(1<<k) != 0 {
			e.bits[k] = append(e.bits[k], nftables.SetElement{Key: ifname(port)})
		}
	}
	for c := chainFJ; c < numIPChains; c++ {
		e.verdict(ip, c)
	}
}

// verdict adds the element of the verdict map of chain kind c (from-port,
// to-port, host-from-port) that sends ip's packets to its chain.
func (e *ipElems) verdict(ip *ipPort, c ipChain) {
	id := uint32(ip.id)
	el := nftables.SetElement{Key: nativeU32(id)}
	if c == chainFP {
		el.Key = nativeU32(id << 16)
	}
	if e.withValues {
		el.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: ip.chains[c]}
	}
	switch c {
	case chainFJ:
		e.from = append(e.from, el)
	case chainFP:
		e.to = append(e.to, el)
	case chainHJ:
		e.host = append(e.host, el)
	}
}

// send queues the elements' addition (or deletion).
func (t *txn) sendIPElems(e *ipElems, del bool) {
	op := t.addElems
	if del {
		op = t.delElems
	}
	if len(e.ids) > 0 {
		op(t.set(mapIPPortIDs), e.ids)
	}
	for k := range e.bits {
		if len(e.bits[k]) > 0 {
			op(t.set(ipToBitSetName(k)), e.bits[k])
		}
	}
	for _, m := range []struct {
		name  string
		elems []nftables.SetElement
	}{{mapIPFrom, e.from}, {mapIPTo, e.to}, {mapIPHost, e.host}} {
		if len(m.elems) > 0 {
			op(t.ipSet(m.name), m.elems)
		}
	}
}
