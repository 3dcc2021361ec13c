package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// This file decodes the attribute values of netfilter.Field into the
// bytes the kernel compares. The values arrive in the canonical text the
// policy layer produces (policy/kinds.go); the decoders accept that text
// and the other spellings libvirt accepts (hex or decimal numbers, names
// in any case), so they never depend on the policy package (which sits
// above netfilter). Every decoder returns an error that says what is
// wrong; callers add the attribute and value.

// parseUint reads a decimal number or a 0x-prefixed hexadecimal one and
// checks it against max.
func parseUint(s string, max uint64) (uint64, error) {
	digits, base := s, 10
	if len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		digits, base = s[2:], 16
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, errors.New("not a number (decimal, or hexadecimal with 0x)")
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		return 0, errors.New("not a number (decimal, or hexadecimal with 0x)")
	}
	if v > max {
		return 0, fmt.Errorf("out of range 0..%d", max)
	}
	return v, nil
}

// be8 encodes a number as one byte.
func be8(v uint64) []byte { return []byte{byte(v)} }

// be16 encodes a number in two bytes in network byte order, as the kernel
// loads the header fields it is compared with.
func be16(v uint64) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }

// be32 encodes a number in four bytes in network byte order.
func be32(v uint64) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

// uintBytes parses a number of the given width in bytes (1, 2 or 4) and
// encodes it in network byte order.
func uintBytes(s string, width int) ([]byte, error) {
	max := uint64(1)<<(8*width) - 1
	v, err := parseUint(s, max)
	if err != nil {
		return nil, err
	}
	switch width {
	case 1:
		return be8(v), nil
	case 2:
		return be16(v), nil
	}
	return be32(v), nil
}

// namedUint reads a name from table (any case, as libvirt reads it) or a
// number up to max.
func namedUint(s string, table netfilter.Names, max uint64) (uint64, error) {
	if v, ok := table.Lookup(s); ok {
		return uint64(v), nil
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("must be one of %s or a number 0..%d", table, max)
	}
	return parseUint(s, max)
}

// etherType decodes an EtherType (protocolid, encap-protocol).
func etherType(s string) ([]byte, error) {
	v, err := namedUint(s, netfilter.EtherTypes, 0xffff)
	if err != nil {
		return nil, err
	}
	return be16(v), nil
}

// arpOpcodeValue decodes an ARP opcode.
func arpOpcodeValue(s string) ([]byte, error) {
	v, err := namedUint(s, netfilter.ARPOpcodes, 0xffff)
	if err != nil {
		return nil, err
	}
	return be16(v), nil
}

// ipProtocol decodes an IP protocol number or name.
func ipProtocol(s string) (byte, error) {
	v, err := namedUint(s, netfilter.IPProtocols, 0xff)
	return byte(v), err
}

// macAddr decodes a MAC address: six groups of one or two hex digits.
func macAddr(s string) ([]byte, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return nil, errors.New("not a MAC address (six hex groups separated by ':')")
	}
	out := make([]byte, 6)
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return nil, errors.New("not a MAC address (six hex groups separated by ':')")
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return nil, errors.New("not a MAC address (six hex groups separated by ':')")
		}
		out[i] = byte(v)
	}
	return out, nil
}

// ipv4Addr decodes a dotted-quad IPv4 address.
func ipv4Addr(s string) ([]byte, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return nil, errors.New("not an IPv4 address")
	}
	b := a.As4()
	return b[:], nil
}

// ipv6Addr decodes an IPv6 address (IPv4-mapped forms included).
func ipv6Addr(s string) ([]byte, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return nil, errors.New("not an IPv6 address")
	}
	b := a.As16()
	return b[:], nil
}

// prefixMask decodes a prefix length (the canonical form of srcipmask and
// friends) or a dotted/colon netmask into a mask of width bytes.
func prefixMask(s string, width int) ([]byte, error) {
	bits := width * 8
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.Atoi(s)
		if err != nil || n > bits {
			return nil, fmt.Errorf("prefix length out of range 0..%d", bits)
		}
		mask := make([]byte, width)
		for i := 0; i < n; i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		return mask, nil
	}
	var mask []byte
	var err error
	if width == 4 {
		mask, err = ipv4Addr(s)
	} else {
		mask, err = ipv6Addr(s)
	}
	if err != nil {
		return nil, fmt.Errorf("not a prefix length 0..%d or a netmask", bits)
	}
	if !contiguous(mask) {
		return nil, errors.New("netmask is not ones followed by zeros")
	}
	return mask, nil
}

// macMask decodes a MAC mask; libvirt accepts only ones followed by
// zeros, so nothing else is accepted here either.
func macMask(s string) ([]byte, error) {
	m, err := macAddr(s)
	if err != nil {
		return nil, err
	}
	if !contiguous(m) {
		return nil, errors.New("MAC mask is not ones followed by zeros")
	}
	return m, nil
}

// contiguous reports whether the bits of b are ones followed by zeros.
func contiguous(b []byte) bool {
	zero := false
	for _, c := range b {
		for bit := 7; bit >= 0; bit-- {
			one := c&(1<<bit) != 0
			if one && zero {
				return false
			}
			if !one {
				zero = true
			}
		}
	}
	return true
}

// allOnes reports whether every bit of b is set.
func allOnes(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// and returns a & m (of equal length).
func and(a, m []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] & m[i]
	}
	return out
}

// tcpFlags decodes a flags value "mask/flags" (see
// netfilter.ParseTCPFlags).
func tcpFlags(s string) (mask, flags byte, err error) {
	return netfilter.ParseTCPFlags(s)
}

// boolean decodes a boolean attribute (gratuitous).
func boolean(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, errors.New("not a boolean (true or false)")
}

// ifnameKey encodes an interface name as the kernel holds it in a
// register: IFNAMSIZ (16) bytes, zero-padded.
func ifnameKey(name string) ([]byte, error) {
	if name == "" || len(name) >= ifNameSize {
		return nil, fmt.Errorf("interface name %q: must be 1..%d bytes", name, ifNameSize-1)
	}
	out := make([]byte, ifNameSize)
	copy(out, name)
	return out, nil
}

// ifNameSize is IFNAMSIZ, the size of an interface name in a register and
// in a set key.
const ifNameSize = 16
