package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxNameLength is the longest network name accepted, in bytes. libvirt has
// no limit; netwarden's names become file names (NAME.xml, NAME.conf, …).
const MaxNameLength = 128

// MaxIfNameLength is the longest interface name the kernel accepts
// (IFNAMSIZ - 1).
const MaxIfNameLength = 15

// MaxZoneNameLength is the longest firewalld zone name (firewalld's limit,
// from the length of the chain names it derives from it).
const MaxZoneNameLength = 17

// MaxDNSNameLength is the longest DNS name.
const MaxDNSNameLength = 253

// MaxProfileIDLength is the longest virtualport profileid (libvirt's
// buffer of 40 bytes with its terminator).
const MaxProfileIDLength = 39

// MaxBridgeDelay is the largest bridge forward delay in seconds: the
// kernel keeps it as a 32-bit count of centiseconds.
const MaxBridgeDelay = 42949672

// MaxLeaseSeconds is the longest finite DHCP lease, in seconds (dnsmasq's
// 32-bit lease time).
const MaxLeaseSeconds = 1<<32 - 1

// checkNetworkName validates a network name: libvirt forbids only '/';
// netwarden also refuses control characters, invalid UTF-8, leading or
// trailing white space and names longer than MaxNameLength.
func checkNetworkName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("network name is empty")
	case len(s) > MaxNameLength:
		return fmt.Errorf("network name is longer than %d bytes", MaxNameLength)
	case strings.Contains(s, "/"):
		return fmt.Errorf("network name must not contain '/'")
	case s == "." || s == "..":
		return fmt.Errorf("network name must not be '.' or '..'")
	case !utf8.ValidString(s):
		return fmt.Errorf("network name is not valid UTF-8")
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("network name must not start or end with white space")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("network name must not contain control characters")
		}
	}
	return nil
}

// checkIfName validates a network interface name (a bridge, a forward dev,
// a PF): what the kernel accepts (1..15 bytes, not '.' or '..', no '/',
// ':' or white space), further limited to ASCII letters, digits, '_', '-'
// and '.', which are safe in file names, firewall rules and dnsmasq
// options.
func checkIfName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("interface name is empty")
	case len(s) > MaxIfNameLength:
		return fmt.Errorf("interface name is longer than %d bytes (the kernel's limit)", MaxIfNameLength)
	case s == "." || s == "..":
		return fmt.Errorf("interface name must not be '.' or '..'")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return fmt.Errorf("interface name may only contain ASCII letters, digits, '_', '-' and '.'")
		}
	}
	return nil
}

// checkZoneName validates a firewalld zone name: [A-Za-z0-9_-], at most
// MaxZoneNameLength bytes.
func checkZoneName(s string) error {
	if s == "" {
		return fmt.Errorf("zone name is empty")
	}
	if len(s) > MaxZoneNameLength {
		return fmt.Errorf("zone name is longer than %d bytes (firewalld's limit)", MaxZoneNameLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
			return fmt.Errorf("zone name may only contain ASCII letters, digits, '_' and '-'")
		}
	}
	return nil
}

// checkDNSName validates a DNS name as libvirt's schema does
// ([A-Za-z0-9.-]+), at most MaxDNSNameLength bytes.
func checkDNSName(s string) error {
	if s == "" {
		return fmt.Errorf("DNS name is empty")
	}
	if len(s) > MaxDNSNameLength {
		return fmt.Errorf("DNS name is longer than %d bytes", MaxDNSNameLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '.' {
			return fmt.Errorf("DNS name may only contain ASCII letters, digits, '-' and '.'")
		}
	}
	return nil
}

// checkPlainText refuses control characters and invalid UTF-8 in values
// that end up in dnsmasq's configuration, one option per line.
func checkPlainText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control characters (such as a line break) are not allowed")
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// parseUUID accepts 32 hex digits, optionally as 8-4-4-4-12, and returns
// the canonical lower-case 8-4-4-4-12 form.
func parseUUID(s string) (string, error) {
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

// parseMAC reads a MAC address of six ':'-separated groups of one or two
// hex digits (as libvirt does) and returns it canonical: lower case,
// zero-padded. Multicast addresses are refused.
func parseMAC(s string) (string, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return "", fmt.Errorf("MAC address must be six ':'-separated hex bytes")
	}
	var b strings.Builder
	var first byte
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 || !isHexDigit(p[0]) || (len(p) == 2 && !isHexDigit(p[1])) {
			return "", fmt.Errorf("MAC address must be six ':'-separated hex bytes")
		}
		v, _ := strconv.ParseUint(p, 16, 8)
		if i == 0 {
			first = byte(v)
		} else {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02x", v)
	}
	if first&1 != 0 {
		return "", fmt.Errorf("a multicast MAC address is not allowed here (the lowest bit of the first byte is set)")
	}
	return b.String(), nil
}

// parseDecimal reads an unsigned decimal number ([0-9]+, as libvirt's
// schema requires) of at most bits bits.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not an unsigned decimal number")
	}
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("number out of range (at most %d bits)", bits)
	}
	return v, nil
}

// parseCNumber reads an unsigned number as C's strtoul with base 0 does,
// which libvirt uses for PCI addresses and port profile parameters:
// 0x… hexadecimal, 0… octal, else decimal.
func parseCNumber(s string, max uint64) (uint64, error) {
	var (
		digits = s
		base   = 10
	)
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		digits, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		digits, base = s[1:], 8
	}
	if digits == "" {
		return 0, fmt.Errorf("not a number")
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil || v > max {
		if err != nil && !strings.Contains(err.Error(), "range") {
			return 0, fmt.Errorf("not a number (decimal, 0x… hexadecimal or 0… octal)")
		}
		return 0, fmt.Errorf("out of range 0..%d", max)
	}
	return v, nil
}

// parseAddr reads an IPv4 or IPv6 address in its usual text form (no
// zone, no inet_aton shorthand such as "10.1").
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("not an IPv4 or IPv6 address")
	}
	return a, nil
}

// maskLen returns the prefix length of a contiguous IPv4 netmask.
func maskLen(m netip.Addr) (int, error) {
	if !m.Is4() {
		return 0, fmt.Errorf("netmask must be an IPv4 address")
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for n < 32 && v&(1<<(31-n)) != 0 {
		n++
	}
	if n < 32 && v<<n != 0 {
		return 0, fmt.Errorf("netmask is not contiguous")
	}
	return n, nil
}

// checkDUID validates a DHCPv6 DUID as written in libvirt: ':'-separated
// bytes of one or two hex digits, a type of 1 to 4 (LLT, EN, LL, UUID),
// at most 130 bytes (RFC 8415: a 2-byte type and up to 128 bytes).
func checkDUID(s string) error {
	parts := strings.Split(s, ":")
	if len(parts) < 3 || len(parts) > 130 {
		return fmt.Errorf("DUID must be 3 to 130 ':'-separated hex bytes")
	}
	var v [2]uint64
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 || !isHexDigit(p[0]) || (len(p) == 2 && !isHexDigit(p[1])) {
			return fmt.Errorf("DUID must be ':'-separated hex bytes")
		}
		if i < 2 {
			v[i], _ = strconv.ParseUint(p, 16, 8)
		}
	}
	if v[0] != 0 || v[1] < 1 || v[1] > 4 {
		return fmt.Errorf("DUID type must be 1 (LLT), 2 (EN), 3 (LL) or 4 (UUID)")
	}
	return nil
}
