package policy

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The conformance suites run netwarden's parser and formatter over
// libvirt 9.0's own test data (shared/conformance/libvirt-9.0.0 next to
// the repository, or $NETWARDEN_CONFORMANCE).

// findConformanceDir locates the conformance data without failing.
func findConformanceDir() (string, error) {
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

// conformanceDir returns the conformance data directory, skipping the test
// when it is missing, or failing it under CI=true or NETWARDEN_INTEGRATION=1.
func conformanceDir(t testing.TB) string {
	t.Helper()
	d, err := findConformanceDir()
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("NETWARDEN_INTEGRATION") == "1" {
			t.Fatalf("conformance data missing: %v", err)
		}
		t.Skipf("conformance data missing: %v", err)
	}
	return d
}

// readConformanceFile reads a file, following git "symlink stubs": files
// whose whole content is a relative path to another file.
func readConformanceFile(path string) ([]byte, error) {
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
			n := &cmpNode{name: t.Name.Local, attrs: map[string]string{}}
			for _, a := range t.Attr {
				n.attrs[a.Name.Local] = a.Value
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

// diffXML compares two documents semantically: the same elements in the
// same order, the same attributes with the same values (in any order), the
// same trimmed text. It returns "" when they are equal, else where they
// first differ.
func diffXML(got, want []byte) string {
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

func TestDiffXML(t *testing.T) {
	a := []byte(`<a x='1' y="2"><b>t </b><c/></a>`)
	if d := diffXML(a, []byte("<a y='2' x='1'>\n  <b>t</b>\n  <c></c>\n</a>")); d != "" {
		t.Errorf("equal documents differ: %s", d)
	}
	for _, other := range []string{`<a x='1'><b>t</b><c/></a>`, `<a x='1' y='3'><b>t</b><c/></a>`,
		`<a x='1' y='2'><b>u</b><c/></a>`, `<a x='1' y='2'><c/><b>t</b></a>`, `<a x='1' y='2'><b>t</b></a>`} {
		if d := diffXML(a, []byte(other)); d == "" {
			t.Errorf("%s: no difference found", other)
		}
	}
}

// normalisedFilter returns a copy of f in which representations with the
// same meaning are made equal: parameters in libvirt's order, and a chain
// priority equal to the chain's default counted as unset.
func normalisedFilter(f *Filter) *Filter {
	g := *f
	if g.ChainPriority == DefaultChainPriority(g.Chain) {
		g.ChainPrioritySet = false
	}
	g.Entries = nil
	for _, e := range f.Entries {
		if e.Ref != nil {
			r := *e.Ref
			r.Params = SortedParams(r.Params)
			if len(r.Params) == 0 {
				r.Params = nil
			}
			e.Ref = &r
		}
		g.Entries = append(g.Entries, e)
	}
	return &g
}

func equivalentFilters(a, b *Filter) bool {
	return reflect.DeepEqual(normalisedFilter(a), normalisedFilter(b))
}

// roundTrip parses in, formats it, compares the output with want (when
// given) and checks that parsing the output gives the same filter.
func roundTrip(in, want []byte) error {
	f, err := ParseFilter(in)
	if err != nil {
		return err
	}
	out, err := f.FormatXML()
	if err != nil {
		return fmt.Errorf("format: %w", err)
	}
	if want != nil {
		if d := diffXML(out, want); d != "" {
			return fmt.Errorf("output differs from libvirt's: %s\n%s", d, out)
		}
	}
	g, err := ParseFilter(out)
	if err != nil {
		return fmt.Errorf("parse(format(x)): %w\n%s", err, out)
	}
	if !equivalentFilters(f, g) {
		return fmt.Errorf("parse(format(x)) != x:\n%+v\n%+v", normalisedFilter(f), normalisedFilter(g))
	}
	again, err := g.FormatXML()
	if err != nil || !bytes.Equal(again, out) {
		return fmt.Errorf("format is not stable: %v\n%s\n%s", err, out, again)
	}
	return nil
}

func TestConformanceNWFilterXML2XML(t *testing.T) {
	dir := conformanceDir(t)
	manifest, err := os.Open(filepath.Join(dir, "nwfilterxml2xml.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer manifest.Close()
	var total, passed, roundtrips, rejectOr, rejected, rejectOrRT, partial int
	sc := bufio.NewScanner(manifest)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 2 || fields[0] == "case" {
			continue
		}
		name, expect := fields[0], fields[1]
		total++
		switch expect {
		case "roundtrip":
			roundtrips++
		case "reject-or-roundtrip":
			rejectOr++
		default:
			t.Errorf("%s: unknown expectation %q", name, expect)
			continue
		}
		t.Run(name, func(t *testing.T) {
			in, err := readConformanceFile(filepath.Join(dir, "nwfilterxml2xmlin", name+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := readConformanceFile(filepath.Join(dir, "nwfilterxml2xmlout", strings.TrimSuffix(name, "-invalid")+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			err = roundTrip(in, want)
			switch {
			case err == nil:
				if expect == "reject-or-roundtrip" {
					rejectOrRT++
					t.Logf("round-tripped")
				}
				passed++
			case expect == "reject-or-roundtrip" && IsValidationError(err):
				var ve *ValidationError
				errors.As(err, &ve)
				if strings.HasPrefix(err.Error(), "format") || strings.HasPrefix(err.Error(), "parse(format") {
					t.Errorf("rejected its own output: %v", err)
					return
				}
				rejected++
				passed++
				t.Logf("rejected: <%s %s=%q>: %s", ve.Element, ve.Attr, ve.Value, ve.Reason)
				if n, err := roundTripWithoutRejectedRules(in, want); err != nil {
					if why, ok := staleOutputs[name]; ok {
						t.Logf("the other rules are not compared: %s", why)
					} else {
						t.Errorf("the other rules do not all match libvirt's output: %v", err)
					}
				} else {
					partial++
					t.Logf("the other rules round-trip to libvirt's output (%d rules left out)", n)
				}
			default:
				t.Error(err)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if total == 0 {
		t.Fatal("manifest lists no cases")
	}
	t.Logf("nwfilterxml2xml: %d/%d passed (%d roundtrip, %d reject-or-roundtrip: %d rejected, %d round-tripped)",
		passed, total, roundtrips, rejectOr, rejected, rejectOrRT)
	t.Logf("nwfilterxml2xml: of the %d rejected cases, %d round-trip to libvirt's output once the rejected rules are left out", rejected, partial)
}

// staleOutputs are *-invalid cases whose expected output cannot be matched
// even for the valid rules, because libvirt never compares it.
var staleOutputs = map[string]string{
	"ipv6-test-invalid": "libvirt's expected output lacks the priority attribute on its icmpv6 type/code rules (5-8) and keeps their input indentation: it was never regenerated",
}

var ruleElement = regexp.MustCompile(`(?s)<rule\b[^>]*?(/>|>.*?</rule>)`)

// stripRule removes the n-th (1-based) <rule> element of a document.
func stripRule(doc []byte, n int) []byte {
	locs := ruleElement.FindAllIndex(doc, -1)
	if n < 1 || n > len(locs) {
		return doc
	}
	l := locs[n-1]
	return append(append([]byte{}, doc[:l[0]]...), doc[l[1]:]...)
}

// roundTripWithoutRejectedRules leaves out, one after the other, the rules
// ParseFilter rejects (from the input and from libvirt's output, which
// shows what an older libvirt made of them) and round-trips the rest. It
// shows that the valid rules of the *-invalid cases format as libvirt does.
//
// Those expected outputs were never compared by libvirt 9.0 (it rejects the
// inputs), and some are stale: they show dstipaddr='::10.1.2.3' where
// libvirt 9.0 keeps '::ffff:10.1.2.3' (its own ipv6-linux.args passes
// "--ip6-destination ::ffff:10.1.2.3/113" to ebtables for the same rule),
// so that value is corrected before comparing.
func roundTripWithoutRejectedRules(in, want []byte) (int, error) {
	want = bytes.ReplaceAll(want, []byte("dstipaddr='::10.1.2.3'"), []byte("dstipaddr='::ffff:10.1.2.3'"))
	for n := 0; ; n++ {
		err := roundTrip(in, want)
		var ve *ValidationError
		if err == nil || !errors.As(err, &ve) || ve.Rule == 0 || n > 20 {
			return n, err
		}
		in, want = stripRule(in, ve.Rule), stripRule(want, ve.Rule)
	}
}

func xmlFiles(t *testing.T, dir string) []string {
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

func TestConformanceBindingXML2XML(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "virnwfilterbindingxml2xmldata")
	files := xmlFiles(t, dir)
	passed := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := readConformanceFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseBinding(data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := b.FormatXML()
			if err != nil {
				t.Fatal(err)
			}
			if d := diffXML(out, data); d != "" {
				t.Fatalf("output differs from libvirt's: %s\n%s", d, out)
			}
			c, err := ParseBinding(out)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b, c) {
				t.Fatalf("parse(format(x)) != x:\n%+v\n%+v", b, c)
			}
			passed++
		})
	}
	t.Logf("virnwfilterbindingxml2xml: %d/%d passed (round trip)", passed, len(files))
}

func TestConformanceFirewallDataParses(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "nwfilterxml2firewalldata")
	files := xmlFiles(t, dir)
	passed := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := readConformanceFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(data, nil); err != nil {
				t.Fatal(err)
			}
			passed++
		})
	}
	t.Logf("nwfilterxml2firewalldata: %d/%d passed (parse and round trip)", passed, len(files))
}

func TestConformanceBuiltinFilters(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "builtin-filters")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no built-in filters in the conformance data: %v", err)
	}
	files := xmlFiles(t, dir)
	passed := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := readConformanceFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(data, nil); err != nil {
				t.Fatal(err)
			}
			f, _ := ParseFilter(data)
			if want := strings.TrimSuffix(filepath.Base(file), ".xml"); f.Name != want {
				t.Errorf("name %q, want %q", f.Name, want)
			}
			passed++
		})
	}
	t.Logf("builtin-filters: %d/%d passed (parse and round trip)", passed, len(files))
}
