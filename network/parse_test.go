package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// doc wraps elements in a network named t.
func doc(body string) string {
	return "<network><name>t</name>" + body + "</network>"
}

const ip4 = `<ip address='192.168.1.1' netmask='255.255.255.0'/>`

func TestParseRejects(t *testing.T) {
	for _, c := range []struct {
		name, xml, elem, attr string
	}{
		{"not-network", `<filter name='x'/>`, "filter", ""},
		{"no-name", `<network/>`, "network", ""},
		{"name-slash", doc("")[:0] + `<network><name>a/b</name></network>`, "name", ""},
		{"name-newline", `<network><name>a&#10;b</name></network>`, "name", ""},
		{"name-space-around", `<network><name> a</name></network>`, "name", ""},
		{"two-names", `<network><name>a</name><name>b</name></network>`, "name", ""},
		{"unknown-element", doc(`<bogus/>`), "bogus", ""},
		{"unknown-attr", doc(`<bridge name='br0' colour='red'/>`), "bridge", "colour"},
		{"dup-attr", doc(`<bridge name='br0' name='br1'/>`), "bridge", "name"},
		{"connections", `<network connections='2'><name>t</name></network>`, "network", "connections"},
		{"ipv6-maybe", `<network ipv6='maybe'><name>t</name></network>`, "network", "ipv6"},
		{"uuid", doc(`<uuid>not-a-uuid</uuid>`), "uuid", ""},
		{"bridge-long", doc(`<bridge name='abcdefghijklmnop'/>`), "bridge", "name"},
		{"bridge-chars", doc(`<bridge name='br 0'/>`), "bridge", "name"},
		{"bridge-colon", doc(`<bridge name='br:0'/>`), "bridge", "name"},
		{"bridge-dot", doc(`<bridge name='..'/>`), "bridge", "name"},
		{"stp", doc(`<bridge stp='yes'/>`), "bridge", "stp"},
		{"delay", doc(`<bridge delay='-1'/>`), "bridge", "delay"},
		{"zone-long", doc(`<bridge zone='a-very-long-zone-name'/>`), "bridge", "zone"},
		{"mtm", doc(`<bridge macTableManager='switch'/>`), "bridge", "macTableManager"},
		{"stp-bridge-mode", doc(`<forward mode='bridge'/><bridge name='br0' stp='on'/>`), "bridge", "stp"},
		{"bridge-private", doc(`<forward mode='private' dev='eth0'/><bridge name='br0'/>`), "bridge", "name"},
		{"bridge-and-dev", doc(`<forward mode='bridge' dev='eth0'/><bridge name='br0'/>`), "bridge", "name"},
		{"mtu-small", doc(`<mtu size='10'/>`), "mtu", "size"},
		{"mtu-big", doc(`<mtu size='65536'/>`), "mtu", "size"},
		{"mtu-bridge-mode", doc(`<forward mode='bridge'/><bridge name='br0'/><mtu size='9000'/>`), "mtu", ""},
		{"mac-multicast", doc(`<mac address='01:00:5e:00:00:01'/>`), "mac", "address"},
		{"mac-short", doc(`<mac address='52:54:00:00:01'/>`), "mac", "address"},
		{"domain", doc(`<domain name='a_b'/>`), "domain", "name"},
		{"forward-mode", doc(`<forward mode='tunnel'/>`), "forward", "mode"},
		{"nat-no-ip", doc(`<forward mode='nat'/>`), "forward", "mode"},
		{"managed-nat", doc(`<forward mode='nat' managed='yes'/>` + ip4), "forward", "managed"},
		{"driver-bridge", doc(`<forward mode='bridge' dev='eth0'><driver name='vfio'/></forward>`), "driver", "name"},
		{"nat-in-route", doc(`<forward mode='route'><nat/></forward>` + ip4), "nat", ""},
		{"nat-ipv6-addr", doc(`<forward><nat><address start='::1' end='::2'/></nat></forward>` + ip4), "address", "start"},
		{"nat-addr-reversed", doc(`<forward><nat><address start='10.0.0.9' end='10.0.0.1'/></nat></forward>` + ip4), "address", "end"},
		{"nat-port-0", doc(`<forward><nat><port start='0' end='10'/></nat></forward>` + ip4), "port", "start"},
		{"nat-port-big", doc(`<forward><nat><port start='1' end='65536'/></nat></forward>` + ip4), "port", "end"},
		{"nat-port-reversed", doc(`<forward><nat><port start='20' end='10'/></nat></forward>` + ip4), "port", "end"},
		{"nat-two-dev", doc(`<forward dev='eth0'><interface dev='eth0'/><interface dev='eth1'/></forward>` + ip4), "forward", ""},
		{"dev-mismatch", doc(`<forward mode='bridge' dev='eth0'><interface dev='eth1'/></forward>`), "interface", "dev"},
		{"pf-and-interface", doc(`<forward mode='passthrough'><pf dev='eth0'/><interface dev='eth1'/></forward>`), "forward", ""},
		{"dev-and-pf", doc(`<forward mode='passthrough' dev='eth0'><pf dev='eth0'/></forward>`), "forward", "dev"},
		{"two-pf", doc(`<forward mode='passthrough'><pf dev='eth0'/><pf dev='eth1'/></forward>`), "pf", ""},
		{"pci-slot", doc(`<forward mode='hostdev'><address type='pci' slot='32'/></forward>`), "address", "slot"},
		{"pci-type", doc(`<forward mode='hostdev'><address type='usb'/></forward>`), "address", "type"},
		{"pci-multifunction", doc(`<forward mode='hostdev'><address type='pci' multifunction='on'/></forward>`), "address", "multifunction"},
		{"address-in-bridge", doc(`<forward mode='bridge'><address type='pci'/></forward>`), "forward", ""},
		{"virtualport-nat", doc(`<forward/>` + ip4 + `<virtualport type='openvswitch'/>`), "virtualport", ""},
		{"virtualport-type", doc(`<forward mode='bridge'/><bridge name='b'/><virtualport type='vmware'/>`), "virtualport", "type"},
		{"virtualport-extra", doc(`<forward mode='bridge'/><bridge name='b'/><virtualport type='802.1Qbh'><parameters managerid='1'/></virtualport>`), "parameters", "managerid"},
		{"virtualport-typeid", doc(`<forward mode='vepa' dev='e'/><virtualport type='802.1Qbg'><parameters typeid='16777216'/></virtualport>`), "parameters", "typeid"},
		{"virtualport-profile", doc(`<forward mode='vepa' dev='e'/><virtualport><parameters profileid='` + strings.Repeat("p", 40) + `'/></virtualport>`), "parameters", "profileid"},
		{"dns-disabled-extra", doc(`<dns enable='no'><forwarder addr='1.1.1.1'/></dns>`), "forwarder", ""},
		{"dns-forwarder-empty", doc(`<dns><forwarder/></dns>`), "forwarder", ""},
		{"dns-forwarder-addr", doc(`<dns><forwarder addr='10.1'/></dns>`), "forwarder", "addr"},
		{"dns-txt-space", doc(`<dns><txt name='a b' value='v'/></dns>`), "txt", "name"},
		{"dns-txt-newline", doc(`<dns><txt name='a' value='v&#10;server=1.2.3.4'/></dns>`), "txt", "value"},
		{"dns-srv-protocol", doc(`<dns><srv service='s' protocol='sctp'/></dns>`), "srv", "protocol"},
		{"dns-srv-port-no-target", doc(`<dns><srv service='s' protocol='tcp' port='1'/></dns>`), "srv", "port"},
		{"dns-srv-port-0", doc(`<dns><srv service='s' protocol='tcp' target='x' port='0'/></dns>`), "srv", "port"},
		{"dns-host-no-name", doc(`<dns><host ip='10.0.0.1'/></dns>`), "host", ""},
		{"dns-hostname-bad", doc(`<dns><host ip='10.0.0.1'><hostname>a b</hostname></host></dns>`), "hostname", ""},
		{"ip-no-address", doc(`<ip netmask='255.255.255.0'/>`), "ip", "address"},
		{"ip-inet-aton", doc(`<ip address='10.1' prefix='8'/>`), "ip", "address"},
		{"ip-zone", doc(`<ip family='ipv6' address='fe80::1%eth0' prefix='64'/>`), "ip", "address"},
		{"ip6-no-family", doc(`<ip address='fd00::1' prefix='64'/>`), "ip", "address"},
		{"ip-family-mismatch", doc(`<ip family='ipv6' address='10.0.0.1' prefix='8'/>`), "ip", "address"},
		{"ip-family-bad", doc(`<ip family='inet' address='10.0.0.1' prefix='8'/>`), "ip", "family"},
		{"ip-prefix-0", doc(`<ip address='10.0.0.1' prefix='0'/>`), "ip", "prefix"},
		{"ip-prefix-33", doc(`<ip address='10.0.0.1' prefix='33'/>`), "ip", "prefix"},
		{"ip6-prefix-129", doc(`<ip family='ipv6' address='fd00::1' prefix='129'/>`), "ip", "prefix"},
		{"ip-netmask-holes", doc(`<ip address='10.0.0.1' netmask='255.0.255.0'/>`), "ip", "netmask"},
		{"ip-netmask-and-prefix", doc(`<ip address='10.0.0.1' netmask='255.0.0.0' prefix='8'/>`), "ip", "prefix"},
		{"ip6-netmask", doc(`<ip family='ipv6' address='fd00::1' netmask='255.0.0.0'/>`), "ip", "netmask"},
		{"ip-classless", doc(`<ip address='224.0.0.1'/>`), "ip", "address"},
		{"tftp-ipv6", doc(`<ip family='ipv6' address='fd00::1' prefix='64'><tftp root='/srv'/></ip>`), "tftp", ""},
		{"tftp-relative", doc(`<ip address='10.0.0.1' prefix='8'><tftp root='srv'/></ip>`), "tftp", "root"},
		{"tftp-no-root", doc(`<ip address='10.0.0.1' prefix='8'><tftp/></ip>`), "tftp", "root"},
		{"two-dhcp", doc(`<ip address='10.0.0.1' prefix='8'><dhcp/><dhcp/></ip>`), "dhcp", ""},
		{"range-outside", doc(`<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.2.2' end='192.168.2.9'/></dhcp></ip>`), "range", "start"},
		{"range-half-outside", doc(`<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.1.2' end='192.168.2.9'/></dhcp></ip>`), "range", "end"},
		{"range-reversed", doc(`<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.1.9' end='192.168.1.2'/></dhcp></ip>`), "range", "end"},
		{"range-family", doc(`<ip address='192.168.1.1' prefix='24'><dhcp><range start='fd00::1' end='fd00::2'/></dhcp></ip>`), "range", "start"},
		{"range-network-addr", doc(`<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.1.0' end='192.168.1.9'/></dhcp></ip>`), "range", "start"},
		{"range-broadcast", doc(`<ip address='192.168.1.1' prefix='24'><dhcp><range start='192.168.1.2' end='192.168.1.255'/></dhcp></ip>`), "range", "end"},
		{"range-classful-outside", doc(`<ip address='192.168.1.1'><dhcp><range start='192.168.2.2' end='192.168.2.9'/></dhcp></ip>`), "range", "start"},
		{"lease-short", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><range start='10.0.0.2' end='10.0.0.9'><lease expiry='119' unit='seconds'/></range></dhcp></ip>`), "lease", "expiry"},
		{"lease-minute", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><range start='10.0.0.2' end='10.0.0.9'><lease expiry='1'/></range></dhcp></ip>`), "lease", "expiry"},
		{"lease-long", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><range start='10.0.0.2' end='10.0.0.9'><lease expiry='1193047' unit='hours'/></range></dhcp></ip>`), "lease", "expiry"},
		{"lease-unit", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><range start='10.0.0.2' end='10.0.0.9'><lease expiry='5' unit='days'/></range></dhcp></ip>`), "lease", "unit"},
		{"host-no-id", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><host ip='10.0.0.5'/></dhcp></ip>`), "host", ""},
		{"host-no-ip", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><host mac='52:54:00:00:00:01'/></dhcp></ip>`), "host", "ip"},
		{"host-outside", doc(`<ip address='10.0.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' ip='10.0.1.5'/></dhcp></ip>`), "host", "ip"},
		{"host6-mac", doc(`<ip family='ipv6' address='fd00::1' prefix='64'><dhcp><host mac='52:54:00:00:00:01' ip='fd00::5'/></dhcp></ip>`), "host", "mac"},
		{"host4-id", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><host id='0:3:0:1:0:16:3e:11:22:33' ip='10.0.0.5'/></dhcp></ip>`), "host", "id"},
		{"host-duid", doc(`<ip family='ipv6' address='fd00::1' prefix='64'><dhcp><host id='0:9:1' ip='fd00::5'/></dhcp></ip>`), "host", "id"},
		{"host-name-dash", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><host name='-vm' ip='10.0.0.5'/></dhcp></ip>`), "host", "name"},
		{"host-same-ip", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><host name='a' ip='10.0.0.5'/><host name='b' ip='10.0.0.5'/></dhcp></ip>`), "host", "ip"},
		{"range-too-large", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><range start='10.0.0.2' end='10.1.0.9'/></dhcp></ip>`), "range", "end"},
		{"nat-range-too-large", doc(`<forward><nat><address start='10.0.0.1' end='10.1.0.1'/></nat></forward>` + ip4), "address", "end"},
		{"open-no-ip", doc(`<forward mode='open'/>`), "forward", "mode"},
		{"route-unreachable", doc(ip4 + `<route address='10.1.0.0' prefix='16' gateway='10.0.0.2'/>`), "route", "gateway"},
		{"virtualport-untyped", doc(`<forward mode='bridge'/><bridge name='b'/><virtualport/>`), "virtualport", "type"},
		{"bootp-ipv6", doc(`<ip family='ipv6' address='fd00::1' prefix='64'><dhcp><bootp file='x'/></dhcp></ip>`), "bootp", ""},
		{"bootp-server-name", doc(`<ip address='10.0.0.1' prefix='8'><dhcp><bootp file='x' server='boot.example'/></dhcp></ip>`), "bootp", "server"},
		{"dhcp4-twice", doc(`<ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.2' end='10.0.0.9'/></dhcp></ip><ip address='10.0.1.1' prefix='24'><dhcp><range start='10.0.1.2' end='10.0.1.9'/></dhcp></ip>`), "ip", ""},
		{"route-no-gateway", doc(`<ip address='10.0.0.1' prefix='24'/>` + `<route address='10.1.0.0' prefix='16'/>`), "route", "gateway"},
		{"route-host-bits", doc(`<ip address='10.0.0.1' prefix='24'/>` + `<route address='10.1.0.1' prefix='16' gateway='10.0.0.2'/>`), "route", "address"},
		{"route-no-prefix", doc(`<ip address='10.0.0.1' prefix='24'/>` + `<route address='10.1.0.0' gateway='10.0.0.2'/>`), "route", "address"},
		{"route-gw-family", doc(`<route family='ipv6' address='fd01::' prefix='64' gateway='10.0.0.2'/>`), "route", "gateway"},
		{"route-metric-0", doc(`<ip address='10.0.0.1' prefix='24'/>` + `<route address='10.1.0.0' prefix='16' gateway='10.0.0.2' metric='0'/>`), "route", "metric"},
		{"vlan-no-tag", doc(`<vlan/>`), "vlan", ""},
		{"vlan-id", doc(`<vlan><tag id='4096'/></vlan>`), "tag", "id"},
		{"vlan-trunk-no", doc(`<vlan trunk='no'><tag id='1'/><tag id='2'/></vlan>`), "vlan", "trunk"},
		{"vlan-two-native", doc(`<vlan><tag id='1' nativeMode='tagged'/><tag id='2' nativeMode='untagged'/></vlan>`), "tag", "nativeMode"},
		{"bandwidth-floor", doc(`<bandwidth><inbound average='1' floor='1'/></bandwidth>`), "inbound", "floor"},
		{"bandwidth-zero", doc(`<bandwidth><inbound average='0'/></bandwidth>`), "inbound", "average"},
		{"bandwidth-peak-only", doc(`<bandwidth><outbound peak='10'/></bandwidth>`), "outbound", "average"},
		{"bandwidth-classid", doc(`<bandwidth classID='3'><inbound average='1'/></bandwidth>`), "bandwidth", "classID"},
		{"port-isolated", doc(`<port isolated='true'/>`), "port", "isolated"},
		{"portgroup-dup", doc(`<portgroup name='a'/><portgroup name='a'/>`), "portgroup", "name"},
		{"portgroup-two-default", doc(`<portgroup name='a' default='yes'/><portgroup name='b' default='yes'/>`), "portgroup", "default"},
		{"metadata-no-ns", doc(`<metadata><foo/></metadata>`), "metadata", ""},
		{"metadata-same-ns", doc(`<metadata><a:x xmlns:a='urn:a'/><b:y xmlns:b='urn:a'/></metadata>`), "metadata", ""},
		{"metadata-outer-prefix", `<network xmlns:a='urn:a'><name>t</name><metadata><a:x/></metadata></network>`, "network", "xmlns:a"},
		{"metadata-text", doc(`<metadata>hello</metadata>`), "metadata", ""},
		{"dnsmasq-newline", `<network xmlns:dnsmasq='` + DnsmasqNamespace + `'><name>t</name><dnsmasq:options><dnsmasq:option value='a&#10;b'/></dnsmasq:options></network>`, "dnsmasq:option", "value"},
		{"dnsmasq-unknown", `<network xmlns:dnsmasq='` + DnsmasqNamespace + `'><name>t</name><dnsmasq:options><dnsmasq:opt value='a'/></dnsmasq:options></network>`, "dnsmasq:opt", ""},
		{"other-namespace", `<network xmlns:x='urn:x'><name>t</name><x:y/></network>`, "network", "xmlns:x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.xml))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a *ValidationError, got %v", err)
			}
			if ve.Element != c.elem || ve.Attr != c.attr {
				t.Fatalf("error names <%s %s>, want <%s %s>: %v", ve.Element, ve.Attr, c.elem, c.attr, err)
			}
			if ve.Reason == "" || ve.Line == 0 && c.elem != "" {
				t.Fatalf("error lacks a reason or a line: %+v", ve)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, in := range []string{"", "<network>", "<network><name>a</name></network><x/>", "<!DOCTYPE network><network/>",
		strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)} {
		if _, err := Parse([]byte(in)); !IsValidationError(err) {
			t.Errorf("%q: want a *ValidationError, got %v", in, err)
		}
	}
	big := make([]byte, MaxInputSize+1)
	if _, err := Parse(big); !IsValidationError(err) {
		t.Errorf("oversized input: %v", err)
	}
}

