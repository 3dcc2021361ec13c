package policy

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestFormatGolden formats a filter that exercises every normalisation and
// compares the exact bytes with testdata/canonical.golden.xml (regenerate
// with go test ./policy -run TestFormatGolden -update, then review).
func TestFormatGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "canonical.in.xml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFilter(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.FormatXML()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "canonical.golden.xml")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("output differs from %s:\n%s", golden, out)
	}
	if err := roundTrip(in, want); err != nil {
		t.Error(err)
	}
}

func TestKindParse(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want string // "" for an error
	}{
		{KindMAC, "1:2:3:4:5:6", "01:02:03:04:05:06"},
		{KindMAC, "AA:bb:Cc:dD:0:f", "aa:bb:cc:dd:00:0f"},
		{KindMAC, "1:2:3:4:5", ""},
		{KindMAC, "1:2:3:4:5:6:7", ""},
		{KindMAC, "1:2:3:4:5:g", ""},
		{KindMAC, "1:2:3:4:5:", ""},
		{KindMACMask, "ff:ff:ff:ff:ff:80", "ff:ff:ff:ff:ff:80"},
		{KindMACMask, "0:0:0:0:0:0", "00:00:00:00:00:00"},
		{KindMACMask, "ff:ff:ff:ff:ff:81", ""},
		{KindIPv4, "0.0.0.0", "0.0.0.0"},
		{KindIPv4, "255.255.255.255", "255.255.255.255"},
		{KindIPv4, "1.2.3.04", ""},
		{KindIPv4, "1.2.3.4.5", ""},
		{KindIPv4, "1.2.3.-4", ""},
		{KindIPv4, "0x1.2.3.4", ""},
		{KindIPv4Mask, "255.255.128.0", "17"},
		{KindIPv4Mask, "0.0.0.0", "0"},
		{KindIPv4Mask, "32", "32"},
		{KindIPv4Mask, "033", ""},
		{KindIPv4Mask, "255.0.255.0", ""},
		{KindIPv6, "FE80::0:1", "fe80::1"},
		{KindIPv6, "::ffff:10.1.2.3", "::ffff:10.1.2.3"},
		{KindIPv6, "::1.2.3.4", "::1.2.3.4"},
		{KindIPv6, "::0.0.1.2", "::102"},
		{KindIPv6, "::1", "::1"},
		{KindIPv6, "::", "::"},
		{KindIPv6, "1:0:0:2:0:0:0:3", "1:0:0:2::3"},
		{KindIPv6, "a:b:c::d:e:f", "a:b:c::d:e:f"},
		{KindIPv6, "1.2.3.4", ""},
		{KindIPv6, "1::2::3", ""},
		{KindIPv6Mask, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:8000", "113"},
		{KindIPv6Mask, "ffff:ffff:ffff:ffff:8000::", "65"},
		{KindIPv6Mask, "128", "128"},
		{KindIPv6Mask, "129", ""},
		{KindUint8, "255", "255"},
		{KindUint8, "0xFF", "0xff"},
		{KindUint8, "0X0a", "0xa"},
		{KindUint8, "007", "7"},
		{KindUint8, "256", ""},
		{KindUint8, "0x100", ""},
		{KindUint8, "+1", ""},
		{KindUint16, "65535", "65535"},
		{KindUint16, "0x0123", "0x123"},
		{KindUint16, "99999999999999999999999", ""},
		{KindUint32, "4294967295", "4294967295"},
		{KindUint32, "0x11223344", "0x11223344"},
		{KindUint32, "4294967296", ""},
		{KindSixBit, "63", "63"},
		{KindSixBit, "0x3F", "0x3f"},
		{KindSixBit, "64", ""},
		{KindVLANID, "0x123", "0x123"},
		{KindVLANID, "4095", "4095"},
		{KindVLANID, "0xfff", "0xfff"},
		{KindVLANID, "0x1000", ""},
		{KindConnLimit, "10", "10"},
		{KindConnLimit, "0xa", ""},
		{KindMACProtocolID, "ARP", "arp"},
		{KindMACProtocolID, "0x0800", "ipv4"},
		{KindMACProtocolID, "33024", "vlan"},
		{KindMACProtocolID, "1536", "1536"},
		{KindMACProtocolID, "0x600", "0x600"},
		{KindMACProtocolID, "0x5ff", ""},
		{KindMACProtocolID, "65536", ""},
		{KindVLANEncap, "0x3c", "0x3c"},
		{KindVLANEncap, "ipv6", "ipv6"},
		{KindVLANEncap, "59", ""},
		{KindARPOpcode, "request", "Request"},
		{KindARPOpcode, "1", "Request"},
		{KindARPOpcode, "0x9", "ARP_NAK"},
		{KindARPOpcode, "0x10", "16"},
		{KindARPOpcode, "65535", "65535"},
		{KindARPOpcode, "Requests", ""},
		{KindIPProtocol, "UDP", "udp"},
		{KindIPProtocol, "17", "udp"},
		{KindIPProtocol, "0x3a", "icmpv6"},
		{KindIPProtocol, "136", "udplite"},
		{KindIPProtocol, "0xfe", "0xfe"},
		{KindIPProtocol, "254", "254"},
		{KindIPProtocol, "256", ""},
		{KindBool, "yes", "true"},
		{KindBool, "1", "true"},
		{KindBool, "no", "false"},
		{KindBool, "0", "false"},
		{KindBool, "TRUE", ""},
		{KindStateFlags, "ESTABLISHED,NEW", "NEW,ESTABLISHED"},
		{KindStateFlags, "invalid,Related,NEW,NEW", "NEW,RELATED,INVALID"},
		{KindStateFlags, "none", "NONE"},
		{KindStateFlags, "NEW ,RELATED", ""},
		{KindTCPFlags, "SYN/ALL", "SYN/ALL"},
		{KindTCPFlags, "ack,syn,fin,rst,urg,psh/syn,ack", "ALL/SYN,ACK"},
		{KindTCPFlags, "NONE/none", "NONE/NONE"},
		{KindTCPFlags, "URG,FIN/FIN", "FIN,URG/FIN"},
		{KindTCPFlags, "SYN/ALL/NONE", ""},
		{KindTCPFlags, "/SYN", ""},
		{KindIPSetName, "test:_.-+ x", "test:_.-+ x"},
		{KindIPSetName, "", ""},
		{KindIPSetFlags, "SRC,dSt,SRC", "src,dst,src"},
		{KindIPSetFlags, "src,", ""},
		{KindIPSetFlags, "", ""},
		{Kind(0), "1", ""},
		{Kind(99), "1", ""},
	}
	for _, tt := range tests {
		got, err := tt.kind.Parse(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("%s %q: accepted as %q", tt.kind, tt.in, got)
		case tt.want != "" && err != nil:
			t.Errorf("%s %q: %v", tt.kind, tt.in, err)
		case got != tt.want:
			t.Errorf("%s %q: got %q, want %q", tt.kind, tt.in, got, tt.want)
		}
		if err == nil {
			again, err := tt.kind.Parse(got)
			if err != nil || again != got {
				t.Errorf("%s %q: canonical %q is not stable: %q %v", tt.kind, tt.in, got, again, err)
			}
		}
	}
}

