package integration

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/polkit"
	"github.com/netwarden/netwarden/tests/lab"
)

// apiLab is a lab with netwardend serving its API on the lab bus, and a
// guest whose port (vnet0) bindings can be made for.
type apiLab struct {
	l     *lab.Lab
	bus   *lab.Bus
	conn  *dbus.Conn
	d     *daemon
	guest *lab.Guest
}

// newAPILab starts the lab, its bus and the daemon. With withPolkit,
// polkitd runs on the bus; without, the bus cannot even activate it.
func newAPILab(t *testing.T, withPolkit bool) *apiLab {
	t.Helper()
	l := lab.New(t)
	a := &apiLab{l: l}
	if withPolkit {
		a.bus = l.Bus()
		l.Polkit()
	} else {
		a.bus = l.BusWithoutSystemServices()
	}
	a.conn = a.bus.Conn()
	a.guest = l.AddGuest()
	a.guest.SetAddr("10.77.0.10/24")
	a.d = startDaemon(t, l, "netwardend", nil)
	a.d.waitOwned(t, a.conn)
	a.d.waitReady(t)
	return a
}

// call calls a method as root over godbus and stores the reply in out.
func call(conn *dbus.Conn, path dbus.ObjectPath, method string, args []any, out ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := conn.Object(dbusapi.BusName, path).CallWithContext(ctx, method, 0, args...)
	if c.Err != nil {
		return c.Err
	}
	return c.Store(out...)
}

// errName returns the D-Bus error name of err, "" for nil.
func errName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	if err != nil {
		return "not a D-Bus error: " + err.Error()
	}
	return ""
}

