package network

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// portRoundTrip parses in, formats it, compares with want (when given),
// and checks that parsing the output gives the same port and that
// formatting is stable.
func portRoundTrip(t *testing.T, in, want []byte) *Port {
	t.Helper()
	pt, err := ParsePort(in)
	if err != nil {
		t.Fatalf("ParsePort: %v", err)
	}
	out, err := pt.FormatXML()
	if err != nil {
		t.Fatalf("FormatXML: %v", err)
	}
	if want != nil {
		if d := diffXML(out, want); d != "" {
			t.Fatalf("output differs from libvirt's: %s\n%s", d, out)
		}
	}
	again, err := ParsePort(out)
	if err != nil {
		t.Fatalf("ParsePort(FormatXML(x)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(pt, again) {
		t.Fatalf("ParsePort(FormatXML(x)) != x:\n%+v\n%+v", pt, again)
	}
	out2, err := again.FormatXML()
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("format is not stable: %v\n%s\n%s", err, out, out2)
	}
	return pt
}

// TestConformancePortXML2XML runs libvirt's virnetworkportxml2xmltest: every
// file must parse and format to itself.
func TestConformancePortXML2XML(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "virnetworkportxml2xmldata")
	files := xmlFiles(t, dir)
	if len(files) == 0 {
		t.Fatalf("no test data in %s", dir)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".xml"), func(t *testing.T) {
			data, err := readConformanceFile(file)
			if err != nil {
				t.Fatal(err)
			}
			portRoundTrip(t, data, data)
		})
	}
}

const portHead = `<networkport>
  <uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>
  <owner>
    <name>vm1</name>
    <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>
  </owner>
  <mac address='52:54:00:7b:35:93'/>
`

func TestParsePortValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Port
		out  string // expected formatted output, "" when equal to in
	}{{
		name: "netwarden additions",
		in: portHead + `  <plug type='network' bridge='virbr0' dev='vnet3'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='10.0.0.2'/>
    <parameter name='IP' value='10.0.0.3'/>
  </filterref>
</networkport>
`,
		want: &Port{UUID: "5d744f21-ba4a-4d6e-bdb2-30a35ff3207d", OwnerName: "vm1", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c",
			MAC:  "52:54:00:7b:35:93",
			Plug: &PortPlug{Type: PlugNetwork, Bridge: "virbr0", Dev: "vnet3"},
			FilterRef: &PortFilterRef{Filter: "clean-traffic", Parameters: []PortFilterParameter{
				{Name: "IP", Value: "10.0.0.2"}, {Name: "IP", Value: "10.0.0.3"}}},
		},
	}, {
		name: "no uuid, canonical values",
		in: `<networkport><owner><uuid>D54DF46F1AB54A2286184560EF5FAC2C</uuid><name>vm1</name></owner>
<mac address='52:54:0:7B:35:93'/><filterref filter='no-spoofing'/><port isolated='no'/></networkport>`,
		want: &Port{OwnerName: "vm1", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c", MAC: "52:54:00:7b:35:93",
			Isolated: No, FilterRef: &PortFilterRef{Filter: "no-spoofing"}},
		out: `<networkport>
  <owner>
    <name>vm1</name>
    <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>
  </owner>
  <mac address='52:54:00:7b:35:93'/>
  <port isolated='no'/>
  <filterref filter='no-spoofing'/>
</networkport>
`,
	}, {
		name: "floor only, hostdev without driver",
		in: portHead + `  <bandwidth>
    <inbound floor='100'/>
  </bandwidth>
  <plug type='hostdev-pci'>
    <address domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>
  </plug>
</networkport>
`,
		want: &Port{UUID: "5d744f21-ba4a-4d6e-bdb2-30a35ff3207d", OwnerName: "vm1", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c",
			MAC: "52:54:00:7b:35:93", Bandwidth: &PortBandwidth{Inbound: &PortRate{Floor: 100}},
			Plug: &PortPlug{Type: PlugHostdevPCI, Address: PCIAddress{Bus: 3, Slot: 0x10, Function: 1}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.out
			if want == "" {
				want = tt.in
			}
			pt := portRoundTrip(t, []byte(tt.in), nil)
			if !reflect.DeepEqual(pt, tt.want) {
				t.Errorf("parsed\n%+v\nwant\n%+v", pt, tt.want)
			}
			out, _ := pt.FormatXML()
			if string(out) != want {
				t.Errorf("formatted\n%s\nwant\n%s", out, want)
			}
		})
	}
}

