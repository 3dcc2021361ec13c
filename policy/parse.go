package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLength is the longest filter name accepted. libvirt has no limit;
// netwarden's names become file names and parts of kernel object names.
const MaxNameLength = 128

// MaxCommentLength is the longest rule comment, in bytes (libvirt silently
// truncates longer ones; netwarden refuses them).
const MaxCommentLength = 256

// ParseFilter parses and validates an nwfilter document (libvirt's
// <filter> XML) and returns its typed form with every value in canonical
// form. Any problem — malformed XML, an unknown element or attribute, a
// value of the wrong type or out of range, a missing required attribute,
// an attribute that would be ignored — is reported as a *ValidationError
// naming the element, attribute, value and reason. Documents larger than
// MaxInputSize are refused.
//
// ParseFilter does not resolve filter references or variables and does not
// assign a UUID; those belong to the registry and instantiation.
func ParseFilter(data []byte) (*Filter, error) {
	root, err := readXMLTree(data)
	if err != nil {
		return nil, err
	}
	p := &filterParser{}
	f, err := p.filter(root)
	if err != nil {
		return nil, err
	}
	return f, nil
}

type filterParser struct {
	name string // the filter's name once known, for errors
	rule int    // 1-based index of the rule being parsed, 0 outside rules
}

func (p *filterParser) fail(n *xmlNode, attr, value, reason string) *ValidationError {
	return &ValidationError{Filter: p.name, Rule: p.rule, Element: n.name, Attr: attr, Value: value, Reason: reason, Line: n.line}
}

func (p *filterParser) filter(n *xmlNode) (*Filter, error) {
	if n.name != "filter" {
		return nil, p.fail(n, "", "", "root element must be <filter>")
	}
	f := &Filter{Chain: ChainRoot}
	if err := n.checkDup(p.fail, false); err != nil {
		return nil, err
	}
	name, ok := n.attr("name")
	if !ok {
		return nil, p.fail(n, "name", "", "missing required attribute")
	}
	if err := checkName(name); err != nil {
		return nil, p.fail(n, "name", name, err.Error())
	}
	f.Name, p.name = name, name
	for _, a := range n.attrs {
		v := a.Value
		switch a.Name.Local {
		case "name":
		case "chain":
			if err := checkChain(v); err != nil {
				return nil, p.fail(n, "chain", v, err.Error())
			}
			f.Chain = v
		case "priority":
			prio, err := parsePriority(v)
			if err != nil {
				return nil, p.fail(n, "priority", v, err.Error())
			}
			f.ChainPriority, f.ChainPrioritySet = prio, true
		default:
			return nil, p.fail(n, a.Name.Local, v, "unknown attribute of <filter> (it has name, chain and priority)")
		}
	}
	if !f.ChainPrioritySet {
		f.ChainPriority = DefaultChainPriority(f.Chain)
	}
	if n.hasText() {
		return nil, p.fail(n, "", "", "unexpected text inside <filter>")
	}
	seenUUID, rules := false, 0
	for _, c := range n.children {
		switch c.name {
		case "uuid":
			if seenUUID {
				return nil, p.fail(c, "", "", "more than one <uuid>")
			}
			seenUUID = true
			if err := c.checkDup(p.fail, true); err != nil {
				return nil, err
			}
			if len(c.attrs) > 0 {
				return nil, p.fail(c, c.attrs[0].Name.Local, c.attrs[0].Value, "<uuid> has no attributes")
			}
			if len(c.children) > 0 {
				return nil, p.fail(c.children[0], "", "", "unexpected element inside <uuid>")
			}
			text := c.text.String()
			u, err := parseUUID(text)
			if err != nil {
				return nil, &ValidationError{Filter: p.name, Element: "uuid", Value: text, Reason: err.Error(), Line: c.line}
			}
			f.UUID = u
		case "rule":
			rules++
			p.rule = rules
			r, err := p.parseRule(c)
			if err != nil {
				return nil, err
			}
			p.rule = 0
			f.Entries = append(f.Entries, Entry{Rule: r})
		case "filterref":
			ref, err := p.filterRef(c)
			if err != nil {
				return nil, err
			}
			f.Entries = append(f.Entries, Entry{Ref: ref})
		default:
			return nil, p.fail(c, "", "", "unknown element inside <filter> (it holds <uuid>, <rule> and <filterref>)")
		}
	}
	return f, nil
}

