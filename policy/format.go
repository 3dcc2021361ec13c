package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/netwarden/netwarden/internal/xmltext"
)

// FormatXML returns the filter as libvirt formats it: the filter's name,
// chain and (when set or not 0) priority, its UUID when it has one, then
// every rule with action, direction and priority (statematch only when
// false) and every filter reference with its parameters grouped by name.
// Values appear in canonical form: zero-padded lower-case MAC addresses,
// masks as prefix lengths, hexadecimal numbers as 0x…, protocol numbers by
// name, and so on (see Kind).
//
// Unlike libvirt, an explicit priority='0' is kept (libvirt drops it, which
// changes a mac or ipv4 chain's priority when the output is read back).
//
// The output is checked by parsing it again, so FormatXML never returns a
// document ParseFilter refuses; a Filter built in code with invalid values
// yields the *ValidationError that parsing reports.
//
// (It is not called MarshalXML: go vet requires a method of that name to
// implement encoding/xml's Marshaler.)
func (f *Filter) FormatXML() ([]byte, error) {
	raw := f.appendXML(nil)
	g, err := ParseFilter(raw)
	if err != nil {
		return nil, fmt.Errorf("format filter %q: %w", f.Name, err)
	}
	return g.appendXML(make([]byte, 0, len(raw))), nil
}

func (f *Filter) appendXML(b []byte) []byte {
	b = append(b, "<filter name='"...)
	b = xmltext.AppendEscaped(b, f.Name)
	b = append(b, "' chain='"...)
	b = xmltext.AppendEscaped(b, f.Chain)
	b = append(b, '\'')
	if f.ChainPrioritySet || f.ChainPriority != 0 {
		b = append(b, " priority='"...)
		b = strconv.AppendInt(b, int64(f.ChainPriority), 10)
		b = append(b, '\'')
	}
	b = append(b, ">\n"...)
	if f.UUID != "" {
		b = append(b, "  <uuid>"...)
		b = xmltext.AppendEscaped(b, f.UUID)
		b = append(b, "</uuid>\n"...)
	}
	for _, e := range f.Entries {
		switch {
		case e.Rule != nil:
			b = e.Rule.appendXML(b)
		case e.Ref != nil:
			b = appendRefXML(b, "  ", e.Ref.Filter, e.Ref.Params)
		}
	}
	return append(b, "</filter>\n"...)
}

func (r *Rule) appendXML(b []byte) []byte {
	b = append(b, "  <rule action='"...)
	b = xmltext.AppendEscaped(b, string(r.Action))
	b = append(b, "' direction='"...)
	b = xmltext.AppendEscaped(b, string(r.Direction))
	b = append(b, "' priority='"...)
	b = strconv.AppendInt(b, int64(r.Priority), 10)
	b = append(b, '\'')
	if !r.StateMatch {
		b = append(b, " statematch='false'"...)
	}
	if r.Match == nil {
		return append(b, "/>\n"...)
	}
	m := r.Match
	b = append(b, ">\n    <"...)
	b = xmltext.AppendEscaped(b, string(m.Protocol))
	if m.Negate {
		b = append(b, " match='no'"...)
	}
	for _, fl := range m.Fields {
		b = append(b, ' ')
		b = xmltext.AppendEscaped(b, fl.Attr)
		b = append(b, "='"...)
		b = xmltext.AppendEscaped(b, fl.Value.String())
		b = append(b, '\'')
	}
	if m.Comment != "" {
		b = append(b, " comment='"...)
		b = xmltext.AppendEscaped(b, m.Comment)
		b = append(b, '\'')
	}
	return append(b, "/>\n  </rule>\n"...)
}

// appendRefXML formats a <filterref> the way libvirt does: parameters
// grouped by name in name order, each name's values in their order.
func appendRefXML(b []byte, indent, filter string, params []Param) []byte {
	b = append(b, indent...)
	b = append(b, "<filterref filter='"...)
	b = xmltext.AppendEscaped(b, filter)
	b = append(b, '\'')
	if len(params) == 0 {
		return append(b, "/>\n"...)
	}
	b = append(b, ">\n"...)
	for _, p := range SortedParams(params) {
		b = append(b, indent...)
		b = append(b, "  <parameter name='"...)
		b = xmltext.AppendEscaped(b, p.Name)
		b = append(b, "' value='"...)
		b = xmltext.AppendEscaped(b, p.Value)
		b = append(b, "'/>\n"...)
	}
	b = append(b, indent...)
	return append(b, "</filterref>\n"...)
}

// SortedParams returns the parameters ordered as libvirt formats them:
// by name, each name's values keeping their relative order. Two parameter
// lists are equivalent when their SortedParams are equal.
func SortedParams(params []Param) []Param {
	out := slices.Clone(params)
	slices.SortStableFunc(out, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
	return out
}
