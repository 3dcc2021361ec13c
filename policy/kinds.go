package policy

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// Kind is the type of an attribute's values. Kind.Parse validates a
// literal of the kind and returns its canonical text; the parser uses it
// for literals in the XML, and instantiation uses it to type-check the
// values substituted for variables.
type Kind int

// The value kinds. The zero Kind is invalid.
const (
	// KindMAC is a MAC address, six groups of one or two hex digits
	// separated by ':'; canonical "01:02:03:04:05:06".
	KindMAC Kind = iota + 1
	// KindMACMask is a MAC mask: a MAC address whose bits are ones then
	// zeros (libvirt refuses other masks).
	KindMACMask
	// KindIPv4 is a dotted-quad IPv4 address (no leading zeros: libvirt
	// would read "010" as octal).
	KindIPv4
	// KindIPv4Mask is a prefix length 0..32 or a dotted netmask;
	// canonical: the prefix length.
	KindIPv4Mask
	// KindIPv6 is an IPv6 address; canonical: the text glibc's inet_ntop
	// gives (lower case, longest zero run as "::", "::a.b.c.d" and
	// "::ffff:a.b.c.d" for embedded IPv4).
	KindIPv6
	// KindIPv6Mask is a prefix length 0..128 or an IPv6 netmask;
	// canonical: the prefix length.
	KindIPv6Mask
	// KindUint8 is 0..255, decimal or 0x-hex; canonical keeps the base
	// ("0x" and lower-case digits for hex), as libvirt does.
	KindUint8
	// KindUint16 is 0..65535, decimal or 0x-hex (ports, hwtype, STP
	// fields).
	KindUint16
	// KindUint32 is 0..4294967295, decimal or 0x-hex (STP root cost).
	KindUint32
	// KindSixBit is a DSCP value 0..63, decimal or 0x-hex.
	KindSixBit
	// KindMACProtocolID is an EtherType: arp, rarp, ipv4, ipv6, vlan
	// (any case) or a number 0x600..0xffff; canonical: the name when the
	// number has one, else the number in the base it was given in.
	KindMACProtocolID
	// KindVLANEncap is the EtherType of a VLAN's payload: as
	// KindMACProtocolID but numbers from 0x3c (libvirt's lower bound for
	// this attribute).
	KindVLANEncap
	// KindVLANID is a VLAN ID 0..4095, decimal or 0x-hex.
	KindVLANID
	// KindARPOpcode is an ARP opcode: Request, Reply, Request_Reverse,
	// Reply_Reverse, DRARP_Request, DRARP_Reply, DRARP_Error,
	// InARP_Request, ARP_NAK (any case) or a number 0..65535; canonical:
	// the name for 1..9, else the decimal number.
	KindARPOpcode
	// KindIPProtocol is an IP protocol: tcp, udp, udplite, esp, ah, icmp,
	// igmp, sctp, icmpv6 (any case) or a number 0..255; canonical: the
	// name when the number has one, else the number in its base.
	KindIPProtocol
	// KindBool is yes/true/1 or no/false/0; canonical "true" or "false".
	KindBool
	// KindStateFlags is a comma-separated list of NEW, ESTABLISHED,
	// RELATED, INVALID, or NONE alone; canonical: upper case, in that
	// order, each once.
	KindStateFlags
	// KindTCPFlags is "mask/flags", each side a comma-separated list of
	// SYN, ACK, URG, PSH, FIN, RST, or ALL or NONE alone; canonical:
	// NONE, ALL or the flags in the order FIN,SYN,RST,PSH,ACK,URG.
	KindTCPFlags
	// KindIPSetName is an ipset name: 1..31 characters of
	// [A-Za-z0-9_.:+ -].
	KindIPSetName
	// KindIPSetFlags is a comma-separated list of 1..6 of src and dst
	// (any case); canonical lower case.
	KindIPSetFlags
	// KindConnLimit is a connection count 0..65535, decimal only (libvirt
	// reads connlimit-above as decimal).
	KindConnLimit
)