// checkName validates a filter name: an ASCII XML NCName that is also safe
// as a file name and inside kernel object names.
func checkName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("filter name is empty")
	case len(s) > MaxNameLength:
		return fmt.Errorf("filter name is longer than %d bytes", MaxNameLength)
	case strings.Contains(s, "/"):
		return fmt.Errorf("filter name must not contain '/'")
	case s[0] == '.':
		return fmt.Errorf("filter name must not start with '.'")
	case strings.Contains(s, ":"):
		return fmt.Errorf("filter name must not contain ':' (it must be an XML NCName)")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if i == 0 && !letter {
			return fmt.Errorf("filter name must start with a letter or '_' (it must be an XML NCName)")
		}
		if !letter && !(c >= '0' && c <= '9') && c != '-' && c != '.' {
			return fmt.Errorf("filter name may only contain ASCII letters, digits, '_', '-' and '.'")
		}
	}
	return nil
}

// checkChain validates a chain name: "root", or one of the protocol
// prefixes followed by [A-Za-z0-9_.:-], MaxChainLength characters at most.
func checkChain(s string) error {
	if s == ChainRoot {
		return nil
	}
	prefix := chainPrefix(s)
	if prefix == "" || strings.HasPrefix(s, ChainRoot) {
		return fmt.Errorf("chain must be 'root' or start with one of %s", strings.Join(chainPrefixes, ", "))
	}
	if len(s) > MaxChainLength {
		return fmt.Errorf("chain name is longer than %d characters", MaxChainLength)
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:-", c) >= 0) {
			return fmt.Errorf("chain name may only contain letters, digits and _ . : - after its prefix")
		}
	}
	return nil
}

// parsePriority reads a filter or rule priority: an integer in
// MinPriority..MaxPriority.
func parsePriority(s string) (int, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	if t == "" || strings.Trim(t, "0123456789") != "" {
		return 0, fmt.Errorf("priority must be an integer in %d..%d", MinPriority, MaxPriority)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < MinPriority || v > MaxPriority {
		return 0, fmt.Errorf("priority out of range %d..%d", MinPriority, MaxPriority)
	}
	return v, nil
}

// parseUUID reads a UUID in 8-4-4-4-12 or 32-hex-digit form (surrounding
// whitespace allowed) and returns its canonical lower-case 8-4-4-4-12 form.
func parseUUID(s string) (string, error) {
	s = strings.TrimSpace(s)
	hex := s
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", fmt.Errorf("malformed UUID: expected 8-4-4-4-12 hex digits")
		}
		hex = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(hex) != 32 {
		return "", fmt.Errorf("malformed UUID: expected 32 hex digits, optionally as 8-4-4-4-12")
	}
	for i := 0; i < len(hex); i++ {
		if !isHexDigit(hex[i]) {
			return "", fmt.Errorf("malformed UUID: %q is not a hex digit", hex[i])
		}
	}
	hex = strings.ToLower(hex)
	return hex[:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:], nil
}

func (p *filterParser) filterRef(n *xmlNode) (*FilterRef, error) {
	ref := &FilterRef{}
	if err := n.checkDup(p.fail, true); err != nil {
		return nil, err
	}
	params, name, err := parseRefNode(n, p.fail)
	if err != nil {
		return nil, err
	}
	ref.Filter, ref.Params = name, params
	return ref, nil
}

// parseRefNode parses a <filterref filter='…'> with <parameter> children;
// it is shared by filters and bindings.
func parseRefNode(n *xmlNode, fail func(n *xmlNode, attr, value, reason string) *ValidationError) ([]Param, string, error) {
	name, ok := n.attr("filter")
	if !ok {
		return nil, "", fail(n, "filter", "", "missing required attribute")
	}
	for _, a := range n.attrs {
		if a.Name.Local != "filter" {
			return nil, "", fail(n, a.Name.Local, a.Value, "unknown attribute of <filterref> (it has filter)")
		}
	}
	if err := checkName(name); err != nil {
		return nil, "", fail(n, "filter", name, strings.Replace(err.Error(), "filter name", "referenced filter name", 1))
	}
	if n.hasText() {
		return nil, "", fail(n, "", "", "unexpected text inside <filterref>")
	}
	var params []Param
	for _, c := range n.children {
		if c.name != "parameter" {
			return nil, "", fail(c, "", "", "unknown element inside <filterref> (it holds <parameter>)")
		}
		if len(c.children) > 0 || c.hasText() {
			return nil, "", fail(c, "", "", "<parameter> must be empty")
		}
		pname, okName := c.attr("name")
		pval, okValue := c.attr("value")
		for _, a := range c.attrs {
			if a.Name.Local != "name" && a.Name.Local != "value" {
				return nil, "", fail(c, a.Name.Local, a.Value, "unknown attribute of <parameter> (it has name and value)")
			}
		}
		switch {
		case !okName:
			return nil, "", fail(c, "name", "", "missing required attribute")
		case !okValue:
			return nil, "", fail(c, "value", "", "missing required attribute")
		case !ValidVariableName(pname):
			return nil, "", fail(c, "name", pname, "parameter name must be [A-Za-z0-9_]+")
		case !ValidVariableValue(pval):
			return nil, "", fail(c, "value", pval, "parameter value must be [A-Za-z0-9_.:]+ (one value per <parameter>; repeat the parameter for a list)")
		}
		params = append(params, Param{Name: pname, Value: pval})
	}
	return params, name, nil
}

