package dbusapi

import (
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestNWFilterPath(t *testing.T) {
	const uuid = "11f5ba19-e7f4-4b55-8ad6-ac2d2b66fb4a"
	p := NWFilterPath(strings.ToUpper(uuid))
	if p != "/org/netwarden1/nwfilter/_11f5ba19_e7f4_4b55_8ad6_ac2d2b66fb4a" || !p.IsValid() {
		t.Errorf("NWFilterPath = %s", p)
	}
	if got, ok := nwfilterUUID(p); !ok || got != uuid {
		t.Errorf("nwfilterUUID(%s) = %q, %v", p, got, ok)
	}
	for _, bad := range []dbus.ObjectPath{NWFilterPathPrefix, NWFilterPathPrefix + "/_", NWFilterPathPrefix + "/abc", NWFilterPathPrefix + "/_XY", NWFilterPathPrefix + "/_ab/cd"} {
		if got, ok := nwfilterUUID(bad); ok {
			t.Errorf("nwfilterUUID(%s) = %q, want none", bad, got)
		}
	}
}

func TestBindingPathEscaping(t *testing.T) {
	for port, label := range map[string]string{
		"vnet0":                  "vnet0",
		"":                       "_",
		"0tap":                   "_30tap",
		"tap_1":                  "tap_5f1",
		"a-b.c":                  "a_2db_2ec",
		"quo\"te;x y/../\u00e9":  "quo_22te_3bx_20y_2f_2e_2e_2f_c3_a9",
		strings.Repeat("x", 200): strings.Repeat("x", 200),
	} {
		p := NWFilterBindingPath(port)
		if want := NWFilterBindingPathPrefix + "/" + dbus.ObjectPath(label); p != want || !p.IsValid() {
			t.Errorf("NWFilterBindingPath(%q) = %s, want %s", port, p, want)
		}
		if got, ok := bindingPort(p); !ok || got != port {
			t.Errorf("bindingPort(%s) = %q, %v; want %q", p, got, ok, port)
		}
	}
	// Labels escapeLabel never makes stand for nothing.
	for _, label := range []string{"_3", "_zz", "_61", "_5F", "1tap", "a/b"} {
		if got, ok := bindingPort(NWFilterBindingPathPrefix + "/" + dbus.ObjectPath(label)); ok {
			t.Errorf("bindingPort(%s) = %q, want none", label, got)
		}
	}
}
