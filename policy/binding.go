package policy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/netwarden/netwarden/internal/xmltext"
)

// Binding is an nwfilter binding: the typed form of libvirt's
// <filterbinding> XML, which applies a filter to one port.
type Binding struct {
	// OwnerName is the name of the port's owner (the virtual machine).
	OwnerName string
	// OwnerUUID is the owner's UUID in canonical lower-case form.
	OwnerUUID string
	// PortDev is the port's interface name (a TAP or veth device).
	PortDev string
	// LinkDev is the optional link device (for macvtap ports), "" if none.
	LinkDev string
	// MAC is the port's unicast MAC address in canonical form; it is the
	// default value of the MAC variable.
	MAC string
	// Filter is the name of the filter applied to the port.
	Filter string
	// Params are the filter parameters in document order (see
	// FilterRef.Params).
	Params []Param
}

// MaxOwnerNameLength bounds the owner name of a binding.
const MaxOwnerNameLength = 1024

// ParseBinding parses and validates an nwfilter-binding document
// (libvirt's <filterbinding> XML). Every error is a *ValidationError.
// Interface names must be valid Linux names (1 to 15 bytes, not "." or
// "..", no '/', ':', whitespace or control characters); the MAC must be a
// unicast address.
func ParseBinding(data []byte) (*Binding, error) {
	root, err := readXMLTree(data)
	if err != nil {
		return nil, err
	}
	fail := func(n *xmlNode, attr, value, reason string) *ValidationError {
		return &ValidationError{Element: n.name, Attr: attr, Value: value, Reason: reason, Line: n.line}
	}
	if err := root.checkDup(fail, true); err != nil {
		return nil, err
	}
	if root.name != "filterbinding" {
		return nil, fail(root, "", "", "root element must be <filterbinding>")
	}
	if len(root.attrs) > 0 {
		return nil, fail(root, root.attrs[0].Name.Local, root.attrs[0].Value, "<filterbinding> has no attributes")
	}
	if root.hasText() {
		return nil, fail(root, "", "", "unexpected text inside <filterbinding>")
	}
	b := &Binding{}
	seen := map[string]bool{}
	for _, c := range root.children {
		if seen[c.name] {
			return nil, fail(c, "", "", fmt.Sprintf("more than one <%s>", c.name))
		}
		seen[c.name] = true
		switch c.name {
		case "owner":
			if err := parseOwner(c, b, fail); err != nil {
				return nil, err
			}
		case "portdev", "linkdev":
			name, err := singleAttr(c, "name", fail)
			if err != nil {
				return nil, err
			}
			if err := checkInterfaceName(name); err != nil {
				return nil, fail(c, "name", name, err.Error())
			}
			if c.name == "portdev" {
				b.PortDev = name
			} else {
				b.LinkDev = name
			}
		case "mac":
			addr, err := singleAttr(c, "address", fail)
			if err != nil {
				return nil, err
			}
			m, err := parseMAC(addr)
			if err != nil {
				return nil, fail(c, "address", addr, err.Error())
			}
			if m[0]&1 != 0 {
				return nil, fail(c, "address", addr, "MAC address must be unicast (the lowest bit of the first byte clear)")
			}
			b.MAC = formatMAC(m)
		case "filterref":
			params, name, err := parseRefNode(c, fail)
			if err != nil {
				return nil, err
			}
			b.Filter, b.Params = name, params
		default:
			return nil, fail(c, "", "", "unknown element inside <filterbinding> (it holds <owner>, <portdev>, <linkdev>, <mac> and <filterref>)")
		}
	}
	for _, req := range []string{"owner", "portdev", "mac", "filterref"} {
		if !seen[req] {
			return nil, &ValidationError{Element: req, Reason: fmt.Sprintf("missing required element <%s> in <filterbinding>", req)}
		}
	}
	return b, nil
}

