package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// inRule wraps a protocol element (or other rule content) in a filter.
func inRule(content string) string {
	return "<filter name='t'>\n  <rule action='accept' direction='in'>\n    " + content + "\n  </rule>\n</filter>"
}

func TestParseFilterRejects(t *testing.T) {
	long := strings.Repeat("x", 257)
	tests := []struct {
		name    string
		doc     string
		element string // want ValidationError.Element
		attr    string // want ValidationError.Attr
		reason  string // want a ValidationError.Reason containing this
	}{
		// numbers and ranges
		{"port 70000", inRule(`<tcp dstportstart='70000'/>`), "tcp", "dstportstart", "out of range 0..65535"},
		{"port hex too big", inRule(`<udp srcportstart='0x10000'/>`), "udp", "srcportstart", "out of range"},
		{"port negative", inRule(`<tcp dstportstart='-1'/>`), "tcp", "dstportstart", "decimal number"},
		{"port bare hex", inRule(`<tcp dstportstart='ff'/>`), "tcp", "dstportstart", "0x prefix"},
		{"port empty", inRule(`<tcp dstportstart=''/>`), "tcp", "dstportstart", "empty"},
		{"port 0x", inRule(`<tcp dstportstart='0x'/>`), "tcp", "dstportstart", "no digits"},
		{"port with space", inRule(`<tcp dstportstart=' 22'/>`), "tcp", "dstportstart", "decimal number"},
		{"rule priority 1001", inRule(`<all/>`) + "", "", "", ""}, // replaced below
		{"icmp type 256", inRule(`<icmp type='256'/>`), "icmp", "type", "out of range 0..255"},
		{"stp root-cost 2^32", inRule(`<stp root-cost='4294967296'/>`), "stp", "root-cost", "out of range"},
		{"dscp 64", inRule(`<ip dscp='64'/>`), "ip", "dscp", "out of range 0..63"},
		{"dscp 0x40", inRule(`<tcp dscp='0x40'/>`), "tcp", "dscp", "out of range 0..63"},
		{"vlanid 4096", inRule(`<vlan vlanid='4096'/>`), "vlan", "vlanid", "out of range 0..4095"},
		{"connlimit hex", inRule(`<tcp connlimit-above='0x10'/>`), "tcp", "connlimit-above", "decimal"},
		// addresses and masks
		{"bad MAC", inRule(`<mac srcmacaddr='1:2:3:4:5'/>`), "mac", "srcmacaddr", "MAC address"},
		{"MAC group of 3 digits", inRule(`<mac srcmacaddr='001:2:3:4:5:6'/>`), "mac", "srcmacaddr", "MAC address"},
		{"MAC with dashes", inRule(`<mac srcmacaddr='01-02-03-04-05-06'/>`), "mac", "srcmacaddr", "MAC address"},
		{"MAC mask not contiguous", inRule(`<mac srcmacaddr='1:2:3:4:5:6' srcmacmask='ff:00:ff:00:00:00'/>`), "mac", "srcmacmask", "ones followed by zeros"},
		{"bad IPv4", inRule(`<ip srcipaddr='10.1.2.256'/>`), "ip", "srcipaddr", "greater than 255"},
		{"short IPv4", inRule(`<ip srcipaddr='10.1.2'/>`), "ip", "srcipaddr", "dotted-quad"},
		{"IPv4 leading zero", inRule(`<ip srcipaddr='010.1.2.3'/>`), "ip", "srcipaddr", "octal"},
		{"IPv6 on ip", inRule(`<ip srcipaddr='::1'/>`), "ip", "srcipaddr", "dotted-quad"},
		{"IPv4 on ipv6", inRule(`<ipv6 srcipaddr='10.1.2.3'/>`), "ipv6", "srcipaddr", "IPv6 address"},
		{"IPv6 zone", inRule(`<ipv6 srcipaddr='fe80::1%eth0'/>`), "ipv6", "srcipaddr", "zone"},
		{"bad IPv6", inRule(`<udp-ipv6 srcipaddr='a:b:c'/>`), "udp-ipv6", "srcipaddr", "IPv6 address"},
		{"IPv6 mask 129", inRule(`<tcp-ipv6 srcipaddr='::1' srcipmask='129'/>`), "tcp-ipv6", "srcipmask", "out of range 0..128"},
		{"IPv4 mask 33", inRule(`<tcp srcipaddr='10.0.0.0' srcipmask='33'/>`), "tcp", "srcipmask", "out of range 0..32"},
		{"IPv4 mask not contiguous", inRule(`<ip srcipaddr='10.1.2.3' srcipmask='255.255.255.127'/>`), "ip", "srcipmask", "ones followed by zeros"},
		{"IPv6 mask not contiguous", inRule(`<ipv6 dstipaddr='::1' dstipmask='ffff::ffff'/>`), "ipv6", "dstipmask", "ones followed by zeros"},
		{"IPv6 dstipto typed IPv6", inRule(`<tcp-ipv6 dstipfrom='::1' dstipto='10.0.0.1'/>`), "tcp-ipv6", "dstipto", "IPv6 address"},
		// names of things
		{"protocolid too small", inRule(`<mac protocolid='15'/>`), "mac", "protocolid", "0x600"},
		{"protocolid unknown name", inRule(`<mac protocolid='ipx'/>`), "mac", "protocolid", "arp, rarp, ipv4, ipv6, vlan"},
		{"encap-protocol too small", inRule(`<vlan encap-protocol='0x3b'/>`), "vlan", "encap-protocol", "0x3c"},
		{"opcode unknown", inRule(`<arp opcode='Hello'/>`), "arp", "opcode", "Request"},
		{"opcode 65536", inRule(`<arp opcode='65536'/>`), "arp", "opcode", "out of range"},
		{"ip protocol 256", inRule(`<ip protocol='256'/>`), "ip", "protocol", "out of range 0..255"},
		{"ip protocol unknown", inRule(`<ip protocol='gre'/>`), "ip", "protocol", "tcp, udp"},
		{"gratuitous maybe", inRule(`<arp gratuitous='maybe'/>`), "arp", "gratuitous", "yes, no"},
		{"state FOO", inRule(`<tcp state='FOO'/>`), "tcp", "state", "unknown connection state"},
		{"state NONE with NEW", inRule(`<tcp state='NONE,NEW'/>`), "tcp", "state", "cannot be combined"},
		{"state empty item", inRule(`<tcp state='NEW,,RELATED'/>`), "tcp", "state", "unknown connection state"},
		{"state empty", inRule(`<tcp state=''/>`), "tcp", "state", "empty"},
		{"tcp flags without slash", inRule(`<tcp flags='SYN'/>`), "tcp", "flags", "mask/flags"},
		{"tcp flags unknown", inRule(`<tcp flags='SYN/FOO'/>`), "tcp", "flags", "unknown TCP flag"},
		{"tcp flags empty side", inRule(`<tcp flags='PSH/'/>`), "tcp", "flags", "use NONE"},
		{"tcp flags ALL mixed", inRule(`<tcp flags='ALL,SYN/SYN'/>`), "tcp", "flags", "cannot be combined"},
		{"flags on tcp-ipv6", inRule(`<tcp-ipv6 flags='SYN/SYN'/>`), "tcp-ipv6", "flags", "libvirt ignores it"},
		{"ipset without ipsetflags", inRule(`<all ipset='test'/>`), "all", "ipset", "ipset needs ipsetflags"},
		{"ipsetflags without ipset", inRule(`<all ipsetflags='src'/>`), "all", "ipsetflags", "ipsetflags needs ipset"},
		{"ipsetflags 7", inRule(`<all ipset='t' ipsetflags='src,dst,src,dst,src,dst,src'/>`), "all", "ipsetflags", "at most 6"},
		{"ipsetflags bad", inRule(`<all ipset='t' ipsetflags='src,any'/>`), "all", "ipsetflags", "neither src nor dst"},
		{"ipset name 32", inRule(`<all ipset='` + strings.Repeat("s", 32) + `' ipsetflags='src'/>`), "all", "ipset", "longer than 31"},
		{"ipset name slash", inRule(`<all ipset='a/b' ipsetflags='src'/>`), "all", "ipset", "may only contain"},
		// comments
		{"comment 257", inRule(`<tcp comment='` + long + `'/>`), "tcp", "comment", "longer than 256"},
		{"comment starting with $", inRule(`<tcp comment='$HOME'/>`), "tcp", "comment", "variable reference"},
		{"comment with control character", inRule("<tcp comment='a\u0085b'/>"), "tcp", "comment", "control characters"},
		// attribute dependencies and ranges
		{"srcportend without start", inRule(`<tcp srcportend='22'/>`), "tcp", "srcportend", "needs srcportstart"},
		{"port range reversed", inRule(`<tcp dstportstart='100' dstportend='99'/>`), "tcp", "dstportend", "below"},
		{"ip range reversed", inRule(`<udp srcipfrom='10.0.0.9' srcipto='10.0.0.1'/>`), "udp", "srcipto", "below"},
		{"icmpv6 typeend reversed", inRule(`<ipv6 protocol='icmpv6' type='10' typeend='1'/>`), "ipv6", "typeend", "below"},
		{"srcipto without srcipfrom", inRule(`<udp srcipto='10.0.0.1'/>`), "udp", "srcipto", "needs srcipfrom"},
		{"mask without address", inRule(`<udp-ipv6 srcipmask='128'/>`), "udp-ipv6", "srcipmask", "needs srcipaddr"},
		{"mac mask without address", inRule(`<mac dstmacmask='ff:ff:ff:ff:ff:ff'/>`), "mac", "dstmacmask", "needs dstmacaddr"},
		{"arp ip mask without address", inRule(`<arp arpsrcipmask='24'/>`), "arp", "arpsrcipmask", "needs arpsrcipaddr"},
		{"stp hi without base", inRule(`<stp port-hi='10'/>`), "stp", "port-hi", "needs port"},
		{"icmp code without type", inRule(`<icmp code='1'/>`), "icmp", "code", "needs type"},
		{"ip port without protocol", inRule(`<ip dstportstart='22'/>`), "ip", "dstportstart", "needs protocol"},
		{"ip port with icmp", inRule(`<ip protocol='icmp' dstportstart='22'/>`), "ip", "protocol", "needs protocol"},
		{"ipv6 port with variable protocol", inRule(`<ipv6 protocol='$P' dstportstart='22'/>`), "ipv6", "protocol", "not a variable"},
		// match
		{"match maybe", inRule(`<tcp match='maybe' dstportstart='1'/>`), "tcp", "match", "yes or no"},
		{"match no without attributes", inRule(`<all match='no'/>`), "all", "match", "at least one attribute"},
		{"match no with only a comment", inRule(`<all match='no' comment='x'/>`), "all", "match", "at least one attribute"},
		// structure
		{"unknown attribute", inRule(`<tcp foo='1'/>`), "tcp", "foo", "unknown attribute of <tcp>"},
		{"unknown protocol element", inRule(`<gre/>`), "gre", "", "unknown protocol element"},
		{"two protocol elements", inRule(`<arp opcode='Reply'/><arp match='no' arpdstmacaddr='$MAC'/>`), "arp", "", "at most one protocol element"},
		{"element inside protocol element", inRule(`<tcp><x/></tcp>`), "x", "", "must be empty"},
		{"text inside rule", inRule(`hello <tcp/>`), "rule", "", "unexpected text"},
		{"duplicate attribute", inRule(`<tcp dstportstart='1' dstportstart='2'/>`), "tcp", "dstportstart", "more than once"},
		{"rule without action", `<filter name='t'><rule direction='in'/></filter>`, "rule", "action", "missing"},
		{"rule without direction", `<filter name='t'><rule action='drop'/></filter>`, "rule", "direction", "missing"},
		{"rule action upper case", `<filter name='t'><rule action='DROP' direction='in'/></filter>`, "rule", "action", "drop, accept"},
		{"rule direction both", `<filter name='t'><rule action='drop' direction='both'/></filter>`, "rule", "direction", "in, out, inout"},
		{"rule priority -1001", `<filter name='t'><rule action='drop' direction='in' priority='-1001'/></filter>`, "rule", "priority", "out of range -1000..1000"},
		{"rule priority text", `<filter name='t'><rule action='drop' direction='in' priority='high'/></filter>`, "rule", "priority", "integer"},
		{"statematch maybe", `<filter name='t'><rule action='drop' direction='in' statematch='maybe'/></filter>`, "rule", "statematch", "false or 0"},
		{"unknown rule attribute", `<filter name='t'><rule action='drop' direction='in' prio='1'/></filter>`, "rule", "prio", "unknown attribute of <rule>"},
		{"filter without name", `<filter/>`, "filter", "name", "missing"},
		{"filter name with slash", `<filter name='a/b'/>`, "filter", "name", "'/'"},
		{"filter name with leading dot", `<filter name='.hidden'/>`, "filter", "name", "start with '.'"},
		{"filter name not NCName", `<filter name='1abc'/>`, "filter", "name", "NCName"},
		{"filter name with colon", `<filter name='a:b'/>`, "filter", "name", "':'"},
		{"filter name non-ASCII", `<filter name='fïlter'/>`, "filter", "name", "ASCII"},
		{"filter name empty", `<filter name=''/>`, "filter", "name", "empty"},
		{"filter name too long", `<filter name='` + strings.Repeat("n", MaxNameLength+1) + `'/>`, "filter", "name", "longer than 128"},
		{"chain foo", `<filter name='t' chain='foo'/>`, "filter", "chain", "must be 'root' or start with"},
		{"chain too long", `<filter name='t' chain='ipv4-abcdefgh'/>`, "filter", "chain", "longer than 12"},
		{"chain root prefix", `<filter name='t' chain='rootx'/>`, "filter", "chain", "must be 'root'"},
		{"chain bad character", `<filter name='t' chain='mac$'/>`, "filter", "chain", "may only contain"},
		{"chain priority 1001", `<filter name='t' chain='ipv4' priority='1001'/>`, "filter", "priority", "out of range"},
		{"unknown filter attribute", `<filter name='t' policy='drop'/>`, "filter", "policy", "unknown attribute of <filter>"},
		{"unknown filter child", `<filter name='t'><chain/></filter>`, "chain", "", "unknown element"},
		{"two uuids", `<filter name='t'><uuid>5c6d49af-b071-6127-b4ec-6f8ed4b55335</uuid><uuid>5c6d49af-b071-6127-b4ec-6f8ed4b55335</uuid></filter>`, "uuid", "", "more than one"},
		{"bad uuid", `<filter name='t'><uuid>5c6d49af-b071-6127-b4ec-6f8ed4b5533</uuid></filter>`, "uuid", "", "malformed UUID"},
		{"uuid bad digit", `<filter name='t'><uuid>5c6d49af-b071-6127-b4ec-6f8ed4b5533g</uuid></filter>`, "uuid", "", "not a hex digit"},
		{"root not filter", `<filterbinding/>`, "filterbinding", "", "root element must be <filter>"},
		{"filterref without filter", `<filter name='t'><filterref/></filter>`, "filterref", "filter", "missing"},
		{"filterref bad name", `<filter name='t'><filterref filter='../x'/></filter>`, "filterref", "filter", "referenced filter name"},
		{"parameter bad name", `<filter name='t'><filterref filter='x'><parameter name='a-b' value='1'/></filterref></filter>`, "parameter", "name", "[A-Za-z0-9_]+"},
		{"parameter bad value", `<filter name='t'><filterref filter='x'><parameter name='a' value='1,2'/></filterref></filter>`, "parameter", "value", "[A-Za-z0-9_.:]+"},
		{"parameter empty value", `<filter name='t'><filterref filter='x'><parameter name='a' value=''/></filterref></filter>`, "parameter", "value", "[A-Za-z0-9_.:]+"},
		{"parameter without value", `<filter name='t'><filterref filter='x'><parameter name='a'/></filterref></filter>`, "parameter", "value", "missing"},
		{"filterref unknown child", `<filter name='t'><filterref filter='x'><param name='a' value='1'/></filterref></filter>`, "param", "", "unknown element"},
		// variables
		{"variable $", inRule(`<tcp dstportstart='$'/>`), "tcp", "dstportstart", "variable name missing"},
		{"variable $X[", inRule(`<tcp dstportstart='$X['/>`), "tcp", "dstportstart", "index missing"},
		{"variable $X[1", inRule(`<tcp dstportstart='$X[1'/>`), "tcp", "dstportstart", "missing ']'"},
		{"variable $X[@]", inRule(`<tcp dstportstart='$X[@]'/>`), "tcp", "dstportstart", "iterator ID missing"},
		{"variable $X[@1001]", inRule(`<tcp dstportstart='$X[@1001]'/>`), "tcp", "dstportstart", "exceeds the maximum 1000"},
		{"variable $X]", inRule(`<tcp dstportstart='$X]'/>`), "tcp", "dstportstart", "unexpected"},
		{"variable $-X", inRule(`<tcp dstportstart='$-X'/>`), "tcp", "dstportstart", "variable name missing"},
		{"variable $X[ @1]", inRule(`<tcp dstportstart='$X[-1]'/>`), "tcp", "dstportstart", "index missing"},
		{"variable $X [1]", inRule(`<tcp dstportstart='$X [1]'/>`), "tcp", "dstportstart", "unexpected"},
		{"variable in state", inRule(`<tcp state='$S'/>`), "tcp", "state", "variables are not supported"},
		{"variable in flags", inRule(`<tcp flags='$F'/>`), "tcp", "flags", "variables are not supported"},
		{"variable in ipsetflags", inRule(`<all ipset='$S' ipsetflags='$F'/>`), "all", "ipsetflags", "variables are not supported"},
		{"variable in gratuitous", inRule(`<arp gratuitous='$G'/>`), "arp", "gratuitous", "variables are not supported"},
		// documents
		{"malformed XML", `<filter name='t'><rule action='drop' direction='in'></filter>`, "", "", "malformed XML"},
		{"unclosed root", `<filter name='t'>`, "", "", "malformed XML"},
		{"not XML", `this is not XML`, "", "", "malformed XML"},
		{"empty document", ``, "", "", "no root element"},
		{"two roots", `<filter name='t'/><filter name='u'/>`, "filter", "", "more than one root"},
		{"doctype", `<!DOCTYPE filter [<!ENTITY x "y">]><filter name='t'/>`, "", "", "DOCTYPE"},
		{"undefined entity", `<filter name='t&x;'/>`, "", "", "malformed XML"},
		{"namespace", `<filter xmlns:n='urn:x' name='t' n:chain='root'/>`, "filter", "xmlns:n", "namespaces"},
		{"namespaced element", `<n:filter xmlns:n='urn:x' name='t'/>`, "urn:x:filter", "", "namespaces"},
		{"too large", `<filter name='t'>` + strings.Repeat(" ", MaxInputSize) + `</filter>`, "", "", "larger than the limit"},
		{"not UTF-8 encoding", `<?xml version='1.0' encoding='ISO-8859-1'?><filter name='t'/>`, "", "", "malformed XML"},
	}
	tests[7] = struct {
		name, doc, element, attr, reason string
	}{"rule priority 1001", `<filter name='t'><rule action='drop' direction='in' priority='1001'/></filter>`, "rule", "priority", "out of range -1000..1000"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter([]byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			if !IsValidationError(err) {
				t.Fatalf("error is not a *ValidationError: %T %v", err, err)
			}
			var ve *ValidationError
			errors.As(err, &ve)
			if ve.Element != tt.element || ve.Attr != tt.attr || !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("got Element=%q Attr=%q Reason=%q, want Element=%q Attr=%q Reason containing %q",
					ve.Element, ve.Attr, ve.Reason, tt.element, tt.attr, tt.reason)
			}
			if strings.Contains(tt.doc, "<rule") && tt.element != "" && tt.element != "filter" && ve.Rule != 1 && !strings.HasPrefix(tt.name, "malformed") {
				t.Errorf("Rule = %d, want 1", ve.Rule)
			}
			if ve.Element != "" && ve.Element != "filter" && strings.HasPrefix(tt.doc, "<filter name='t'") && ve.Filter != "t" {
				t.Errorf("Filter = %q, want \"t\"", ve.Filter)
			}
			t.Log(err)
		})
	}
}