var kindNames = [...]string{
	KindMAC:           "MAC address",
	KindMACMask:       "MAC mask",
	KindIPv4:          "IPv4 address",
	KindIPv4Mask:      "IPv4 mask",
	KindIPv6:          "IPv6 address",
	KindIPv6Mask:      "IPv6 mask",
	KindUint8:         "8-bit number",
	KindUint16:        "16-bit number",
	KindUint32:        "32-bit number",
	KindSixBit:        "DSCP value",
	KindMACProtocolID: "EtherType",
	KindVLANEncap:     "VLAN EtherType",
	KindVLANID:        "VLAN ID",
	KindARPOpcode:     "ARP opcode",
	KindIPProtocol:    "IP protocol",
	KindBool:          "boolean",
	KindStateFlags:    "connection states",
	KindTCPFlags:      "TCP flags",
	KindIPSetName:     "ipset name",
	KindIPSetFlags:    "ipset flags",
	KindConnLimit:     "connection limit",
}

// String returns a short description of the kind for messages, e.g.
// "MAC address" or "16-bit number".
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// AllowsVariables reports whether an attribute of this kind may hold a
// variable reference ($X). Variables are refused for booleans, state
// lists, TCP flags and ipset flags: libvirt accepts them there but never
// substitutes them (it reads the unset literal instead), and a parameter
// value could not hold the ',' or '/' they need anyway.
func (k Kind) AllowsVariables() bool {
	switch k {
	case KindBool, KindStateFlags, KindTCPFlags, KindIPSetFlags:
		return false
	}
	return k > 0 && int(k) < len(kindNames)
}

// Parse validates s as a literal of kind k and returns its canonical text,
// the text libvirt would format for it. It does not accept variable
// references; the error says what is wrong with s.
func (k Kind) Parse(s string) (string, error) {
	switch k {
	case KindMAC:
		m, err := parseMAC(s)
		if err != nil {
			return "", err
		}
		return formatMAC(m), nil
	case KindMACMask:
		m, err := parseMAC(s)
		if err != nil {
			return "", err
		}
		if !contiguousMask(m[:]) {
			return "", errors.New("MAC mask must be ones followed by zeros (like ff:ff:ff:00:00:00)")
		}
		return formatMAC(m), nil
	case KindIPv4:
		a, err := parseIPv4(s)
		if err != nil {
			return "", err
		}
		return a.String(), nil
	case KindIPv4Mask:
		return parseMask(s, 32)
	case KindIPv6:
		a, err := parseIPv6(s)
		if err != nil {
			return "", err
		}
		return formatIPv6(a), nil
	case KindIPv6Mask:
		return parseMask(s, 128)
	case KindUint8:
		return parseUintText(s, 0, 0xff, true)
	case KindUint16:
		return parseUintText(s, 0, 0xffff, true)
	case KindUint32:
		return parseUintText(s, 0, 0xffffffff, true)
	case KindSixBit:
		return parseUintText(s, 0, 63, true)
	case KindVLANID:
		return parseUintText(s, 0, 4095, true)
	case KindConnLimit:
		return parseUintText(s, 0, 0xffff, false)
	case KindMACProtocolID:
		return parseEtherType(s, 0x600)
	case KindVLANEncap:
		return parseEtherType(s, 0x3c)
	case KindARPOpcode:
		return parseARPOpcode(s)
	case KindIPProtocol:
		return parseIPProtocol(s)
	case KindBool:
		switch s {
		case "yes", "true", "1":
			return "true", nil
		case "no", "false", "0":
			return "false", nil
		}
		return "", errors.New("must be one of yes, no, true, false, 1, 0")
	case KindStateFlags:
		return parseStates(s)
	case KindTCPFlags:
		return parseTCPFlagsText(s)
	case KindIPSetName:
		return parseIPSetName(s)
	case KindIPSetFlags:
		return parseIPSetFlags(s)
	}
	return "", fmt.Errorf("unknown value kind %d", int(k))
}