// busctlJSON runs busctl (--json=short) as root, or as the test user
// when as is not nil, and decodes its output's "data".
func (a *apiLab) busctlJSON(t *testing.T, as *lab.TestUser, args ...string) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "busctl", append([]string{"--system", "--json=short"}, args...)...)
	cmd.Env = a.l.Env()
	if as != nil {
		as.As(cmd)
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("busctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, err
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, nil
	}
	var v struct {
		Data any `json:"data"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("busctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return v.Data, nil
}

// busctlCall calls a method with busctl and returns the first value of
// the reply.
func (a *apiLab) busctlCall(t *testing.T, as *lab.TestUser, path dbus.ObjectPath, iface, method, sig string, args ...string) (any, error) {
	t.Helper()
	argv := append([]string{"call", dbusapi.BusName, string(path), iface, method}, sig)
	if sig == "" {
		argv = argv[:len(argv)-1]
	}
	data, err := a.busctlJSON(t, as, append(argv, args...)...)
	if err != nil {
		return nil, err
	}
	if list, ok := data.([]any); ok && len(list) > 0 {
		return list[0], nil
	}
	return data, nil
}

// getProperty reads a property with busctl.
func (a *apiLab) getProperty(t *testing.T, as *lab.TestUser, path dbus.ObjectPath, iface, name string) (any, error) {
	t.Helper()
	return a.busctlJSON(t, as, "get-property", dbusapi.BusName, string(path), iface, name)
}

// dbusSendErr calls a method with dbus-send (as the test user when as
// is not nil) and returns the name of the error it got, "" on success.
// args are dbus-send typed arguments (string:…, uint32:…).
func (a *apiLab) dbusSendErr(t *testing.T, as *lab.TestUser, path dbus.ObjectPath, method string, args ...string) (name, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{"--system", "--print-reply", "--dest=" + dbusapi.BusName, string(path), method}, args...)
	cmd := exec.CommandContext(ctx, "dbus-send", argv...)
	cmd.Env = a.l.Env()
	if as != nil {
		as.As(cmd)
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "", ""
	}
	s := strings.TrimSpace(string(out))
	rest, ok := strings.CutPrefix(s, "Error ")
	if !ok {
		t.Fatalf("dbus-send %s: %v: %s", method, err, s)
	}
	name, msg, _ = strings.Cut(rest, ": ")
	return name, msg
}

func testFilterXML(name string) string {
	return fmt.Sprintf(`<filter name='%s' chain='root'>
  <rule action='drop' direction='out' priority='500'><mac srcmacaddr='52:54:00:de:ad:00'/></rule>
</filter>`, name)
}

func testBindingXML(port string, mac net.HardwareAddr, filter string, params ...[2]string) string {
	s := fmt.Sprintf(`<filterbinding><owner><name>vm-%s</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
<portdev name='%s'/><mac address='%s'/><filterref filter='%s'>`, port, port, mac, filter)
	for _, p := range params {
		s += fmt.Sprintf(`<parameter name='%s' value='%s'/>`, p[0], p[1])
	}
	return s + `</filterref></filterbinding>`
}

// signals subscribes conn to the daemon's signals and returns the
// channel they arrive on.
func signals(t *testing.T, conn *dbus.Conn) chan *dbus.Signal {
	t.Helper()
	if err := conn.AddMatchSignal(dbus.WithMatchSender(dbusapi.BusName)); err != nil {
		t.Fatalf("AddMatch: %v", err)
	}
	ch := make(chan *dbus.Signal, 64)
	conn.Signal(ch)
	return ch
}

// waitSignal waits for a signal called name (interface.member) whose
// body starts with want.
func waitSignal(t *testing.T, ch chan *dbus.Signal, name string, want ...any) *dbus.Signal {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case s := <-ch:
			if s.Name != name || len(s.Body) < len(want) {
				continue
			}
			match := true
			for i, w := range want {
				if fmt.Sprint(s.Body[i]) != fmt.Sprint(w) {
					match = false
				}
			}
			if match {
				return s
			}
		case <-deadline:
			t.Fatalf("no signal %s %v within %v", name, want, timeout)
			return nil
		}
	}
}

// filterNames returns the names of all filters, through the API.
func filterNames(t *testing.T, conn *dbus.Conn) []string {
	t.Helper()
	var paths []dbus.ObjectPath
	if err := call(conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".ListNWFilters", []any{uint32(0)}, &paths); err != nil {
		t.Fatalf("ListNWFilters: %v", err)
	}
	var names []string
	for _, p := range paths {
		var v dbus.Variant
		if err := call(conn, p, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NWFilterInterface, "Name"}, &v); err != nil {
			t.Fatalf("Get Name of %s: %v", p, err)
		}
		names = append(names, v.Value().(string))
	}
	return names
}

// TestAPIFilterLifecycle drives a filter through every filter call and
// property over busctl, and watches the events over godbus.
func TestAPIFilterLifecycle(t *testing.T) {
	a := newAPILab(t, true)
	sigs := signals(t, a.conn)
	mgr := dbusapi.ManagerInterface

	// Built-ins are listed, with their libvirt UUIDs as paths.
	list, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "ListNWFilters", "u", "0")
	if err != nil {
		t.Fatal(err)
	}
	builtins := len(list.([]any))
	ct, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterLookupByName", "s", "clean-traffic")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(list.([]any), ct) || builtins < 20 {
		t.Errorf("ListNWFilters = %v; lacks clean-traffic %v", list, ct)
	}
	if bi, err := a.getProperty(t, nil, dbus.ObjectPath(ct.(string)), dbusapi.NWFilterInterface, "BuiltIn"); err != nil || bi != true {
		t.Errorf("clean-traffic BuiltIn = %v, %v", bi, err)
	}

	// Define.
	got, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterDefineXML", "s", testFilterXML("api-test"))
	if err != nil {
		t.Fatal(err)
	}
	path := dbus.ObjectPath(got.(string))
	if !strings.HasPrefix(string(path), string(dbusapi.NWFilterPathPrefix)+"/_") || strings.Contains(string(path), "-") {
		t.Errorf("filter path %s", path)
	}
	waitSignal(t, sigs, "org.freedesktop.DBus.ObjectManager.InterfacesAdded", path)
	waitSignal(t, sigs, mgr+".NWFilterEvent", path, dbusapi.NWFilterEventDefined)

	// Properties, one by one and all at once.
	uuid, err := a.getProperty(t, nil, path, dbusapi.NWFilterInterface, "UUID")
	if err != nil {
		t.Fatal(err)
	}
	if dbusapi.NWFilterPath(uuid.(string)) != path {
		t.Errorf("UUID %v does not match path %s", uuid, path)
	}
	if name, err := a.getProperty(t, nil, path, dbusapi.NWFilterInterface, "Name"); err != nil || name != "api-test" {
		t.Errorf("Name = %v, %v", name, err)
	}
	if bi, err := a.getProperty(t, nil, path, dbusapi.NWFilterInterface, "BuiltIn"); err != nil || bi != false {
		t.Errorf("BuiltIn = %v, %v", bi, err)
	}
	var all map[string]dbus.Variant
	if err := call(a.conn, path, "org.freedesktop.DBus.Properties.GetAll", []any{dbusapi.NWFilterInterface}, &all); err != nil || len(all) != 3 {
		t.Errorf("GetAll = %v, %v", all, err)
	}

	// Lookups.
	for _, c := range [][2]string{{"NWFilterLookupByName", "api-test"}, {"NWFilterLookupByUUID", uuid.(string)}, {"NWFilterLookupByUUID", strings.ToUpper(uuid.(string))}} {
		if p, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, c[0], "s", c[1]); err != nil || p != string(path) {
			t.Errorf("%s(%s) = %v, %v; want %s", c[0], c[1], p, err, path)
		}
	}
	if list, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "ListNWFilters", "u", "0"); err != nil || len(list.([]any)) != builtins+1 || !slices.Contains(list.([]any), any(string(path))) {
		t.Errorf("ListNWFilters after define = %v, %v", list, err)
	}

	// GetXMLDesc round-trips: defining its output changes nothing.
	xml1, err := a.busctlCall(t, nil, path, dbusapi.NWFilterInterface, "GetXMLDesc", "u", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(xml1.(string), "api-test") || !strings.Contains(xml1.(string), uuid.(string)) || !strings.Contains(xml1.(string), "52:54:00:de:ad:00") {
		t.Errorf("GetXMLDesc = %v", xml1)
	}
	if p, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterDefineXML", "s", xml1.(string)); err != nil || p != string(path) {
		t.Errorf("redefine with GetXMLDesc's output = %v, %v", p, err)
	}
	if xml2, err := a.busctlCall(t, nil, path, dbusapi.NWFilterInterface, "GetXMLDesc", "u", "0"); err != nil || xml2 != xml1 {
		t.Errorf("GetXMLDesc after redefine = %v, %v; want %v", xml2, err, xml1)
	}
	waitSignal(t, sigs, mgr+".NWFilterEvent", path, dbusapi.NWFilterEventDefined)
	if err := call(a.conn, path, dbusapi.NWFilterInterface+".GetXMLDesc", []any{uint32(1)}, new(string)); errName(err) != dbusapi.ErrorInvalidArgument {
		t.Errorf("GetXMLDesc(1): %v, want InvalidArgument", err)
	}

	// Introspection of the object, of the intermediate node, and the tree.
	out, err := a.bus.Busctl("introspect", dbusapi.BusName, string(path))
	if err != nil || !hasLine(out, []string{dbusapi.NWFilterInterface, "interface"}) ||
		!hasLine(out, []string{".GetXMLDesc", "method", "u", "s"}) || !hasLine(out, []string{".Name", "property", "s", `"api-test"`, "const"}) {
		t.Errorf("busctl introspect %s: %v\n%s", path, err, out)
	}
	out, err = a.bus.Busctl("tree", dbusapi.BusName)
	if err != nil || !strings.Contains(out, string(path)) || !strings.Contains(out, string(ct.(string))) {
		t.Errorf("busctl tree: %v\n%s", err, out)
	}

	// ObjectManager.
	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	if err := call(a.conn, dbusapi.ObjectPath, "org.freedesktop.DBus.ObjectManager.GetManagedObjects", nil, &objs); err != nil {
		t.Fatal(err)
	}
	if v := objs[path][dbusapi.NWFilterInterface]["Name"]; v.Value() != "api-test" || len(objs) != builtins+1 {
		t.Errorf("GetManagedObjects: %d objects, %s: %v", len(objs), path, objs[path])
	}

	// A built-in cannot be undefined.
	if err := call(a.conn, dbus.ObjectPath(ct.(string)), dbusapi.NWFilterInterface+".Undefine", nil); errName(err) != dbusapi.ErrorInvalidArgument {
		t.Errorf("Undefine clean-traffic: %v, want InvalidArgument", err)
	}

	// Undefine: the object goes.
	if _, err := a.busctlCall(t, nil, path, dbusapi.NWFilterInterface, "Undefine", ""); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, sigs, "org.freedesktop.DBus.ObjectManager.InterfacesRemoved", path)
	waitSignal(t, sigs, mgr+".NWFilterEvent", path, dbusapi.NWFilterEventUndefined)
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterLookupByName", []any{"api-test"}, new(dbus.ObjectPath)); errName(err) != dbusapi.ErrorNotFound {
		t.Errorf("lookup after undefine: %v, want NotFound", err)
	}
	for _, m := range []string{"org.freedesktop.DBus.Introspectable.Introspect", dbusapi.NWFilterInterface + ".GetXMLDesc"} {
		args := []any{}
		if strings.HasSuffix(m, "GetXMLDesc") {
			args = []any{uint32(0)}
		}
		if err := call(a.conn, path, m, args, new(string)); errName(err) != dbusapi.ErrorUnknownObject {
			t.Errorf("%s on an undefined filter: %v, want UnknownObject", m, err)
		}
	}
	if _, err := os.Stat(filepath.Join(a.d.configDir, "nwfilter", "api-test.xml")); !os.IsNotExist(err) {
		t.Errorf("definition file after undefine: %v", err)
	}

	// Overriding a built-in keeps its object; undefining the override
	// brings the built-in back.
	ctXML, err := a.busctlCall(t, nil, dbus.ObjectPath(ct.(string)), dbusapi.NWFilterInterface, "GetXMLDesc", "u", "0")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterDefineXML", "s", ctXML.(string)); err != nil || p != ct {
		t.Fatalf("override clean-traffic: %v, %v", p, err)
	}
	if bi, err := a.getProperty(t, nil, dbus.ObjectPath(ct.(string)), dbusapi.NWFilterInterface, "BuiltIn"); err != nil || bi != false {
		t.Errorf("overridden clean-traffic BuiltIn = %v, %v", bi, err)
	}
	if err := call(a.conn, dbus.ObjectPath(ct.(string)), dbusapi.NWFilterInterface+".Undefine", nil); err != nil {
		t.Fatal(err)
	}
	if bi, err := a.getProperty(t, nil, dbus.ObjectPath(ct.(string)), dbusapi.NWFilterInterface, "BuiltIn"); err != nil || bi != true {
		t.Errorf("restored clean-traffic BuiltIn = %v, %v", bi, err)
	}
}

// TestAPIBindingLifecycle binds clean-traffic to the guest's port over
// the API and reads, lists and deletes the binding.
func TestAPIBindingLifecycle(t *testing.T) {
	a := newAPILab(t, true)
	lab.Require(t, "nft")
	sigs := signals(t, a.conn)
	mgr := dbusapi.ManagerInterface
	port := a.guest.HostIface
	xml := testBindingXML(port, a.guest.MAC, "clean-traffic", [2]string{"IP", "10.77.0.10"})

	if list, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "ListNWFilterBindings", "u", "0"); err != nil || len(list.([]any)) != 0 {
		t.Errorf("ListNWFilterBindings before = %v, %v", list, err)
	}
	got, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterBindingCreateXML", "su", xml, "0")
	if err != nil {
		t.Fatal(err)
	}
	path := dbus.ObjectPath(got.(string))
	if path != dbusapi.NWFilterBindingPathPrefix+"/"+dbus.ObjectPath(port) {
		t.Errorf("binding path %s", path)
	}
	waitSignal(t, sigs, "org.freedesktop.DBus.ObjectManager.InterfacesAdded", path)
	waitSignal(t, sigs, mgr+".NWFilterBindingEvent", path, dbusapi.NWFilterBindingEventCreated)
	if ruleset := a.l.Hypervisor().MustRun("nft", "list", "table", "bridge", "netwarden"); !strings.Contains(ruleset, `"`+port+`"`) {
		t.Errorf("the kernel does not filter %s:\n%s", port, ruleset)
	}

	for name, want := range map[string]any{"PortDev": port, "FilterName": "clean-traffic", "Mode": "enforce", "Reason": ""} {
		if v, err := a.getProperty(t, nil, path, dbusapi.NWFilterBindingInterface, name); err != nil || v != want {
			t.Errorf("%s = %v, %v; want %v", name, v, err, want)
		}
	}
	if p, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterBindingLookupByPortDev", "s", port); err != nil || p != string(path) {
		t.Errorf("NWFilterBindingLookupByPortDev = %v, %v", p, err)
	}
	if list, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "ListNWFilterBindings", "u", "0"); err != nil || len(list.([]any)) != 1 || list.([]any)[0] != string(path) {
		t.Errorf("ListNWFilterBindings = %v, %v", list, err)
	}
	desc, err := a.busctlCall(t, nil, path, dbusapi.NWFilterBindingInterface, "GetXMLDesc", "u", "0")
	if err != nil || !strings.Contains(desc.(string), "<portdev name='"+port+"'/>") || !strings.Contains(desc.(string), "10.77.0.10") {
		t.Errorf("GetXMLDesc = %v, %v", desc, err)
	}
	out, err := a.bus.Busctl("introspect", dbusapi.BusName, string(path))
	if err != nil || !hasLine(out, []string{".Mode", "property", "s", `"enforce"`}) || !hasLine(out, []string{".Delete", "method"}) {
		t.Errorf("busctl introspect %s: %v\n%s", path, err, out)
	}
	if out, err := a.bus.Busctl("tree", dbusapi.BusName); err != nil || !strings.Contains(out, string(path)) {
		t.Errorf("busctl tree: %v\n%s", err, out)
	}

	// Refusals, by name.
	for _, c := range []struct {
		what, want string
		xml        string
		flags      uint32
	}{
		{"second binding", dbusapi.ErrorExists, xml, 0},
		{"unknown flag", dbusapi.ErrorInvalidArgument, xml, 2},
		{"undefined filter", dbusapi.ErrorInvalidArgument, testBindingXML("vnet9", a.guest.MAC, "no-such-filter"), 0},
		{"missing variable", dbusapi.ErrorInvalidArgument, testBindingXML("vnet9", a.guest.MAC, "clean-traffic", [2]string{"CTRL_IP_LEARNING", "none"}), 0},
	} {
		err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterBindingCreateXML", []any{c.xml, c.flags}, new(dbus.ObjectPath))
		if errName(err) != c.want {
			t.Errorf("%s: %v, want %s", c.what, err, c.want)
		}
	}
	// The VALIDATE flag is accepted (on a port of its own).
	var p9 dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterBindingCreateXML", []any{testBindingXML("vnet9", a.guest.MAC, "allow-arp"), dbusapi.BindingCreateValidate}, &p9); err != nil {
		t.Errorf("create with VALIDATE: %v", err)
	} else if err := call(a.conn, p9, dbusapi.NWFilterBindingInterface+".Delete", nil); err != nil {
		t.Errorf("delete vnet9: %v", err)
	}

	// A filter in use cannot be undefined.
	var fpath dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterDefineXML", []any{testFilterXML("used")}, &fpath); err != nil {
		t.Fatal(err)
	}
	var bpath dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterBindingCreateXML", []any{testBindingXML("vnet8", a.guest.MAC, "used"), uint32(0)}, &bpath); err != nil {
		t.Fatal(err)
	}
	err = call(a.conn, fpath, dbusapi.NWFilterInterface+".Undefine", nil)
	if errName(err) != dbusapi.ErrorInUse || !strings.Contains(err.Error(), "vnet8") {
		t.Errorf("undefine of a used filter: %v, want InUse naming vnet8", err)
	}

	// Delete.
	for _, p := range []dbus.ObjectPath{bpath, path} {
		if _, err := a.busctlCall(t, nil, p, dbusapi.NWFilterBindingInterface, "Delete", ""); err != nil {
			t.Fatal(err)
		}
	}
	waitSignal(t, sigs, "org.freedesktop.DBus.ObjectManager.InterfacesRemoved", path)
	waitSignal(t, sigs, mgr+".NWFilterBindingEvent", path, dbusapi.NWFilterBindingEventDeleted)
	if err := call(a.conn, path, dbusapi.NWFilterBindingInterface+".Delete", nil); errName(err) != dbusapi.ErrorUnknownObject {
		t.Errorf("second Delete: %v, want UnknownObject", err)
	}
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterBindingLookupByPortDev", []any{port}, new(dbus.ObjectPath)); errName(err) != dbusapi.ErrorNotFound {
		t.Errorf("lookup after delete: %v, want NotFound", err)
	}
	if ruleset := a.l.Hypervisor().MustRun("nft", "list", "table", "bridge", "netwarden"); strings.Contains(ruleset, `"`+port+`"`) {
		t.Errorf("the kernel still filters %s:\n%s", port, ruleset)
	}
}

// apiCall is a call as dbus-send arguments; path "" stands for the
// test's filter object.
type apiCall struct {
	path   dbus.ObjectPath
	method string
	args   []string
	// action is the polkit action the call needs.
	action string
}

// manageCalls are the calls changing filters and bindings, each with the
// action it needs (org.netwarden1.nwfilter.manage for filters,
// org.netwarden1.binding.manage for bindings).
func manageCalls(bindingXML string) []apiCall {
	return []apiCall{
		{dbusapi.ObjectPath, dbusapi.ManagerInterface + ".NWFilterDefineXML", []string{"string:" + testFilterXML("by-user")}, polkit.ActionNWFilterManage},
		{"", dbusapi.NWFilterInterface + ".Undefine", nil, polkit.ActionNWFilterManage},
		{dbusapi.ObjectPath, dbusapi.ManagerInterface + ".NWFilterBindingCreateXML", []string{"string:" + bindingXML, "uint32:0"}, polkit.ActionBindingManage},
		{dbusapi.NWFilterBindingPathPrefix + "/vnet0", dbusapi.NWFilterBindingInterface + ".Delete", nil, polkit.ActionBindingManage},
	}
}

// apiTestNetworkXML is a small isolated network.
const apiTestNetworkXML = `<network><name>api-net</name><bridge name='nwapi0'/><ip address='10.88.0.1' prefix='24'/></network>`

// TestAPIAuthorization: the unprivileged user reads (network.read,
// nwfilter.read and binding.read are granted to everyone) but may not
// change anything; a polkit rule granting it exactly
// org.netwarden1.nwfilter.manage lets filter definitions through, and
// neither bindings nor networks.
func TestAPIAuthorization(t *testing.T) {
	a := newAPILab(t, true)
	user := a.l.TestUser()
	mgr := dbusapi.ManagerInterface

	// Root sets up a filter, a binding and a network for the user to try
	// to change.
	var fpath, bpath, npath dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterDefineXML", []any{testFilterXML("by-root")}, &fpath); err != nil {
		t.Fatal(err)
	}
	bxml := testBindingXML(a.guest.HostIface, a.guest.MAC, "clean-traffic", [2]string{"IP", "10.77.0.10"})
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterBindingCreateXML", []any{bxml, uint32(0)}, &bpath); err != nil {
		t.Fatal(err)
	}
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NetworkDefineXML", []any{apiTestNetworkXML}, &npath); err != nil {
		t.Fatal(err)
	}

	// Reading works for the user, through every read call.
	if list, err := a.busctlCall(t, &user, dbusapi.ObjectPath, mgr, "ListNWFilters", "u", "0"); err != nil || !slices.Contains(list.([]any), any(string(fpath))) {
		t.Errorf("ListNWFilters as %s: %v, %v", user.Name, list, err)
	}
	if list, err := a.busctlCall(t, &user, dbusapi.ObjectPath, mgr, "ListNWFilterBindings", "u", "0"); err != nil || len(list.([]any)) != 1 {
		t.Errorf("ListNWFilterBindings as %s: %v, %v", user.Name, list, err)
	}
	if list, err := a.busctlCall(t, &user, dbusapi.ObjectPath, mgr, "ListNetworks", "u", "0"); err != nil || !slices.Contains(list.([]any), any(string(npath))) {
		t.Errorf("ListNetworks as %s: %v, %v", user.Name, list, err)
	}
	for _, c := range [][3]string{
		{"NWFilterLookupByName", "by-root", string(fpath)},
		{"NWFilterBindingLookupByPortDev", a.guest.HostIface, string(bpath)},
		{"NetworkLookupByName", "api-net", string(npath)},
	} {
		if p, err := a.busctlCall(t, &user, dbusapi.ObjectPath, mgr, c[0], "s", c[1]); err != nil || p != c[2] {
			t.Errorf("%s as %s: %v, %v", c[0], user.Name, p, err)
		}
	}
	if uuid, err := a.getProperty(t, &user, fpath, dbusapi.NWFilterInterface, "UUID"); err != nil {
		t.Errorf("UUID as %s: %v", user.Name, err)
	} else if p, err := a.busctlCall(t, &user, dbusapi.ObjectPath, mgr, "NWFilterLookupByUUID", "s", uuid.(string)); err != nil || p != string(fpath) {
		t.Errorf("NWFilterLookupByUUID as %s: %v, %v", user.Name, p, err)
	}
	if mode, err := a.getProperty(t, &user, bpath, dbusapi.NWFilterBindingInterface, "Mode"); err != nil || mode != "enforce" {
		t.Errorf("Mode as %s: %v, %v", user.Name, mode, err)
	}
	if name, err := a.getProperty(t, &user, npath, dbusapi.NetworkInterface, "Name"); err != nil || name != "api-net" {
		t.Errorf("network Name as %s: %v, %v", user.Name, name, err)
	}
	for _, p := range []struct {
		path  dbus.ObjectPath
		iface string
	}{{fpath, dbusapi.NWFilterInterface}, {bpath, dbusapi.NWFilterBindingInterface}, {npath, dbusapi.NetworkInterface}} {
		if x, err := a.busctlCall(t, &user, p.path, p.iface, "GetXMLDesc", "u", "0"); err != nil || !strings.Contains(x.(string), "<") {
			t.Errorf("GetXMLDesc of %s as %s: %v, %v", p.path, user.Name, x, err)
		}
	}
	if objs, err := a.busctlCall(t, &user, dbusapi.ObjectPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", ""); err != nil {
		t.Errorf("GetManagedObjects as %s: %v", user.Name, err)
	} else if m, _ := objs.(map[string]any); m[string(fpath)] == nil || m[string(bpath)] == nil || m[string(npath)] == nil {
		t.Errorf("GetManagedObjects as %s: %v", user.Name, objs)
	}

	// Every change is refused, by name, naming its action; nothing
	// changes.
	networkCalls := []apiCall{
		{dbusapi.ObjectPath, mgr + ".NetworkDefineXML", []string{"string:" + strings.Replace(apiTestNetworkXML, "api-net", "user-net", 1)}, polkit.ActionNetworkManage},
		{npath, dbusapi.NetworkInterface + ".Create", nil, polkit.ActionNetworkManage},
		{npath, dbusapi.NetworkInterface + ".Undefine", nil, polkit.ActionNetworkManage},
		{npath, "org.freedesktop.DBus.Properties.Set", []string{"string:" + dbusapi.NetworkInterface, "string:Autostart", "variant:boolean:true"}, polkit.ActionNetworkManage},
	}
	for _, c := range append(manageCalls(bxml), networkCalls...) {
		path := c.path
		if path == "" {
			path = fpath
		}
		name, msg := a.dbusSendErr(t, &user, path, c.method, c.args...)
		if name != dbusapi.ErrorAccessDenied || !strings.Contains(msg, c.action) {
			t.Errorf("%s as %s: %q %q, want AccessDenied naming %s", c.method, user.Name, name, msg, c.action)
		}
	}
	// busctl shows AccessDenied as "Access denied" (it drops the message).
	if _, err := a.busctlCall(t, &user, dbusapi.ObjectPath, mgr, "NWFilterDefineXML", "s", testFilterXML("by-user")); err == nil || !strings.Contains(err.Error(), "Access denied") {
		t.Errorf("busctl NWFilterDefineXML as %s: %v, want Access denied", user.Name, err)
	}
	if names := filterNames(t, a.conn); !slices.Contains(names, "by-root") || slices.Contains(names, "by-user") {
		t.Errorf("filters after refused calls: %v", names)
	}
	if err := call(a.conn, bpath, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NWFilterBindingInterface, "Mode"}, new(dbus.Variant)); err != nil {
		t.Errorf("binding after refused Delete: %v", err)
	}
	var active, autostart dbus.Variant
	if err := call(a.conn, npath, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NetworkInterface, "Active"}, &active); err != nil || active.Value() != false {
		t.Errorf("network Active after refused calls: %v, %v", active, err)
	}
	if err := call(a.conn, npath, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NetworkInterface, "Autostart"}, &autostart); err != nil || autostart.Value() != false {
		t.Errorf("network Autostart after refused calls: %v, %v", autostart, err)
	}

	// A rule grants the user exactly org.netwarden1.nwfilter.manage.
	a.l.Polkit().AddRule("50-netwarden-test.rules", fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (action.id == %q && subject.user == %q) { return polkit.Result.YES; }
});
`, polkit.ActionNWFilterManage, user.Name))
	deadline := time.Now().Add(timeout)
	for {
		name, msg := a.dbusSendErr(t, &user, dbusapi.ObjectPath, mgr+".NWFilterDefineXML", "string:"+testFilterXML("by-user"))
		if name == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("define as %s with the rule: %s %s", user.Name, name, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var upath dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterLookupByName", []any{"by-user"}, &upath); err != nil {
		t.Fatal(err)
	}
	// Filters: allowed. Bindings and networks: still refused.
	for _, c := range append(manageCalls(bxml)[1:], networkCalls[0]) {
		path := c.path
		if path == "" {
			path = upath
		}
		name, msg := a.dbusSendErr(t, &user, path, c.method, c.args...)
		switch c.action {
		case polkit.ActionNWFilterManage:
			if name != "" {
				t.Errorf("%s as %s with the rule: %s %s", c.method, user.Name, name, msg)
			}
		default:
			if name != dbusapi.ErrorAccessDenied || !strings.Contains(msg, c.action) {
				t.Errorf("%s as %s with the nwfilter.manage rule: %q %q, want AccessDenied naming %s", c.method, user.Name, name, msg, c.action)
			}
		}
	}
	if names := filterNames(t, a.conn); slices.Contains(names, "by-user") {
		t.Errorf("filters after the user's undefine: %v", names)
	}
	if err := call(a.conn, bpath, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NWFilterBindingInterface, "Mode"}, new(dbus.Variant)); err != nil {
		t.Errorf("binding after the refused Delete: %v", err)
	}
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".NetworkLookupByName", []any{"user-net"}, new(dbus.ObjectPath)); errName(err) != dbusapi.ErrorNotFound {
		t.Errorf("network after the refused define: %v, want NotFound", err)
	}
	// The rule covers nothing else: polkit still refuses the user the
	// other manage actions.
	for _, action := range []string{polkit.ActionNetworkManage, polkit.ActionBindingManage} {
		if ok := userAuthorized(t, a, user, action); ok {
			t.Errorf("the rule also granted %s", action)
		}
	}
	if ok := userAuthorized(t, a, user, polkit.ActionNWFilterManage); !ok {
		t.Errorf("the rule does not grant %s", polkit.ActionNWFilterManage)
	}
}

