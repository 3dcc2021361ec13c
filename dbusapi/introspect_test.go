package dbusapi

import (
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata and the interface files")

// golden compares got with the file at path; with -update it rewrites
// the file first.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("introspection differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestManagerIntrospection compares the manager object's introspection
// with testdata/manager.xml; run with -update after a deliberate change
// of the API and review the diff.
func TestManagerIntrospection(t *testing.T) {
	got, err := introspectionXML(managerObjectSpecs(fakeManager{"1.2.3"}), managerChildren...)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "manager.xml"), got)

	// It must parse back, and declare exactly the interfaces exported.
	var node introspect.Node
	if err := xml.Unmarshal([]byte(got), &node); err != nil {
		t.Fatalf("introspection does not parse: %v", err)
	}
	var names []string
	for _, i := range node.Interfaces {
		names = append(names, i.Name)
	}
	want := []string{introspectableInterface, peerInterface, propertiesInterface, objectManagerInterface, ManagerInterface}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("interfaces %v, want %v", names, want)
	}
	var children []string
	for _, c := range node.Children {
		children = append(children, c.Name)
	}
	if want := []string{"nwfilter", "nwfilter_binding", "network"}; !reflect.DeepEqual(children, want) {
		t.Errorf("child nodes %v, want %v", children, want)
	}
}

// apiSpecs are netwarden's own interfaces, as installed to
// /usr/share/dbus-1/interfaces.
func apiSpecs() []ifaceSpec {
	return []ifaceSpec{
		managerSpec(fakeManager{"1.2.3"}),
		nwfilterSpec(Filter{}),
		nwfilterBindingSpec(Binding{}),
		networkSpec(Network{}, nil),
		networkPortSpec(Port{}),
	}
}

// TestInterfaceFiles compares each interface with its committed
// description in interfaces/NAME.xml (installed by make install); run
// with -update after a deliberate change of the API.
func TestInterfaceFiles(t *testing.T) {
	for _, spec := range apiSpecs() {
		got, err := introspectionXML([]ifaceSpec{spec})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("interfaces", spec.name+".xml"), got)
	}
	entries, err := os.ReadDir("interfaces")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(apiSpecs()) {
		t.Errorf("interfaces/ holds %d files, want %d (one per interface)", len(entries), len(apiSpecs()))
	}
}

// TestMethodsMatchSpecs: the Go methods godbus exports and the tables
// introspection is built from declare the same methods with the same
// signatures, so the committed XML describes what is served.
func TestMethodsMatchSpecs(t *testing.T) {
	for _, c := range []struct {
		v    any
		spec ifaceSpec
	}{
		{&managerObject{}, managerSpec(fakeManager{})},
		{&objectManager{}, objectManagerSpec},
		{&nwfilterObjects{}, nwfilterSpec(Filter{})},
		{&bindingObjects{}, nwfilterBindingSpec(Binding{})},
		{&networkObjects{}, networkSpec(Network{}, nil)},
		{&portObjects{}, networkPortSpec(Port{})},
		{&subtreeProperties{}, propertiesSpec},
		{&subtreeIntrospectable{}, introspectableSpec},
	} {
		got := exportedSignatures(c.v)
		want := map[string]string{}
		for _, m := range c.spec.methods {
			var ins, outs []string
			for _, a := range m.Args {
				if a.Direction == "in" {
					ins = append(ins, a.Type)
				} else {
					outs = append(outs, a.Type)
				}
			}
			want[m.Name] = strings.Join(ins, "") + "→" + strings.Join(outs, "")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Go methods %v, introspection %v", c.spec.name, got, want)
		}
	}
}

// exportedSignatures returns "in→out" D-Bus signatures of the methods
// godbus exports from v: exported, returning *dbus.Error last; Sender
// and Message parameters do not count.
func exportedSignatures(v any) map[string]string {
	sigs := map[string]string{}
	typ := reflect.TypeOf(v)
	errType := reflect.TypeOf((*dbus.Error)(nil))
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		ft := m.Type
		if ft.NumOut() == 0 || ft.Out(ft.NumOut()-1) != errType {
			continue
		}
		var ins, outs string
		for j := 1; j < ft.NumIn(); j++ { // 0 is the receiver
			p := ft.In(j)
			if p == reflect.TypeOf(dbus.Sender("")) || p == reflect.TypeOf(dbus.Message{}) {
				continue
			}
			ins += dbus.SignatureOfType(p).String()
		}
		for j := 0; j < ft.NumOut()-1; j++ {
			outs += dbus.SignatureOfType(ft.Out(j)).String()
		}
		sigs[m.Name] = ins + "→" + outs
	}
	return sigs
}
