package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/polkit"
)

// TestPolkitNetworkDetail: a rules.d rule can decide on the details
// netwardend passes (libvirt's names): one granting
// org.netwarden1.network.manage only when network_name is "lab" lets the
// unprivileged user start and stop network "lab", and not "other".
func TestPolkitNetworkDetail(t *testing.T) {
	a := newAPILab(t, true)
	user := a.l.TestUser()
	mgr := dbusapi.ManagerInterface
	define := func(name, bridge, addr string) dbus.ObjectPath {
		t.Helper()
		var path dbus.ObjectPath
		xml := fmt.Sprintf(`<network><name>%s</name><bridge name='%s'/><ip address='%s' prefix='24'/></network>`, name, bridge, addr)
		if err := call(a.conn, dbusapi.ObjectPath, mgr+".NetworkDefineXML", []any{xml}, &path); err != nil {
			t.Fatalf("define %s: %v", name, err)
		}
		return path
	}
	lab, other := define("lab", "nwpklab0", "10.89.0.1"), define("other", "nwpkoth0", "10.89.1.1")

	a.l.Polkit().AddRule("50-netwarden-detail.rules", fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (action.id == %q && subject.user == %q && action.lookup(%q) == "lab") { return polkit.Result.YES; }
});
`, polkit.ActionNetworkManage, user.Name, polkit.DetailNetworkName))
	deadline := time.Now().Add(timeout)
	for {
		name, msg := a.dbusSendErr(t, &user, lab, dbusapi.NetworkInterface+".Create")
		if name == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("start lab as %s with the rule: %s %s\n%s", user.Name, name, msg, a.d.log(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !networkActive(t, a, lab) {
		t.Errorf("lab is not active after the user started it")
	}
	name, msg := a.dbusSendErr(t, &user, other, dbusapi.NetworkInterface+".Create")
	if name != dbusapi.ErrorAccessDenied || !strings.Contains(msg, polkit.ActionNetworkManage) {
		t.Errorf("start other as %s: %q %q, want AccessDenied naming %s", user.Name, name, msg, polkit.ActionNetworkManage)
	}
	if networkActive(t, a, other) {
		t.Errorf("other is active after a refused start")
	}
	// The details of a definition come from its XML.
	for _, c := range []struct {
		xml     string
		allowed bool
	}{
		{`<network><name>other</name><bridge name='nwpkoth0'/><ip address='10.89.1.1' prefix='24'/></network>`, false},
		{`<network><name>lab</name><bridge name='nwpklab0'/><ip address='10.89.0.1' prefix='24'/></network>`, true},
	} {
		name, msg := a.dbusSendErr(t, &user, dbusapi.ObjectPath, mgr+".NetworkDefineXML", "string:"+c.xml)
		if c.allowed && name != "" || !c.allowed && name != dbusapi.ErrorAccessDenied {
			t.Errorf("define as %s (allowed %v): %q %q", user.Name, c.allowed, name, msg)
		}
	}
	if name, msg := a.dbusSendErr(t, &user, lab, dbusapi.NetworkInterface+".Destroy"); name != "" {
		t.Errorf("stop lab as %s: %s %s", user.Name, name, msg)
	}
	if networkActive(t, a, lab) {
		t.Errorf("lab is active after the user stopped it")
	}
}

// networkActive reads a network's Active property as root.
func networkActive(t *testing.T, a *apiLab, path dbus.ObjectPath) bool {
	t.Helper()
	var v dbus.Variant
	if err := call(a.conn, path, "org.freedesktop.DBus.Properties.Get", []any{dbusapi.NetworkInterface, "Active"}, &v); err != nil {
		t.Fatalf("Active of %s: %v", path, err)
	}
	return v.Value() == true
}