// Uint returns the number a literal of a numeric kind stands for: the
// value of a number, the prefix length of a mask, the number of a named
// protocol, EtherType or ARP opcode, 1 or 0 for a boolean. It accepts the
// same texts as Parse (canonical or not).
func (k Kind) Uint(s string) (uint32, error) {
	switch k {
	case KindIPv4Mask, KindIPv6Mask:
		c, err := k.Parse(s)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseUint(c, 10, 8)
		return uint32(n), err
	case KindUint8, KindUint16, KindUint32, KindSixBit, KindVLANID, KindConnLimit:
		c, err := k.Parse(s)
		if err != nil {
			return 0, err
		}
		v, _, err := parseNumber(c, 0xffffffff, true)
		return uint32(v), err
	case KindMACProtocolID, KindVLANEncap:
		c, err := k.Parse(s)
		if err != nil {
			return 0, err
		}
		if v, ok := netfilter.EtherTypes.Lookup(c); ok {
			return v, nil
		}
		v, _, err := parseNumber(c, 0xffff, true)
		return uint32(v), err
	case KindARPOpcode:
		c, err := k.Parse(s)
		if err != nil {
			return 0, err
		}
		if v, ok := netfilter.ARPOpcodes.Lookup(c); ok {
			return v, nil
		}
		v, _, err := parseNumber(c, 0xffff, true)
		return uint32(v), err
	case KindIPProtocol:
		c, err := k.Parse(s)
		if err != nil {
			return 0, err
		}
		if v, ok := netfilter.IPProtocols.Lookup(c); ok {
			return v, nil
		}
		v, _, err := parseNumber(c, 0xff, true)
		return uint32(v), err
	case KindBool:
		c, err := k.Parse(s)
		if err != nil {
			return 0, err
		}
		if c == "true" {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s is not a numeric kind", k)
}

// ---- numbers ----

// parseNumber reads a decimal number or, when hexOK, a 0x-prefixed
// hexadecimal one, and checks it against max. hex reports the base.
func parseNumber(s string, max uint64, hexOK bool) (v uint64, hex bool, err error) {
	if s == "" {
		return 0, false, errors.New("empty value")
	}
	digits, base := s, 10
	if len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		if !hexOK {
			return 0, false, errors.New("must be a decimal number (libvirt reads this attribute as decimal only)")
		}
		digits, base, hex = s[2:], 16, true
		if digits == "" {
			return 0, false, errors.New("hexadecimal number has no digits after 0x")
		}
		for i := 0; i < len(digits); i++ {
			if !isHexDigit(digits[i]) {
				return 0, false, errors.New("not a hexadecimal number")
			}
		}
	} else {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				if hexOK {
					return 0, false, errors.New("must be a decimal number or a hexadecimal number with the 0x prefix")
				}
				return 0, false, errors.New("must be a decimal number")
			}
		}
	}
	v, perr := strconv.ParseUint(digits, base, 64)
	if perr != nil || v > max {
		return 0, false, fmt.Errorf("out of range 0..%d", max)
	}
	return v, hex, nil
}

func formatNumber(v uint64, hex bool) string {
	if hex {
		return "0x" + strconv.FormatUint(v, 16)
	}
	return strconv.FormatUint(v, 10)
}

func parseUintText(s string, min, max uint64, hexOK bool) (string, error) {
	v, hex, err := parseNumber(s, max, hexOK)
	if err != nil {
		return "", err
	}
	if v < min {
		return "", fmt.Errorf("out of range %d..%d", min, max)
	}
	return formatNumber(v, hex), nil
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// ---- named numbers (the vocabularies are netfilter's) ----

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

func parseEtherType(s string, min uint64) (string, error) {
	if !startsWithDigit(s) {
		if v, ok := netfilter.EtherTypes.Lookup(s); ok {
			n, _ := netfilter.EtherTypes.NameOf(v)
			return n, nil
		}
		return "", fmt.Errorf("must be one of %s or a number 0x%x..0xffff", netfilter.EtherTypes.String(), min)
	}
	v, hex, err := parseNumber(s, 0xffff, true)
	if err != nil {
		return "", err
	}
	if v < min {
		return "", fmt.Errorf("protocol ID must be 0x%x..0xffff (smaller values are IEEE 802.3 frame lengths, not EtherTypes)", min)
	}
	if n, ok := netfilter.EtherTypes.NameOf(uint32(v)); ok {
		return n, nil
	}
	return formatNumber(v, hex), nil
}

func parseARPOpcode(s string) (string, error) {
	if !startsWithDigit(s) {
		if v, ok := netfilter.ARPOpcodes.Lookup(s); ok {
			n, _ := netfilter.ARPOpcodes.NameOf(v)
			return n, nil
		}
		return "", fmt.Errorf("must be one of %s or a number 0..65535", netfilter.ARPOpcodes.String())
	}
	v, _, err := parseNumber(s, 0xffff, true)
	if err != nil {
		return "", err
	}
	if n, ok := netfilter.ARPOpcodes.NameOf(uint32(v)); ok {
		return n, nil
	}
	return strconv.FormatUint(v, 10), nil
}

func parseIPProtocol(s string) (string, error) {
	if !startsWithDigit(s) {
		if v, ok := netfilter.IPProtocols.Lookup(s); ok {
			n, _ := netfilter.IPProtocols.NameOf(v)
			return n, nil
		}
		return "", fmt.Errorf("must be one of %s or a number 0..255", netfilter.IPProtocols.String())
	}
	v, hex, err := parseNumber(s, 0xff, true)
	if err != nil {
		return "", err
	}
	if n, ok := netfilter.IPProtocols.NameOf(uint32(v)); ok {
		return n, nil
	}
	return formatNumber(v, hex), nil
}

// ---- MAC addresses ----

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	bad := errors.New("must be a MAC address: six groups of one or two hex digits separated by ':'")
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, bad
	}
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 || !isHexDigit(p[0]) || (len(p) == 2 && !isHexDigit(p[1])) {
			return m, bad
		}
		v, _ := strconv.ParseUint(p, 16, 8)
		m[i] = byte(v)
	}
	return m, nil
}

