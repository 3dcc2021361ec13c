package nftables

import (
	"os"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/netwarden/netwarden/netfilter"
)

// txn builds one nftables transaction (a netlink batch the kernel
// commits atomically on Flush). Its methods queue messages; errors
// surface at Flush.
type txn struct {
	c      *nftables.Conn
	table  *nftables.Table
	sets   map[string]*nftables.Set
	ipSets map[string]*nftables.Set // the inet table's maps created in this transaction
}

func (t *txn) set(name string) *nftables.Set {
	if s, ok := t.sets[name]; ok {
		return s
	}
	return &nftables.Set{Table: t.table, Name: name}
}

// ifname encodes an interface name as the kernel compares it: 16 bytes,
// NUL padded.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func portMaps(table *nftables.Table) (from, to *nftables.Set) {
	mk := func(name string) *nftables.Set {
		return &nftables.Set{Table: table, Name: name, IsMap: true,
			KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict,
			// Strings are host-endian to nft; without it, nft lists
			// the keys as "".
			KeyByteOrder: binaryutil.NativeEndian}
	}
	return mk(mapFromGuest), mk(mapToGuest)
}

// verdictElem is a verdict-map element sending port to chain ("drop":
// drop the frame). jump calls the chain, goto replaces the caller.
func verdictElem(port, chain string, kind expr.VerdictKind) nftables.SetElement {
	if chain == "drop" {
		return nftables.SetElement{Key: ifname(port), VerdictData: &expr.Verdict{Kind: expr.VerdictDrop}}
	}
	return nftables.SetElement{Key: ifname(port), VerdictData: &expr.Verdict{Kind: kind, Chain: chain}}
}

// replaceAll replaces the whole table with next, atomically: the old
// table and the new one are swapped in the same transaction, so packets
// see one or the other. The inet table (IP layer) is replaced likewise,
// or removed when no port has IP-layer rules.
func (t *txn) replaceAll(next *installed) {
	t.sets = map[string]*nftables.Set{}
	t.ipSets = map[string]*nftables.Set{}
	for _, tb := range []*nftables.Table{t.table, ipTable()} {
		t.c.AddTable(tb) // so that the deletion cannot fail
		t.c.DelTable(tb)
	}
	t.c.AddTable(t.table)

	from, to := portMaps(t.table)
	t.addSet(from, nil)
	t.addSet(to, nil)
	for _, b := range []struct {
		name string
		hook *nftables.ChainHook
		prio int
		dir  netfilter.Direction
		m    *nftables.Set
	}{
		{chainFromGuest, nftables.ChainHookPrerouting, priorityFromGuest, netfilter.DirOut, from},
		{chainToGuest, nftables.ChainHookPostrouting, priorityToGuest, netfilter.DirIn, to},
	} {
		prio := nftables.ChainPriority(int32(b.prio))
		policy := nftables.ChainPolicyAccept
		ch := t.c.AddChain(&nftables.Chain{Name: b.name, Table: t.table, Type: nftables.ChainTypeFilter,
			Hooknum: b.hook, Priority: &prio, Policy: &policy})
		t.c.AddRule(&nftables.Rule{Table: t.table, Chain: ch, Exprs: []expr.Any{
			portMeta(b.dir, 1),
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: b.m.Name, SetID: b.m.ID},
		}})
	}
	for _, id := range sortedProgramIDs(next) {
		t.addProgram(next.progByID[id], nil)
	}
	var fromElems, toElems []nftables.SetElement
	fb := map[string][]nftables.SetElement{}
	for _, name := range sortedPorts(next) {
		pi := next.ports[name]
		if pi.data != nil {
			t.addChains(pi.data.chains, pi.prog.id)
			for m, chain := range pi.data.fbElem {
				fb[m] = append(fb[m], verdictElem(name, chain, expr.VerdictGoto))
			}
		}
		if pi.from != "" {
			fromElems = append(fromElems, verdictElem(name, pi.from, expr.VerdictJump))
		}
		if pi.to != "" {
			toElems = append(toElems, verdictElem(name, pi.to, expr.VerdictJump))
		}
	}
	t.addElems(from, fromElems)
	t.addElems(to, toElems)
	for _, m := range sortedKeys(fb) {
		t.addElems(t.set(m), fb[m])
	}
	for _, set := range sortedKeys(next.setElems) {
		t.addElems(t.set(set), keyElems(next.setElems[set]))
	}
	if next.hasIP() {
		t.addIPInfra()
		e := &ipElems{withValues: true}
		want := make(map[string]bool, len(next.ipChains))
		for ch := range next.ipChains {
			want[ch] = true
		}
		added := make(map[string]bool, len(next.ipChains))
		for _, name := range sortedPorts(next) {
			if ip := next.ports[name].ip; ip != nil {
				t.addIPChains(ip, want, added)
				e.add(name, ip)
			}
		}
		t.sendIPElems(e, false)
	}
}

