package dbusapi

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
)

// netFake is a Manager with networks and ports in memory, run by the
// rules of libvirt's network driver as far as the API shows them.
type netFake struct {
	fakeManager
	nets   map[string]*Network
	ports  map[string][]Port // network name → ports
	leases []Lease
	// fail makes the named method fail with the error.
	fail map[string]error
}

// netUUID and portUUID make a UUID of a name; the port's upper-case
// one checks that paths are lower-case.
func netUUID(name string) string {
	return fmt.Sprintf("%08x-0000-4000-8000-0000000000aa", crc32.ChecksumIEEE([]byte(name)))
}
func portUUID(dev string) string {
	return fmt.Sprintf("%08X-0000-4000-8000-0000000000BB", crc32.ChecksumIEEE([]byte(dev)))
}

// newNetFake: default (active, persistent, autostart), idle (inactive,
// persistent), tmp (active, transient) with a port vnet0.
func newNetFake() *netFake {
	f := &netFake{nets: map[string]*Network{}, ports: map[string][]Port{}, fail: map[string]error{}}
	for _, n := range []Network{
		{Name: "default", Active: true, Persistent: true, Autostart: true, Bridge: "virbr0"},
		{Name: "idle", Persistent: true},
		{Name: "tmp", Active: true, Bridge: "virbr2"},
	} {
		n.UUID = netUUID(n.Name)
		f.nets[n.Name] = &n
	}
	f.ports["tmp"] = []Port{{UUID: portUUID("vnet0"), Network: "tmp", NetworkUUID: netUUID("tmp"), Dev: "vnet0", MAC: "52:54:00:00:00:01", FilterName: "clean-traffic", XML: "<networkport/>"}}
	f.leases = []Lease{
		{Iface: "virbr0", ExpiryTime: 1700000000, Type: 0, MAC: "52:54:00:00:00:01", IPAddr: "192.168.122.10", Prefix: 24, Hostname: "g1", ClientID: "01:52:54:00:00:00:01"},
		{Iface: "virbr0", ExpiryTime: 1700000100, Type: 1, MAC: "52:54:00:00:00:02", IAID: "5", IPAddr: "fd00::10", Prefix: 64, ClientID: "00:04:aa"},
	}
	return f
}

func (f *netFake) err(method string) error { return f.fail[method] }

func (f *netFake) get(name string) (*Network, error) {
	n, ok := f.nets[name]
	if !ok {
		return nil, Mark(fmt.Errorf("no network %q", name), ErrNotFound)
	}
	return n, nil
}

