package dbusapi

import (
	"strings"

	"github.com/godbus/dbus/v5"
)

// NWFilterPath returns the object path of the filter with the given UUID:
// NWFilterPathPrefix/_<uuid with '-' replaced by '_'>, as libvirt-dbus
// names its filter objects.
func NWFilterPath(uuid string) dbus.ObjectPath {
	return NWFilterPathPrefix + "/" + dbus.ObjectPath(uuidLabel(uuid))
}

// nwfilterUUID returns the UUID a filter object path stands for, and
// false if path is not such a path.
func nwfilterUUID(path dbus.ObjectPath) (string, bool) {
	label, ok := strings.CutPrefix(string(path), string(NWFilterPathPrefix)+"/")
	if !ok {
		return "", false
	}
	return uuidOfLabel(label)
}

// uuidLabel is the path element of a UUID: "_" and the UUID in lower
// case with '-' replaced by '_', as libvirt-dbus names its objects.
func uuidLabel(uuid string) string {
	return "_" + strings.ReplaceAll(strings.ToLower(uuid), "-", "_")
}

// uuidOfLabel reverses uuidLabel; it refuses anything else, a "/"
// included.
func uuidOfLabel(label string) (string, bool) {
	label, ok := strings.CutPrefix(label, "_")
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

// NetworkPath returns the object path of the network with the given
// UUID: NetworkPathPrefix/_<uuid with '-' replaced by '_'>, as
// libvirt-dbus names its network objects.
func NetworkPath(uuid string) dbus.ObjectPath {
	return NetworkPathPrefix + "/" + dbus.ObjectPath(uuidLabel(uuid))
}

// networkPortsNode is the path element below a network's object under
// which its ports' objects are.
const networkPortsNode = "port"

// NetworkPortPath returns the object path of the port portUUID of the
// network networkUUID: NetworkPath(networkUUID)/port/_<port uuid with
// '-' replaced by '_'>.
func NetworkPortPath(networkUUID, portUUID string) dbus.ObjectPath {
	return NetworkPath(networkUUID) + "/" + networkPortsNode + "/" + dbus.ObjectPath(uuidLabel(portUUID))
}

// networkPathKind is what a path below NetworkPathPrefix stands for.
type networkPathKind int

const (
	// notNetworkPath: nothing netwarden serves.
	notNetworkPath networkPathKind = iota
	// networkObject: NetworkPath(uuid).
	networkObject
	// networkPortsObject: the node that holds a network's ports.
	networkPortsObject
	// networkPortObject: NetworkPortPath(uuid, portUUID).
	networkPortObject
)

// parseNetworkPath says what a path below NetworkPathPrefix stands for,
// with the network's UUID and the port's UUID where it has them.
func parseNetworkPath(path dbus.ObjectPath) (kind networkPathKind, networkUUID, portUUID string) {
	rest, ok := strings.CutPrefix(string(path), string(NetworkPathPrefix)+"/")
	if !ok {
		return notNetworkPath, "", ""
	}
	parts := strings.Split(rest, "/")
	networkUUID, ok = uuidOfLabel(parts[0])
	if !ok {
		return notNetworkPath, "", ""
	}
	switch {
	case len(parts) == 1:
		return networkObject, networkUUID, ""
	case parts[1] != networkPortsNode || len(parts) > 3:
		return notNetworkPath, "", ""
	case len(parts) == 2:
		return networkPortsObject, networkUUID, ""
	}
	portUUID, ok = uuidOfLabel(parts[2])
	if !ok {
		return notNetworkPath, "", ""
	}
	return networkPortObject, networkUUID, portUUID
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
