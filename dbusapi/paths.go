package dbusapi

import (
	"strings"

	"github.com/godbus/dbus/v5"
)

// NWFilterPath returns the object path of the filter with the given UUID:
// NWFilterPathPrefix/_<uuid with '-' replaced by '_'>, as libvirt-dbus
// names its filter objects.
func NWFilterPath(uuid string) dbus.ObjectPath {
	return NWFilterPathPrefix + "/_" + dbus.ObjectPath(strings.ReplaceAll(strings.ToLower(uuid), "-", "_"))
}

// nwfilterUUID returns the UUID a filter object path stands for, and
// false if path is not such a path.
func nwfilterUUID(path dbus.ObjectPath) (string, bool) {
	label, ok := strings.CutPrefix(string(path), string(NWFilterPathPrefix)+"/_")
	if !ok || label == "" {
		return "", false
	}
	for _, c := range label {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == '_') {
			return "", false
		}
	}
	return strings.ReplaceAll(label, "_", "-"), true
}

// NWFilterBindingPath returns the object path of the binding of port:
// NWFilterBindingPathPrefix/<port escaped as one path element>, see
// escapeLabel.
func NWFilterBindingPath(port string) dbus.ObjectPath {
	return NWFilterBindingPathPrefix + "/" + dbus.ObjectPath(escapeLabel(port))
}

// bindingPort returns the port a binding object path stands for, and
// false if path is not such a path.
func bindingPort(path dbus.ObjectPath) (string, bool) {
	label, ok := strings.CutPrefix(string(path), string(NWFilterBindingPathPrefix)+"/")
	if !ok || label == "" || strings.Contains(label, "/") {
		return "", false
	}
	return unescapeLabel(label)
}

// escapeLabel turns any string into a valid object path element the way
// systemd's sd_bus_path_encode does: ASCII letters, and digits other
// than the first character, stay; every other byte becomes '_' and two
// lower-case hex digits; the empty string becomes "_". It is reversible
// (unescapeLabel) and "vnet0" stays "vnet0".
func escapeLabel(s string) string {
	if s == "" {
		return "_"
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// unescapeLabel reverses escapeLabel; it refuses what escapeLabel never
// produces, so every string has exactly one path.
func unescapeLabel(label string) (string, bool) {
	if label == "_" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(label) {
			return "", false
		}
		hi, ok1 := unhex(label[i+1])
		lo, ok2 := unhex(label[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	s := b.String()
	if escapeLabel(s) != label {
		return "", false
	}
	return s, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
