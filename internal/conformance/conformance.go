// Package conformance gives the test suites access to libvirt 9.0's own
// test data (shared/conformance/libvirt-9.0.0 beside the repository, or
// $NETWARDEN_CONFORMANCE) and compares XML documents by meaning. It is
// for tests only.
//
//	dir := conformance.Dir(t) // skips, or fails under CI, when missing
//	data, err := conformance.ReadFile(filepath.Join(dir, "nwfilterxml2xmlin", "tcp-test.xml"))
//	if d := conformance.DiffXML(got, want); d != "" { t.Error(d) }
package conformance

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Find locates the conformance data without failing (for fuzz seeds,
// which are optional).
func Find() (string, error) {
	if d := os.Getenv("NETWARDEN_CONFORMANCE"); d != "" {
		if _, err := os.Stat(d); err != nil {
			return "", fmt.Errorf("NETWARDEN_CONFORMANCE=%s: %w", d, err)
		}
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "conformance", "libvirt-9.0.0")
			if _, err := os.Stat(d); err != nil {
				return "", fmt.Errorf("conformance data not found at %s (set NETWARDEN_CONFORMANCE): %w", d, err)
			}
			return d, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// Dir returns the conformance data directory, skipping the test
// when it is missing, or failing it under CI=true or NETWARDEN_INTEGRATION=1.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("NETWARDEN_INTEGRATION") == "1" {
			t.Fatalf("conformance data missing: %v", err)
		}
		t.Skipf("conformance data missing: %v", err)
	}
	return d
}

// ReadFile reads a file, following git "symlink stubs": files
// whose whole content is a relative path to another file.
func ReadFile(path string) ([]byte, error) {
	for hops := 0; hops < 4; hops++ {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		s := strings.TrimSpace(string(data))
		if strings.Contains(s, "<") || strings.ContainsAny(s, "\n") || s == "" {
			return data, nil
		}
		path = filepath.Join(filepath.Dir(path), s)
	}
	return nil, fmt.Errorf("%s: too many symlink stubs", path)
}

// ---- a small XML tree comparer ----

type cmpNode struct {
	name     string
	attrs    map[string]string
	text     string
	children []*cmpNode
}

// parseCmpTree reads a document with names resolved to their namespaces
// (so the prefix a document chose does not matter).
func parseCmpTree(data []byte) (*cmpNode, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var root *cmpNode
	var stack []*cmpNode
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &cmpNode{name: qname(t.Name), attrs: map[string]string{}}
			for _, a := range t.Attr {
				n.attrs[qname(a.Name)] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = strings.TrimSpace(n.text)
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

// DiffXML compares two documents semantically: the same elements in the
// same order, the same attributes with the same values (in any order), the
// same trimmed text. It returns "" when they are equal, else where they
// first differ.
func DiffXML(got, want []byte) string {
	g, err := parseCmpTree(got)
	if err != nil {
		return "got: " + err.Error()
	}
	w, err := parseCmpTree(want)
	if err != nil {
		return "want: " + err.Error()
	}
	return diffNode("/"+w.name, g, w)
}

func diffNode(path string, g, w *cmpNode) string {
	if g.name != w.name {
		return fmt.Sprintf("%s: element <%s>, want <%s>", path, g.name, w.name)
	}
	keys := map[string]bool{}
	for k := range g.attrs {
		keys[k] = true
	}
	for k := range w.attrs {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		gv, gok := g.attrs[k]
		wv, wok := w.attrs[k]
		switch {
		case !gok:
			return fmt.Sprintf("%s: attribute %s missing, want %q", path, k, wv)
		case !wok:
			return fmt.Sprintf("%s: unexpected attribute %s=%q", path, k, gv)
		case gv != wv:
			return fmt.Sprintf("%s: attribute %s=%q, want %q", path, k, gv, wv)
		}
	}
	if g.text != w.text {
		return fmt.Sprintf("%s: text %q, want %q", path, g.text, w.text)
	}
	if len(g.children) != len(w.children) {
		return fmt.Sprintf("%s: %d child elements, want %d", path, len(g.children), len(w.children))
	}
	for i := range g.children {
		if d := diffNode(fmt.Sprintf("%s/%s[%d]", path, w.children[i].name, i+1), g.children[i], w.children[i]); d != "" {
			return d
		}
	}
	return ""
}

// XMLFiles lists the *.xml files of dir; none is a test failure.
func XMLFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no XML files in %s", dir)
	}
	return files
}
