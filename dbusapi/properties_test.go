package dbusapi

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakeManager serves a version and has no filters, bindings or
// networks.
type fakeManager struct{ version string }

func (f fakeManager) Version() string                            { return f.version }
func (f fakeManager) Backend() string                            { return "fake" }
func (f fakeManager) StatefulFiltering() string                  { return "br_netfilter" }
func (f fakeManager) FirewalldRunning() bool                     { return false }
func (f fakeManager) LastFirewallReapply() time.Time             { return time.Time{} }
func (f fakeManager) Restores() uint64                           { return 0 }
func (fakeManager) Filters(context.Context) ([]Filter, error)    { return nil, nil }
func (fakeManager) Bindings(context.Context) ([]Binding, error)  { return nil, nil }
func (fakeManager) UndefineFilter(context.Context, string) error { return ErrNotFound }
func (fakeManager) DeleteBinding(context.Context, string) error  { return ErrNotFound }
func (fakeManager) CreateBinding(context.Context, string) (Binding, error) {
	return Binding{}, ErrInvalidArgument
}
func (fakeManager) LookupFilter(context.Context, string) (Filter, error) {
	return Filter{}, ErrNotFound
}
func (fakeManager) LookupFilterByUUID(context.Context, string) (Filter, error) {
	return Filter{}, ErrNotFound
}
func (fakeManager) DefineFilter(context.Context, string) (Filter, bool, error) {
	return Filter{}, false, ErrInvalidArgument
}
func (fakeManager) LookupBinding(context.Context, string) (Binding, error) {
	return Binding{}, ErrNotFound
}
func (fakeManager) Networks(context.Context) ([]Network, error) { return nil, nil }
func (fakeManager) Doctor(context.Context) (string, error)      { return `{"networks":[]}`, nil }
func (fakeManager) LookupNetwork(context.Context, string) (Network, error) {
	return Network{}, ErrNotFound
}
func (fakeManager) LookupNetworkByUUID(context.Context, string) (Network, error) {
	return Network{}, ErrNotFound
}
func (fakeManager) DefineNetwork(context.Context, string) (Network, bool, error) {
	return Network{}, false, ErrInvalidArgument
}
func (fakeManager) CreateNetwork(context.Context, string) (Network, error) {
	return Network{}, ErrInvalidArgument
}
func (fakeManager) UndefineNetwork(context.Context, string) error           { return ErrNotFound }
func (fakeManager) StartNetwork(context.Context, string) error              { return ErrNotFound }
func (fakeManager) DestroyNetwork(context.Context, string) error            { return ErrNotFound }
func (fakeManager) SetNetworkAutostart(context.Context, string, bool) error { return ErrNotFound }
func (fakeManager) NetworkXML(context.Context, string, bool) (string, error) {
	return "", ErrNotFound
}
func (fakeManager) NetworkLeases(context.Context, string, string) ([]Lease, error) {
	return nil, ErrNotFound
}
func (fakeManager) Ports(context.Context, string) ([]Port, error) { return nil, ErrNotFound }
func (fakeManager) LookupPort(context.Context, string, string) (Port, error) {
	return Port{}, ErrNotFound
}
func (fakeManager) CreatePort(context.Context, string, string) (Port, error) {
	return Port{}, ErrNotFound
}
func (fakeManager) DeletePort(context.Context, string, string) error { return ErrNotFound }

type emitted struct {
	path   dbus.ObjectPath
	name   string
	values []any
}

// fakeEmitter records signals instead of sending them.
type fakeEmitter struct {
	signals []emitted
	err     error
}

func (f *fakeEmitter) Emit(path dbus.ObjectPath, name string, values ...any) error {
	f.signals = append(f.signals, emitted{path, name, values})
	return f.err
}

// testProperties builds the manager's table plus a test interface with a
// writable and two changing properties.
func testProperties(em emitter) (*properties, *int32) {
	counter := new(int32)
	test := ifaceSpec{
		name: "org.netwarden1.Test",
		props: []property{
			{
				name: "Counter", signature: dbus.SignatureOf(int32(0)), emits: emitsTrue,
				get: func() any { return *counter },
				set: func(_ caller, v any) *dbus.Error { *counter = v.(int32); return nil },
			},
			readOnlyProperty("Label", emitsInvalidates, func() string { return "x" }),
		},
	}
	specs := append(standardSpecs(), managerSpec(fakeManager{"1.2.3"}), test)
	return &properties{path: ObjectPath, ifaces: specs, emit: em}, counter
}

func errName(err *dbus.Error) string {
	if err == nil {
		return ""
	}
	return err.Name
}

