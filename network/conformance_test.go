package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
)

// The conformance suites run netwarden's parser and formatter over
// libvirt 9.0's own test data (shared/conformance/libvirt-9.0.0 next to
// the repository, or $NETWARDEN_CONFORMANCE).

// Shorthands for the shared conformance helpers.
func conformanceDir(t testing.TB) string              { return conformance.Dir(t) }
func readConformanceFile(path string) ([]byte, error) { return conformance.ReadFile(path) }
func diffXML(got, want []byte) string                 { return conformance.DiffXML(got, want) }
func xmlFiles(t *testing.T, dir string) []string      { return conformance.XMLFiles(t, dir) }

// roundTrip parses in, formats it, compares the output with want (when
// given) and checks that parsing the output gives the same network and
// that formatting is stable.
func roundTrip(in, want []byte) (*Network, error) {
	n, err := Parse(in)
	if err != nil {
		return nil, err
	}
	out, err := n.FormatXML()
	if err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	if want != nil {
		if d := diffXML(out, want); d != "" {
			return nil, fmt.Errorf("output differs from libvirt's: %s\n%s", d, out)
		}
	}
	m, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("parse(format(x)): %w\n%s", err, out)
	}
	if !reflect.DeepEqual(n, m) {
		return nil, fmt.Errorf("parse(format(x)) != x:\n%+v\n%+v", n, m)
	}
	again, err := m.FormatXML()
	if err != nil || !bytes.Equal(again, out) {
		return nil, fmt.Errorf("format is not stable: %v\n%s\n%s", err, out, again)
	}
	return n, nil
}

// TestConformanceNetworkXML2XML runs every case of libvirt's
// networkxml2xmltest as its manifest says: "roundtrip" cases must format
// to libvirt's expected output, "roundtrip-inactive" ones too (libvirt
// formats them with VIR_NETWORK_XML_INACTIVE, which only leaves out
// run-time state netwarden's model does not hold: connection counts and
// the interfaces of a PF's virtual functions), and "parse-error" cases
// must be refused with a *ValidationError.
func TestConformanceNetworkXML2XML(t *testing.T) {
	dir := conformanceDir(t)
	manifest, err := os.Open(filepath.Join(dir, "networkxml2xml.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer manifest.Close()
	counts := map[string]int{}
	passed := map[string]int{}
	var failed []string
	sc := bufio.NewScanner(manifest)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 2 || fields[0] == "case" {
			continue
		}
		name, expect := fields[0], fields[1]
		counts[expect]++
		ok := t.Run(name, func(t *testing.T) {
			in, err := readConformanceFile(filepath.Join(dir, "networkxml2xmlin", name+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			switch expect {
			case "roundtrip", "roundtrip-inactive":
				want, err := readConformanceFile(filepath.Join(dir, "networkxml2xmlout", name+".xml"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := roundTrip(in, want); err != nil {
					t.Fatal(err)
				}
			case "parse-error":
				_, err := Parse(in)
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("accepted, or not a *ValidationError: %v", err)
				}
				if ve.Element == "" {
					t.Fatalf("the error names no element: %v", err)
				}
				t.Logf("rejected: %v", err)
			default:
				t.Fatalf("unknown expectation %q", expect)
			}
		})
		if ok {
			passed[expect]++
		} else {
			failed = append(failed, name)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	total, pass := 0, 0
	var parts []string
	for _, e := range []string{"roundtrip", "roundtrip-inactive", "parse-error"} {
		total += counts[e]
		pass += passed[e]
		parts = append(parts, fmt.Sprintf("%s %d/%d", e, passed[e], counts[e]))
	}
	if total == 0 {
		t.Fatal("manifest lists no cases")
	}
	t.Logf("networkxml2xml: %d/%d passed (%s)", pass, total, strings.Join(parts, ", "))
	if len(failed) > 0 {
		t.Errorf("failing cases: %s", strings.Join(failed, ", "))
	}
}

// TestConformanceDataParses parses (and round-trips) every network
// definition that libvirt's dnsmasq and firewall tests start from.
func TestConformanceDataParses(t *testing.T) {
	root := conformanceDir(t)
	for _, sub := range []string{"networkxml2confdata", "networkxml2firewalldata"} {
		files := xmlFiles(t, filepath.Join(root, sub))
		passed := 0
		for _, file := range files {
			if t.Run(sub+"/"+filepath.Base(file), func(t *testing.T) {
				data, err := readConformanceFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := roundTrip(data, nil); err != nil {
					t.Fatal(err)
				}
			}) {
				passed++
			}
		}
		t.Logf("%s: %d/%d network definitions parse and round-trip", sub, passed, len(files))
	}
}
