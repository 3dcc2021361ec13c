package conformance

import (
	"strings"
	"testing"
)

func TestDiffXML(t *testing.T) {
	a := []byte(`<a x='1' y="2" xmlns:p='urn:p'><b>t </b><c/><p:d/></a>`)
	if d := DiffXML(a, []byte("<a y='2' x='1' xmlns:q='urn:p'>\n  <b>t</b>\n  <c></c><q:d/>\n</a>")); d == "" || !strings.Contains(d, "xmlns") {
		// the namespace declaration differs by prefix (an attribute), the element does not
		t.Errorf("declarations under other prefixes: %q", d)
	}
	if d := DiffXML(a, []byte("<a y='2' x='1' xmlns:p='urn:p'>\n  <b>t</b>\n  <c></c><p:d></p:d>\n</a>")); d != "" {
		t.Errorf("equal documents differ: %s", d)
	}
	for _, other := range []string{`<a x='1'><b>t</b><c/></a>`, `<a x='1' y='3'><b>t</b><c/></a>`,
		`<a x='1' y='2'><b>u</b><c/></a>`, `<a x='1' y='2'><c/><b>t</b></a>`, `<a x='1' y='2'><b>t</b></a>`,
		`<a x='1' y='2' xmlns:p='urn:p'><b>t</b><c/><d/></a>`} {
		if d := DiffXML(a, []byte(other)); d == "" {
			t.Errorf("%s: no difference found", other)
		}
	}
}
