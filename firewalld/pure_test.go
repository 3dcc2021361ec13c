package firewalld

import (
	"errors"
	"fmt"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestParseException(t *testing.T) {
	for _, c := range []struct{ msg, code, detail string }{
		{"ZONE_ALREADY_SET: libvirt", "ZONE_ALREADY_SET", "libvirt"},
		{"NAME_CONFLICT: new_zone(): 'libvirt'", "NAME_CONFLICT", "new_zone(): 'libvirt'"},
		{"INVALID_ZONE", "INVALID_ZONE", ""},
		{"ALREADY_ENABLED: 'ssh' already in 'public'", "ALREADY_ENABLED", "'ssh' already in 'public'"},
		{"'NoneType' object is not iterable", "", "'NoneType' object is not iterable"},
		{"Zone: lower case is no code", "", "Zone: lower case is no code"},
		{"", "", ""},
		{"_X: y", "", "_X: y"},
	} {
		code, detail := ParseException(c.msg)
		if code != c.code || detail != c.detail {
			t.Errorf("ParseException(%q) = %q, %q; want %q, %q", c.msg, code, detail, c.code, c.detail)
		}
	}
}

func TestWrapError(t *testing.T) {
	exc := func(msg string) error {
		return fmt.Errorf("call: %w", dbus.Error{Name: ExceptionName, Body: []any{msg}})
	}
	err := wrapError("zone.changeZoneOfInterface", exc("ZONE_ALREADY_SET: libvirt"))
	var fe *Error
	if !errors.As(err, &fe) || fe.Code != CodeZoneAlreadySet || fe.Message != "libvirt" || fe.Method != "zone.changeZoneOfInterface" {
		t.Fatalf("wrapError = %#v", err)
	}
	if !IsZoneAlreadySet(err) || IsInvalidZone(err) || IsUnknownMethod(err) {
		t.Errorf("predicates wrong for %v", err)
	}
	if got, want := err.Error(), "firewalld zone.changeZoneOfInterface: ZONE_ALREADY_SET: libvirt"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// The same text under another error name is not firewalld's error.
	other := wrapError("x", dbus.Error{Name: "org.example.Error", Body: []any{"ZONE_ALREADY_SET: libvirt"}})
	if IsZoneAlreadySet(other) || errors.As(other, &fe) {
		t.Errorf("foreign error taken as firewalld's: %v", other)
	}
	// A pointer dbus.Error is recognised too.
	if !IsNameConflict(wrapError("config.addZone2", &dbus.Error{Name: ExceptionName, Body: []any{"NAME_CONFLICT: new_zone(): 'x'"}})) {
		t.Error("*dbus.Error not recognised")
	}
	for _, name := range []string{errUnknownMethod, errUnknownInterface, errUnknownObject} {
		if !IsUnknownMethod(wrapError("m", dbus.Error{Name: name})) {
			t.Errorf("%s: not IsUnknownMethod", name)
		}
	}
	for _, name := range []string{errServiceUnknown, errNameHasNoOwner} {
		if !IsNotRunning(wrapError("m", dbus.Error{Name: name})) {
			t.Errorf("%s: not IsNotRunning", name)
		}
	}
	if !IsNotRunning(wrapError("m", dbus.Error{Name: ExceptionName, Body: []any{"NOT_RUNNING"}})) {
		t.Error("NOT_RUNNING: not IsNotRunning")
	}
	if wrapError("m", nil) != nil {
		t.Error("nil error wrapped")
	}
}

func TestVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.3.3", "1.3.3", 0}, {"1.3.3", "0.9.0", 1}, {"0.8.6", "0.9.0", -1}, {"0.9", "0.9.0", 0},
		{"0.10.0", "0.9.0", 1}, {"2.0.0a1", "2.0.0", 0}, {"0.6.9", "0.7.0", -1}, {"", "0.1", -1},
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	for v, want := range map[string][2]bool{
		"0.6.3": {false, false}, "0.7.0": {true, false}, "0.8.2": {true, false},
		"0.9.0": {true, true}, "1.3.3": {true, true}, "2.1.1": {true, true}, "": {false, false},
	} {
		if got := SupportsZonesOnNftables(v); got != want[0] {
			t.Errorf("SupportsZonesOnNftables(%q) = %v", v, got)
		}
		if got := SupportsPolicies(v); got != want[1] {
			t.Errorf("SupportsPolicies(%q) = %v", v, got)
		}
	}
}

func TestOldZoneSettings(t *testing.T) {
	s := Settings{
		"short":     dbus.MakeVariant("z"),
		"target":    dbus.MakeVariant("ACCEPT"),
		"services":  dbus.MakeVariant([]string{"dns"}),
		"rules_str": dbus.MakeVariant([]string{`rule priority="32767" reject`}),
		"forward":   dbus.MakeVariant(true),
	}
	tup, err := oldZoneSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	if tup.Short != "z" || tup.Target != "ACCEPT" || len(tup.Services) != 1 || len(tup.RichRules) != 1 || tup.Protocols == nil {
		t.Errorf("tuple %+v", tup)
	}
	sig := dbus.SignatureOf(tup).String()
	if sig != "(sssbsasa(ss)asba(ssss)asasasasa(ss)b)" {
		t.Errorf("signature %s", sig)
	}
	if _, err := oldZoneSettings(Settings{"ingress_priority": dbus.MakeVariant(int32(1))}); err == nil {
		t.Error("unknown key accepted")
	}
	if _, err := oldZoneSettings(Settings{"services": dbus.MakeVariant("dns")}); err == nil {
		t.Error("wrong type accepted")
	}
}
