package policy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxInputSize is the largest nwfilter or binding document accepted.
const MaxInputSize = 1 << 20

// maxXMLDepth bounds element nesting; the grammars need four levels.
const maxXMLDepth = 16

// xmlNode is an element of a parsed document: the small tree the parsers
// walk. Attribute values are normalised as an XML processor does
// (tab, newline and carriage return become spaces).
type xmlNode struct {
	name     string
	attrs    []xml.Attr
	children []*xmlNode
	text     strings.Builder
	line     int
	// dup is an attribute given a second time (reported by the parsers,
	// which know the context), nil if none.
	dup *xml.Attr
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

// checkDup reports an attribute given twice, using the caller's fail.
// With deep, the element's descendants are checked too.
func (n *xmlNode) checkDup(fail func(n *xmlNode, attr, value, reason string) *ValidationError, deep bool) error {
	if n.dup != nil {
		return fail(n, n.dup.Name.Local, n.dup.Value, "attribute given more than once")
	}
	if !deep {
		return nil
	}
	for _, c := range n.children {
		if err := c.checkDup(fail, true); err != nil {
			return err
		}
	}
	return nil
}

// hasText reports whether the element has non-whitespace character data.
func (n *xmlNode) hasText() bool {
	return strings.TrimSpace(n.text.String()) != ""
}

// readXMLTree parses a whole document into a tree. Errors are
// *ValidationError with Element and Line set where they are known.
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
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &ValidationError{Line: se.Line, Reason: "malformed XML: " + se.Msg}
			}
			return nil, &ValidationError{Line: line(), Reason: "malformed XML: " + err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: t.Name.Local, line: line()}
			if t.Name.Space != "" {
				return nil, &ValidationError{Element: t.Name.Space + ":" + t.Name.Local, Line: n.line,
					Reason: "XML namespaces are not supported in nwfilter documents"}
			}
			for i, a := range t.Attr {
				if a.Name.Space != "" || a.Name.Local == "xmlns" {
					name := a.Name.Local
					if a.Name.Space != "" {
						name = a.Name.Space + ":" + name
					}
					return nil, &ValidationError{Element: n.name, Attr: name, Value: a.Value, Line: n.line,
						Reason: "XML namespaces are not supported in nwfilter documents"}
				}
				dup := false
				for _, b := range t.Attr[:i] {
					dup = dup || b.Name.Local == a.Name.Local
				}
				attr := xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: normaliseAttr(a.Value)}
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

// normaliseAttr replaces tab, newline and carriage return by spaces, the
// attribute-value normalisation libxml2 (and so libvirt) applies.
func normaliseAttr(v string) string {
	if !strings.ContainsAny(v, "\t\n\r") {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, v)
}