func TestKindUint(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want uint32
	}{
		{KindUint16, "0x10", 16}, {KindUint32, "4294967295", 4294967295}, {KindIPv4Mask, "255.255.0.0", 16},
		{KindIPv6Mask, "ffff::", 16}, {KindMACProtocolID, "ipv6", 0x86dd}, {KindMACProtocolID, "0x835", 0x835},
		{KindARPOpcode, "Reply", 2}, {KindARPOpcode, "300", 300}, {KindIPProtocol, "sctp", 132},
		{KindIPProtocol, "0x2f", 47}, {KindBool, "yes", 1}, {KindBool, "false", 0}, {KindSixBit, "0x3f", 63},
	}
	for _, tt := range tests {
		got, err := tt.kind.Uint(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s %q: got %d %v, want %d", tt.kind, tt.in, got, err, tt.want)
		}
	}
	if _, err := KindMAC.Uint("1:2:3:4:5:6"); err == nil {
		t.Error("KindMAC.Uint accepted")
	}
	if _, err := KindUint8.Uint("300"); err == nil {
		t.Error("KindUint8.Uint accepted 300")
	}
	m, f, err := ParseTCPFlags("SYN,ACK/SYN")
	if err != nil || m != 0x12 || f != 0x02 {
		t.Errorf("ParseTCPFlags: %x %x %v", m, f, err)
	}
}

