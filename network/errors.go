package network

import (
	"errors"
	"fmt"
	"strings"

	"github.com/netwarden/netwarden/internal/xmltext"
)

// ValidationError reports why a network document was refused: which
// network, which element and attribute, the value that was given and the
// reason. Every error returned by Parse and FormatXML is a
// *ValidationError (possibly wrapped); test for it with IsValidationError or
// errors.As, never by matching the message text.
//
// Where libvirt silently drops or replaces a bad value, netwarden refuses
// the document with a ValidationError instead, so what is stored is always
// what the user meant.
type ValidationError struct {
	// Network is the network's name, "" when it is not known (yet).
	Network string
	// Element is the element concerned ("bridge", "range", "dnsmasq:option",
	// …), "" for document-level problems such as malformed XML.
	Element string
	// Attr is the attribute concerned, "" when the problem is the element
	// itself (missing, unknown, repeated, unexpected text) or its text.
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
// `network "default": <range start='10.0.0.2'> (line 9): not inside the network 192.168.122.0/24`.
func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Network != "" {
		fmt.Fprintf(&b, "network %q: ", e.Network)
	}
	if e.Element != "" {
		b.WriteString("<")
		b.WriteString(e.Element)
		if e.Attr != "" {
			b.WriteString(" ")
			b.WriteString(e.Attr)
			b.WriteString("=")
			b.WriteString(xmltext.Quote(e.Value))
		} else if e.Value != "" {
			b.WriteString(">")
			b.WriteString(xmltext.Quote(e.Value))
			b.WriteString("</")
			b.WriteString(e.Element)
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
