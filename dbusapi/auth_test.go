package dbusapi

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
)

// authFake is netFake with one filter and one binding; it counts the
// changes made to them.
type authFake struct {
	*netFake
	changes []string
}

var (
	authFilter  = Filter{Name: "f1", UUID: "11111111-2222-4333-8444-555555555555", XML: "<filter name='f1'/>"}
	authBinding = Binding{PortDev: "vnet7", FilterName: "clean-traffic", Mode: "enforce", XML: "<filterbinding/>"}
)

func (f *authFake) Filters(context.Context) ([]Filter, error)   { return []Filter{authFilter}, nil }
func (f *authFake) Bindings(context.Context) ([]Binding, error) { return []Binding{authBinding}, nil }
func (f *authFake) LookupFilter(_ context.Context, name string) (Filter, error) {
	if name == authFilter.Name {
		return authFilter, nil
	}
	return Filter{}, ErrNotFound
}
func (f *authFake) LookupFilterByUUID(_ context.Context, uuid string) (Filter, error) {
	if strings.EqualFold(uuid, authFilter.UUID) {
		return authFilter, nil
	}
	return Filter{}, ErrNotFound
}
func (f *authFake) LookupBinding(_ context.Context, port string) (Binding, error) {
	if port == authBinding.PortDev {
		return authBinding, nil
	}
	return Binding{}, ErrNotFound
}
func (f *authFake) DefineFilter(_ context.Context, xml string) (Filter, bool, error) {
	f.changes = append(f.changes, "DefineFilter")
	return authFilter, false, nil
}
func (f *authFake) UndefineFilter(context.Context, string) error {
	f.changes = append(f.changes, "UndefineFilter")
	return nil
}
func (f *authFake) CreateBinding(context.Context, string) (Binding, error) {
	f.changes = append(f.changes, "CreateBinding")
	return Binding{PortDev: "vnet9", FilterName: "allow-arp"}, nil
}
func (f *authFake) DeleteBinding(context.Context, string) error {
	f.changes = append(f.changes, "DeleteBinding")
	return nil
}

const (
	authFilterXML = `<filter name='f2' chain='root'><uuid>22222222-2222-4333-8444-555555555555</uuid>
<rule action='drop' direction='out' priority='500'><mac srcmacaddr='52:54:00:de:ad:00'/></rule></filter>`
	authBindingXML = `<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>` +
		`<portdev name='vnet9'/><mac address='52:54:00:7b:35:93'/><filterref filter='allow-arp'/></filterbinding>`
	authPortXML = `<networkport><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>
<owner><name>vm1</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
<mac address='52:54:00:7b:35:93'/></networkport>`
)