func TestKindStringAndVariables(t *testing.T) {
	for k := KindMAC; k <= KindConnLimit; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "Kind(") {
			t.Errorf("Kind %d has no name", int(k))
		}
	}
	if Kind(0).String() != "Kind(0)" || Kind(0).AllowsVariables() {
		t.Error("the zero Kind")
	}
	for _, k := range []Kind{KindBool, KindStateFlags, KindTCPFlags, KindIPSetFlags} {
		if k.AllowsVariables() {
			t.Errorf("%s allows variables", k)
		}
	}
}

func TestFormatChainPriority(t *testing.T) {
	tests := []struct {
		attrs string
		want  string // the <filter> start tag
	}{
		{"", "<filter name='t' chain='root'>"},
		{"chain='root'", "<filter name='t' chain='root'>"},
		{"priority='-10'", "<filter name='t' chain='root' priority='-10'>"},
		{"priority='0'", "<filter name='t' chain='root' priority='0'>"},
		{"chain='mac'", "<filter name='t' chain='mac' priority='-800'>"},
		{"chain='mac' priority='0'", "<filter name='t' chain='mac' priority='0'>"},
		{"chain='arp-ip' priority='+5'", "<filter name='t' chain='arp-ip' priority='5'>"},
		{"chain='stp-xyz'", "<filter name='t' chain='stp-xyz'>"},
		{"chain='rarp'", "<filter name='t' chain='rarp' priority='-400'>"},
	}
	for _, tt := range tests {
		f, err := ParseFilter([]byte("<filter name='t' " + tt.attrs + "/>"))
		if err != nil {
			t.Fatalf("%s: %v", tt.attrs, err)
		}
		out, err := f.FormatXML()
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := strings.Cut(string(out), "\n"); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.attrs, got, tt.want)
		}
		g, err := ParseFilter(out)
		if err != nil || g.ChainPriority != f.ChainPriority || g.Chain != f.Chain {
			t.Errorf("%s: read back as %+v, %v", tt.attrs, g, err)
		}
	}
}