func (f *netFake) Networks(context.Context) ([]Network, error) {
	if err := f.err("Networks"); err != nil {
		return nil, err
	}
	var ns []Network
	for _, n := range f.nets {
		ns = append(ns, *n)
	}
	slices.SortFunc(ns, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return ns, nil
}

func (f *netFake) LookupNetwork(_ context.Context, name string) (Network, error) {
	n, err := f.get(name)
	if err != nil {
		return Network{}, err
	}
	return *n, nil
}

func (f *netFake) LookupNetworkByUUID(_ context.Context, uuid string) (Network, error) {
	for _, n := range f.nets {
		if strings.EqualFold(n.UUID, uuid) {
			return *n, nil
		}
	}
	return Network{}, Mark(fmt.Errorf("no network with UUID %s", uuid), ErrNotFound)
}

// xmlName is the name in "<network><name>N</name>…".
func xmlName(xml string) string {
	_, rest, _ := strings.Cut(xml, "<name>")
	name, _, _ := strings.Cut(rest, "</name>")
	return name
}

func (f *netFake) DefineNetwork(_ context.Context, xml string) (Network, bool, error) {
	if err := f.err("DefineNetwork"); err != nil {
		return Network{}, false, err
	}
	name := xmlName(xml)
	if n, ok := f.nets[name]; ok {
		n.Persistent = true
		return *n, false, nil
	}
	n := &Network{Name: name, UUID: netUUID(name), Persistent: true}
	f.nets[name] = n
	return *n, true, nil
}

func (f *netFake) CreateNetwork(_ context.Context, xml string) (Network, error) {
	if err := f.err("CreateNetwork"); err != nil {
		return Network{}, err
	}
	name := xmlName(xml)
	if _, ok := f.nets[name]; ok {
		return Network{}, Mark(fmt.Errorf("network %q exists", name), ErrExists)
	}
	n := &Network{Name: name, UUID: netUUID(name), Active: true, Bridge: "virbr9"}
	f.nets[name] = n
	return *n, nil
}

func (f *netFake) UndefineNetwork(_ context.Context, name string) error {
	n, err := f.get(name)
	if err != nil {
		return err
	}
	if !n.Persistent {
		return Mark(fmt.Errorf("network %q is transient", name), ErrInvalidArgument)
	}
	if !n.Active {
		delete(f.nets, name)
		return nil
	}
	n.Persistent, n.Autostart = false, false
	return nil
}

func (f *netFake) StartNetwork(_ context.Context, name string) error {
	if err := f.err("StartNetwork"); err != nil {
		return err
	}
	n, err := f.get(name)
	if err != nil {
		return err
	}
	if n.Active {
		return Mark(fmt.Errorf("network %q is active", name), ErrInvalidArgument)
	}
	n.Active, n.Bridge = true, "virbr1"
	return nil
}

func (f *netFake) DestroyNetwork(_ context.Context, name string) error {
	n, err := f.get(name)
	if err != nil {
		return err
	}
	if !n.Active {
		return Mark(fmt.Errorf("network %q is not active", name), ErrInvalidArgument)
	}
	delete(f.ports, name)
	n.Active = false
	if !n.Persistent {
		delete(f.nets, name)
	}
	return nil
}

func (f *netFake) SetNetworkAutostart(_ context.Context, name string, autostart bool) error {
	n, err := f.get(name)
	if err != nil {
		return err
	}
	if !n.Persistent {
		return Mark(fmt.Errorf("network %q is transient", name), ErrInvalidArgument)
	}
	n.Autostart = autostart
	return nil
}

func (f *netFake) NetworkXML(_ context.Context, name string, inactive bool) (string, error) {
	if _, err := f.get(name); err != nil {
		return "", err
	}
	return fmt.Sprintf("<network inactive='%v'><name>%s</name></network>", inactive, name), nil
}

func (f *netFake) NetworkLeases(_ context.Context, name, mac string) ([]Lease, error) {
	if _, err := f.get(name); err != nil {
		return nil, err
	}
	var ls []Lease
	for _, l := range f.leases {
		if mac == "" || strings.EqualFold(l.MAC, mac) {
			ls = append(ls, l)
		}
	}
	return ls, nil
}

func (f *netFake) Ports(_ context.Context, network string) ([]Port, error) {
	if _, err := f.get(network); err != nil {
		return nil, err
	}
	return f.ports[network], nil
}

func (f *netFake) LookupPort(_ context.Context, network, uuid string) (Port, error) {
	if _, err := f.get(network); err != nil {
		return Port{}, err
	}
	for _, p := range f.ports[network] {
		if strings.EqualFold(p.UUID, uuid) {
			return p, nil
		}
	}
	return Port{}, Mark(fmt.Errorf("no port %s", uuid), ErrNotFound)
}

func (f *netFake) CreatePort(_ context.Context, network, xml string) (Port, error) {
	n, err := f.get(network)
	if err != nil {
		return Port{}, err
	}
	if !n.Active {
		return Port{}, Mark(fmt.Errorf("network %q is not active", network), ErrInvalidArgument)
	}
	dev := xmlName(xml)
	p := Port{UUID: portUUID(dev), Network: network, NetworkUUID: n.UUID, Dev: dev, XML: xml}
	f.ports[network] = append(f.ports[network], p)
	return p, nil
}

func (f *netFake) DeletePort(_ context.Context, network, uuid string) error {
	ps := f.ports[network]
	for i, p := range ps {
		if p.UUID == uuid {
			f.ports[network] = append(ps[:i:i], ps[i+1:]...)
			return nil
		}
	}
	return Mark(errors.New("no such port"), ErrNotFound)
}

// recordingAuth allows everything but deny and records the requests.
type recordingAuth struct {
	mu      sync.Mutex
	deny    string
	actions []string
	reqs    []AuthRequest
}

func (a *recordingAuth) Authorize(_ context.Context, req AuthRequest) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.actions = append(a.actions, req.Action)
	a.reqs = append(a.reqs, req)
	if req.Action == a.deny {
		return &DeniedError{Action: req.Action, Reason: "test"}
	}
	return nil
}