// update sends the change d to the installed state old, in an order the
// kernel accepts within one transaction: new objects first, then
// elements, then what is no longer used.
func (t *txn) update(old *installed, d *delta) {
	t.sets = map[string]*nftables.Set{}
	t.ipSets = map[string]*nftables.Set{}
	from, to := portMaps(t.table)
	// The IP layer's fixed objects exist while some port has IP-layer
	// rules.
	hadIP, hasIP := old.hasIP(), d.hasIPAfter(old)
	if !hadIP && hasIP {
		t.addIPInfra()
	}

	existing := map[string]bool{}
	for set := range old.setRefs {
		existing[set] = true
	}
	for _, p := range d.progAdd {
		t.addProgram(p, existing)
	}
	// Per-port chains of new and changed ports.
	oldChains := map[string]bool{}
	names := make([]string, 0, len(d.set))
	for name := range d.set {
		names = append(names, name)
	}
	sort.Strings(names)
	newChains := map[string]bool{}
	for _, name := range names {
		pi := d.set[name]
		if o := old.ports[name]; o != nil && o.data != nil {
			for _, c := range o.data.chains {
				oldChains[c.name] = true
			}
		}
		if pi.data == nil {
			continue
		}
		for _, c := range pi.data.chains {
			newChains[c.name] = true
			if oldChains[c.name] {
				ch := &nftables.Chain{Name: c.name, Table: t.table}
				t.c.FlushChain(ch)
				t.addRules(ch, c.rules, pi.prog.id)
			} else {
				t.addChains([]*progChain{c}, pi.prog.id)
			}
		}
	}
	for _, name := range d.del {
		if o := old.ports[name]; o != nil && o.data != nil {
			for _, c := range o.data.chains {
				oldChains[c.name] = true
			}
		}
	}
	// Map elements of changed, new and removed ports.
	var fromAdd, fromDel, toAdd, toDel []nftables.SetElement
	fbAdd, fbDel := map[string][]nftables.SetElement{}, map[string][]nftables.SetElement{}
	diffPort := func(name string, o, n *portInstall) {
		var of, ot, nf, nt string
		if o != nil {
			of, ot = o.from, o.to
		}
		if n != nil {
			nf, nt = n.from, n.to
		}
		if of != nf {
			if of != "" {
				fromDel = append(fromDel, nftables.SetElement{Key: ifname(name)})
			}
			if nf != "" {
				fromAdd = append(fromAdd, verdictElem(name, nf, expr.VerdictJump))
			}
		}
		if ot != nt {
			if ot != "" {
				toDel = append(toDel, nftables.SetElement{Key: ifname(name)})
			}
			if nt != "" {
				toAdd = append(toAdd, verdictElem(name, nt, expr.VerdictJump))
			}
		}
		var ofb, nfb map[string]string
		if o != nil && o.data != nil {
			ofb = o.data.fbElem
		}
		if n != nil && n.data != nil {
			nfb = n.data.fbElem
		}
		for m, c := range ofb {
			if nfb[m] != c {
				fbDel[m] = append(fbDel[m], nftables.SetElement{Key: ifname(name)})
			}
		}
		for m, c := range nfb {
			if ofb[m] != c {
				fbAdd[m] = append(fbAdd[m], verdictElem(name, c, expr.VerdictGoto))
			}
		}
	}
	for _, name := range names {
		diffPort(name, old.ports[name], d.set[name])
	}
	for _, name := range d.del {
		diffPort(name, old.ports[name], nil)
	}
	// IP layer: the shared chains that appear (before the elements
	// jumping to them), the elements of new, changed and removed ports
	// (a port keeps its id while it keeps IP-layer rules: a change of
	// its rules replaces the verdict-map elements of the chains whose
	// rules changed), then the chains no port uses any more (after
	// their last element).
	ipNew := make(map[string]bool, len(d.ipChainAdd))
	for _, ch := range d.ipChainAdd {
		ipNew[ch] = true
	}
	ipAdded := make(map[string]bool, len(d.ipChainAdd))
	ipAdd, ipDel := &ipElems{withValues: true}, &ipElems{}
	for _, name := range names {
		var o *ipPort
		if op := old.ports[name]; op != nil {
			o = op.ip
		}
		n := d.set[name].ip
		if n != nil {
			t.addIPChains(n, ipNew, ipAdded)
		}
		switch {
		case o == nil && n != nil:
			ipAdd.add(name, n)
		case o != nil && n != nil && o.id != n.id:
			ipDel.add(name, o)
			ipAdd.add(name, n)
		case o != nil && n != nil:
			for c := chainFJ; c < numIPChains; c++ {
				if o.chains[c] != n.chains[c] {
					ipDel.verdict(o, c)
					ipAdd.verdict(n, c)
				}
			}
		case o != nil && n == nil:
			ipDel.add(name, o)
		}
	}
	for _, name := range d.del {
		if op := old.ports[name]; op != nil && op.ip != nil {
			ipDel.add(name, op.ip)
		}
	}
	t.sendIPElems(ipDel, true)
	t.sendIPElems(ipAdd, false)
	for _, ch := range d.ipChainDel {
		t.delIPChain(ch)
	}
	// Deletions before additions: a changed port's element is replaced.
	// The elements of a fallback map that goes with its program are
	// deleted too: they go to per-port chains, which are deleted before
	// the map and could not be while an element names them.
	t.delElems(from, fromDel)
	t.delElems(to, toDel)
	for _, m := range sortedKeys(fbDel) {
		t.delElems(t.set(m), fbDel[m])
	}
	goneSets := map[string]bool{}
	for _, set := range d.setsDel {
		goneSets[set] = true
	}
	for _, set := range sortedKeys(d.elemDel) {
		if !goneSets[set] {
			t.delElems(t.set(set), keyElemsOf(d.elemDel[set]))
		}
	}
	t.addElems(from, fromAdd)
	t.addElems(to, toAdd)
	for _, m := range sortedKeys(fbAdd) {
		t.addElems(t.set(m), fbAdd[m])
	}
	for _, set := range sortedKeys(d.elemAdd) {
		t.addElems(t.set(set), keyElemsOf(d.elemAdd[set]))
	}
	// What is no longer used: per-port chains, programs, sets.
	for _, name := range sortedKeys(oldChains) {
		if !newChains[name] {
			ch := &nftables.Chain{Name: name, Table: t.table}
			t.c.FlushChain(ch)
			t.c.DelChain(ch)
		}
	}
	for _, p := range d.progDel {
		t.delProgram(p)
	}
	for _, set := range d.setsDel {
		t.c.DelSet(t.set(set))
	}
	if hadIP && !hasIP {
		t.delIPInfra()
	}
}

