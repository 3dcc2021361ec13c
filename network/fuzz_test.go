package network

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
)

// addConformanceSeeds adds every XML file of the given conformance
// subdirectories to the fuzz corpus; without the conformance data the
// inline seeds are all there is.
func addConformanceSeeds(f *testing.F, subdirs ...string) {
	dir, err := conformance.Find()
	if err != nil {
		return
	}
	for _, sub := range subdirs {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.xml"))
		for _, file := range files {
			if data, err := readConformanceFile(file); err == nil {
				f.Add(data)
			}
		}
	}
}

// FuzzParseFormat checks that whatever Parse accepts formats, that the
// output parses back to the same network, and that formatting is stable:
// format(parse(format(x))) == format(x). Parse must never panic and must
// only return *ValidationError.
func FuzzParseFormat(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	addConformanceSeeds(f, "networkxml2xmlin", "networkxml2xmlout", "networkxml2confdata", "networkxml2firewalldata")
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Parse(data)
		if err != nil {
			if !IsValidationError(err) {
				t.Fatalf("error is not a *ValidationError: %T %v", err, err)
			}
			return
		}
		out, err := n.FormatXML()
		if err != nil {
			t.Fatalf("format of a parsed network failed: %v\ninput: %q", err, data)
		}
		m, err := Parse(out)
		if err != nil {
			t.Fatalf("parse(format(x)) failed: %v\ninput: %q\noutput: %s", err, data, out)
		}
		if !reflect.DeepEqual(n, m) {
			t.Fatalf("parse(format(x)) != x\ninput: %q\n%+v\n%+v", data, n, m)
		}
		again, err := m.FormatXML()
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("format not stable: %v\n%s\n%s", err, out, again)
		}
	})
}

// fuzzSeeds are inline seeds covering every element, valid documents all.
var fuzzSeeds = []string{
	`<network><name>n</name></network>`,
	natNetwork,
	`<network ipv6='yes' trustGuestRxFilters='no'><name>a"b</name><uuid>81FF0D90C91E674264DA4A736EDB9A9B</uuid><metadata><a:x xmlns:a='urn:a' k='v'>t<a:y/></a:x></metadata><bridge name='br0' macTableManager='libvirt'/><forward mode='bridge'/><virtualport type='openvswitch'><parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport><portgroup name='p' default='yes'><vlan trunk='yes'><tag id='1' nativeMode='untagged'/><tag id='2'/></vlan><bandwidth><inbound average='1' peak='2' burst='3'/></bandwidth></portgroup></network>`,
	`<network><name>h</name><forward mode='hostdev' managed='yes'><driver name='vfio'/><address type='pci' domain='0' bus='010' slot='0x1f' function='7'/></forward></network>`,
	`<network><name>r</name><forward mode='route' dev='eth0'/><ip family='ipv6' address='fd00::1' prefix='64' localPtr='yes'><dhcp><range start='fd00::10' end='fd00::20'><lease expiry='1' unit='hours'/></range><host id='0:3:0:1:0:16:3e:11:22:33' ip='fd00::5'/></dhcp></ip><route family='ipv6' address='fd01::' prefix='64' gateway='fd00::2' metric='5'/><ip address='192.0.2.7' netmask='255.255.255.240'/><route address='0.0.0.0' prefix='0' gateway='192.0.2.1'/></network>`,
	`<network xmlns:d='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>d</name><dns enable='yes' forwardPlainNames='no'><forwarder domain='x.y'/><txt name='t' value='v &amp; w'/><srv service='s' protocol='udp' target='t.x' port='1' weight='0'/><host ip='10.0.0.9'><hostname>h</hostname></host></dns><mtu size='1500'/><mac address='2:0:0:0:0:1'/><domain name='lan' localOnly='yes'/><port isolated='no'/><d:options><d:option value='a=b'/></d:options></network>`,
}

// natNetwork is a typical NAT network with DHCP, as virt-install's and
// most distributions' "default" network.
const natNetwork = `<network>
  <name>default</name>
  <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:0a:cd:21'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:6c:3c:01' name='vm1' ip='192.168.122.11'/>
      <host mac='52:54:00:6c:3c:02' name='vm2' ip='192.168.122.12'/>
    </dhcp>
  </ip>
</network>
`

// BenchmarkParseNATNetwork parses a typical NAT network with DHCP.
func BenchmarkParseNATNetwork(b *testing.B) {
	data := []byte(natNetwork)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormatNATNetwork formats the same network (FormatXML parses its
// output once to check it).
func BenchmarkFormatNATNetwork(b *testing.B) {
	n, err := Parse([]byte(natNetwork))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.FormatXML(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSeedsParse makes sure the inline fuzz seeds are valid documents, so
// the fuzzer starts from inside the language.
func TestSeedsParse(t *testing.T) {
	for i, s := range fuzzSeeds {
		if _, err := roundTrip([]byte(s), nil); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}