func TestParseDefaultsAndValues(t *testing.T) {
	n, err := Parse([]byte(doc(`<uuid>81FF0D90C91E674264DA4A736EDB9A9B</uuid><forward dev='eth1'/><mac address='2:0:0:A:b:C'/>` +
		`<ip address='10.24.10.1'><dhcp><range start='10.24.10.2' end='10.24.10.9'><lease expiry='2'/></range></dhcp></ip>` +
		`<ip family='ipv6' address='2001:DB8::1'/>` +
		`<vlan><tag id='1'/><tag id='2'/></vlan>`)))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("UUID", n.UUID, "81ff0d90-c91e-6742-64da-4a736edb9a9b")
	check("mode", n.ForwardMode(), ForwardNAT)
	check("forward interfaces", n.Forward.Interfaces, []string{"eth1"})
	check("dev", n.Forward.Dev(), "eth1")
	check("MAC", n.MAC, "02:00:00:0a:0b:0c")
	check("STP", n.Bridge.STP, true)
	check("class A subnet", n.IPs[0].Subnet(), netip.MustParsePrefix("10.0.0.0/8"))
	check("IPv6 default prefix", n.IPs[1].Subnet(), netip.MustParsePrefix("2001:db8::/64"))
	check("lease", n.IPs[0].DHCP.Ranges[0].Lease.Seconds(), 120)
	check("trunk", n.VLAN.Trunk, true)
	out, err := n.FormatXML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<forward dev='eth1' mode='nat'>", "<interface dev='eth1'/>", "<bridge stp='on' delay='0'/>",
		"<lease expiry='2' unit='minutes'/>", "address='2001:db8::1'", "<vlan trunk='yes'>"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestFormatChecksModel shows that a Network built in code with a bad value
// is refused by FormatXML with the error parsing reports.
func TestFormatChecksModel(t *testing.T) {
	n := &Network{Name: "x", Bridge: Bridge{Name: "this-name-is-too-long", STP: true}}
	_, err := n.FormatXML()
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Element != "bridge" || ve.Attr != "name" {
		t.Fatalf("want a *ValidationError on <bridge name>, got %v", err)
	}
}

func TestValidationErrorText(t *testing.T) {
	e := &ValidationError{Network: "n", Element: "range", Attr: "start", Value: "10.0.0.2", Reason: "not inside", Line: 9}
	if got, want := e.Error(), `network "n": <range start='10.0.0.2'> (line 9): not inside`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	e = &ValidationError{Element: "name", Value: "a\nb", Reason: "bad"}
	if got, want := e.Error(), `<name>"a\nb"</name>: bad`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if !IsValidationError(fmt.Errorf("wrapped: %w", e)) {
		t.Error("IsValidationError misses a wrapped error")
	}
}
