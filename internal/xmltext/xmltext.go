// Package xmltext holds the small text helpers the XML layers (policy
// and network) share for their error messages.
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