// userAuthorized asks polkitd whether a process of the test user is
// authorized for action.
func userAuthorized(t *testing.T, a *apiLab, user lab.TestUser, action string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := user.As(exec.CommandContext(ctx, "sleep", "60"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	start, err := lab.StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	subject := polkit.ProcessSubject(uint32(cmd.Process.Pid), start, int32(user.UID))
	res, err := polkit.NewAuthority(a.conn).Check(ctx, subject, action, 0)
	if err != nil {
		t.Fatalf("CheckAuthorization %s: %v", action, err)
	}
	return res.Authorized
}

// TestAPIWithoutPolkit: with polkitd neither running nor activatable,
// root may do everything and everyone else nothing, not even read.
func TestAPIWithoutPolkit(t *testing.T) {
	a := newAPILab(t, false)
	user := a.l.TestUser()
	mgr := dbusapi.ManagerInterface
	var names []string
	if err := a.conn.BusObject().Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, "org.freedesktop.PolicyKit1") || hasOwner(t, a.conn, "org.freedesktop.PolicyKit1") {
		t.Fatalf("polkitd is reachable: activatable %v", names)
	}

	// Root manages.
	got, err := a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterDefineXML", "s", testFilterXML("no-polkit"))
	if err != nil {
		t.Fatal(err)
	}
	fpath := dbus.ObjectPath(got.(string))
	bxml := testBindingXML(a.guest.HostIface, a.guest.MAC, "clean-traffic", [2]string{"IP", "10.77.0.10"})
	got, err = a.busctlCall(t, nil, dbusapi.ObjectPath, mgr, "NWFilterBindingCreateXML", "su", bxml, "0")
	if err != nil {
		t.Fatal(err)
	}
	bpath := dbus.ObjectPath(got.(string))
	if mode, err := a.getProperty(t, nil, bpath, dbusapi.NWFilterBindingInterface, "Mode"); err != nil || mode != "enforce" {
		t.Errorf("Mode = %v, %v", mode, err)
	}

	// The user may do nothing, not even read.
	for _, c := range append(manageCalls(bxml),
		apiCall{dbusapi.ObjectPath, mgr + ".ListNWFilters", []string{"uint32:0"}, polkit.ActionNWFilterRead},
		apiCall{"", dbusapi.NWFilterInterface + ".GetXMLDesc", []string{"uint32:0"}, polkit.ActionNWFilterRead},
		apiCall{dbusapi.ObjectPath, mgr + ".ListNWFilterBindings", []string{"uint32:0"}, polkit.ActionBindingRead},
		apiCall{dbusapi.ObjectPath, mgr + ".ListNetworks", []string{"uint32:0"}, polkit.ActionNetworkRead},
		apiCall{dbusapi.ObjectPath, mgr + ".NetworkDefineXML", []string{"string:" + apiTestNetworkXML}, polkit.ActionNetworkManage},
	) {
		path := c.path
		if path == "" {
			path = fpath
		}
		name, msg := a.dbusSendErr(t, &user, path, c.method, c.args...)
		if name != dbusapi.ErrorAccessDenied || !strings.Contains(msg, c.action) {
			t.Errorf("%s as %s: %q %q, want AccessDenied naming %s", c.method, user.Name, name, msg, c.action)
		}
	}
	if _, err := a.getProperty(t, &user, fpath, dbusapi.NWFilterInterface, "Name"); err == nil {
		t.Errorf("property read as %s allowed without polkit", user.Name)
	}

	// Root undoes it all.
	if _, err := a.busctlCall(t, nil, bpath, dbusapi.NWFilterBindingInterface, "Delete", ""); err != nil {
		t.Error(err)
	}
	if _, err := a.busctlCall(t, nil, fpath, dbusapi.NWFilterInterface, "Undefine", ""); err != nil {
		t.Error(err)
	}
}

// TestAPIBadInput: malformed and hostile input gets a named error,
// changes nothing, and the daemon keeps serving.
func TestAPIBadInput(t *testing.T) {
	a := newAPILab(t, true)
	mgr := dbusapi.ManagerInterface
	before := filterNames(t, a.conn)
	stored := func() []string {
		entries, _ := os.ReadDir(filepath.Join(a.d.configDir, "nwfilter"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	storedBefore := stored()
	long := strings.Repeat("x", 200)
	hostile := []string{"has space", `quo"te`, "quo'te", "semi;colon", long, "", "../etc", "a\nb"}
	// Linux allows quotes and ';' in interface names: such ports can be
	// bound, and their objects' paths are escaped.
	validPorts := []string{`quo"te`, "quo'te", "semi;colon"}

	cases := []struct {
		what, method string
		arg          any
		want         string
	}{
		{"malformed XML", "NWFilterDefineXML", "<filter name='x'><rule", dbusapi.ErrorInvalidArgument},
		{"not a filter", "NWFilterDefineXML", "<network/>", dbusapi.ErrorInvalidArgument},
		{"empty XML", "NWFilterDefineXML", "", dbusapi.ErrorInvalidArgument},
		{"cycle", "NWFilterDefineXML", "<filter name='self'><filterref filter='self'/></filter>", dbusapi.ErrorInvalidArgument},
		{"UUID of another filter", "NWFilterDefineXML", "<filter name='thief'><uuid>" + builtinUUID(t, a, "clean-traffic") + "</uuid></filter>", dbusapi.ErrorExists},
		{"unknown name", "NWFilterLookupByName", "no-such-filter", dbusapi.ErrorNotFound},
		{"unknown UUID", "NWFilterLookupByUUID", "00000000-0000-0000-0000-000000000000", dbusapi.ErrorNotFound},
		{"not a UUID", "NWFilterLookupByUUID", "not-a-uuid", dbusapi.ErrorNotFound},
		{"unknown port", "NWFilterBindingLookupByPortDev", "vnet99", dbusapi.ErrorNotFound},
		{"malformed binding", "NWFilterBindingCreateXML", "<filterbinding>", dbusapi.ErrorInvalidArgument},
	}
	for _, h := range hostile {
		cases = append(cases,
			struct {
				what, method string
				arg          any
				want         string
			}{fmt.Sprintf("define %q", h), "NWFilterDefineXML", testFilterXML(strings.ReplaceAll(h, "'", "&apos;")), dbusapi.ErrorInvalidArgument},
			struct {
				what, method string
				arg          any
				want         string
			}{fmt.Sprintf("lookup %q", h), "NWFilterLookupByName", h, dbusapi.ErrorNotFound},
			struct {
				what, method string
				arg          any
				want         string
			}{fmt.Sprintf("lookup port %q", h), "NWFilterBindingLookupByPortDev", h, dbusapi.ErrorNotFound},
		)
		if !slices.Contains(validPorts, h) {
			cases = append(cases, struct {
				what, method string
				arg          any
				want         string
			}{fmt.Sprintf("bind port %q", h), "NWFilterBindingCreateXML", testBindingXML(strings.ReplaceAll(h, "'", "&apos;"), a.guest.MAC, "allow-arp"), dbusapi.ErrorInvalidArgument})
		}
	}
	for _, c := range cases {
		args := []any{c.arg}
		if c.method == "NWFilterBindingCreateXML" {
			args = append(args, uint32(0))
		}
		err := call(a.conn, dbusapi.ObjectPath, mgr+"."+c.method, args, new(dbus.ObjectPath))
		if errName(err) != c.want {
			t.Errorf("%s: %v, want %s", c.what, err, c.want)
		}
	}
	// Paths that stand for nothing.
	for _, p := range []dbus.ObjectPath{
		dbusapi.NWFilterPathPrefix + "/_zz", dbusapi.NWFilterPathPrefix + "/x/y", dbusapi.NWFilterBindingPathPrefix + "/_zz",
		dbusapi.NWFilterBindingPathPrefix + "/vnet99", dbusapi.NWFilterBindingPath(long),
	} {
		if err := call(a.conn, p, "org.freedesktop.DBus.Properties.GetAll", []any{""}, new(map[string]dbus.Variant)); errName(err) != dbusapi.ErrorUnknownObject {
			t.Errorf("GetAll on %s: %v, want UnknownObject", p, err)
		}
	}
	for _, port := range validPorts {
		var p, q dbus.ObjectPath
		var v dbus.Variant
		if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterBindingCreateXML", []any{testBindingXML(strings.ReplaceAll(port, "'", "&apos;"), a.guest.MAC, "allow-arp"), uint32(0)}, &p); err != nil {
			t.Errorf("bind port %q: %v", port, err)
			continue
		}
		if err := call(a.conn, dbusapi.ObjectPath, mgr+".NWFilterBindingLookupByPortDev", []any{port}, &q); err != nil || q != p {
			t.Errorf("lookup port %q: %s, %v; want %s", port, q, err, p)
		}
		if err := call(a.conn, p, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NWFilterBindingInterface, "PortDev"}, &v); err != nil || v.Value() != port {
			t.Errorf("PortDev of %s = %v, %v; want %q", p, v, err, port)
		}
		if err := call(a.conn, p, dbusapi.NWFilterBindingInterface+".Delete", nil); err != nil {
			t.Errorf("delete %s: %v", p, err)
		}
	}
	if after := filterNames(t, a.conn); !slices.Equal(after, before) {
		t.Errorf("filters changed:\n%v\nwant\n%v", after, before)
	}
	if after := stored(); !slices.Equal(after, storedBefore) {
		t.Errorf("stored definitions changed: %v, want %v", after, storedBefore)
	}
	var bindings []dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, mgr+".ListNWFilterBindings", []any{uint32(0)}, &bindings); err != nil || len(bindings) != 0 {
		t.Errorf("bindings after refused creates: %v, %v", bindings, err)
	}
	if _, err := a.bus.Busctl("get-property", dbusapi.BusName, string(dbusapi.ObjectPath), mgr, "Version"); err != nil || !a.d.Alive() {
		t.Errorf("daemon no longer serving: %v", err)
	}
}

// builtinUUID returns a filter's UUID through the API.
func builtinUUID(t *testing.T, a *apiLab, name string) string {
	t.Helper()
	var p dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterLookupByName", []any{name}, &p); err != nil {
		t.Fatal(err)
	}
	var v dbus.Variant
	if err := call(a.conn, p, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NWFilterInterface, "UUID"}, &v); err != nil {
		t.Fatal(err)
	}
	return v.Value().(string)
}