func parseOwner(n *xmlNode, b *Binding, fail func(n *xmlNode, attr, value, reason string) *ValidationError) error {
	if len(n.attrs) > 0 {
		return fail(n, n.attrs[0].Name.Local, n.attrs[0].Value, "<owner> has no attributes")
	}
	if n.hasText() {
		return fail(n, "", "", "unexpected text inside <owner>")
	}
	var haveName, haveUUID bool
	for _, c := range n.children {
		if len(c.attrs) > 0 {
			return fail(c, c.attrs[0].Name.Local, c.attrs[0].Value, fmt.Sprintf("<%s> has no attributes", c.name))
		}
		if len(c.children) > 0 {
			return fail(c.children[0], "", "", fmt.Sprintf("unexpected element inside <%s>", c.name))
		}
		text := c.text.String()
		switch c.name {
		case "name":
			if haveName {
				return fail(c, "", "", "more than one <name> in <owner>")
			}
			haveName = true
			if err := checkOwnerName(text); err != nil {
				return &ValidationError{Element: "name", Value: text, Reason: err.Error(), Line: c.line}
			}
			b.OwnerName = text
		case "uuid":
			if haveUUID {
				return fail(c, "", "", "more than one <uuid> in <owner>")
			}
			haveUUID = true
			u, err := parseUUID(text)
			if err != nil {
				return &ValidationError{Element: "uuid", Value: text, Reason: err.Error(), Line: c.line}
			}
			b.OwnerUUID = u
		default:
			return fail(c, "", "", "unknown element inside <owner> (it holds <name> and <uuid>)")
		}
	}
	if !haveName {
		return fail(n, "", "", "missing required element <name> in <owner>")
	}
	if !haveUUID {
		return fail(n, "", "", "missing required element <uuid> in <owner>")
	}
	return nil
}

// singleAttr returns the value of an empty element's only attribute.
func singleAttr(n *xmlNode, attr string, fail func(n *xmlNode, attr, value, reason string) *ValidationError) (string, error) {
	for _, a := range n.attrs {
		if a.Name.Local != attr {
			return "", fail(n, a.Name.Local, a.Value, fmt.Sprintf("unknown attribute of <%s> (it has %s)", n.name, attr))
		}
	}
	if len(n.children) > 0 || n.hasText() {
		return "", fail(n, "", "", fmt.Sprintf("<%s> must be empty", n.name))
	}
	v, ok := n.attr(attr)
	if !ok {
		return "", fail(n, attr, "", "missing required attribute")
	}
	return v, nil
}

// MaxInterfaceNameLength is the longest Linux interface name (IFNAMSIZ-1).
const MaxInterfaceNameLength = 15

// checkInterfaceName applies the kernel's rules for interface names.
func checkInterfaceName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("interface name is empty")
	case len(s) > MaxInterfaceNameLength:
		return fmt.Errorf("interface name is longer than %d bytes", MaxInterfaceNameLength)
	case s == "." || s == "..":
		return fmt.Errorf("interface name must not be '.' or '..'")
	case !utf8.ValidString(s):
		return fmt.Errorf("interface name is not valid UTF-8")
	}
	for _, r := range s {
		if r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("interface name must not contain '/', ':', whitespace or control characters")
		}
	}
	return nil
}

func checkOwnerName(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("owner name is empty")
	case len(s) > MaxOwnerNameLength:
		return fmt.Errorf("owner name is longer than %d bytes", MaxOwnerNameLength)
	case !utf8.ValidString(s):
		return fmt.Errorf("owner name is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("owner name must not contain control characters")
		}
	}
	return nil
}

// FormatXML returns the binding as libvirt formats it. The output is
// checked by parsing it again, so a Binding built in code with invalid
// values yields the *ValidationError that parsing reports.
func (b *Binding) FormatXML() ([]byte, error) {
	out := b.appendXML(nil)
	c, err := ParseBinding(out)
	if err != nil {
		return nil, fmt.Errorf("format binding of %q: %w", b.PortDev, err)
	}
	return c.appendXML(make([]byte, 0, len(out))), nil
}

func (b *Binding) appendXML(out []byte) []byte {
	out = append(out, "<filterbinding>\n  <owner>\n    <name>"...)
	out = xmltext.AppendEscaped(out, b.OwnerName)
	out = append(out, "</name>\n    <uuid>"...)
	out = xmltext.AppendEscaped(out, b.OwnerUUID)
	out = append(out, "</uuid>\n  </owner>\n  <portdev name='"...)
	out = xmltext.AppendEscaped(out, b.PortDev)
	out = append(out, "'/>\n"...)
	if b.LinkDev != "" {
		out = append(out, "  <linkdev name='"...)
		out = xmltext.AppendEscaped(out, b.LinkDev)
		out = append(out, "'/>\n"...)
	}
	out = append(out, "  <mac address='"...)
	out = xmltext.AppendEscaped(out, b.MAC)
	out = append(out, "'/>\n"...)
	out = appendRefXML(out, "  ", b.Filter, b.Params)
	return append(out, "</filterbinding>\n"...)
}