func TestValidationErrorRuleIndex(t *testing.T) {
	doc := `<filter name='web'>
  <filterref filter='clean-traffic'/>
  <rule action='accept' direction='in'><tcp dstportstart='22'/></rule>
  <rule action='accept' direction='in'><tcp dstportstart='80'/></rule>
  <rule action='accept' direction='in'><tcp dstportstart='70000'/></rule>
</filter>`
	_, err := ParseFilter([]byte(doc))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a *ValidationError", err)
	}
	if ve.Rule != 3 || ve.Line != 5 || ve.Value != "70000" {
		t.Errorf("got Rule=%d Line=%d Value=%q, want 3, 5, 70000", ve.Rule, ve.Line, ve.Value)
	}
	want := `filter "web": rule 3 <tcp dstportstart='70000'> (line 5): out of range 0..65535`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	wrapped := fmt.Errorf("define: %w", err)
	if !IsValidationError(wrapped) {
		t.Error("IsValidationError does not see through wrapping")
	}
	if IsValidationError(errors.New("x")) || IsValidationError(nil) {
		t.Error("IsValidationError is true for other errors")
	}
}

func TestParseFilterDefaults(t *testing.T) {
	f, err := ParseFilter([]byte(`<filter name='t'><rule action='drop' direction='in'/></filter>`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Chain != "root" || f.ChainPriority != 0 || f.ChainPrioritySet || f.UUID != "" {
		t.Errorf("filter defaults: %+v", f)
	}
	r := f.Entries[0].Rule
	if r.Priority != 500 || !r.StateMatch || r.Match != nil || r.Action != ActionDrop || r.Direction != DirIn {
		t.Errorf("rule defaults: %+v", r)
	}
	for chain, prio := range map[string]int{"root": 0, "mac": -800, "vlan-x": -750, "ipv4": -700, "ipv6-ip": -600,
		"arp-mac": -500, "rarp": -400, "stp-xyz": 0} {
		f, err := ParseFilter([]byte(`<filter name='t' chain='` + chain + `'/>`))
		if err != nil {
			t.Fatal(err)
		}
		if f.ChainPriority != prio || f.ChainPrioritySet {
			t.Errorf("chain %s: priority %d (set %v), want %d", chain, f.ChainPriority, f.ChainPrioritySet, prio)
		}
	}
	f, err = ParseFilter([]byte(`<filter name='t' chain='mac' priority='0'><uuid> 5C6D49AFB0716127B4EC6F8ED4B55335 </uuid></filter>`))
	if err != nil {
		t.Fatal(err)
	}
	if f.ChainPriority != 0 || !f.ChainPrioritySet || f.UUID != "5c6d49af-b071-6127-b4ec-6f8ed4b55335" {
		t.Errorf("explicit priority 0 and UUID: %+v", f)
	}
	for _, sm := range []string{"false", "FALSE", "False", "0"} {
		f, err := ParseFilter([]byte(`<filter name='t'><rule action='drop' direction='in' statematch='` + sm + `'/></filter>`))
		if err != nil || f.Entries[0].Rule.StateMatch {
			t.Errorf("statematch=%s: %v %+v", sm, err, f)
		}
	}
}

// TestParseVariablesEverywhere puts a variable into every attribute of
// every protocol element: kinds that allow variables must accept it, the
// others must refuse it.
func TestParseVariablesEverywhere(t *testing.T) {
	for _, proto := range Protocols() {
		for _, attr := range Attributes(proto) {
			kind, _ := AttributeKind(proto, attr)
			attrs := map[string]string{attr: "$V_1[@2]"}
			for _, d := range attrNeeds {
				if d.attr == attr {
					if k, ok := AttributeKind(proto, d.base); ok {
						attrs[d.base] = "$B"
						if !k.AllowsVariables() {
							attrs[d.base] = "src"
						}
					}
				}
			}
			if strings.HasSuffix(attr, "port") || strings.Contains(attr, "portstart") || strings.Contains(attr, "portend") {
				if _, ok := AttributeKind(proto, "protocol"); ok {
					attrs["protocol"] = "tcp"
				}
			}
			if (proto == ProtoICMP || proto == ProtoICMPv6) && attr == "code" {
				attrs["type"] = "$T"
			}
			var b strings.Builder
			for k, v := range attrs {
				fmt.Fprintf(&b, " %s='%s'", k, v)
			}
			doc := inRule("<" + string(proto) + b.String() + "/>")
			f, err := ParseFilter([]byte(doc))
			if !kind.AllowsVariables() {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Attr != attr || !strings.Contains(ve.Reason, "variables are not supported") {
					t.Errorf("%s %s (%s): got %v, want variables refused", proto, attr, kind, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %s (%s): %v", proto, attr, kind, err)
				continue
			}
			var got *Field
			for i, fl := range f.Entries[0].Rule.Match.Fields {
				if fl.Attr == attr {
					got = &f.Entries[0].Rule.Match.Fields[i]
				}
			}
			if got == nil || got.Value.Var == nil || *got.Value.Var != (VarRef{Name: "V_1", Access: AccessIterator, Index: 2}) || got.Kind != kind {
				t.Errorf("%s %s: field %+v", proto, attr, got)
			}
			if !slices.Contains(f.Variables(), "V_1") {
				t.Errorf("%s %s: Variables() = %v", proto, attr, f.Variables())
			}
		}
	}
}

func TestParseVarRef(t *testing.T) {
	tests := []struct {
		in   string
		want VarRef
		text string
	}{
		{"$IP", VarRef{Name: "IP"}, "$IP"},
		{"$IP[@0]", VarRef{Name: "IP"}, "$IP"},
		{"$IP[ 3 ]", VarRef{Name: "IP", Access: AccessIndex, Index: 3}, "$IP[3]"},
		{"$IP[0]", VarRef{Name: "IP", Access: AccessIndex}, "$IP[0]"},
		{"$IP[@1000]", VarRef{Name: "IP", Access: AccessIterator, Index: 1000}, "$IP[@1000]"},
		{"$ ports_2[  @7 ] ", VarRef{Name: "ports_2", Access: AccessIterator, Index: 7}, "$ports_2[@7]"},
		{"$X ", VarRef{Name: "X"}, "$X"},
	}
	for _, tt := range tests {
		got, err := ParseVarRef(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if *got != tt.want || got.String() != tt.text {
			t.Errorf("%q: got %+v %q, want %+v %q", tt.in, *got, got.String(), tt.want, tt.text)
		}
	}
	for _, bad := range []string{"", "X", "$", "$[1]", "$X[", "$X[]", "$X[@]", "$X[1", "$X[1]]", "$X[@ 1]", "$X[1001a]", "$X[99999999999]", "$X[@1001]", "$X.Y", "$X [1]"} {
		if r, err := ParseVarRef(bad); err == nil {
			t.Errorf("%q: accepted as %+v", bad, r)
		}
	}
}

func TestReferencesAndVariables(t *testing.T) {
	f, err := ParseFilter([]byte(`<filter name='t'>
  <filterref filter='b'/>
  <rule action='accept' direction='in'><ip srcipaddr='$IP' dstipaddr='$GW[1]'/></rule>
  <filterref filter='a'><parameter name='X' value='1'/></filterref>
  <filterref filter='b'/>
  <rule action='accept' direction='in'><mac srcmacaddr='$MAC' dstmacaddr='$MAC[@2]'/></rule>
</filter>`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.References(); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("References() = %v", got)
	}
	if got := f.Variables(); !slices.Equal(got, []string{"GW", "IP", "MAC"}) {
		t.Errorf("Variables() = %v", got)
	}
	if got := len(f.Rules()); got != 2 {
		t.Errorf("Rules() has %d rules", got)
	}
}

func TestParseBinding(t *testing.T) {
	good := `<filterbinding>
  <owner><name>vm 1</name><uuid>D54DF46F1AB54A2286184560EF5FAC2C</uuid></owner>
  <portdev name='vnet0'/>
  <linkdev name='eth0.10'/>
  <mac address='2:54:0:7b:35:93'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='10.0.0.2'/>
    <parameter name='IP' value='10.0.0.1'/>
  </filterref>
</filterbinding>`
	b, err := ParseBinding([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := &Binding{OwnerName: "vm 1", OwnerUUID: "d54df46f-1ab5-4a22-8618-4560ef5fac2c", PortDev: "vnet0", LinkDev: "eth0.10",
		MAC: "02:54:00:7b:35:93", Filter: "clean-traffic", Params: []Param{{"IP", "10.0.0.2"}, {"IP", "10.0.0.1"}}}
	if fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", b, want)
	}
	replace := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	tests := []struct {
		name, doc, element, attr, reason string
	}{
		{"portdev too long", replace("vnet0", "vnet0123456789ab"), "portdev", "name", "longer than 15"},
		{"portdev slash", replace("vnet0", "a/b"), "portdev", "name", "'/'"},
		{"portdev colon", replace("vnet0", "a:b"), "portdev", "name", "':'"},
		{"portdev space", replace("vnet0", "a b"), "portdev", "name", "whitespace"},
		{"portdev dot", replace("vnet0", "."), "portdev", "name", "'.' or '..'"},
		{"portdev dotdot", replace("vnet0", ".."), "portdev", "name", "'.' or '..'"},
		{"portdev empty", replace("vnet0", ""), "portdev", "name", "empty"},
		{"linkdev bad", replace("eth0.10", "eth0/10"), "linkdev", "name", "'/'"},
		{"multicast MAC", replace("2:54:0:7b:35:93", "01:00:5e:00:00:01"), "mac", "address", "unicast"},
		{"bad MAC", replace("2:54:0:7b:35:93", "zz:54:0:7b:35:93"), "mac", "address", "MAC address"},
		{"bad owner UUID", replace("D54DF46F1AB54A2286184560EF5FAC2C", "nope"), "uuid", "", "malformed UUID"},
		{"empty owner name", replace("vm 1", ""), "name", "", "empty"},
		{"missing portdev", replace("<portdev name='vnet0'/>", ""), "portdev", "", "missing required element"},
		{"missing mac", replace("<mac address='2:54:0:7b:35:93'/>", ""), "mac", "", "missing required element"},
		{"missing owner uuid", replace("<uuid>D54DF46F1AB54A2286184560EF5FAC2C</uuid>", ""), "owner", "", "missing required element <uuid>"},
		{"two macs", replace("<mac ", "<mac address='02:00:00:00:00:01'/><mac "), "mac", "", "more than one"},
		{"unknown element", replace("<portdev", "<bridge name='x'/><portdev"), "bridge", "", "unknown element"},
		{"unknown attribute", replace("<portdev name", "<portdev type='tap' name"), "portdev", "type", "unknown attribute"},
		{"bad parameter", replace("value='10.0.0.1'", "value='10.0.0.1/24'"), "parameter", "value", "[A-Za-z0-9_.:]+"},
		{"bad filter name", replace("filter='clean-traffic'", "filter='-x'"), "filterref", "filter", "NCName"},
		{"wrong root", `<filter name='x'/>`, "filter", "", "root element must be <filterbinding>"},
		{"malformed", `<filterbinding>`, "", "", "malformed XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBinding([]byte(tt.doc))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if ve.Element != tt.element || ve.Attr != tt.attr || !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("got Element=%q Attr=%q Reason=%q, want %q %q containing %q", ve.Element, ve.Attr, ve.Reason, tt.element, tt.attr, tt.reason)
			}
		})
	}
}