// newTestServer returns a Server on m without a bus: signals go to the
// returned emitter.
func newTestServer(t *testing.T, m Manager) (*Server, *fakeEmitter, *recordingAuth) {
	em, auth := &fakeEmitter{}, &recordingAuth{}
	s := &Server{m: m, auth: auth, log: slog.New(slog.NewTextHandler(io.Discard, nil)), timeout: 5 * time.Second, emit: em}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.cancel)
	return s, em, auth
}

// at is a call's message on path.
func at(path dbus.ObjectPath) dbus.Message {
	return dbus.Message{Headers: map[dbus.HeaderField]dbus.Variant{dbus.FieldPath: dbus.MakeVariant(path)}}
}

// signalLines renders signals compactly: "NAME PATH [EVENT|PROPERTIES]".
func signalLines(em *fakeEmitter) []string {
	var out []string
	for _, e := range em.signals {
		name := e.name[strings.LastIndex(e.name, ".")+1:]
		switch name {
		case "NetworkEvent":
			out = append(out, fmt.Sprintf("%s %s %d", name, e.values[0], e.values[1]))
		case "InterfacesAdded", "InterfacesRemoved":
			out = append(out, fmt.Sprintf("%s %s", name, e.values[0]))
		case "PropertiesChanged":
			var names []string
			for k, v := range e.values[1].(map[string]dbus.Variant) {
				names = append(names, fmt.Sprintf("%s=%v", k, v.Value()))
			}
			sort.Strings(names)
			out = append(out, fmt.Sprintf("%s %s %s", name, e.path, strings.Join(names, ",")))
		default:
			out = append(out, name+" "+string(e.path))
		}
	}
	return out
}

func TestListNetworks(t *testing.T) {
	for _, tc := range []struct {
		flags   uint32
		want    []string
		wantErr string
	}{
		{0, []string{"default", "idle", "tmp"}, ""},
		{ListNetworksActive, []string{"default", "tmp"}, ""},
		{ListNetworksInactive, []string{"idle"}, ""},
		{ListNetworksActive | ListNetworksInactive, []string{"default", "idle", "tmp"}, ""},
		{ListNetworksPersistent, []string{"default", "idle"}, ""},
		{ListNetworksTransient, []string{"tmp"}, ""},
		{ListNetworksAutostart, []string{"default"}, ""},
		{ListNetworksNoAutostart, []string{"idle", "tmp"}, ""},
		{ListNetworksActive | ListNetworksPersistent, []string{"default"}, ""},
		{ListNetworksInactive | ListNetworksTransient, []string{}, ""},
		{64, nil, ErrorInvalidArgument},
	} {
		t.Run(fmt.Sprint(tc.flags), func(t *testing.T) {
			s, em, auth := newTestServer(t, newNetFake())
			got, derr := (&managerObject{s: s}).ListNetworks(":1.1", dbus.Message{}, tc.flags)
			if errName(derr) != tc.wantErr {
				t.Fatalf("error %v, want %q", derr, tc.wantErr)
			}
			var want []dbus.ObjectPath
			for _, n := range tc.want {
				want = append(want, NetworkPath(netUUID(n)))
			}
			if tc.wantErr == "" && !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if !slices.Equal(auth.actions, []string{polkit.ActionNetworkRead}) || len(em.signals) != 0 {
				t.Errorf("actions %v, signals %v", auth.actions, em.signals)
			}
		})
	}
}