func TestParsePortRejects(t *testing.T) {
	owner := `<owner><name>vm1</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>`
	mac := `<mac address='52:54:00:7b:35:93'/>`
	tests := []struct {
		name          string
		in            string
		element, attr string
	}{
		{"not a port", `<network/>`, "network", ""},
		{"malformed", `<networkport>`, "", ""},
		{"no owner", `<networkport>` + mac + `</networkport>`, "networkport", ""},
		{"no mac", `<networkport>` + owner + `</networkport>`, "networkport", ""},
		{"owner without uuid", `<networkport><owner><name>a</name></owner>` + mac + `</networkport>`, "owner", ""},
		{"owner name control", `<networkport><owner><name>a&#10;b</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>` + mac + `</networkport>`, "name", ""},
		{"bad uuid", `<networkport><uuid>xyz</uuid>` + owner + mac + `</networkport>`, "uuid", ""},
		{"two uuids", `<networkport><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid><uuid>5d744f21-ba4a-4d6e-bdb2-30a35ff3207d</uuid>` + owner + mac + `</networkport>`, "uuid", ""},
		{"multicast mac", `<networkport>` + owner + `<mac address='01:00:5e:00:00:01'/></networkport>`, "mac", "address"},
		{"unknown element", `<networkport>` + owner + mac + `<target dev='x'/></networkport>`, "target", ""},
		{"metadata", `<networkport>` + owner + mac + `<metadata/></networkport>`, "metadata", ""},
		{"rxfilters without trustGuest", `<networkport>` + owner + mac + `<rxfilters/></networkport>`, "rxfilters", "trustGuest"},
		{"isolated maybe", `<networkport>` + owner + mac + `<port isolated='maybe'/></networkport>`, "port", "isolated"},
		{"plug without type", `<networkport>` + owner + mac + `<plug bridge='br0'/></networkport>`, "plug", "type"},
		{"plug unknown type", `<networkport>` + owner + mac + `<plug type='ethernet'/></networkport>`, "plug", "type"},
		{"plug without bridge", `<networkport>` + owner + mac + `<plug type='network'/></networkport>`, "plug", "bridge"},
		{"plug bridge too long", `<networkport>` + owner + mac + `<plug type='bridge' bridge='abcdefghijklmnop'/></networkport>`, "plug", "bridge"},
		{"plug dev bad", `<networkport>` + owner + mac + `<plug type='bridge' bridge='br0' dev='a b'/></networkport>`, "plug", "dev"},
		{"plug dev is bridge", `<networkport>` + owner + mac + `<plug type='bridge' bridge='br0' dev='br0'/></networkport>`, "plug", "dev"},
		{"plug mode on bridge", `<networkport>` + owner + mac + `<plug type='bridge' bridge='br0' mode='vepa'/></networkport>`, "plug", "mode"},
		{"mac table", `<networkport>` + owner + mac + `<plug type='bridge' bridge='br0' macTableManager='me'/></networkport>`, "plug", "macTableManager"},
		{"direct without mode", `<networkport>` + owner + mac + `<plug type='direct' dev='eth0'/></networkport>`, "plug", "mode"},
		{"direct bad mode", `<networkport>` + owner + mac + `<plug type='direct' dev='eth0' mode='nat'/></networkport>`, "plug", "mode"},
		{"hostdev without address", `<networkport>` + owner + mac + `<plug type='hostdev-pci'/></networkport>`, "plug", ""},
		{"hostdev bad slot", `<networkport>` + owner + mac + `<plug type='hostdev-pci'><address domain='0' bus='0' slot='0x20' function='0'/></plug></networkport>`, "address", "slot"},
		{"hostdev bad driver", `<networkport>` + owner + mac + `<plug type='hostdev-pci'><driver name='xen'/><address domain='0' bus='0' slot='0' function='0'/></plug></networkport>`, "driver", "name"},
		{"outbound floor", `<networkport>` + owner + mac + `<bandwidth><outbound average='1' floor='2'/></bandwidth></networkport>`, "outbound", "floor"},
		{"peak without average", `<networkport>` + owner + mac + `<bandwidth><inbound floor='1' peak='2'/></bandwidth></networkport>`, "inbound", "average"},
		{"rate zero", `<networkport>` + owner + mac + `<bandwidth><inbound average='0'/></bandwidth></networkport>`, "inbound", "average"},
		{"classID alone", `<networkport>` + owner + mac + `<bandwidth classID='3'/></networkport>`, "bandwidth", "classID"},
		{"vlan bad", `<networkport>` + owner + mac + `<vlan><tag id='5000'/></vlan></networkport>`, "tag", "id"},
		{"filterref without filter", `<networkport>` + owner + mac + `<filterref/></networkport>`, "filterref", "filter"},
		{"filter parameter name", `<networkport>` + owner + mac + `<filterref filter='f'><parameter name='a-b' value='1'/></filterref></networkport>`, "parameter", "name"},
		{"filter parameter value", `<networkport>` + owner + mac + `<filterref filter='f'><parameter name='A' value='1&#10;2'/></filterref></networkport>`, "parameter", "value"},
		{"filter parameter without value", `<networkport>` + owner + mac + `<filterref filter='f'><parameter name='A'/></filterref></networkport>`, "parameter", "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := ParsePort([]byte(tt.in))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ParsePort = %+v, %v; want a *ValidationError", pt, err)
			}
			if ve.Element != tt.element || ve.Attr != tt.attr {
				t.Errorf("error names <%s %s>, want <%s %s>: %v", ve.Element, ve.Attr, tt.element, tt.attr, err)
			}
		})
	}
}

