package dbusapi

import (
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/godbus/dbus/v5/introspect"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestManagerIntrospection compares the manager object's introspection
// with testdata/manager.xml; run with -update after a deliberate change
// of the API and review the diff.
func TestManagerIntrospection(t *testing.T) {
	specs := append(standardSpecs(), managerSpec(fakeManager{"1.2.3"}))
	got, err := introspectionXML(specs)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "manager.xml")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("introspection differs from %s (go test -update rewrites it):\n%s", golden, got)
	}

	// It must parse back, and declare exactly the interfaces exported.
	var node introspect.Node
	if err := xml.Unmarshal([]byte(got), &node); err != nil {
		t.Fatalf("introspection does not parse: %v", err)
	}
	var names []string
	for _, i := range node.Interfaces {
		names = append(names, i.Name)
	}
	want4 := []string{introspectableInterface, peerInterface, propertiesInterface, ManagerInterface}
	if len(names) != len(want4) {
		t.Fatalf("interfaces %v, want %v", names, want4)
	}
	for i := range names {
		if names[i] != want4[i] {
			t.Errorf("interface %d is %s, want %s", i, names[i], want4[i])
		}
	}
}