func formatMAC(m [6]byte) string {
	const hexdigits = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, c := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return string(b)
}

// contiguousMask reports whether the bits of b are ones followed by zeros.
func contiguousMask(b []byte) bool {
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

// ---- IP addresses ----

func parseIPv4(s string) (netip.Addr, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, errors.New("must be a dotted-quad IPv4 address like 192.0.2.1")
	}
	var b [4]byte
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return netip.Addr{}, errors.New("must be a dotted-quad IPv4 address like 192.0.2.1")
		}
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return netip.Addr{}, errors.New("must be a dotted-quad IPv4 address like 192.0.2.1")
			}
		}
		if len(p) > 1 && p[0] == '0' {
			return netip.Addr{}, errors.New("IPv4 address has a leading zero (libvirt would read it as octal)")
		}
		v, _ := strconv.Atoi(p)
		if v > 255 {
			return netip.Addr{}, errors.New("IPv4 address has a part greater than 255")
		}
		b[i] = byte(v)
	}
	return netip.AddrFrom4(b), nil
}

func parseIPv6(s string) (netip.Addr, error) {
	if !strings.Contains(s, ":") {
		return netip.Addr{}, errors.New("must be an IPv6 address like 2001:db8::1")
	}
	if strings.Contains(s, "%") {
		return netip.Addr{}, errors.New("IPv6 address must not have a zone")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, errors.New("must be an IPv6 address like 2001:db8::1")
	}
	return a, nil
}

// formatIPv6 formats an IPv6 address as glibc's inet_ntop does, which is
// what libvirt prints: Go's formatting except that an address whose first
// 96 bits are zero (and whose 7th group is not) is written "::a.b.c.d".
func formatIPv6(a netip.Addr) string {
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	if w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] != 0 {
		return "::" + netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String()
	}
	return a.String()
}

// parseMask reads a prefix length or a netmask of the given width and
// returns the prefix length.
func parseMask(s string, width int) (string, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		v, _, err := parseNumber(s, uint64(width), false)
		if err != nil {
			return "", fmt.Errorf("prefix length out of range 0..%d", width)
		}
		return strconv.FormatUint(v, 10), nil
	}
	var raw []byte
	if width == 32 {
		a, err := parseIPv4(s)
		if err != nil {
			return "", errors.New("must be a prefix length 0..32 or a netmask like 255.255.255.0")
		}
		b := a.As4()
		raw = b[:]
	} else {
		a, err := parseIPv6(s)
		if err != nil {
			return "", errors.New("must be a prefix length 0..128 or an IPv6 netmask (ffff:ff00:: is /24)")
		}
		b := a.As16()
		raw = b[:]
	}
	if !contiguousMask(raw) {
		return "", errors.New("netmask must be ones followed by zeros")
	}
	n := 0
	for _, c := range raw {
		n += bits.OnesCount8(c)
	}
	return strconv.Itoa(n), nil
}

// ---- flag lists ----

var stateNames = []string{"NEW", "ESTABLISHED", "RELATED", "INVALID"}

func parseStates(s string) (string, error) {
	if strings.EqualFold(s, "NONE") {
		return "NONE", nil
	}
	if s == "" {
		return "", errors.New("empty state list (use NONE for no state)")
	}
	var seen [4]bool
	for _, item := range strings.Split(s, ",") {
		found := false
		for i, n := range stateNames {
			if strings.EqualFold(item, n) {
				seen[i], found = true, true
			}
		}
		if !found {
			if strings.EqualFold(item, "NONE") {
				return "", errors.New("NONE cannot be combined with other states")
			}
			return "", fmt.Errorf("unknown connection state %q: use NEW, ESTABLISHED, RELATED, INVALID (comma-separated) or NONE", item)
		}
	}
	var out []string
	for i, n := range stateNames {
		if seen[i] {
			out = append(out, n)
		}
	}
	return strings.Join(out, ","), nil
}

