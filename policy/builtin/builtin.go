// Package builtin holds the built-in network filters: the 24 nwfilter
// definitions that netwarden ships, as libvirt does, so that guests can use
// clean-traffic, no-ip-spoofing and their kin without defining anything.
//
//	for name, xml := range builtin.Files() {
//		f, err := policy.ParseFilter(xml)
//		…
//	}
//
// Each filter has the name, the UUID and the rules of libvirt's filter of
// the same name (libvirt 9.0.0), so that a libvirt user's bindings and
// filter references work unchanged and instantiate to the same rules. The
// definitions are kept here as XML files, one per filter ("<name>.xml"),
// embedded in the binary; each opens with a comment saying what it does and
// which variables ($MAC, $IP, …) it needs.
//
// A user may define a filter with the name of a built-in: the user's
// definition then overrides the built-in, and undefining it brings the
// built-in back. That logic, and parsing and validating these files, live
// in package policy and the daemon; this package only provides the bytes.
package builtin

import (
	"embed"
	"io/fs"
	"slices"
	"strings"
)

//go:embed *.xml
var files embed.FS

// ext is the extension of the filter files.
const ext = ".xml"

// Files returns the built-in filters: filter name → its XML definition.
// The map and the byte slices are new on every call; the caller may keep
// or change them.
func Files() map[string][]byte {
	out := map[string][]byte{}
	for _, name := range Names() {
		data, err := files.ReadFile(name + ext)
		if err != nil {
			panic("builtin: embedded file missing: " + err.Error()) // cannot happen: Names lists the embedded files
		}
		out[name] = data
	}
	return out
}

// Names returns the names of the built-in filters, sorted.
func Names() []string {
	matches, err := fs.Glob(files, "*"+ext)
	if err != nil {
		panic("builtin: " + err.Error()) // cannot happen: the pattern is constant and valid
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(m, ext))
	}
	slices.Sort(names)
	return names
}
