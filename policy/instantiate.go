package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// Resolver finds filters by name; a Registry is one.
type Resolver interface {
	// Filter returns the effective definition of the named filter.
	Filter(name string) (*Filter, bool)
}

// Well-known variables and parameters.
const (
	// VarMAC is the guest's MAC address; taken from the binding when the
	// parameters do not set it.
	VarMAC = "MAC"
	// VarIP holds the guest's IPv4 addresses; learned when absent.
	VarIP = "IP"
	// VarIPv6 holds the guest's IPv6 addresses; learned when absent.
	VarIPv6 = "IPV6"
	// ParamIPLearning selects how missing addresses are learned: any
	// (the default), dhcp or none.
	ParamIPLearning = "CTRL_IP_LEARNING"
	// ParamDHCPServer lists the DHCP servers trusted by dhcp learning.
	ParamDHCPServer = "DHCPSERVER"
)

// Learning modes of ParamIPLearning.
const (
	LearnAny  = "any"
	LearnDHCP = "dhcp"
	LearnNone = "none"
)

// maxDepth bounds filter reference chains. The registry refuses cycles,
// so this only guards against a resolver that does not.
const maxDepth = 64

// maxRulesPerPort bounds what one instantiation may produce: iterators
// over long lists multiply.
const maxRulesPerPort = 100000

// Params holds variable values by name; every variable is a list (a
// single value is a list of one).
type Params map[string][]string

// ParamsOf collects parameters given as (name, value) pairs in document
// order; repeated names form lists.
func ParamsOf(ps []Param) Params {
	out := make(Params, len(ps))
	for _, p := range ps {
		out[p.Name] = append(out[p.Name], p.Value)
	}
	return out
}

// Instantiation is the result of instantiating a filter for one port.
type Instantiation struct {
	// Rules is the port's complete filter; nil while Learn is not empty.
	Rules *netfilter.PortRules
	// Learn lists the address variables (IP, IPV6) the filter needs but
	// the parameters do not give and which are to be learned from the
	// guest's traffic; until they are, the filter cannot be instantiated.
	Learn []string
	// Learning is the learning mode in force (any, dhcp or none).
	Learning string
	// Filters are the names of every filter the instantiation used,
	// sorted; a change to any of them requires a new instantiation.
	Filters []string
}

