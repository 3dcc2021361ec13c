package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
)

// Shorthands for the shared conformance helpers.
func conformanceDir(t testing.TB) string              { return conformance.Dir(t) }
func readConformanceFile(path string) ([]byte, error) { return conformance.ReadFile(path) }
func diffXML(got, want []byte) string                 { return conformance.DiffXML(got, want) }
func xmlFiles(t *testing.T, dir string) []string      { return conformance.XMLFiles(t, dir) }

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