func formatTCPFlagSet(v uint8) string {
	switch v {
	case 0:
		return "NONE"
	case 0x3f:
		return "ALL"
	}
	var out []string
	for _, f := range netfilter.TCPFlags {
		if uint32(v)&f.Value != 0 {
			out = append(out, f.Name)
		}
	}
	return strings.Join(out, ",")
}

// ParseTCPFlags reads a TCP flags value "mask/flags" and returns the two
// bit sets (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20):
// a packet matches when its flags masked with mask equal flags.
func ParseTCPFlags(s string) (mask, flags uint8, err error) {
	return netfilter.ParseTCPFlags(s)
}

func parseTCPFlagsText(s string) (string, error) {
	m, f, err := ParseTCPFlags(s)
	if err != nil {
		return "", err
	}
	return formatTCPFlagSet(m) + "/" + formatTCPFlagSet(f), nil
}

// MaxIPSetNameLength is the longest ipset name (the kernel's limit).
const MaxIPSetNameLength = 31

func parseIPSetName(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty ipset name")
	}
	if len(s) > MaxIPSetNameLength {
		return "", fmt.Errorf("ipset name longer than %d characters", MaxIPSetNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:-+ ", c) >= 0) {
			return "", errors.New("ipset name may only contain letters, digits, space and _ . : - +")
		}
	}
	return s, nil
}

func parseIPSetFlags(s string) (string, error) {
	items := strings.Split(s, ",")
	if len(items) > 6 {
		return "", errors.New("at most 6 ipset flags")
	}
	for i, it := range items {
		switch {
		case strings.EqualFold(it, "src"):
			items[i] = "src"
		case strings.EqualFold(it, "dst"):
			items[i] = "dst"
		default:
			return "", fmt.Errorf("ipset flag %q is neither src nor dst", it)
		}
	}
	return strings.Join(items, ","), nil
}

// ---- variables ----

func isVarNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// ValidVariableName reports whether s is a valid variable (parameter)
// name: [A-Za-z0-9_]+.
func ValidVariableName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isVarNameChar(s[i]) {
			return false
		}
	}
	return true
}

// ValidVariableValue reports whether s is a valid parameter value:
// [A-Za-z0-9_.:]+.
func ValidVariableValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isVarNameChar(s[i]) && s[i] != '.' && s[i] != ':' {
			return false
		}
	}
	return true
}

// ParseVarRef parses a variable reference "$X", "$X[N]" or "$X[@K]";
// spaces are allowed after '$', inside the brackets and at the end, as
// libvirt's schema allows. $X[@0] is the same as $X and parses to
// AccessDefault.
func ParseVarRef(s string) (*VarRef, error) {
	if !strings.HasPrefix(s, "$") {
		return nil, errors.New("variable reference must start with '$'")
	}
	i := 1
	skip := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	skip()
	start := i
	for i < len(s) && isVarNameChar(s[i]) {
		i++
	}
	ref := &VarRef{Name: s[start:i]}
	if ref.Name == "" {
		return nil, errors.New("variable name missing after '$' (names are [A-Za-z0-9_]+)")
	}
	if i < len(s) && s[i] == '[' {
		i++
		skip()
		ref.Access = AccessIndex
		if i < len(s) && s[i] == '@' {
			ref.Access = AccessIterator
			i++
		}
		ds := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if ds == i {
			if ref.Access == AccessIterator {
				return nil, errors.New("iterator ID missing after '@' in variable reference")
			}
			return nil, errors.New("index missing in variable reference (use $X[N] or $X[@K])")
		}
		n, err := strconv.ParseUint(s[ds:i], 10, 31)
		if err != nil {
			return nil, errors.New("index in variable reference is too large")
		}
		skip()
		if i >= len(s) || s[i] != ']' {
			return nil, errors.New("missing ']' in variable reference")
		}
		i++
		if ref.Access == AccessIterator && n > MaxIteratorID {
			return nil, fmt.Errorf("iterator ID %d exceeds the maximum %d", n, MaxIteratorID)
		}
		ref.Index = int(n)
		if ref.Access == AccessIterator && n == 0 {
			ref.Access = AccessDefault
		}
	}
	skip()
	if i != len(s) {
		return nil, fmt.Errorf("unexpected %q in variable reference (expected $X, $X[N] or $X[@K])", s[i:])
	}
	return ref, nil
}
