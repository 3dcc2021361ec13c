package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/netwarden/netwarden/internal/xmltext"
)

// ValidationError reports why an nwfilter or nwfilter-binding document was
// refused: which filter, which rule, which element and attribute, the value
// that was given and the reason. Every error returned by ParseFilter and
// ParseBinding is a *ValidationError (possibly wrapped); test for it with
// IsValidationError or errors.As, never by matching the message text.
//
// Where libvirt silently drops or replaces a bad value, netwarden refuses the
// document with a ValidationError instead, so what is stored is always what
// the user meant.
type ValidationError struct {
	// Filter is the filter's name, "" when it is not known (yet) or the
	// document is a binding.
	Filter string
	// Rule is the 1-based index of the rule among the filter's <rule>
	// elements, 0 when the problem is not inside a rule.
	Rule int
	// Element is the element concerned ("filter", "rule", "tcp",
	// "filterref", "parameter", "portdev", …), "" for document-level
	// problems such as malformed XML.
	Element string
	// Attr is the attribute concerned, "" when the problem is the element
	// itself (missing, unknown, repeated, unexpected text).
	Attr string
	// Value is the offending value as given, "" when there is none.
	Value string
	// Reason says what is wrong, in words meant for the user.
	Reason string
	// Line is the 1-based line in the input where the element starts, 0
	// when unknown.
	Line int
}

// Error renders the error as, for example,
// `filter "x": rule 3 <tcp dstportstart='70000'>: port out of range 0..65535`.
func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Filter != "" {
		fmt.Fprintf(&b, "filter %q: ", e.Filter)
	}
	if e.Rule > 0 {
		fmt.Fprintf(&b, "rule %d ", e.Rule)
	}
	if e.Element != "" {
		b.WriteString("<")
		b.WriteString(e.Element)
		if e.Attr != "" {
			b.WriteString(" ")
			b.WriteString(e.Attr)
			b.WriteString("=")
			b.WriteString(xmltext.Quote(e.Value))
		}
		b.WriteString(">")
		if e.Line > 0 {
			fmt.Fprintf(&b, " (line %d)", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// IsValidationError reports whether err is, or wraps, a *ValidationError.
func IsValidationError(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve)
}