func (p *filterParser) parseRule(n *xmlNode) (*Rule, error) {
	r := &Rule{Priority: DefaultRulePriority, StateMatch: true}
	if err := n.checkDup(p.fail, true); err != nil {
		return nil, err
	}
	var haveAction, haveDirection bool
	for _, a := range n.attrs {
		v := a.Value
		switch a.Name.Local {
		case "action":
			switch act := Action(v); act {
			case ActionDrop, ActionAccept, ActionReject, ActionReturn, ActionContinue:
				r.Action, haveAction = act, true
			default:
				return nil, p.fail(n, "action", v, "action must be one of drop, accept, reject, return, continue")
			}
		case "direction":
			switch d := Direction(v); d {
			case DirIn, DirOut, DirInOut:
				r.Direction, haveDirection = d, true
			default:
				return nil, p.fail(n, "direction", v, "direction must be one of in, out, inout")
			}
		case "priority":
			prio, err := parsePriority(v)
			if err != nil {
				return nil, p.fail(n, "priority", v, err.Error())
			}
			r.Priority = prio
		case "statematch":
			switch {
			case v == "0" || strings.EqualFold(v, "false"):
				r.StateMatch = false
			case v == "1" || strings.EqualFold(v, "true"):
				r.StateMatch = true
			default:
				return nil, p.fail(n, "statematch", v, "statematch must be false or 0 (or true or 1, the default)")
			}
		default:
			return nil, p.fail(n, a.Name.Local, v, "unknown attribute of <rule> (it has action, direction, priority and statematch)")
		}
	}
	if !haveAction {
		return nil, p.fail(n, "action", "", "missing required attribute")
	}
	if !haveDirection {
		return nil, p.fail(n, "direction", "", "missing required attribute")
	}
	if n.hasText() {
		return nil, p.fail(n, "", "", "unexpected text inside <rule>")
	}
	for _, c := range n.children {
		spec := protocolSpecs[Protocol(c.name)]
		if spec == nil {
			return nil, p.fail(c, "", "", "unknown protocol element inside <rule>")
		}
		if r.Match != nil {
			return nil, p.fail(c, "", "", fmt.Sprintf("a rule has at most one protocol element; this one follows <%s> (write a rule per element)", r.Match.Protocol))
		}
		m, err := p.parseMatch(c, Protocol(c.name), spec)
		if err != nil {
			return nil, err
		}
		r.Match = m
	}
	return r, nil
}

func (p *filterParser) parseMatch(n *xmlNode, proto Protocol, spec *protoSpec) (*Match, error) {
	m := &Match{Protocol: proto}
	if len(n.children) > 0 {
		return nil, p.fail(n.children[0], "", "", fmt.Sprintf("<%s> must be empty", proto))
	}
	if n.hasText() {
		return nil, p.fail(n, "", "", fmt.Sprintf("unexpected text inside <%s>", proto))
	}
	slots := make([]*Field, len(spec.attrs))
	for _, a := range n.attrs {
		name, v := a.Name.Local, a.Value
		switch name {
		case "match":
			switch v {
			case "yes":
			case "no":
				m.Negate = true
			default:
				return nil, p.fail(n, name, v, "match must be yes or no")
			}
			continue
		case "comment":
			if err := checkComment(v); err != nil {
				return nil, p.fail(n, name, v, err.Error())
			}
			m.Comment = v
			continue
		}
		i := spec.index(name)
		if i < 0 {
			reason := fmt.Sprintf("unknown attribute of <%s>", proto)
			if proto == ProtoTCPIPv6 && name == "flags" {
				reason = "flags is not supported on <tcp-ipv6> (libvirt ignores it there)"
			}
			return nil, p.fail(n, name, v, reason)
		}
		kind := spec.attrs[i].kind
		val, err := parseValue(kind, v)
		if err != nil {
			return nil, p.fail(n, name, v, err.Error())
		}
		slots[i] = &Field{Attr: name, Kind: kind, Value: val}
	}
	for _, f := range slots {
		if f != nil {
			m.Fields = append(m.Fields, *f)
		}
	}
	if err := p.checkMatch(n, m, spec); err != nil {
		return nil, err
	}
	return m, nil
}