func TestFormatBuiltInCode(t *testing.T) {
	f := &Filter{
		Name: "web", Chain: "root",
		Entries: []Entry{
			{Ref: &FilterRef{Filter: "clean-traffic", Params: []Param{{"IP", "10.0.0.1"}}}},
			{Rule: &Rule{Action: ActionAccept, Direction: DirIn, Priority: 100, StateMatch: true, Match: &Match{
				Protocol: ProtoTCP,
				// out of canonical order and not canonical: FormatXML fixes both
				Fields: []Field{
					{Attr: "dstportstart", Kind: KindUint16, Value: Value{Literal: "0x0050"}},
					{Attr: "srcipaddr", Kind: KindIPv4, Value: Value{Var: &VarRef{Name: "IP", Access: AccessIterator, Index: 0}}},
				},
				Comment: "it's <web>",
			}}},
			{Rule: &Rule{Action: ActionDrop, Direction: DirInOut, Priority: 1000, StateMatch: false}},
		},
	}
	out, err := f.FormatXML()
	if err != nil {
		t.Fatal(err)
	}
	want := `<filter name='web' chain='root'>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='10.0.0.1'/>
  </filterref>
  <rule action='accept' direction='in' priority='100'>
    <tcp srcipaddr='$IP' dstportstart='0x50' comment='it&apos;s &lt;web&gt;'/>
  </rule>
  <rule action='drop' direction='inout' priority='1000' statematch='false'/>
</filter>
`
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}

	bad := []*Filter{
		{Name: "x/y", Chain: "root"},
		{Name: "t", Chain: "nope"},
		{Name: "t", Chain: "root", Entries: []Entry{{Rule: &Rule{Action: "allow", Direction: DirIn, Priority: 1}}}},
		{Name: "t", Chain: "root", Entries: []Entry{{Rule: &Rule{Action: ActionDrop, Direction: DirIn, Priority: 2000}}}},
		{Name: "t", Chain: "root", Entries: []Entry{{Rule: &Rule{Action: ActionDrop, Direction: DirIn, Match: &Match{
			Protocol: ProtoTCP, Fields: []Field{{Attr: "dstportstart", Kind: KindUint16, Value: Value{Literal: "99999"}}}}}}}},
		{Name: "t", Chain: "root", Entries: []Entry{{Rule: &Rule{Action: ActionDrop, Direction: DirIn, Match: &Match{
			Protocol: ProtoTCP, Fields: []Field{{Attr: "bogus", Value: Value{Literal: "' x='1"}}}}}}}},
		{Name: "t", Chain: "root", Entries: []Entry{{Ref: &FilterRef{Filter: "a", Params: []Param{{"n", "a b"}}}}}},
	}
	for i, f := range bad {
		if out, err := f.FormatXML(); !IsValidationError(err) {
			t.Errorf("bad filter %d: got %v\n%s", i, err, out)
		}
	}
}

func TestFormatBinding(t *testing.T) {
	b := &Binding{OwnerName: "a&b", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c", PortDev: "vnet0",
		MAC: "52:54:00:7b:35:93", Filter: "clean-traffic", Params: []Param{{"MAC", "52:54:00:7b:35:93"}, {"IP", "10.0.0.1"}}}
	out, err := b.FormatXML()
	if err != nil {
		t.Fatal(err)
	}
	want := `<filterbinding>
  <owner>
    <name>a&amp;b</name>
    <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>
  </owner>
  <portdev name='vnet0'/>
  <mac address='52:54:00:7b:35:93'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='10.0.0.1'/>
    <parameter name='MAC' value='52:54:00:7b:35:93'/>
  </filterref>
</filterbinding>
`
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	b.PortDev = "much-too-long-name"
	if _, err := b.FormatXML(); !IsValidationError(err) {
		t.Errorf("invalid binding formatted: %v", err)
	}
}

func TestValidationErrorMessage(t *testing.T) {
	tests := []struct {
		err  ValidationError
		want string
	}{
		{ValidationError{Filter: "x", Rule: 3, Element: "tcp", Attr: "dstportstart", Value: "70000", Reason: "out of range 0..65535"},
			`filter "x": rule 3 <tcp dstportstart='70000'>: out of range 0..65535`},
		{ValidationError{Filter: "x", Element: "filter", Attr: "chain", Value: "it's", Reason: "bad"},
			`filter "x": <filter chain="it's">: bad`},
		{ValidationError{Element: "portdev", Attr: "name", Value: "a\nb", Reason: "bad", Line: 2},
			`<portdev name="a\nb"> (line 2): bad`},
		{ValidationError{Line: 7, Reason: "malformed XML: x"}, `line 7: malformed XML: x`},
		{ValidationError{Filter: "x", Rule: 1, Element: "rule", Reason: "unexpected text"}, `filter "x": rule 1 <rule>: unexpected text`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
	long := &ValidationError{Element: "tcp", Attr: "comment", Value: strings.Repeat("é", 100), Reason: "r"}
	if msg := long.Error(); len(msg) > 120 || !strings.Contains(msg, "…") {
		t.Errorf("long value not shortened: %s", msg)
	}
	var ve *ValidationError
	if !errors.As(error(long), &ve) {
		t.Error("errors.As")
	}
}