// InstantiateError reports why a filter cannot be instantiated for a
// port: an undefined filter, a missing variable, a value of the wrong
// type, mismatched list lengths.
type InstantiateError struct {
	// Port is the port being instantiated.
	Port string
	// Filter and Rule locate the problem (Rule 0: not within a rule).
	Filter string
	Rule   int
	// Variable is the variable concerned, if any.
	Variable string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *InstantiateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %s: filter %q", e.Port, e.Filter)
	if e.Rule > 0 {
		fmt.Fprintf(&b, " rule %d", e.Rule)
	}
	if e.Variable != "" {
		fmt.Fprintf(&b, ": variable $%s", e.Variable)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// IsInstantiateError reports whether err is (or wraps) an *InstantiateError.
func IsInstantiateError(err error) bool {
	var e *InstantiateError
	return errors.As(err, &e)
}

// Instantiate resolves the named filter, the filters it references and
// the variables its rules use into the ordered rule list of one port,
// with libvirt's semantics:
//
//   - the binding's parameters (params, plus MAC when absent) are the
//     variables at the top; a filter reference's own parameters are used
//     for the referenced filter, but a value already set by the
//     referencing context wins over them;
//   - a rule is instantiated once per combination of its variables'
//     values: variables written $X (which means $X[@0]) or with the same
//     iterator $X[@K] walk their lists in parallel and must have the
//     same number of values; different iterators form the cross product;
//     $X[N] takes one element; a combination already produced by the
//     same iterator is skipped;
//   - Ethernet-layer rules (mac, vlan, stp, arp, rarp, ip, ipv6 and
//     rules without a protocol) go to the chain named by their filter's
//     chain attribute; the root chain holds root rules and a jump to
//     each sub-chain, ordered by rule priority and chain priority (a
//     jump goes before a rule of equal priority); IP-layer rules are
//     one list per family; within a list, rules of root-chain filters
//     come first, then by priority, with document order breaking ties;
//   - a variable without a value is an error naming it, except IP and
//     IPV6 when learning is on (CTRL_IP_LEARNING any or dhcp, the
//     default being any): then the result lists them in Learn.
func Instantiate(res Resolver, port, filter, mac string, params []Param) (*Instantiation, error) {
	top := ParamsOf(params)
	if _, ok := top[VarMAC]; !ok && mac != "" {
		top[VarMAC] = []string{mac}
	}
	learning := LearnAny
	if v, ok := top[ParamIPLearning]; ok && len(v) > 0 {
		learning = strings.ToLower(v[0])
		switch learning {
		case LearnAny, LearnDHCP, LearnNone:
		default:
			return nil, &InstantiateError{Port: port, Filter: filter, Variable: ParamIPLearning,
				Reason: fmt.Sprintf("value %q: want any, dhcp or none", v[0])}
		}
	}

	in := &instantiator{res: res, port: port, used: map[string]bool{}}
	if err := in.collect(filter, top, 0, nil); err != nil {
		return nil, err
	}
	result := &Instantiation{Learning: learning, Filters: sortedKeys(in.used)}

	// Missing variables: every one is an error but the learnable ones.
	missing := map[string]bool{}
	for _, ri := range in.rules {
		for _, name := range ri.rule.varNames() {
			if _, ok := ri.vars[name]; !ok {
				missing[name] = true
			}
		}
	}
	for _, name := range sortedKeys(missing) {
		if (name == VarIP || name == VarIPv6) && learning != LearnNone {
			result.Learn = append(result.Learn, name)
			continue
		}
		ri := in.firstUser(name)
		return nil, &InstantiateError{Port: port, Filter: ri.filter.Name, Rule: ri.index, Variable: name,
			Reason: "has no value (set it as a parameter of the binding or of the filter reference)"}
	}
	if len(result.Learn) > 0 {
		return result, nil
	}

	pr, err := in.build()
	if err != nil {
		return nil, err
	}
	result.Rules = pr
	return result, nil
}

// ruleInst is one filter rule in the context it is instantiated in.
type ruleInst struct {
	filter *Filter
	index  int // 1-based among the filter's rules
	rule   *Rule
	vars   Params
	seq    int // document order over the whole tree
}

type instantiator struct {
	res   Resolver
	port  string
	rules []ruleInst
	used  map[string]bool
}

// collect walks the filter tree depth first in document order.
func (in *instantiator) collect(name string, vars Params, depth int, path []string) error {
	f, ok := in.res.Filter(name)
	if !ok {
		from := "the binding"
		if len(path) > 0 {
			from = fmt.Sprintf("filter %q", path[len(path)-1])
		}
		return &InstantiateError{Port: in.port, Filter: name, Reason: fmt.Sprintf("is not defined (referenced by %s)", from)}
	}
	if depth >= maxDepth {
		return &InstantiateError{Port: in.port, Filter: name, Reason: fmt.Sprintf("filter references nest deeper than %d: %s", maxDepth, strings.Join(path, " → "))}
	}
	in.used[name] = true
	path = append(path, name)
	ruleIdx := 0
	for _, e := range f.Entries {
		switch {
		case e.Rule != nil:
			ruleIdx++
			in.rules = append(in.rules, ruleInst{filter: f, index: ruleIdx, rule: e.Rule, vars: vars, seq: len(in.rules)})
		case e.Ref != nil:
			// The reference's parameters first, then the context's
			// values over them.
			sub := ParamsOf(e.Ref.Params)
			for k, v := range vars {
				sub[k] = v
			}
			if err := in.collect(e.Ref.Filter, sub, depth+1, path); err != nil {
				return err
			}
		}
	}
	return nil
}

func (in *instantiator) firstUser(name string) ruleInst {
	for _, ri := range in.rules {
		for _, n := range ri.rule.varNames() {
			if n == name {
				return ri
			}
		}
	}
	return ruleInst{}
}

// varNames lists the variables a rule uses, in field order, unique.
func (r *Rule) varNames() []string {
	if r.Match == nil {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, f := range r.Match.Fields {
		if f.Value.Var != nil && !seen[f.Value.Var.Name] {
			seen[f.Value.Var.Name] = true
			names = append(names, f.Value.Var.Name)
		}
	}
	return names
}

// Layers of protocols.
var (
	ipv4Protocols = map[Protocol]bool{ProtoTCP: true, ProtoUDP: true, ProtoUDPLite: true, ProtoESP: true,
		ProtoAH: true, ProtoSCTP: true, ProtoICMP: true, ProtoIGMP: true, ProtoAll: true}
	ipv6Protocols = map[Protocol]bool{ProtoTCPIPv6: true, ProtoUDPIPv6: true, ProtoUDPLiteIPv6: true,
		ProtoESPIPv6: true, ProtoAHIPv6: true, ProtoSCTPIPv6: true, ProtoICMPv6: true, ProtoAllIPv6: true}
)

type layer int

const (
	layerEthernet layer = iota
	layerIPv4
	layerIPv6
)

func (r *Rule) layer() layer {
	if r.Match == nil {
		return layerEthernet
	}
	switch {
	case ipv4Protocols[r.Match.Protocol]:
		return layerIPv4
	case ipv6Protocols[r.Match.Protocol]:
		return layerIPv6
	}
	return layerEthernet
}

// build orders the collected rules and expands their variables.
func (in *instantiator) build() (*netfilter.PortRules, error) {
	rules := append([]ruleInst(nil), in.rules...)
	// Root-chain filters' rules first, then by priority, then document
	// order (libvirt sorts the same way, without the stable tie-break).
	sort.SliceStable(rules, func(i, j int) bool {
		ri, rj := rules[i].filter.Chain == "root", rules[j].filter.Chain == "root"
		if ri != rj {
			return ri
		}
		if rules[i].rule.Priority != rules[j].rule.Priority {
			return rules[i].rule.Priority < rules[j].rule.Priority
		}
		return rules[i].seq < rules[j].seq
	})

	pr := &netfilter.PortRules{Port: in.port}
	count := 0
	expand := func(ri *ruleInst) ([]netfilter.Rule, error) {
		out, err := in.expand(ri)
		count += len(out)
		if err == nil && count > maxRulesPerPort {
			err = &InstantiateError{Port: in.port, Filter: ri.filter.Name, Rule: ri.index,
				Reason: fmt.Sprintf("expands to more than %d rules", maxRulesPerPort)}
		}
		return out, err
	}

	// Sub-chains and their priority (the last rule seen decides, as in
	// libvirt), per direction of the jump into them.
	type subchain struct {
		name     string
		priority int
		dir      netfilter.Direction // direction of the jump
	}
	fromGuest, toGuest := map[string]int{}, map[string]int{}
	var ethernet []*ruleInst
	for i := range rules {
		ri := &rules[i]
		if ri.rule.layer() != layerEthernet {
			continue
		}
		ethernet = append(ethernet, ri)
		if ri.filter.Chain == "root" {
			continue
		}
		d := direction(ri.rule.Direction)
		if d.Has(netfilter.DirOut) {
			fromGuest[ri.filter.Chain] = ri.filter.ChainPriority
		}
		if d.Has(netfilter.DirIn) {
			toGuest[ri.filter.Chain] = ri.filter.ChainPriority
		}
	}
	var subs []subchain
	for name, prio := range fromGuest {
		subs = append(subs, subchain{name, prio, netfilter.DirOut})
	}
	for name, prio := range toGuest {
		subs = append(subs, subchain{name, prio, netfilter.DirIn})
	}
	sort.Slice(subs, func(i, j int) bool {
		if subs[i].priority != subs[j].priority {
			return subs[i].priority < subs[j].priority
		}
		if subs[i].name != subs[j].name {
			return subs[i].name < subs[j].name
		}
		return subs[i].dir > subs[j].dir // from the guest first
	})

	if len(ethernet) > 0 {
		root := &netfilter.Chain{Name: "root"}
		chains := map[string]*netfilter.Chain{}
		var order []*netfilter.Chain
		chainFor := func(name string, prio int) *netfilter.Chain {
			c, ok := chains[name]
			if !ok {
				c = &netfilter.Chain{Name: name, Priority: prio}
				chains[name] = c
				order = append(order, c)
			}
			return c
		}
		j := 0
		emitJumps := func(upTo int, all bool) {
			for j < len(subs) && (all || subs[j].priority <= upTo) {
				s := subs[j]
				proto, fields := netfilter.JumpMatch(s.name)
				root.Rules = append(root.Rules, netfilter.Rule{
					Direction: s.dir, Action: netfilter.Jump, Target: s.name, Priority: s.priority,
					StateMatch: true, Protocol: proto, Fields: fields,
				})
				chainFor(s.name, s.priority)
				j++
			}
		}
		for _, ri := range ethernet {
			prio := ri.rule.Priority
			// A sub-chain's rules sort no earlier than the chain itself.
			if ri.filter.Chain != "root" && ri.filter.ChainPriority > prio {
				prio = ri.filter.ChainPriority
			}
			emitJumps(prio, false)
			out, err := expand(ri)
			if err != nil {
				return nil, err
			}
			if ri.filter.Chain == "root" {
				root.Rules = append(root.Rules, out...)
			} else {
				c := chainFor(ri.filter.Chain, ri.filter.ChainPriority)
				c.Rules = append(c.Rules, out...)
			}
		}
		emitJumps(0, true)
		for _, c := range order {
			if p, ok := fromGuest[c.Name]; ok {
				c.Priority = p
			} else if p, ok := toGuest[c.Name]; ok {
				c.Priority = p
			}
		}
		sort.SliceStable(order, func(a, b int) bool {
			if order[a].Priority != order[b].Priority {
				return order[a].Priority < order[b].Priority
			}
			return order[a].Name < order[b].Name
		})
		pr.Chains = append([]*netfilter.Chain{root}, order...)
	}

	for i := range rules {
		ri := &rules[i]
		switch ri.rule.layer() {
		case layerIPv4:
			out, err := expand(ri)
			if err != nil {
				return nil, err
			}
			pr.IPv4 = append(pr.IPv4, out...)
		case layerIPv6:
			out, err := expand(ri)
			if err != nil {
				return nil, err
			}
			pr.IPv6 = append(pr.IPv6, out...)
		}
	}
	return pr, nil
}

func direction(d Direction) netfilter.Direction {
	switch d {
	case DirIn:
		return netfilter.DirIn
	case DirOut:
		return netfilter.DirOut
	}
	return netfilter.DirInOut
}

func action(a Action) netfilter.Action {
	switch a {
	case ActionAccept:
		return netfilter.Accept
	case ActionDrop:
		return netfilter.Drop
	case ActionReject:
		return netfilter.Reject
	case ActionReturn:
		return netfilter.Return
	}
	return netfilter.Continue
}

// iterator walks the positions of one group of variables.
type iterator struct {
	id       int      // iterator id; element accesses get private ids
	names    []string // variables walked together
	min, max int
	cur      int   // current position
	steps    []int // positions to visit after min: those whose values differ from every earlier one
	step     int   // index into steps of the next position
}

// plan computes the positions the iterator visits: every position from
// min to max whose combination of values has not occurred at an earlier
// position (libvirt skips such duplicates).
func (it *iterator) plan(vars Params) {
	it.cur, it.step, it.steps = it.min, 0, nil
	if len(it.names) == 0 {
		return
	}
	seen := make(map[string]bool, it.max-it.min+1)
	var key strings.Builder
	for pos := it.min; pos <= it.max; pos++ {
		key.Reset()
		for _, n := range it.names {
			key.WriteString(vars[n][pos])
			key.WriteByte(0)
		}
		k := key.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		if pos > it.min {
			it.steps = append(it.steps, pos)
		}
	}
}

// expand produces the concrete rules of one rule instance: one per
// combination of variable values, duplicates skipped, each value
// type-checked against its attribute.
func (in *instantiator) expand(ri *ruleInst) ([]netfilter.Rule, error) {
	r := ri.rule
	base := netfilter.Rule{
		Direction:  direction(r.Direction),
		Action:     action(r.Action),
		Priority:   r.Priority,
		StateMatch: r.StateMatch,
		Origin:     netfilter.Origin{Filter: ri.filter.Name, Rule: ri.index},
	}
	if r.Match == nil {
		return []netfilter.Rule{base}, nil
	}
	base.Protocol = string(r.Match.Protocol)
	base.Negate = r.Match.Negate
	base.Comment = r.Match.Comment

	fail := func(variable, reason string) error {
		return &InstantiateError{Port: in.port, Filter: ri.filter.Name, Rule: ri.index, Variable: variable, Reason: reason}
	}

	// Build the iterators as libvirt does: iterator 0 always exists;
	// $X is $X[@0]; $X[@K] joins iterator K; $X[N] gets its own.
	iters := []*iterator{{id: 0}}
	byID := map[int]*iterator{0: iters[0]}
	iterOf := make([]*iterator, len(r.Match.Fields))
	nextPrivate := -1
	for i, f := range r.Match.Fields {
		v := f.Value.Var
		if v == nil {
			continue
		}
		values := ri.vars[v.Name]
		var it *iterator
		lo, hi := 0, len(values)-1
		switch v.Access {
		case AccessIndex:
			it = &iterator{id: nextPrivate}
			nextPrivate--
			iters = append(iters, it)
			if v.Index >= len(values) {
				return nil, fail(v.Name, fmt.Sprintf("index %d out of range: the list has %d values", v.Index, len(values)))
			}
			lo, hi = v.Index, v.Index
		default:
			id := 0
			if v.Access == AccessIterator {
				id = v.Index
			}
			it = byID[id]
			if it == nil {
				it = &iterator{id: id}
				byID[id] = it
				iters = append(iters, it)
			}
		}
		if len(values) == 0 {
			return nil, fail(v.Name, "has an empty list of values")
		}
		iterOf[i] = it
		if contains(it.names, v.Name) {
			continue
		}
		if len(it.names) == 0 {
			it.min, it.max, it.cur = lo, hi, lo
		} else if it.max != hi {
			return nil, fail(v.Name, fmt.Sprintf("has %d values but the variables it is walked with in parallel (%s) have %d; give them the same number of values or different iterators ($X[@1], $Y[@2])",
				len(values), strings.Join(it.names, ", "), it.max+1))
		}
		it.names = append(it.names, v.Name)
	}

	for _, it := range iters {
		it.plan(ri.vars)
	}
	var out []netfilter.Rule
	for {
		rule := base
		rule.Fields = make([]netfilter.Field, 0, len(r.Match.Fields))
		var bound []netfilter.Binding
		for i, f := range r.Match.Fields {
			val := f.Value.Literal
			if v := f.Value.Var; v != nil {
				raw := ri.vars[v.Name][iterOf[i].cur]
				canon, err := f.Kind.Parse(raw)
				if err != nil {
					return nil, fail(v.Name, fmt.Sprintf("value %q is not valid for %s (%s): %v", raw, f.Attr, f.Kind, err))
				}
				val = canon
				bound = appendBinding(bound, v.Name, canon)
			}
			field := netfilter.Field{Attr: f.Attr, Value: val}
			if f.Value.Var != nil {
				field.Var = f.Value.Var.String()[1:] // without the '$'
			}
			rule.Fields = append(rule.Fields, field)
		}
		sort.Slice(bound, func(a, b int) bool { return bound[a].Name < bound[b].Name })
		rule.Vars = bound
		out = append(out, rule)
		if len(out) > maxRulesPerPort {
			return nil, fail("", fmt.Sprintf("expands to more than %d rules", maxRulesPerPort))
		}
		if !next(iters) {
			return out, nil
		}
	}
}

// next advances the odometer of iterators (the first turns fastest) to
// the next combination. It returns false when every combination has been
// produced.
func next(iters []*iterator) bool {
	for _, it := range iters {
		if it.step < len(it.steps) {
			it.cur = it.steps[it.step]
			it.step++
			return true
		}
		it.cur, it.step = it.min, 0
	}
	return false
}

func appendBinding(bs []netfilter.Binding, name, value string) []netfilter.Binding {
	for _, b := range bs {
		if b.Name == name {
			return bs
		}
	}
	return append(bs, netfilter.Binding{Name: name, Value: value})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
