package nftables

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/netwarden/netwarden/netfilter"
)

// A program is the port-independent shape of a port's filter: the
// chains, with every rule whose values come from variables turned into a
// lookup in a set keyed by port. Ports whose filters have the same shape
// (the same filters, whatever their $MAC or $IP values) share one program,
// so kernel rules grow with the number of distinct filters, not with the
// number of ports.
//
// A rule group — the consecutive rules one filter rule expanded into — is
// compiled in one of three ways:
//   - plain: no variables; one kernel rule;
//   - shared: its variable fields are looked up, port first, in a set;
//     one kernel rule, and one set element per port and value tuple;
//   - fallback: it cannot be shared (a negated match with variables, a
//     variable in an attribute a lookup cannot express); the program
//     dispatches through a verdict map keyed by port to a per-port chain
//     holding that port's expanded rules.
type program struct {
	id     string
	chains []*progChain
	groups []*group // shared and fallback groups, by index
	// roots are the root chain names per direction ("" if the program
	// has no rules in that direction).
	outRoot, inRoot string
	// sets are the shared sets the program's rules look up.
	sets map[string]*nftables.SetDatatype
}

type progChain struct {
	name  string
	rules []progRule
}

// progRule is one kernel rule of a program chain.
type progRule struct {
	group int // index into program.groups, -1 for plain rules
	exprs []expr.Any
}

type groupKind int

const (
	groupPlain groupKind = iota
	groupShared
	groupFallback
	groupNone // a variable rule that yields no kernel rule in this direction
)

// group is a rule group whose kernel form needs per-port data.
type group struct {
	kind   groupKind
	dir    netfilter.Direction
	varIdx []int // indexes of variable fields in the rule
	set    string
	// keyType is the shared set's key type.
	keyType nftables.SetDatatype
	proto   string
	swap    bool
	// fbMap is a fallback group's verdict map: port → goto the port's
	// chain, which ends with a goto to next, the chain holding the rest
	// of the program chain. Going (not jumping) keeps libvirt's meaning
	// of return inside the group: leave the filter chain.
	fbMap string
	next  string
}

// portData is what one port contributes to the kernel objects of its
// program: set elements and fallback chains.
type portData struct {
	elems  map[string][][]byte // set name → keys
	chains []*progChain        // per-port fallback chains
	fbElem map[string]string   // fallback map → per-port chain
}

// rawGroup is a run of rules of one origin in one chain and direction.
type rawGroup struct {
	rules []*netfilter.Rule
}

// groupRules splits a chain's rules for one direction into runs of the
// same origin (rules expanded from one filter rule); jumps are alone.
func groupRules(rules []netfilter.Rule, d netfilter.Direction) []rawGroup {
	var out []rawGroup
	for i := range rules {
		r := &rules[i]
		if !r.Direction.Has(d) {
			continue
		}
		if n := len(out); n > 0 && r.Origin.Filter != "" && out[n-1].rules[0].Origin == r.Origin &&
			out[n-1].rules[0].Direction == r.Direction {
			out[n-1].rules = append(out[n-1].rules, r)
			continue
		}
		out = append(out, rawGroup{rules: []*netfilter.Rule{r}})
	}
	return out
}

// varFields returns the indexes of a rule's fields that came from
// variables.
func varFields(r *netfilter.Rule) []int {
	var idx []int
	for i, f := range r.Fields {
		if f.Var != "" {
			idx = append(idx, i)
		}
	}
	return idx
}

// templateOf describes a rule with its variable values blanked out: the
// identity of its shape.
func templateOf(r *netfilter.Rule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s/%s/%d/%v/", r.Direction, r.Action, r.Target, r.Priority, r.StateMatch)
	if r.Negate {
		b.WriteByte('!')
	}
	b.WriteString(r.Protocol)
	for _, f := range r.Fields {
		if f.Var != "" {
			fmt.Fprintf(&b, " %s=$%s", f.Attr, f.Var)
		} else {
			fmt.Fprintf(&b, " %s=%s", f.Attr, f.Value)
		}
	}
	return b.String()
}