// TestFormatPortChecksModel: a Port built in code with bad values is refused
// by FormatXML with a ValidationError.
func TestFormatPortChecksModel(t *testing.T) {
	tests := []struct {
		name string
		pt   Port
	}{
		{"no owner", Port{MAC: "52:54:00:00:00:01"}},
		{"bad mac", Port{OwnerName: "a", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c", MAC: "x"}},
		{"bad plug dev", Port{OwnerName: "a", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c", MAC: "52:54:00:00:00:01",
			Plug: &PortPlug{Type: PlugBridge, Bridge: "br0", Dev: "x'y"}}},
		{"injection", Port{OwnerName: "a</name><x>", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c", MAC: "52:54:00:00:00:01",
			FilterRef: &PortFilterRef{Filter: "f'/><y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.pt.FormatXML()
			if tt.name == "injection" {
				// escaped, not injected
				if err != nil {
					t.Fatal(err)
				}
				pt, err := ParsePort(out)
				if err != nil || pt.OwnerName != tt.pt.OwnerName || pt.FilterRef.Filter != tt.pt.FilterRef.Filter {
					t.Fatalf("round trip of escaped values: %+v, %v\n%s", pt, err, out)
				}
				return
			}
			if !IsValidationError(err) {
				t.Fatalf("FormatXML = %s, %v; want a ValidationError", out, err)
			}
		})
	}
}

// FuzzParsePort checks that ParsePort never panics, returns only
// *ValidationError, and that what it accepts round-trips.
func FuzzParsePort(f *testing.F) {
	f.Add([]byte(portHead + `</networkport>`))
	f.Add([]byte(portHead + `<plug type='hostdev-pci' managed='yes'><driver name='vfio'/><address domain='0x0001' bus='0x02' slot='0x03' function='0x4'/></plug><filterref filter='x'><parameter name='A' value='b'/></filterref></networkport>`))
	addConformanceSeeds(f, "virnetworkportxml2xmldata")
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := ParsePort(data)
		if err != nil {
			if !IsValidationError(err) {
				t.Fatalf("error is not a ValidationError: %T %v", err, err)
			}
			return
		}
		out, err := pt.FormatXML()
		if err != nil {
			t.Fatalf("FormatXML of a parsed port: %v", err)
		}
		again, err := ParsePort(out)
		if err != nil {
			t.Fatalf("ParsePort(FormatXML(x)): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(pt, again) {
			t.Fatalf("ParsePort(FormatXML(x)) != x:\n%+v\n%+v", pt, again)
		}
	})
}