// TestNetworkCalls runs each method of the Manager's network part and
// of the network and port objects: its authorization, its result or
// error, and the signals it emits.
func TestNetworkCalls(t *testing.T) {
	def, idle, tmp := NetworkPath(netUUID("default")), NetworkPath(netUUID("idle")), NetworkPath(netUUID("tmp"))
	vnet0 := NetworkPortPath(netUUID("tmp"), portUUID("vnet0"))
	gone := NetworkPath("99999999-0000-4000-8000-000000000000")
	manage, read := polkit.ActionNetworkManage, polkit.ActionNetworkRead
	mgr := func(s *Server) *managerObject { return &managerObject{s: s} }
	nets := func(s *Server) *networkObjects { return &networkObjects{s: s} }
	ports := func(s *Server) *portObjects { return &portObjects{s: s} }
	for _, tc := range []struct {
		name    string
		setup   func(f *netFake)
		call    func(s *Server) (any, *dbus.Error)
		action  string
		want    any // result, when not nil
		wantErr string
		signals []string
		check   func(t *testing.T, f *netFake)
	}{
		{name: "define new", call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkDefineXML(":1.1", dbus.Message{}, "<network><name>new</name></network>")
		}, action: manage, want: NetworkPath(netUUID("new")),
			signals: []string{"InterfacesAdded " + string(NetworkPath(netUUID("new"))), "NetworkEvent " + string(NetworkPath(netUUID("new"))) + " 0"}},
		{name: "redefine transient makes it persistent", call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkDefineXML(":1.1", dbus.Message{}, "<network><name>tmp</name></network>")
		}, action: manage, want: tmp,
			signals: []string{"PropertiesChanged " + string(tmp) + " Persistent=true", "NetworkEvent " + string(tmp) + " 0"}},
		{name: "redefine, nothing changes", call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkDefineXML(":1.1", dbus.Message{}, "<network><name>idle</name></network>")
		}, action: manage, want: idle, signals: []string{"NetworkEvent " + string(idle) + " 0"}},
		{name: "define unsupported", setup: func(f *netFake) {
			f.fail["DefineNetwork"] = fmt.Errorf("network x: %w", Mark(errors.New("forward mode hostdev"), ErrNotSupported))
		}, call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkDefineXML(":1.1", dbus.Message{}, "<network><name>x</name></network>")
		}, action: manage, wantErr: ErrorNotSupported},
		{name: "create", call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkCreateXML(":1.1", dbus.Message{}, "<network><name>new</name></network>")
		}, action: manage, want: NetworkPath(netUUID("new")),
			signals: []string{"InterfacesAdded " + string(NetworkPath(netUUID("new"))), "NetworkEvent " + string(NetworkPath(netUUID("new"))) + " 2"}},
		{name: "create exists", call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkCreateXML(":1.1", dbus.Message{}, "<network><name>idle</name></network>")
		}, action: manage, wantErr: ErrorExists},
		{name: "lookup by name", call: func(s *Server) (any, *dbus.Error) { return mgr(s).NetworkLookupByName(":1.1", dbus.Message{}, "idle") },
			action: read, want: idle},
		{name: "lookup by name missing", call: func(s *Server) (any, *dbus.Error) { return mgr(s).NetworkLookupByName(":1.1", dbus.Message{}, "nope") },
			action: read, wantErr: ErrorNotFound},
		{name: "lookup by UUID any case", call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkLookupByUUID(":1.1", dbus.Message{}, strings.ToUpper(netUUID("default")))
		}, action: read, want: def},
		{name: "lookup by UUID missing", call: func(s *Server) (any, *dbus.Error) {
			return mgr(s).NetworkLookupByUUID(":1.1", dbus.Message{}, "99999999-0000-4000-8000-000000000000")
		}, action: read, wantErr: ErrorNotFound},

		{name: "start", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Create(":1.1", at(idle)) },
			action: manage, signals: []string{"PropertiesChanged " + string(idle) + " Active=true,Bridge=virbr1", "NetworkEvent " + string(idle) + " 2"}},
		{name: "start active", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Create(":1.1", at(def)) },
			action: manage, wantErr: ErrorInvalidArgument},
		{name: "start unsupported", setup: func(f *netFake) { f.fail["StartNetwork"] = Mark(errors.New("forward mode"), ErrNotSupported) },
			call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Create(":1.1", at(idle)) }, action: manage, wantErr: ErrorNotSupported},
		{name: "start gone", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Create(":1.1", at(gone)) },
			action: manage, wantErr: ErrorUnknownObject},
		{name: "destroy persistent", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Destroy(":1.1", at(def)) },
			action: manage, signals: []string{"PropertiesChanged " + string(def) + " Active=false", "NetworkEvent " + string(def) + " 3"}},
		{name: "destroy transient removes it and its ports", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Destroy(":1.1", at(tmp)) },
			action: manage, signals: []string{"InterfacesRemoved " + string(vnet0), "InterfacesRemoved " + string(tmp), "NetworkEvent " + string(tmp) + " 3"},
			check: func(t *testing.T, f *netFake) {
				if _, ok := f.nets["tmp"]; ok {
					t.Error("tmp still there")
				}
			}},
		{name: "destroy inactive", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Destroy(":1.1", at(idle)) },
			action: manage, wantErr: ErrorInvalidArgument},
		{name: "undefine inactive removes it", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Undefine(":1.1", at(idle)) },
			action: manage, signals: []string{"InterfacesRemoved " + string(idle), "NetworkEvent " + string(idle) + " 1"}},
		{name: "undefine active makes it transient", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Undefine(":1.1", at(def)) },
			action: manage, signals: []string{"PropertiesChanged " + string(def) + " Autostart=false,Persistent=false", "NetworkEvent " + string(def) + " 1"}},
		{name: "undefine transient", call: func(s *Server) (any, *dbus.Error) { return nil, nets(s).Undefine(":1.1", at(tmp)) },
			action: manage, wantErr: ErrorInvalidArgument},
		{name: "undefine denied", setup: nil, call: func(s *Server) (any, *dbus.Error) {
			s.auth.(*recordingAuth).deny = manage
			return nil, nets(s).Undefine(":1.1", at(def))
		}, action: manage, wantErr: ErrorAccessDenied, check: func(t *testing.T, f *netFake) {
			if !f.nets["default"].Persistent {
				t.Error("undefined although denied")
			}
		}},
		{name: "xml live", call: func(s *Server) (any, *dbus.Error) { return nets(s).GetXMLDesc(":1.1", at(def), 0) },
			action: read, want: "<network inactive='false'><name>default</name></network>"},
		{name: "xml inactive", call: func(s *Server) (any, *dbus.Error) { return nets(s).GetXMLDesc(":1.1", at(def), NetworkXMLInactive) },
			action: read, want: "<network inactive='true'><name>default</name></network>"},
		{name: "xml bad flags", call: func(s *Server) (any, *dbus.Error) { return nets(s).GetXMLDesc(":1.1", at(def), 2) },
			action: read, wantErr: ErrorInvalidArgument},
		{name: "xml of a port path", call: func(s *Server) (any, *dbus.Error) { return nets(s).GetXMLDesc(":1.1", at(vnet0), 0) },
			action: read, wantErr: ErrorUnknownObject},
		{name: "leases", call: func(s *Server) (any, *dbus.Error) { return nets(s).GetDHCPLeases(":1.1", at(def), "", 0) },
			action: read, want: newNetFake().leases},
		{name: "leases of a MAC", call: func(s *Server) (any, *dbus.Error) {
			return nets(s).GetDHCPLeases(":1.1", at(def), "52:54:00:00:00:02", 0)
		}, action: read, want: newNetFake().leases[1:]},
		{name: "leases none", call: func(s *Server) (any, *dbus.Error) {
			return nets(s).GetDHCPLeases(":1.1", at(def), "52:54:00:00:00:09", 0)
		}, action: read, want: []Lease{}},
		{name: "leases bad flags", call: func(s *Server) (any, *dbus.Error) { return nets(s).GetDHCPLeases(":1.1", at(def), "", 1) },
			action: read, wantErr: ErrorInvalidArgument},
		{name: "list ports", call: func(s *Server) (any, *dbus.Error) { return nets(s).ListPorts(":1.1", at(tmp), 0) },
			action: read, want: []dbus.ObjectPath{vnet0}},
		{name: "list ports none", call: func(s *Server) (any, *dbus.Error) { return nets(s).ListPorts(":1.1", at(idle), 0) },
			action: read, want: []dbus.ObjectPath{}},
		{name: "list ports bad flags", call: func(s *Server) (any, *dbus.Error) { return nets(s).ListPorts(":1.1", at(tmp), 1) },
			action: read, wantErr: ErrorInvalidArgument},
		{name: "create port", call: func(s *Server) (any, *dbus.Error) {
			return nets(s).PortCreateXML(":1.1", at(def), "<networkport><name>vnet7</name></networkport>", PortCreateValidate)
		}, action: manage, want: NetworkPortPath(netUUID("default"), portUUID("vnet7")),
			signals: []string{"InterfacesAdded " + string(NetworkPortPath(netUUID("default"), portUUID("vnet7")))}},
		{name: "create port reclaim refused", call: func(s *Server) (any, *dbus.Error) {
			return nets(s).PortCreateXML(":1.1", at(def), "<networkport><name>vnet7</name></networkport>", 1)
		}, action: manage, wantErr: ErrorInvalidArgument},
		{name: "create port on inactive", call: func(s *Server) (any, *dbus.Error) {
			return nets(s).PortCreateXML(":1.1", at(idle), "<networkport><name>vnet7</name></networkport>", 0)
		}, action: manage, wantErr: ErrorInvalidArgument},
		{name: "lookup port", call: func(s *Server) (any, *dbus.Error) {
			return nets(s).PortLookupByUUID(":1.1", at(tmp), strings.ToLower(portUUID("vnet0")))
		}, action: read, want: vnet0},
		{name: "lookup port elsewhere", call: func(s *Server) (any, *dbus.Error) {
			return nets(s).PortLookupByUUID(":1.1", at(def), portUUID("vnet0"))
		}, action: read, wantErr: ErrorNotFound},

		{name: "port xml", call: func(s *Server) (any, *dbus.Error) { return ports(s).GetXMLDesc(":1.1", at(vnet0), 0) },
			action: read, want: "<networkport/>"},
		{name: "port xml bad flags", call: func(s *Server) (any, *dbus.Error) { return ports(s).GetXMLDesc(":1.1", at(vnet0), 1) },
			action: read, wantErr: ErrorInvalidArgument},
		{name: "port xml of a network path", call: func(s *Server) (any, *dbus.Error) { return ports(s).GetXMLDesc(":1.1", at(tmp), 0) },
			action: read, wantErr: ErrorUnknownObject},
		{name: "port of another network's path", call: func(s *Server) (any, *dbus.Error) {
			return ports(s).GetXMLDesc(":1.1", at(NetworkPortPath(netUUID("default"), portUUID("vnet0"))), 0)
		}, action: read, wantErr: ErrorUnknownObject},
		{name: "port delete", call: func(s *Server) (any, *dbus.Error) { return nil, ports(s).Delete(":1.1", at(vnet0)) },
			action: manage, signals: []string{"InterfacesRemoved " + string(vnet0)},
			check: func(t *testing.T, f *netFake) {
				if len(f.ports["tmp"]) != 0 {
					t.Errorf("ports left: %v", f.ports["tmp"])
				}
			}},
		{name: "port delete denied", call: func(s *Server) (any, *dbus.Error) {
			s.auth.(*recordingAuth).deny = manage
			return nil, ports(s).Delete(":1.1", at(vnet0))
		}, action: manage, wantErr: ErrorAccessDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newNetFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			s, em, auth := newTestServer(t, f)
			got, derr := tc.call(s)
			if errName(derr) != tc.wantErr {
				t.Fatalf("error %v, want %q", derr, tc.wantErr)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
			if !slices.Equal(auth.actions, []string{tc.action}) {
				t.Errorf("authorized %v, want %s", auth.actions, tc.action)
			}
			if lines := signalLines(em); !slices.Equal(lines, tc.signals) {
				t.Errorf("signals\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tc.signals, "\n"))
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

// TestNetworkProperties reads the properties of networks and ports
// through the subtree handler, and sets Autostart.
func TestNetworkProperties(t *testing.T) {
	f := newNetFake()
	s, em, auth := newTestServer(t, f)
	props := &subtreeProperties{s: s, root: NetworkPathPrefix}
	def := NetworkPath(netUUID("default"))
	all, derr := props.GetAll(":1.1", at(def), NetworkInterface)
	if derr != nil {
		t.Fatal(derr)
	}
	want := map[string]any{"Name": "default", "UUID": netUUID("default"), "Active": true, "Persistent": true,
		"Autostart": true, "Bridge": "virbr0", "Status": ""}
	for k, v := range want {
		if all[k].Value() != v {
			t.Errorf("%s = %v, want %v", k, all[k].Value(), v)
		}
	}
	if len(all) != len(want) {
		t.Errorf("properties %v", all)
	}
	vnet0 := NetworkPortPath(netUUID("tmp"), portUUID("vnet0"))
	pall, derr := props.GetAll(":1.1", at(vnet0), NetworkPortInterface)
	if derr != nil {
		t.Fatal(derr)
	}
	if pall["Network"].Value() != NetworkPath(netUUID("tmp")) || pall["Dev"].Value() != "vnet0" ||
		pall["MAC"].Value() != "52:54:00:00:00:01" || pall["FilterName"].Value() != "clean-traffic" || pall["UUID"].Value() != portUUID("vnet0") {
		t.Errorf("port properties %v", pall)
	}
	if _, derr := props.GetAll(":1.1", at(NetworkPath(netUUID("tmp"))+"/port"), ""); errName(derr) != ErrorUnknownInterface {
		t.Errorf("properties of the ports node: %v", derr)
	}
	if _, derr := props.Get(":1.1", at(NetworkPath("99999999-0000-4000-8000-000000000000")), NetworkInterface, "Name"); errName(derr) != ErrorUnknownObject {
		t.Errorf("properties of a gone network: %v", derr)
	}

	auth.actions = nil
	if derr := props.Set(":1.1", at(def), NetworkInterface, "Autostart", dbus.MakeVariant(false)); derr != nil {
		t.Fatal(derr)
	}
	if f.nets["default"].Autostart || !slices.Equal(auth.actions, []string{polkit.ActionNetworkManage}) {
		t.Errorf("autostart %v, actions %v", f.nets["default"].Autostart, auth.actions)
	}
	if lines := signalLines(em); !slices.Equal(lines, []string{"PropertiesChanged " + string(def) + " Autostart=false"}) {
		t.Errorf("signals %v", lines)
	}
	for _, tc := range []struct {
		path  dbus.ObjectPath
		name  string
		value any
		want  string
	}{
		{NetworkPath(netUUID("tmp")), "Autostart", true, ErrorInvalidArgument},
		{def, "Autostart", "yes", ErrorInvalidArgs},
		{def, "Active", false, ErrorPropertyReadOnly},
		{vnet0, "Dev", "x", ErrorPropertyReadOnly},
	} {
		if derr := props.Set(":1.1", at(tc.path), "", tc.name, dbus.MakeVariant(tc.value)); errName(derr) != tc.want {
			t.Errorf("set %s %s: %v, want %s", tc.path, tc.name, derr, tc.want)
		}
	}
	auth.deny, auth.actions = polkit.ActionNetworkManage, nil
	if derr := props.Set(":1.1", at(def), NetworkInterface, "Autostart", dbus.MakeVariant(true)); errName(derr) != ErrorAccessDenied || f.nets["default"].Autostart {
		t.Errorf("denied set: %v", derr)
	}
}

// TestNetworkIntrospection: the tree below NetworkPathPrefix.
func TestNetworkIntrospection(t *testing.T) {
	s, _, _ := newTestServer(t, newNetFake())
	i := &subtreeIntrospectable{s: s, root: NetworkPathPrefix}
	tmp := NetworkPath(netUUID("tmp"))
	for _, tc := range []struct {
		path     dbus.ObjectPath
		contains []string
		wantErr  string
	}{
		{NetworkPathPrefix, []string{`<node name="` + uuidLabel(netUUID("default")) + `">`, `<node name="` + uuidLabel(netUUID("tmp")) + `">`}, ""},
		{tmp, []string{`<interface name="org.netwarden1.Network">`, `<node name="port">`, `access="readwrite"`}, ""},
		{tmp + "/port", []string{`<node name="` + uuidLabel(portUUID("vnet0")) + `">`}, ""},
		{NetworkPortPath(netUUID("tmp"), portUUID("vnet0")), []string{`<interface name="org.netwarden1.NetworkPort">`}, ""},
		{NetworkPortPath(netUUID("tmp"), portUUID("vnet9")), nil, ErrorUnknownObject},
		{NetworkPath("99999999-0000-4000-8000-000000000000") + "/port", nil, ErrorUnknownObject},
		{tmp + "/other", nil, ErrorUnknownObject},
	} {
		doc, derr := i.Introspect(at(tc.path))
		if errName(derr) != tc.wantErr {
			t.Errorf("%s: error %v, want %q", tc.path, derr, tc.wantErr)
			continue
		}
		for _, c := range tc.contains {
			if !strings.Contains(doc, c) {
				t.Errorf("%s: no %s in\n%s", tc.path, c, doc)
			}
		}
	}
}

// TestManagedObjectsWithNetworks: GetManagedObjects lists networks and
// ports with their properties.
func TestManagedObjectsWithNetworks(t *testing.T) {
	s, _, _ := newTestServer(t, newNetFake())
	objs, derr := (&objectManager{s: s}).GetManagedObjects(":1.1", dbus.Message{})
	if derr != nil {
		t.Fatal(derr)
	}
	if len(objs) != 4 {
		t.Errorf("%d objects, want 3 networks and a port: %v", len(objs), objs)
	}
	if objs[NetworkPath(netUUID("idle"))][NetworkInterface]["Name"].Value() != "idle" {
		t.Errorf("idle: %v", objs[NetworkPath(netUUID("idle"))])
	}
	if objs[NetworkPortPath(netUUID("tmp"), portUUID("vnet0"))][NetworkPortInterface]["Dev"].Value() != "vnet0" {
		t.Errorf("vnet0 missing: %v", objs)
	}
}

func TestNetworkPaths(t *testing.T) {
	const n, p = "AB000000-0000-4000-8000-0000000000CD", "ef000000-0000-4000-8000-000000000012"
	np, pp := NetworkPath(n), NetworkPortPath(n, p)
	if np != "/org/netwarden1/network/_ab000000_0000_4000_8000_0000000000cd" || !np.IsValid() || !pp.IsValid() ||
		pp != np+"/port/_ef000000_0000_4000_8000_000000000012" {
		t.Errorf("paths %s %s", np, pp)
	}
	for _, tc := range []struct {
		path      dbus.ObjectPath
		kind      networkPathKind
		net, port string
	}{
		{np, networkObject, strings.ToLower(n), ""},
		{np + "/port", networkPortsObject, strings.ToLower(n), ""},
		{pp, networkPortObject, strings.ToLower(n), p},
		{NetworkPathPrefix, notNetworkPath, "", ""},
		{NetworkPathPrefix + "/default", notNetworkPath, "", ""},
		{np + "/ports", notNetworkPath, "", ""},
		{pp + "/x", notNetworkPath, "", ""},
		{np + "/port/vnet0", notNetworkPath, "", ""},
		{NWFilterPath(n), notNetworkPath, "", ""},
	} {
		kind, net, port := parseNetworkPath(tc.path)
		if kind != tc.kind || net != tc.net || port != tc.port {
			t.Errorf("parseNetworkPath(%s) = %v %q %q, want %v %q %q", tc.path, kind, net, port, tc.kind, tc.net, tc.port)
		}
	}
	if u, ok := NetworkUUIDOf(np); !ok || u != strings.ToLower(n) {
		t.Errorf("NetworkUUIDOf = %q %v", u, ok)
	}
}
