package zones

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/internal/conformance"
)

// semantic returns d without the free text (description), for comparing
// meaning.
func semantic(d *Definition) Definition {
	c := *d
	c.Description = ""
	return c
}

// TestConformance: each shipped zone and policy means what libvirt 9.0's
// file of the same name means — same target, rules, services, protocols,
// ingress and egress zones and priority; only the description is ours.
func TestConformance(t *testing.T) {
	dir := filepath.Join(conformance.Dir(t), "firewalld")
	for _, d := range All() {
		ext := ".zone"
		if d.Kind == Policy {
			ext = ".policy"
		}
		data, err := conformance.ReadFile(filepath.Join(dir, d.Name+ext))
		if err != nil {
			t.Fatal(err)
		}
		want, err := Parse(d.Name, data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(semantic(d), semantic(want)) {
			t.Errorf("%s %s:\n got %+v\nwant %+v", d.Kind, d.Name, semantic(d), semantic(want))
		}
		if d.Description == want.Description || d.Description == "" {
			t.Errorf("%s: description should be netwarden's own", d.Name)
		}
	}
	// Every conformance file has a shipped counterpart.
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != len(All()) {
		t.Errorf("%d conformance files, %d definitions", len(files), len(All()))
	}
}

func TestParse(t *testing.T) {
	d, ok := Get(Libvirt)
	if !ok {
		t.Fatal("no libvirt zone")
	}
	if d.Kind != Zone || d.Target != "ACCEPT" || !slices.Equal(d.Rules, []string{`rule priority="32767" reject`}) ||
		!slices.Equal(d.Services, []string{"dhcp", "dhcpv6", "dns", "ssh", "tftp"}) ||
		!slices.Equal(d.Protocols, []string{"icmp", "ipv6-icmp"}) {
		t.Errorf("libvirt zone %+v", d)
	}
	p, _ := Get(LibvirtToHost)
	if p.Kind != Policy || p.Priority != DefaultPolicyPriority || p.Target != "REJECT" ||
		!slices.Equal(p.IngressZones, []string{LibvirtRouted}) || !slices.Equal(p.EgressZones, []string{"HOST"}) {
		t.Errorf("libvirt-to-host %+v", p)
	}
	for _, bad := range []string{
		`<zone><forward-port port="22" protocol="tcp" to-port="2222"/></zone>`,
		`<zone><rule><source address="10.0.0.0/8"/><accept/></rule></zone>`,
		`<zone><rule><log/></rule></zone>`,
		`<service/>`,
		`<zone><egress-zone name="ANY"/></zone>`,
	} {
		if _, err := Parse("x", []byte(bad)); err == nil {
			t.Errorf("Parse(%s) accepted", bad)
		}
	}
	r, err := Parse("x", []byte(`<policy priority="-500"><rule family="ipv4" priority="-1"><reject type="icmp-host-prohibited"/></rule></policy>`))
	if err != nil || r.Priority != -500 || r.Rules[0] != `rule priority="-1" family="ipv4" reject type="icmp-host-prohibited"` {
		t.Errorf("Parse = %+v, %v", r, err)
	}
}

// TestSettings: the dictionaries config.addZone2 and config.addPolicy take.
func TestSettings(t *testing.T) {
	z, err := Settings(Libvirt)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"short": "s", "description": "s", "target": "s", "services": "as", "protocols": "as", "rules_str": "as", "forward": "b"}
	checkKeys(t, Libvirt, z, want)
	p, err := Settings(LibvirtToHost)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, LibvirtToHost, p, map[string]string{"short": "s", "description": "s", "target": "s", "services": "as",
		"protocols": "as", "priority": "i", "ingress_zones": "as", "egress_zones": "as"})
	if p["priority"].Value() != int32(-1) {
		t.Errorf("priority %v", p["priority"])
	}
	r, _ := Settings(LibvirtRouted)
	checkKeys(t, LibvirtRouted, r, map[string]string{"short": "s", "description": "s", "forward": "b"})
	if _, err := Settings("public"); err == nil {
		t.Error("Settings(public) succeeded")
	}
	pre := Rename(All(), func(n string) string { return strings.Replace(n, "libvirt", "t", 1) })
	for _, d := range pre {
		for _, z := range append(slices.Clone(d.IngressZones), d.EgressZones...) {
			if z != "ANY" && z != "HOST" && z != "t-routed" {
				t.Errorf("%s: reference %q not renamed", d.Name, z)
			}
		}
	}
	if All()[0].Name != Libvirt {
		t.Error("WithPrefix changed the shipped definitions")
	}
}

func checkKeys(t *testing.T, name string, s map[string]dbus.Variant, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for k, v := range s {
		got[k] = v.Signature().String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s settings: %v, want %v", name, got, want)
	}
}

// TestFilesInstalled: the shipped files are those the Makefile installs.
func TestFilesInstalled(t *testing.T) {
	for _, d := range All() {
		if _, err := os.Stat(filepath.Join("firewalld", FilePath(d.Kind, d.Name))); err != nil {
			t.Error(err)
		}
	}
}