// signature returns the program identity of a port's rules: the
// templates of all its Ethernet-layer rule groups.
func signature(pr *netfilter.PortRules) string {
	var b strings.Builder
	for _, d := range []netfilter.Direction{netfilter.DirOut, netfilter.DirIn} {
		for _, c := range pr.Chains {
			fmt.Fprintf(&b, "%s %s\n", dirWord(d), c.Name)
			for _, g := range groupRules(c.Rules, d) {
				b.WriteString(templateOf(g.rules[0]))
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// compileProgram builds the program for rules of this shape. pr is any
// port's rules of that shape; per-port values are taken by portDataFor.
func compileProgram(pr *netfilter.PortRules, sig string, table *nftables.Table) (*program, error) {
	p := &program{id: shortHash(sig), sets: map[string]*nftables.SetDatatype{}}
	for _, d := range []netfilter.Direction{netfilter.DirOut, netfilter.DirIn} {
		for _, c := range pr.Chains {
			groups := groupRules(c.Rules, d)
			if len(groups) == 0 {
				continue
			}
			pc := &progChain{name: programChainName(p.id, d, c.Name)}
			if c.Name == "root" {
				if d == netfilter.DirOut {
					p.outRoot = pc.name
				} else {
					p.inRoot = pc.name
				}
			}
			for _, g := range groups {
				rule, err := p.compileGroup(g, d, table)
				if err != nil {
					return nil, fmt.Errorf("chain %s %s: %w", dirWord(d), c.Name, err)
				}
				if rule.group < 0 && rule.exprs == nil {
					continue // no rule for this direction
				}
				pc.rules = append(pc.rules, rule)
				if rule.group >= 0 && p.groups[rule.group].kind == groupFallback {
					// The rest of the chain continues in a chain of its
					// own, which the port's chain goes to when none of
					// its rules decided (see group.next).
					p.chains = append(p.chains, pc)
					pc = &progChain{name: fmt.Sprintf("%s-c%d", programChainName(p.id, d, c.Name), rule.group)}
					p.groups[rule.group].next = pc.name
				}
			}
			p.chains = append(p.chains, pc)
		}
	}
	return p, nil
}

// swapFor reports whether rule r, compiled for direction d, matches with
// source and destination exchanged: libvirt's ebtables rules for inout
// are reversed in the chain for traffic from the guest.
func swapFor(r *netfilter.Rule, d netfilter.Direction) bool {
	return r.Direction == netfilter.DirInOut && d == netfilter.DirOut
}

// compileGroup compiles one rule group into the program's kernel rule.
func (p *program) compileGroup(g rawGroup, d netfilter.Direction, table *nftables.Table) (progRule, error) {
	rep := g.rules[0]
	vars := varFields(rep)
	swap := swapFor(rep, d)
	if len(vars) == 0 {
		exprs, err := compileMatch(nftables.TableFamilyBridge, rep, matchOptions{Dir: d, Swap: swap})
		if errors.Is(err, errNoRule) {
			return progRule{group: -1}, nil // libvirt emits nothing here either
		}
		if err != nil {
			return progRule{}, err
		}
		return progRule{group: -1, exprs: append(exprs, verdictOf(rep, p.id, d)...)}, nil
	}
	gi := len(p.groups)
	if !rep.Negate {
		fields := make([]netfilter.Field, len(vars))
		for i, idx := range vars {
			fields[i] = rep.Fields[idx]
		}
		keyType, err := sharedKeyType(rep.Protocol, fields, swap)
		if err == nil {
			var attrs []string
			for _, f := range fields {
				attrs = append(attrs, f.Attr+"=$"+f.Var)
			}
			setName := sharedSetName(fmt.Sprintf("%s %s %s swap=%v", dirWord(d), rep.Protocol, strings.Join(attrs, " "), swap))
			set := &nftables.Set{Table: table, Name: setName, KeyType: keyType, Concatenation: true}
			exprs, err := compileMatch(nftables.TableFamilyBridge, rep, matchOptions{Dir: d, Shared: vars, Set: set, Swap: swap})
			if errors.Is(err, errNoRule) {
				// Nothing to install, but the group keeps its index
				// (portDataFor walks the same groups).
				p.groups = append(p.groups, &group{kind: groupNone, dir: d})
				return progRule{group: -1}, nil
			}
			if err == nil {
				grp := &group{kind: groupShared, dir: d, varIdx: vars, set: setName, keyType: keyType, proto: rep.Protocol, swap: swap}
				p.groups = append(p.groups, grp)
				p.sets[setName] = &grp.keyType
				return progRule{group: gi, exprs: append(exprs, verdictOf(rep, p.id, d)...)}, nil
			}
			if !errors.Is(err, errUnsupported) {
				return progRule{}, err
			}
		} else if !errors.Is(err, errUnsupported) {
			return progRule{}, err
		}
	}
	// Fallback: a verdict map keyed by port, to the port's own chain.
	grp := &group{kind: groupFallback, dir: d, fbMap: fallbackMapName(p.id, gi), proto: rep.Protocol}
	p.groups = append(p.groups, grp)
	return progRule{group: gi, exprs: []expr.Any{
		portMeta(d, 1),
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: grp.fbMap},
	}}, nil
}

// portMeta loads the port's interface name for direction d into reg.
func portMeta(d netfilter.Direction, reg uint32) expr.Any {
	key := expr.MetaKeyIIFNAME
	if d == netfilter.DirIn {
		key = expr.MetaKeyOIFNAME
	}
	return &expr.Meta{Key: key, Register: reg}
}

// verdictOf returns the statement ending a rule: its action (a jump goes
// to the program's chain for the target), nothing for continue.
func verdictOf(r *netfilter.Rule, prog string, d netfilter.Direction) []expr.Any {
	switch r.Action {
	case netfilter.Accept:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	case netfilter.Drop, netfilter.Reject:
		// The bridge family has no reject; libvirt's ebtables rules
		// drop there too.
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	case netfilter.Return:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}
	case netfilter.Jump:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: programChainName(prog, d, r.Target)}}
	}
	return nil
}