// TestCallAuthorization: every method asks for its action with the
// details of its object, once, before it changes anything; a refusal
// leaves everything as it was.
func TestCallAuthorization(t *testing.T) {
	fpath, bpath := NWFilterPath(authFilter.UUID), NWFilterBindingPath(authBinding.PortDev)
	def, tmp := NetworkPath(netUUID("default")), NetworkPath(netUUID("tmp"))
	vnet0 := NetworkPortPath(netUUID("tmp"), portUUID("vnet0"))
	gone := NetworkPath("99999999-0000-4000-8000-000000000000")
	netDef := map[string]string{"network_name": "default", "network_uuid": netUUID("default")}
	netTmp := map[string]string{"network_name": "tmp", "network_uuid": netUUID("tmp")}
	portVnet0 := map[string]string{"network_name": "tmp", "network_uuid": netUUID("tmp"), "port_uuid": portUUID("vnet0")}
	filterF1 := map[string]string{"nwfilter_name": "f1", "nwfilter_uuid": authFilter.UUID}
	bindingVnet7 := map[string]string{"nwfilter_binding_portdev": "vnet7", "nwfilter_binding_filter": "clean-traffic"}
	m := dbus.Message{}
	mgr := func(s *Server) *managerObject { return &managerObject{s: s} }
	props := func(s *Server, root dbus.ObjectPath) *subtreeProperties { return &subtreeProperties{s: s, root: root} }
	for _, tc := range []struct {
		name    string
		call    func(s *Server) *dbus.Error
		action  string
		details map[string]string
		// change is the core's change the call makes when allowed.
		change string
	}{
		// Filters.
		{"ListNWFilters", func(s *Server) *dbus.Error { _, e := mgr(s).ListNWFilters(":1.1", m, 0); return e },
			polkit.ActionNWFilterRead, nil, ""},
		{"NWFilterLookupByName", func(s *Server) *dbus.Error { _, e := mgr(s).NWFilterLookupByName(":1.1", m, "f1"); return e },
			polkit.ActionNWFilterRead, filterF1, ""},
		{"NWFilterLookupByName missing", func(s *Server) *dbus.Error { _, e := mgr(s).NWFilterLookupByName(":1.1", m, "nope"); return e },
			polkit.ActionNWFilterRead, map[string]string{"nwfilter_name": "nope"}, ""},
		{"NWFilterLookupByUUID", func(s *Server) *dbus.Error {
			_, e := mgr(s).NWFilterLookupByUUID(":1.1", m, strings.ToUpper(authFilter.UUID))
			return e
		}, polkit.ActionNWFilterRead, filterF1, ""},
		{"NWFilterDefineXML", func(s *Server) *dbus.Error { _, e := mgr(s).NWFilterDefineXML(":1.1", m, authFilterXML); return e },
			polkit.ActionNWFilterManage, map[string]string{"nwfilter_name": "f2", "nwfilter_uuid": "22222222-2222-4333-8444-555555555555"}, "DefineFilter"},
		{"NWFilterDefineXML redefining without UUID", func(s *Server) *dbus.Error {
			_, e := mgr(s).NWFilterDefineXML(":1.1", m, "<filter name='f1' chain='root'/>")
			return e
		}, polkit.ActionNWFilterManage, filterF1, "DefineFilter"},
		{"NWFilterDefineXML malformed", func(s *Server) *dbus.Error { _, e := mgr(s).NWFilterDefineXML(":1.1", m, "<filter"); return e },
			polkit.ActionNWFilterManage, nil, "DefineFilter"},
		{"NWFilter.GetXMLDesc", func(s *Server) *dbus.Error { _, e := (&nwfilterObjects{s}).GetXMLDesc(":1.1", at(fpath), 0); return e },
			polkit.ActionNWFilterRead, filterF1, ""},
		{"NWFilter.Undefine", func(s *Server) *dbus.Error { return (&nwfilterObjects{s}).Undefine(":1.1", at(fpath)) },
			polkit.ActionNWFilterManage, filterF1, "UndefineFilter"},
		{"NWFilter property", func(s *Server) *dbus.Error {
			_, e := props(s, NWFilterPathPrefix).Get(":1.1", at(fpath), NWFilterInterface, "Name")
			return e
		}, polkit.ActionNWFilterRead, filterF1, ""},

		// Bindings.
		{"ListNWFilterBindings", func(s *Server) *dbus.Error { _, e := mgr(s).ListNWFilterBindings(":1.1", m, 0); return e },
			polkit.ActionBindingRead, nil, ""},
		{"NWFilterBindingLookupByPortDev", func(s *Server) *dbus.Error {
			_, e := mgr(s).NWFilterBindingLookupByPortDev(":1.1", m, "vnet7")
			return e
		}, polkit.ActionBindingRead, bindingVnet7, ""},
		{"NWFilterBindingCreateXML", func(s *Server) *dbus.Error {
			_, e := mgr(s).NWFilterBindingCreateXML(":1.1", m, authBindingXML, 0)
			return e
		}, polkit.ActionBindingManage, map[string]string{"nwfilter_binding_portdev": "vnet9", "nwfilter_binding_filter": "allow-arp"}, "CreateBinding"},
		{"NWFilterBinding.GetXMLDesc", func(s *Server) *dbus.Error {
			_, e := (&bindingObjects{s}).GetXMLDesc(":1.1", at(bpath), 0)
			return e
		}, polkit.ActionBindingRead, bindingVnet7, ""},
		{"NWFilterBinding.Delete", func(s *Server) *dbus.Error { return (&bindingObjects{s}).Delete(":1.1", at(bpath)) },
			polkit.ActionBindingManage, bindingVnet7, "DeleteBinding"},
		{"NWFilterBinding.Delete missing", func(s *Server) *dbus.Error {
			return (&bindingObjects{s}).Delete(":1.1", at(NWFilterBindingPath("vnet8")))
		}, polkit.ActionBindingManage, map[string]string{"nwfilter_binding_portdev": "vnet8"}, ""},
		{"NWFilterBinding property", func(s *Server) *dbus.Error {
			_, e := props(s, NWFilterBindingPathPrefix).GetAll(":1.1", at(bpath), "")
			return e
		}, polkit.ActionBindingRead, bindingVnet7, ""},

		// Networks.
		{"ListNetworks", func(s *Server) *dbus.Error { _, e := mgr(s).ListNetworks(":1.1", m, 0); return e },
			polkit.ActionNetworkRead, nil, ""},
		{"NetworkLookupByName", func(s *Server) *dbus.Error { _, e := mgr(s).NetworkLookupByName(":1.1", m, "default"); return e },
			polkit.ActionNetworkRead, netDef, ""},
		{"NetworkLookupByUUID", func(s *Server) *dbus.Error { _, e := mgr(s).NetworkLookupByUUID(":1.1", m, netUUID("tmp")); return e },
			polkit.ActionNetworkRead, netTmp, ""},
		{"NetworkDefineXML new", func(s *Server) *dbus.Error {
			_, e := mgr(s).NetworkDefineXML(":1.1", m, "<network><name>lab</name><uuid>77777777-0000-4000-8000-000000000000</uuid></network>")
			return e
		}, polkit.ActionNetworkManage, map[string]string{"network_name": "lab", "network_uuid": "77777777-0000-4000-8000-000000000000"}, ""},
		{"NetworkDefineXML redefining without UUID", func(s *Server) *dbus.Error {
			_, e := mgr(s).NetworkDefineXML(":1.1", m, "<network><name>default</name></network>")
			return e
		}, polkit.ActionNetworkManage, netDef, ""},
		{"NetworkCreateXML", func(s *Server) *dbus.Error {
			_, e := mgr(s).NetworkCreateXML(":1.1", m, "<network><name>lab</name></network>")
			return e
		}, polkit.ActionNetworkManage, map[string]string{"network_name": "lab"}, ""},
		{"Network.Create", func(s *Server) *dbus.Error { return (&networkObjects{s}).Create(":1.1", at(def)) },
			polkit.ActionNetworkManage, netDef, ""},
		{"Network.Create missing", func(s *Server) *dbus.Error { return (&networkObjects{s}).Create(":1.1", at(gone)) },
			polkit.ActionNetworkManage, map[string]string{"network_uuid": "99999999-0000-4000-8000-000000000000"}, ""},
		{"Network.Destroy", func(s *Server) *dbus.Error { return (&networkObjects{s}).Destroy(":1.1", at(def)) },
			polkit.ActionNetworkManage, netDef, ""},
		{"Network.Undefine", func(s *Server) *dbus.Error { return (&networkObjects{s}).Undefine(":1.1", at(def)) },
			polkit.ActionNetworkManage, netDef, ""},
		{"Network.GetXMLDesc", func(s *Server) *dbus.Error { _, e := (&networkObjects{s}).GetXMLDesc(":1.1", at(def), 0); return e },
			polkit.ActionNetworkRead, netDef, ""},
		{"Network.GetDHCPLeases", func(s *Server) *dbus.Error {
			_, e := (&networkObjects{s}).GetDHCPLeases(":1.1", at(def), "", 0)
			return e
		}, polkit.ActionNetworkRead, netDef, ""},
		{"Network.ListPorts", func(s *Server) *dbus.Error { _, e := (&networkObjects{s}).ListPorts(":1.1", at(tmp), 0); return e },
			polkit.ActionNetworkRead, netTmp, ""},
		{"Network.PortCreateXML", func(s *Server) *dbus.Error {
			_, e := (&networkObjects{s}).PortCreateXML(":1.1", at(tmp), authPortXML, 0)
			return e
		}, polkit.ActionNetworkManage, map[string]string{"network_name": "tmp", "network_uuid": netUUID("tmp"), "port_uuid": "5d744f21-ba4a-4d6e-bdb2-30a35ff3207d"}, ""},
		{"Network.PortLookupByUUID", func(s *Server) *dbus.Error {
			_, e := (&networkObjects{s}).PortLookupByUUID(":1.1", at(tmp), portUUID("vnet0"))
			return e
		}, polkit.ActionNetworkRead, portVnet0, ""},
		{"Network property", func(s *Server) *dbus.Error {
			_, e := props(s, NetworkPathPrefix).Get(":1.1", at(def), NetworkInterface, "Bridge")
			return e
		}, polkit.ActionNetworkRead, netDef, ""},
		{"Network Autostart write", func(s *Server) *dbus.Error {
			return props(s, NetworkPathPrefix).Set(":1.1", at(def), NetworkInterface, "Autostart", dbus.MakeVariant(false))
		}, polkit.ActionNetworkManage, netDef, ""},
		{"NetworkPort.GetXMLDesc", func(s *Server) *dbus.Error { _, e := (&portObjects{s}).GetXMLDesc(":1.1", at(vnet0), 0); return e },
			polkit.ActionNetworkRead, portVnet0, ""},
		{"NetworkPort.Delete", func(s *Server) *dbus.Error { return (&portObjects{s}).Delete(":1.1", at(vnet0)) },
			polkit.ActionNetworkManage, portVnet0, ""},
		{"NetworkPort property", func(s *Server) *dbus.Error {
			_, e := props(s, NetworkPathPrefix).Get(":1.1", at(vnet0), NetworkPortInterface, "Dev")
			return e
		}, polkit.ActionNetworkRead, portVnet0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Allowed: one request, with the action and the details.
			f := &authFake{netFake: newNetFake()}
			s, _, auth := newTestServer(t, f)
			tc.call(s)
			if len(auth.reqs) != 1 {
				t.Fatalf("requests %+v, want one", auth.reqs)
			}
			req := auth.reqs[0]
			if req.Action != tc.action || !maps.Equal(req.Details, tc.details) || req.Sender != ":1.1" || req.Interactive {
				t.Errorf("request %+v, want %s with %v", req, tc.action, tc.details)
			}
			if tc.change != "" && !slices.Contains(f.changes, tc.change) {
				t.Errorf("allowed call did not %s: %v", tc.change, f.changes)
			}

			// Refused: AccessDenied, and nothing changes.
			f = &authFake{netFake: newNetFake()}
			before := snapshot(f.netFake)
			s, em, auth := newTestServer(t, f)
			auth.deny = tc.action
			if derr := tc.call(s); errName(derr) != ErrorAccessDenied {
				t.Errorf("refused call: %v, want AccessDenied", derr)
			}
			if len(f.changes) != 0 || len(em.signals) != 0 || snapshot(f.netFake) != before {
				t.Errorf("refused call changed %v, signalled %v", f.changes, em.signals)
			}
		})
	}
}

