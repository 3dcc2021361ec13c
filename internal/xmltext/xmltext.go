// Package xmltext holds the small text helpers the XML layers (policy
// and network) share: quoting values in error messages, and escaping
// values when formatting documents.
//
//	msg := fmt.Sprintf("<%s %s=%s>: %s", elem, attr, xmltext.Quote(value), reason)
package xmltext

import (
	"strconv"
	"unicode/utf8"
)

// MaxShown bounds how much of a value Quote shows.
const MaxShown = 64

// Quote quotes a value for an error message: in single quotes, as in
// libvirt's XML, when it is plain; with Go quoting when it holds quotes
// or non-printable characters. Values longer than MaxShown bytes are
// shortened (at a character boundary) and end with "…".
func Quote(v string) string {
	if len(v) > MaxShown {
		cut := MaxShown
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "…"
	}
	for _, r := range v {
		if r == '\'' || r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return strconv.Quote(v)
		}
	}
	return "'" + v + "'"
}

// AppendEscaped appends s to b escaped for an XML attribute value or
// text in single or double quotes: the five predefined entities, and
// tab, newline and carriage return as character references (so that a
// reader does not normalise them to spaces).
func AppendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\'':
			b = append(b, "&apos;"...)
		case '"':
			b = append(b, "&quot;"...)
		case '\t', '\n', '\r':
			b = append(b, "&#"...)
			b = strconv.AppendInt(b, int64(c), 10)
			b = append(b, ';')
		default:
			b = append(b, c)
		}
	}
	return b
}