// parseValue reads an attribute value of the given kind: a variable
// reference (where the kind allows it) or a literal in canonical form.
func parseValue(kind Kind, v string) (Value, error) {
	if strings.HasPrefix(v, "$") {
		if !kind.AllowsVariables() {
			return Value{}, fmt.Errorf("variables are not supported in a %s attribute", kind)
		}
		ref, err := ParseVarRef(v)
		if err != nil {
			return Value{}, err
		}
		return Value{Var: ref}, nil
	}
	c, err := kind.Parse(v)
	if err != nil {
		return Value{}, err
	}
	return Value{Literal: c}, nil
}

func checkComment(v string) error {
	if len(v) > MaxCommentLength {
		return fmt.Errorf("comment is %d bytes, longer than %d", len(v), MaxCommentLength)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("comment is not valid UTF-8")
	}
	if strings.HasPrefix(v, "$") {
		return fmt.Errorf("comment must not start with '$' (libvirt would read it as a variable reference)")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("comment must not contain control characters")
		}
		if r == utf8.RuneError {
			return fmt.Errorf("comment contains U+FFFD (an invalid character reference?)")
		}
	}
	return nil
}

// checkMatch applies the rules that tie a protocol element's attributes
// together.
func (p *filterParser) checkMatch(n *xmlNode, m *Match, spec *protoSpec) error {
	get := func(attr string) *Field {
		for i := range m.Fields {
			if m.Fields[i].Attr == attr {
				return &m.Fields[i]
			}
		}
		return nil
	}
	if m.Negate && len(m.Fields) == 0 {
		v, _ := n.attr("match")
		return p.fail(n, "match", v, "match='no' needs at least one attribute to negate (libvirt ignores it otherwise)")
	}
	for _, d := range attrNeeds {
		if f := get(d.attr); f != nil && get(d.base) == nil && spec.index(d.base) >= 0 {
			return p.fail(n, d.attr, f.Value.String(), fmt.Sprintf("%s needs %s (libvirt ignores it otherwise)", d.attr, d.base))
		}
	}
	if m.Protocol == ProtoICMP || m.Protocol == ProtoICMPv6 {
		if f := get("code"); f != nil && get("type") == nil {
			return p.fail(n, "code", f.Value.String(), "code needs type (libvirt ignores it otherwise)")
		}
	}
	for _, rg := range attrRanges {
		lo, hi := get(rg.lo), get(rg.hi)
		if lo == nil || hi == nil || lo.Value.Var != nil || hi.Value.Var != nil {
			continue
		}
		if rangeReversed(lo, hi) {
			return p.fail(n, rg.hi, hi.Value.Literal, fmt.Sprintf("%s %s is below %s %s", rg.hi, hi.Value.Literal, rg.lo, lo.Value.Literal))
		}
	}
	if m.Protocol == ProtoIP || m.Protocol == ProtoIPv6 {
		for _, port := range []string{"srcportstart", "srcportend", "dstportstart", "dstportend"} {
			f := get(port)
			if f == nil {
				continue
			}
			proto := get("protocol")
			switch {
			case proto == nil:
				return p.fail(n, port, f.Value.String(), "a port match needs protocol tcp, udp, sctp or 33 (dccp)")
			case proto.Value.Var != nil:
				return p.fail(n, "protocol", proto.Value.String(), "a port match needs a literal protocol tcp, udp, sctp or 33 (dccp), not a variable (as libvirt requires)")
			case !portProtocols[proto.Value.Literal]:
				return p.fail(n, "protocol", proto.Value.Literal, "a port match needs protocol tcp, udp, sctp or 33 (dccp)")
			}
		}
	}
	return nil
}

// rangeReversed reports whether the literal lo exceeds the literal hi.
func rangeReversed(lo, hi *Field) bool {
	switch lo.Kind {
	case KindIPv4, KindIPv6:
		a, errA := netip.ParseAddr(lo.Value.Literal)
		b, errB := netip.ParseAddr(hi.Value.Literal)
		return errA == nil && errB == nil && a.Compare(b) > 0
	}
	a, errA := lo.Kind.Uint(lo.Value.Literal)
	b, errB := hi.Kind.Uint(hi.Value.Literal)
	return errA == nil && errB == nil && a > b
}
