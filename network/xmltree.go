package network

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxInputSize is the largest network document accepted.
const MaxInputSize = 1 << 20

// maxXMLDepth bounds element nesting; the grammar needs five levels, the
// rest is for <metadata>.
const maxXMLDepth = 32

// DnsmasqNamespace is the XML namespace of libvirt's dnsmasq options
// (<dnsmasq:options><dnsmasq:option value='…'/></dnsmasq:options>).
const DnsmasqNamespace = "http://libvirt.org/schemas/network/dnsmasq/1.0"

// xmlNode is an element of a parsed document: the small tree the parser
// walks. Attribute values are kept as the decoder returns them, without
// XML's normalisation of white space to spaces: encoding/xml cannot tell a
// literal line break (which libxml2 turns into a space) from &#10; (which
// it keeps), so control characters stay in the value and free-text values
// refuse them (checkPlainText) instead of being silently changed.
type xmlNode struct {
	// name is the local name, prefixed with "dnsmasq:" for elements in
	// DnsmasqNamespace (whatever prefix the document used).
	name     string
	attrs    []xml.Attr
	children []*xmlNode
	text     strings.Builder
	line     int
	// dup is an attribute given a second time, nil if none.
	dup *xml.Attr
	// raw is the verbatim content of a <metadata> element (whose children
	// are not parsed into the tree); isMeta marks such an element.
	raw    []byte
	isMeta bool
}

// attr returns the value of the named attribute and whether it is present.
func (n *xmlNode) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// hasText reports whether the element has non-whitespace character data.
func (n *xmlNode) hasText() bool {
	return strings.TrimSpace(n.text.String()) != ""
}

// readXMLTree parses a whole document into a tree. The content of a
// <metadata> child of the root is kept verbatim, checked by checkMetadata.
// Errors are *ValidationError with Element and Line set where known.
func readXMLTree(data []byte) (*xmlNode, error) {
	if len(data) > MaxInputSize {
		return nil, &ValidationError{Reason: fmt.Sprintf("document is %d bytes, larger than the limit of %d", len(data), MaxInputSize)}
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var (
		root  *xmlNode
		stack []*xmlNode
	)
	line := func() int { l, _ := d.InputPos(); return l }
	malformed := func(err error) error {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return &ValidationError{Line: se.Line, Reason: "malformed XML: " + se.Msg}
		}
		return &ValidationError{Line: line(), Reason: "malformed XML: " + err.Error()}
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, malformed(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: t.Name.Local, line: line()}
			switch t.Name.Space {
			case "":
			case DnsmasqNamespace:
				n.name = "dnsmasq:" + t.Name.Local
			default:
				return nil, &ValidationError{Element: t.Name.Local, Line: n.line,
					Reason: fmt.Sprintf("element in namespace %q: only libvirt's elements, <metadata> content and %s are allowed", t.Name.Space, DnsmasqNamespace)}
			}
			for i, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					if a.Value != DnsmasqNamespace {
						return nil, &ValidationError{Element: n.name, Attr: "xmlns:" + a.Name.Local, Value: a.Value, Line: n.line,
							Reason: fmt.Sprintf("only the dnsmasq namespace (%s) may be declared outside <metadata>; declare other namespaces inside it", DnsmasqNamespace)}
					}
					continue
				case a.Name.Space != "" || a.Name.Local == "xmlns":
					name := a.Name.Local
					if a.Name.Space != "" {
						name = a.Name.Space + ":" + name
					}
					return nil, &ValidationError{Element: n.name, Attr: name, Value: a.Value, Line: n.line,
						Reason: "namespaced attributes and default namespaces are not part of libvirt's network XML"}
				}
				dup := false
				for _, b := range t.Attr[:i] {
					dup = dup || (b.Name == a.Name)
				}
				attr := xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value}
				if dup {
					if n.dup == nil {
						n.dup = &attr
					}
					continue
				}
				n.attrs = append(n.attrs, attr)
			}
			switch {
			case len(stack) > 0:
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			case root != nil:
				return nil, &ValidationError{Element: n.name, Line: n.line, Reason: "malformed XML: more than one root element"}
			default:
				root = n
			}
			if len(stack) >= maxXMLDepth {
				return nil, &ValidationError{Element: n.name, Line: n.line, Reason: "elements nested too deeply"}
			}
			if len(stack) == 1 && n.name == "metadata" {
				start := int(d.InputOffset())
				if err := d.Skip(); err != nil {
					return nil, malformed(err)
				}
				end := int(d.InputOffset())
				n.isMeta = true
				if end > start {
					close := bytes.LastIndex(data[:end], []byte("</"))
					if close < start {
						return nil, &ValidationError{Element: "metadata", Line: n.line, Reason: "malformed XML: cannot find the end of <metadata>"}
					}
					n.raw = bytes.Clone(data[start:close])
				}
				continue
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, &ValidationError{Line: line(), Reason: "malformed XML: text outside the root element"}
			}
		case xml.Directive:
			return nil, &ValidationError{Line: line(), Reason: "DOCTYPE and other <!…> declarations are not supported"}
		case xml.Comment, xml.ProcInst:
			// ignored, as libvirt does
		}
	}
	if root == nil {
		return nil, &ValidationError{Reason: "malformed XML: no root element"}
	}
	if len(stack) > 0 {
		return nil, &ValidationError{Element: stack[len(stack)-1].name, Reason: "malformed XML: element not closed"}
	}
	return root, nil
}

// checkMetadata checks the verbatim content of <metadata> the way libvirt
// uses it: well-formed on its own (every namespace prefix declared inside
// it, since the content is copied as it is), only elements at the top, each
// in a namespace, no two in the same namespace (libvirt silently drops
// such elements; netwarden refuses them).
func checkMetadata(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(append(append([]byte("<metadata>"), raw...), "</metadata>"...)))
	d.Strict = true
	var scopes []map[string]string // prefix → namespace, one per open element
	lookup := func(prefix string) (string, bool) {
		for i := len(scopes) - 1; i >= 0; i-- {
			if ns, ok := scopes[i][prefix]; ok {
				return ns, ns != "" || prefix == ""
			}
		}
		return "", prefix == "" || prefix == "xml"
	}
	seen := map[string]bool{}
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("malformed content: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			scope := map[string]string{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					scope[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					scope[""] = a.Value
				}
			}
			scopes = append(scopes, scope)
			if len(scopes) == 1 {
				continue // the <metadata> wrapper
			}
			ns, ok := lookup(t.Name.Space)
			if !ok {
				return fmt.Errorf("element <%s:%s> uses a namespace prefix not declared inside <metadata>", t.Name.Space, t.Name.Local)
			}
			for _, a := range t.Attr {
				if a.Name.Space != "" && a.Name.Space != "xmlns" {
					if _, ok := lookup(a.Name.Space); !ok {
						return fmt.Errorf("attribute %s:%s uses a namespace prefix not declared inside <metadata>", a.Name.Space, a.Name.Local)
					}
				}
			}
			if len(scopes) == 2 {
				if ns == "" {
					return fmt.Errorf("element <%s> has no namespace; every element in <metadata> must be in its own namespace", t.Name.Local)
				}
				if seen[ns] {
					return fmt.Errorf("more than one element in namespace %q (libvirt keeps only the first)", ns)
				}
				seen[ns] = true
			}
		case xml.EndElement:
			scopes = scopes[:len(scopes)-1]
		case xml.CharData:
			if len(scopes) == 1 && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("text directly inside <metadata>; only elements are allowed")
			}
		case xml.Directive:
			return fmt.Errorf("<!…> declarations are not allowed")
		}
	}
	return nil
}