func TestPropertiesGet(t *testing.T) {
	p, _ := testProperties(&fakeEmitter{})
	for _, tc := range []struct {
		iface, name string
		want        any
		wantErr     string
	}{
		{ManagerInterface, "Version", "1.2.3", ""},
		{"", "Version", "1.2.3", ""},
		{ManagerInterface, "Nope", nil, ErrorUnknownProperty},
		{"", "Nope", nil, ErrorUnknownProperty},
		{"org.example.Nope", "Version", nil, ErrorUnknownInterface},
		{peerInterface, "Version", nil, ErrorUnknownProperty},
	} {
		t.Run(tc.iface+"/"+tc.name, func(t *testing.T) {
			v, err := p.Get(tc.iface, tc.name)
			if errName(err) != tc.wantErr {
				t.Fatalf("Get error %v, want %q", err, tc.wantErr)
			}
			if err == nil && v.Value() != tc.want {
				t.Errorf("Get = %v, want %v", v, tc.want)
			}
		})
	}
}

func TestPropertiesGetAll(t *testing.T) {
	p, _ := testProperties(&fakeEmitter{})
	got, err := p.GetAll(ManagerInterface)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]dbus.Variant{
		"Version":             dbus.MakeVariant("1.2.3"),
		"Backend":             dbus.MakeVariant("fake"),
		"StatefulFiltering":   dbus.MakeVariant("br_netfilter"),
		"FirewalldRunning":    dbus.MakeVariant(false),
		"LastFirewallReapply": dbus.MakeVariant(uint64(0)),
		"Restores":            dbus.MakeVariant(uint64(0)),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetAll(Manager) = %v, want %v", got, want)
	}
	// An interface without properties has an empty set, not an error.
	got, err = p.GetAll(peerInterface)
	if err != nil || len(got) != 0 {
		t.Errorf("GetAll(Peer) = %v, %v; want empty, nil", got, err)
	}
	if _, err := p.GetAll("org.example.Nope"); errName(err) != ErrorUnknownInterface {
		t.Errorf("GetAll(unknown) error %v, want %s", err, ErrorUnknownInterface)
	}
	all, err := p.GetAll("")
	if err != nil || len(all) != 8 {
		t.Errorf(`GetAll("") = %v, %v; want the 8 properties`, all, err)
	}
}

func TestPropertiesSet(t *testing.T) {
	p, counter := testProperties(&fakeEmitter{})
	for _, tc := range []struct {
		desc, iface, name string
		value             dbus.Variant
		wantErr           string
	}{
		{"read-only", ManagerInterface, "Version", dbus.MakeVariant("2"), ErrorPropertyReadOnly},
		{"unknown property", ManagerInterface, "Nope", dbus.MakeVariant("2"), ErrorUnknownProperty},
		{"unknown interface", "org.example.Nope", "Version", dbus.MakeVariant("2"), ErrorUnknownInterface},
		{"wrong type", "org.netwarden1.Test", "Counter", dbus.MakeVariant("7"), ErrorInvalidArgs},
		{"writable", "org.netwarden1.Test", "Counter", dbus.MakeVariant(int32(7)), ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := p.Set(":1.1", dbus.Message{}, tc.iface, tc.name, tc.value)
			if errName(err) != tc.wantErr {
				t.Fatalf("Set error %v, want %q", err, tc.wantErr)
			}
		})
	}
	if *counter != 7 {
		t.Errorf("Counter = %d after Set, want 7", *counter)
	}
}

func TestPropertiesChanged(t *testing.T) {
	em := &fakeEmitter{}
	p, counter := testProperties(em)
	*counter = 5
	if err := p.changed("org.netwarden1.Test", "Counter", "Label"); err != nil {
		t.Fatal(err)
	}
	want := []emitted{{
		path: ObjectPath,
		name: "org.freedesktop.DBus.Properties.PropertiesChanged",
		values: []any{
			"org.netwarden1.Test",
			map[string]dbus.Variant{"Counter": dbus.MakeVariant(int32(5))},
			[]string{"Label"},
		},
	}}
	if !reflect.DeepEqual(em.signals, want) {
		t.Errorf("emitted %#v\nwant %#v", em.signals, want)
	}
	// The signal's body must have the signature the specification gives.
	if sig := dbus.SignatureOf(em.signals[0].values...).String(); sig != "sa{sv}as" {
		t.Errorf("signature %s, want sa{sv}as", sig)
	}

	for _, tc := range []struct{ desc, iface, name string }{
		{"constant", ManagerInterface, "Version"},
		{"unknown", ManagerInterface, "Nope"},
		{"no interface", "", "Version"},
	} {
		if err := p.changed(tc.iface, tc.name); err == nil {
			t.Errorf("changed(%s): nil error for %s property", tc.name, tc.desc)
		}
	}

	em.err = errors.New("closed")
	if err := p.changed("org.netwarden1.Test", "Counter"); !errors.Is(err, em.err) {
		t.Errorf("changed with failing bus: %v, want it wrapped", err)
	}
}
