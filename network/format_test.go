package network

import (
	"strings"
	"testing"
)

// TestMetadataVerbatim shows that <metadata> content is kept byte for
// byte, comments and entity references included.
func TestMetadataVerbatim(t *testing.T) {
	inner := "\n    <app:x xmlns:app=\"http://app.example/\" a='1 &amp; 2'><!-- c --><app:y/>t&lt;</app:x>\n  "
	n, err := Parse([]byte(doc("<metadata>" + inner + "</metadata>")))
	if err != nil {
		t.Fatal(err)
	}
	if string(n.Metadata) != inner {
		t.Fatalf("metadata %q, want %q", n.Metadata, inner)
	}
	out, err := n.FormatXML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "<metadata>"+inner+"</metadata>") {
		t.Fatalf("metadata not verbatim in output:\n%s", out)
	}
}

// TestDnsmasqPrefix shows that the dnsmasq namespace is recognised by its
// URI whatever prefix the document uses, and written with libvirt's.
func TestDnsmasqPrefix(t *testing.T) {
	in := `<network xmlns:d='` + DnsmasqNamespace + `'><name>t</name><d:options><d:option value='x=1'/></d:options><d:options><d:option value='y=2'/></d:options></network>`
	n, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(n.DnsmasqOptions, ",") != "x=1,y=2" {
		t.Fatalf("options %q", n.DnsmasqOptions)
	}
	out, err := n.FormatXML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"xmlns:dnsmasq='" + DnsmasqNamespace + "'", "<dnsmasq:option value='x=1'/>", "<dnsmasq:option value='y=2'/>"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestFormatLayout pins libvirt's layout of a NAT network with DHCP.
func TestFormatLayout(t *testing.T) {
	n, err := Parse([]byte(natNetwork))
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.FormatXML()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != natNetwork {
		t.Fatalf("got\n%s\nwant\n%s", out, natNetwork)
	}
}

// TestDroppedEmpties shows the elements libvirt drops because they say
// nothing: they parse to nil and are not written.
func TestDroppedEmpties(t *testing.T) {
	n, err := Parse([]byte(doc(`<dns/><bandwidth/><forward mode='bridge'><nat/></forward>`)))
	if err == nil {
		t.Fatalf("<nat> outside nat mode accepted: %+v", n)
	}
	n, err = Parse([]byte(doc(`<dns/><bandwidth/><ip address='10.0.0.1' prefix='8'><dhcp/></ip><portgroup name='p'><virtualport/></portgroup>`)))
	if err != nil {
		t.Fatal(err)
	}
	if n.DNS != nil || n.Bandwidth != nil || n.IPs[0].DHCP != nil || n.PortGroups[0].VirtualPort != nil {
		t.Fatalf("empty elements kept: %+v", n)
	}
}