// snapshot renders a netFake's networks and ports.
func snapshot(f *netFake) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f.nets)) {
		n := f.nets[name]
		b.WriteString(name + " " + n.UUID + " " + n.Bridge)
		for _, v := range []bool{n.Active, n.Persistent, n.Autostart} {
			if v {
				b.WriteString(" y")
			} else {
				b.WriteString(" n")
			}
		}
		for _, p := range f.ports[name] {
			b.WriteString(" " + p.UUID)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestInteractiveFlag: the message flag ALLOW_INTERACTIVE_AUTHORIZATION
// makes the request interactive.
func TestInteractiveFlag(t *testing.T) {
	s, _, auth := newTestServer(t, &authFake{netFake: newNetFake()})
	msg := dbus.Message{Flags: dbus.FlagAllowInteractiveAuthorization, Headers: at(NetworkPath(netUUID("idle"))).Headers}
	if derr := (&networkObjects{s}).Create(":1.1", msg); derr != nil {
		t.Fatal(derr)
	}
	if _, derr := (&managerObject{s}).ListNetworks(":1.1", dbus.Message{Flags: dbus.FlagNoAutoStart}, 0); derr != nil {
		t.Fatal(derr)
	}
	if len(auth.reqs) != 2 || !auth.reqs[0].Interactive || auth.reqs[1].Interactive {
		t.Errorf("requests %+v, want the first one interactive", auth.reqs)
	}
}

// TestGetManagedObjectsPerKind: GetManagedObjects lists the kinds the
// caller may read, and is refused when it may read none.
func TestGetManagedObjectsPerKind(t *testing.T) {
	kinds := func(objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant) []string {
		var out []string
		for _, ifaces := range objs {
			for iface := range ifaces {
				if !slices.Contains(out, iface) {
					out = append(out, iface)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	s, _, auth := newTestServer(t, &authFake{netFake: newNetFake()})
	objs, derr := (&objectManager{s}).GetManagedObjects(":1.1", dbus.Message{})
	if derr != nil {
		t.Fatal(derr)
	}
	want := []string{NetworkInterface, NetworkPortInterface, NWFilterInterface, NWFilterBindingInterface}
	slices.Sort(want)
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Errorf("interfaces %v, want %v", got, want)
	}
	got := slices.Clone(auth.actions)
	slices.Sort(got)
	if !slices.Equal(got, []string{polkit.ActionBindingRead, polkit.ActionNetworkRead, polkit.ActionNWFilterRead}) {
		t.Errorf("actions %v", got)
	}

	auth.deny = polkit.ActionBindingRead
	objs, derr = (&objectManager{s}).GetManagedObjects(":1.1", dbus.Message{})
	if derr != nil || slices.Contains(kinds(objs), NWFilterBindingInterface) || !slices.Contains(kinds(objs), NWFilterInterface) {
		t.Errorf("without binding.read: %v, %v", kinds(objs), derr)
	}

	s.auth = denyAll{}
	if _, derr := (&objectManager{s}).GetManagedObjects(":1.1", dbus.Message{}); errName(derr) != ErrorAccessDenied {
		t.Errorf("reading nothing: %v, want AccessDenied", derr)
	}
}

// denyAll refuses everything.
type denyAll struct{}

func (denyAll) Authorize(_ context.Context, req AuthRequest) error {
	return &DeniedError{Action: req.Action, Reason: "test"}
}