// TestAPIConcurrentClients: 50 clients, each on its own connection,
// define a filter and list the filters at the same time; every call is
// answered and no definition is lost.
func TestAPIConcurrentClients(t *testing.T) {
	a := newAPILab(t, true)
	const clients = 50
	before := len(filterNames(t, a.conn))
	conns := make([]*dbus.Conn, clients)
	for i := range conns {
		conns[i] = a.bus.Conn()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p dbus.ObjectPath
			if err := call(conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterDefineXML", []any{testFilterXML(fmt.Sprintf("conc-%02d", i))}, &p); err != nil {
				errs <- fmt.Errorf("client %d define: %w", i, err)
			}
			var list []dbus.ObjectPath
			if err := call(conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".ListNWFilters", []any{uint32(0)}, &list); err != nil {
				errs <- fmt.Errorf("client %d list: %w", i, err)
			} else if !slices.Contains(list, p) {
				errs <- fmt.Errorf("client %d: its filter %s is not listed", i, p)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	names := filterNames(t, a.conn)
	if len(names) != before+clients {
		t.Errorf("%d filters, want %d", len(names), before+clients)
	}
	for i := 0; i < clients; i++ {
		if !slices.Contains(names, fmt.Sprintf("conc-%02d", i)) {
			t.Errorf("conc-%02d lost", i)
		}
	}
}

// hungServiceArg makes the test binary run hungService (see TestMain).
const hungServiceArg = "-hung-service"

// hungService owns name on the system bus and never answers a call, as
// a hung polkitd would. It runs until it is killed.
func hungService(name string) int {
	conn, err := dbus.ConnectSystemBus(dbus.WithHandler(hangingHandler{}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hung service:", err)
		return 1
	}
	for {
		reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
		if err == nil && reply == dbus.RequestNameReplyPrimaryOwner {
			break
		}
		// The bus policy allowing it may not be loaded yet.
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("owning", name)
	select {}
}

// hangingHandler never finds an object: every call waits forever.
type hangingHandler struct{}

func (hangingHandler) LookupObject(dbus.ObjectPath) (dbus.ServerObject, bool) { select {} }

// TestAPIHungPolkit: a polkitd that owns its name but never answers
// does not hang the API: after the authorization timeout root is
// allowed and everyone else refused, and calls needing no authorization
// are answered meanwhile.
func TestAPIHungPolkit(t *testing.T) {
	l := lab.New(t)
	bus := l.BusWithoutSystemServices()
	conn := bus.Conn()
	user := l.TestUser()
	const policy = `<busconfig><policy user="root"><allow own="org.freedesktop.PolicyKit1"/></policy></busconfig>`
	if err := os.WriteFile(filepath.Join(bus.PolicyDir, "hung-polkit.conf"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hung := l.Start("hung-polkitd", exec.Command(self, hungServiceArg, "org.freedesktop.PolicyKit1"))
	deadline := time.Now().Add(timeout)
	for !hasOwner(t, conn, "org.freedesktop.PolicyKit1") {
		if !hung.Alive() || time.Now().After(deadline) {
			t.Fatalf("hung polkitd does not own its name")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)
	d.waitReady(t)
	a := &apiLab{l: l, bus: bus, conn: conn, d: d}

	start := time.Now()
	var wg sync.WaitGroup
	var rootErr error
	var userErr, userMsg string
	wg.Add(2)
	go func() {
		defer wg.Done()
		rootErr = call(conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterDefineXML", []any{testFilterXML("while-hung")}, new(dbus.ObjectPath))
	}()
	go func() {
		defer wg.Done()
		userErr, userMsg = a.dbusSendErr(t, &user, dbusapi.ObjectPath, dbusapi.ManagerInterface+".ListNWFilters", "uint32:0")
	}()
	// Meanwhile the daemon answers what needs no authorization.
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	if _, err := bus.Busctl("get-property", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.ManagerInterface, "Version"); err != nil || time.Since(t0) > 2*time.Second {
		t.Errorf("Version while polkit hangs: %v after %v", err, time.Since(t0))
	}
	wg.Wait()
	took := time.Since(start)
	if rootErr != nil {
		t.Errorf("root's define while polkit hangs: %v", rootErr)
	}
	if userErr != dbusapi.ErrorAccessDenied || !strings.Contains(userMsg, polkit.ActionNWFilterRead) {
		t.Errorf("user's list while polkit hangs: %s %s, want AccessDenied naming %s", userErr, userMsg, polkit.ActionNWFilterRead)
	}
	if took < dbusapi.DefaultAuthTimeout || took > dbusapi.DefaultAuthTimeout+10*time.Second {
		t.Errorf("calls took %v, want about the authorization timeout %v", took, dbusapi.DefaultAuthTimeout)
	}
}

// TestAPIIntrospectionMatchesInterfaceFiles: what the running daemon
// declares for each of its interfaces is exactly the committed
// description in dbusapi/interfaces (which make install installs).
func TestAPIIntrospectionMatchesInterfaceFiles(t *testing.T) {
	a := newAPILab(t, true)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var fpath, bpath dbus.ObjectPath
	if err := call(a.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterLookupByName", []any{"allow-arp"}, &fpath); err != nil {
		t.Fatal(err)
	}
	bxml := testBindingXML(a.guest.HostIface, a.guest.MAC, "allow-arp")
	if err := call(a.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NWFilterBindingCreateXML", []any{bxml, uint32(0)}, &bpath); err != nil {
		t.Fatal(err)
	}
	for path, iface := range map[dbus.ObjectPath]string{
		dbusapi.ObjectPath: dbusapi.ManagerInterface,
		fpath:              dbusapi.NWFilterInterface,
		bpath:              dbusapi.NWFilterBindingInterface,
	} {
		var doc string
		if err := call(a.conn, path, "org.freedesktop.DBus.Introspectable.Introspect", nil, &doc); err != nil {
			t.Fatalf("Introspect %s: %v", path, err)
		}
		var live introspect.Node
		if err := xml.Unmarshal([]byte(doc), &live); err != nil {
			t.Fatalf("introspection of %s: %v", path, err)
		}
		data, err := os.ReadFile(filepath.Join(root, "dbusapi", "interfaces", iface+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		var committed introspect.Node
		if err := xml.Unmarshal(data, &committed); err != nil || len(committed.Interfaces) != 1 {
			t.Fatalf("%s.xml: %v", iface, err)
		}
		var found bool
		for _, i := range live.Interfaces {
			if i.Name == iface {
				found = true
				if !reflect.DeepEqual(i, committed.Interfaces[0]) {
					t.Errorf("%s on %s differs from dbusapi/interfaces/%s.xml:\n%+v\nwant\n%+v", iface, path, iface, i, committed.Interfaces[0])
				}
			}
		}
		if !found {
			t.Errorf("%s does not declare %s:\n%s", path, iface, doc)
		}
	}
	// The intermediate nodes list their objects.
	var doc string
	if err := call(a.conn, dbusapi.NWFilterBindingPathPrefix, "org.freedesktop.DBus.Introspectable.Introspect", nil, &doc); err != nil || !strings.Contains(doc, `<node name="`+a.guest.HostIface+`">`) {
		t.Errorf("Introspect %s: %v\n%s", dbusapi.NWFilterBindingPathPrefix, err, doc)
	}
}