// portDataFor computes what port contributes to program p: the keys of
// its shared groups and the chains of its fallback groups. pr must have
// p's shape.
func (p *program) portDataFor(port string, pr *netfilter.PortRules) (*portData, error) {
	pd := &portData{elems: map[string][][]byte{}, fbElem: map[string]string{}}
	gi := 0
	for _, d := range []netfilter.Direction{netfilter.DirOut, netfilter.DirIn} {
		for _, c := range pr.Chains {
			for _, g := range groupRules(c.Rules, d) {
				rep := g.rules[0]
				if len(varFields(rep)) == 0 {
					continue
				}
				if gi >= len(p.groups) {
					return nil, fmt.Errorf("port %s does not have the shape of program %s", port, p.id)
				}
				grp := p.groups[gi]
				gi++
				switch grp.kind {
				case groupShared:
					for _, r := range g.rules {
						// The shared fields and their literal masks:
						// the key is masked as the packet is.
						key, err := sharedKey(port, grp.proto, keyFields(r, grp.varIdx), grp.swap)
						if err != nil {
							return nil, fmt.Errorf("port %s: %w", port, err)
						}
						pd.elems[grp.set] = append(pd.elems[grp.set], key)
					}
				case groupFallback:
					pc := &progChain{name: portChainName(port, p.id, gi-1)}
					for _, r := range g.rules {
						exprs, err := compileMatch(nftables.TableFamilyBridge, r, matchOptions{Dir: d, Swap: swapFor(r, d)})
						if errors.Is(err, errNoRule) {
							continue
						}
						if err != nil {
							return nil, fmt.Errorf("port %s: %w", port, err)
						}
						pc.rules = append(pc.rules, progRule{group: -1, exprs: append(exprs, verdictOf(r, p.id, d)...)})
					}
					pc.rules = append(pc.rules, progRule{group: -1, exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: grp.next}}})
					pd.chains = append(pd.chains, pc)
					pd.fbElem[grp.fbMap] = pc.name
				}
			}
		}
	}
	for name := range pd.elems {
		pd.elems[name] = dedupKeys(pd.elems[name])
	}
	return pd, nil
}

// dedupKeys sorts keys and drops duplicates.
func dedupKeys(keys [][]byte) [][]byte {
	sort.Slice(keys, func(i, j int) bool { return string(keys[i]) < string(keys[j]) })
	out := keys[:0]
	for i, k := range keys {
		if i == 0 || string(k) != string(keys[i-1]) {
			out = append(out, k)
		}
	}
	return out
}
