package dbusapi

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestLooksLikeUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"db0b1767-d62b-269b-ea96-0cc8b451144e": true,
		"DB0B1767-D62B-269B-EA96-0CC8B451144E": true,
		"db0b1767d62b269bea960cc8b451144e":     false,
		"db0b1767-d62b-269b-ea96-0cc8b451144":  false,
		"db0b1767-d62b-269b-ea96-0cc8b451144g": false,
		"db0b1767_d62b-269b-ea96-0cc8b451144e": false,
		"clean-traffic":                        false,
		"":                                     false,
	} {
		if got := looksLikeUUID(s); got != want {
			t.Errorf("looksLikeUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestErrorNameAndMessageOf(t *testing.T) {
	for _, tc := range []struct {
		err       error
		name, msg string
	}{
		{nil, "", ""},
		{errors.New("plain"), "", ""},
		{fmt.Errorf("x: %w", dbus.Error{Name: ErrorNotFound, Body: []any{"no filter x"}}), ErrorNotFound, "no filter x"},
		{fmt.Errorf("x: %w", dbus.NewError(ErrorInUse, []any{"used by vnet0"})), ErrorInUse, "used by vnet0"},
		{dbus.Error{Name: ErrorFailed}, ErrorFailed, ""},
		{dbus.Error{Name: ErrorFailed, Body: []any{uint32(1)}}, ErrorFailed, ""},
	} {
		if name, msg := ErrorNameOf(tc.err), ErrorMessageOf(tc.err); name != tc.name || msg != tc.msg {
			t.Errorf("%v: %q %q, want %q %q", tc.err, name, msg, tc.name, tc.msg)
		}
	}
}

func TestSortingAndProps(t *testing.T) {
	names := []string{"b", "A", "a", "C"}
	slices.SortFunc(names, compareFold)
	if want := []string{"A", "a", "b", "C"}; !slices.Equal(names, want) {
		t.Errorf("sorted %v, want %v", names, want)
	}
	f := nwfilterFromProps("/p", map[string]dbus.Variant{"Name": dbus.MakeVariant("x"), "UUID": dbus.MakeVariant("u"), "BuiltIn": dbus.MakeVariant(true)})
	if f != (NWFilter{Path: "/p", Name: "x", UUID: "u", BuiltIn: true}) {
		t.Errorf("nwfilterFromProps = %+v", f)
	}
	b := bindingFromProps("/b", map[string]dbus.Variant{"PortDev": dbus.MakeVariant("vnet0"), "FilterName": dbus.MakeVariant("f"),
		"Mode": dbus.MakeVariant("enforce"), "LearnedAddresses": dbus.MakeVariant([]string{"10.0.0.5"})})
	if !reflect.DeepEqual(b, NWFilterBinding{Path: "/b", PortDev: "vnet0", FilterName: "f", Mode: "enforce", LearnedAddresses: []string{"10.0.0.5"}}) {
		t.Errorf("bindingFromProps = %+v", b)
	}
	if p, ok := NWFilterBindingPortOf(NWFilterBindingPath("semi;colon")); !ok || p != "semi;colon" {
		t.Errorf("NWFilterBindingPortOf = %q, %v", p, ok)
	}
	if u, ok := NWFilterUUIDOf(NWFilterPath("DB0B1767-D62B-269B-EA96-0CC8B451144E")); !ok || u != "db0b1767-d62b-269b-ea96-0cc8b451144e" {
		t.Errorf("NWFilterUUIDOf = %q, %v", u, ok)
	}
}