// addProgram queues a program's sets, fallback maps and chains. Sets in
// existing are there already.
func (t *txn) addProgram(p *program, existing map[string]bool) {
	for _, name := range sortedKeys(p.sets) {
		if existing[name] || t.sets[name] != nil {
			continue
		}
		t.addSet(&nftables.Set{Table: t.table, Name: name, KeyType: *p.sets[name], Concatenation: true}, nil)
	}
	for _, g := range p.groups {
		if g.kind == groupFallback {
			t.addSet(&nftables.Set{Table: t.table, Name: g.fbMap, IsMap: true,
				KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict,
				KeyByteOrder: binaryutil.NativeEndian}, nil)
		}
	}
	t.addChains(p.chains, p.id)
}

// delProgram queues the removal of a program's chains and fallback maps
// (its shared sets are removed with the last program using them).
func (t *txn) delProgram(p *program) {
	for _, c := range p.chains {
		t.c.FlushChain(&nftables.Chain{Name: c.name, Table: t.table})
	}
	for _, c := range p.chains {
		t.c.DelChain(&nftables.Chain{Name: c.name, Table: t.table})
	}
	for _, g := range p.groups {
		if g.kind == groupFallback {
			t.c.DelSet(t.set(g.fbMap))
		}
	}
}

// addChains queues chains and then their rules (rules may jump to any of
// them, so all exist before the first rule).
func (t *txn) addChains(chains []*progChain, prog string) {
	made := make([]*nftables.Chain, len(chains))
	for i, c := range chains {
		made[i] = t.c.AddChain(&nftables.Chain{Name: c.name, Table: t.table})
	}
	for i, c := range chains {
		t.addRules(made[i], c.rules, prog)
	}
}

func (t *txn) addRules(ch *nftables.Chain, rules []progRule, prog string) {
	for _, r := range rules {
		exprs := r.exprs
		for _, e := range exprs {
			if l, ok := e.(*expr.Lookup); ok {
				if s := t.sets[l.SetName]; s != nil {
					l.SetID = s.ID
				}
			}
		}
		t.c.AddRule(&nftables.Rule{Table: t.table, Chain: ch, Exprs: exprs})
	}
}

func (t *txn) addSet(s *nftables.Set, elems []nftables.SetElement) {
	// Errors from AddSet are about malformed sets, a programming error;
	// they also surface at Flush.
	_ = t.c.AddSet(s, elems)
	t.sets[s.Name] = s
}

// elemChunk bounds the elements per netlink message: a message's element
// list is one attribute, whose length field has 16 bits, so a long list
// would be cut short.
const elemChunk = 256

func (t *txn) addElems(s *nftables.Set, elems []nftables.SetElement) {
	for len(elems) > 0 {
		n := min(len(elems), elemChunk)
		_ = t.c.SetAddElements(s, elems[:n])
		elems = elems[n:]
	}
}

func (t *txn) delElems(s *nftables.Set, elems []nftables.SetElement) {
	for len(elems) > 0 {
		n := min(len(elems), elemChunk)
		_ = t.c.SetDeleteElements(s, elems[:n])
		elems = elems[n:]
	}
}

func keyElems(keys map[string]int) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(keys))
	for _, k := range sortedKeys(keys) {
		out = append(out, nftables.SetElement{Key: []byte(k)})
	}
	return out
}

func keyElemsOf(keys [][]byte) []nftables.SetElement {
	sort.Slice(keys, func(i, j int) bool { return string(keys[i]) < string(keys[j]) })
	out := make([]nftables.SetElement, len(keys))
	for i, k := range keys {
		out[i] = nftables.SetElement{Key: k}
	}
	return out
}

func sortedPorts(s *installed) []string { return sortedKeys(s.ports) }

func sortedProgramIDs(s *installed) []string { return sortedKeys(s.progByID) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
