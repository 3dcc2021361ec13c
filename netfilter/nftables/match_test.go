package nftables

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
)

// Unit tests of the match compiler that need no kernel: refusals, the
// errors' classes, and the agreement of sharedKey, sharedKeyType and the
// loads compileMatch emits. What the compiled expressions mean is tested
// against the kernel in match_kernel_test.go.

// testSet is a set to pass as matchOptions.Set.
var testSet = &nftables.Set{Name: "s", ID: 7}

// compile is compileMatch with the family of the rule's protocol.
func compile(r netfilter.Rule, o matchOptions) ([]expr.Any, error) {
	fam, ok := protocolFamily(r.Protocol)
	if !ok {
		fam = nftables.TableFamilyBridge
	}
	if r.Direction == 0 {
		r.Direction = o.Dir
	}
	return compileMatch(fam, &r, o)
}

// TestCompileMatchBadInput checks that bad input is an error that is
// neither errUnsupported nor errNoRule, and names what is wrong.
func TestCompileMatchBadInput(t *testing.T) {
	out := matchOptions{Dir: netfilter.DirOut}
	cases := []struct {
		name string
		fam  nftables.TableFamily
		rule netfilter.Rule
		o    matchOptions
		want string // substring of the error
	}{
		{"unknown protocol", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "ipx"}, out, `unknown protocol element "ipx"`},
		{"unknown attribute", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("srcipaddr", "10.0.0.1")}}, out, `mac: unknown attribute "srcipaddr"`},
		{"attribute of another element", nftables.TableFamilyINet, netfilter.Rule{Protocol: "udp", Fields: []netfilter.Field{f("flags", "SYN/SYN")}}, out, `udp: unknown attribute "flags"`},
		{"flags on tcp-ipv6", nftables.TableFamilyINet, netfilter.Rule{Protocol: "tcp-ipv6", Fields: []netfilter.Field{f("flags", "SYN/SYN")}}, out, `unknown attribute "flags"`},
		{"attribute twice", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("protocolid", "arp"), f("protocolid", "ipv4")}}, out, "given twice"},
		{"field without element", nftables.TableFamilyBridge, netfilter.Rule{Fields: []netfilter.Field{f("srcmacaddr", "01:02:03:04:05:06")}}, out, "unknown attribute"},
		{"bad MAC", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("srcmacaddr", "01:02:03:04:05")}}, out, `mac: srcmacaddr="01:02:03:04:05": not a MAC address`},
		{"bad MAC mask", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("srcmacaddr", "01:02:03:04:05:06"), f("srcmacmask", "ff:00:ff:00:00:00")}}, out, "srcmacmask"},
		{"bad IPv4", nftables.TableFamilyINet, netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{f("srcipaddr", "10.0.0")}}, out, `tcp: srcipaddr="10.0.0": not an IPv4 address`},
		{"IPv6 on IPv4 element", nftables.TableFamilyINet, netfilter.Rule{Protocol: "udp", Fields: []netfilter.Field{f("dstipaddr", "2001:db8::1")}}, out, "not an IPv4 address"},
		{"IPv4 on IPv6 element", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "ipv6", Fields: []netfilter.Field{f("dstipaddr", "10.0.0.1")}}, out, "not an IPv6 address"},
		{"prefix too long", nftables.TableFamilyINet, netfilter.Rule{Protocol: "all", Fields: []netfilter.Field{f("srcipaddr", "10.0.0.1"), f("srcipmask", "33")}}, out, "srcipmask"},
		{"port out of range", nftables.TableFamilyINet, netfilter.Rule{Protocol: "udp", Fields: []netfilter.Field{f("dstportstart", "65536")}}, out, `dstportstart="65536": out of range`},
		{"range reversed", nftables.TableFamilyINet, netfilter.Rule{Protocol: "udp", Fields: []netfilter.Field{f("dstportstart", "80"), f("dstportend", "79")}}, out, "dstportend"},
		{"dscp out of range", nftables.TableFamilyINet, netfilter.Rule{Protocol: "all", Fields: []netfilter.Field{f("dscp", "64")}}, out, `dscp="64"`},
		{"vlan id out of range", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "vlan", Fields: []netfilter.Field{f("vlanid", "4096")}}, out, "vlanid"},
		{"bad ethertype name", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("protocolid", "ipx")}}, out, "must be one of arp"},
		{"bad opcode", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "arp", Fields: []netfilter.Field{f("opcode", "Hello")}}, out, "opcode"},
		{"bad tcp flags", nftables.TableFamilyINet, netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{f("flags", "SYN")}}, out, "mask/flags"},
		{"bad tcp flag", nftables.TableFamilyINet, netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{f("flags", "SYN/XMAS")}}, out, "XMAS"},
		{"bad boolean", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "arp", Fields: []netfilter.Field{f("gratuitous", "maybe")}}, out, "gratuitous"},
		{"inout direction", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac"}, matchOptions{Dir: netfilter.DirInOut}, "direction must be in or out, not inout"},
		{"no direction", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac"}, matchOptions{}, "direction must be in or out"},
		{"IP element in inet", nftables.TableFamilyINet, netfilter.Rule{Protocol: "ip"}, out, "ip rules compile for the bridge family, not inet"},
		{"IP-layer element in bridge", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "tcp"}, out, "tcp rules compile for the inet family, not bridge"},
		{"shared index out of range", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("protocolid", "arp")}}, matchOptions{Dir: netfilter.DirOut, Shared: []int{1}, Set: testSet}, "out of range"},
		{"shared twice", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("protocolid", "arp")}}, matchOptions{Dir: netfilter.DirOut, Shared: []int{0, 0}, Set: testSet}, "listed twice"},
		{"shared without set", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("protocolid", "arp")}}, matchOptions{Dir: netfilter.DirOut, Shared: []int{0}}, "need a set"},
		// Rules libvirt's ebtables refuses.
		{"stp inout srcmacaddr", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "stp", Direction: netfilter.DirInOut, Fields: []netfilter.Field{f("srcmacaddr", "01:02:03:04:05:06")}}, out, "libvirt refuses stp rules with srcmacaddr"},
		{"ip ports without protocol", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "ip", Fields: []netfilter.Field{f("dstportstart", "80")}}, out, "a port match needs protocol"},
		{"ip ports with icmp", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "ip", Fields: []netfilter.Field{f("protocol", "icmp"), f("dstportstart", "80")}}, out, "a port match needs protocol"},
		{"ip ports negated", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "ip", Negate: true, Fields: []netfilter.Field{f("protocol", "tcp"), f("dstportstart", "80")}}, out, "ebtables refuses"},
		{"ipv6 type without icmpv6", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "ipv6", Fields: []netfilter.Field{f("protocol", "udp"), f("type", "1")}}, out, "needs protocol icmpv6"},
		{"ipv6 type negated", nftables.TableFamilyBridge, netfilter.Rule{Protocol: "ipv6", Negate: true, Fields: []netfilter.Field{f("protocol", "icmpv6"), f("type", "1")}}, out, "ebtables refuses"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.rule
			if r.Direction == 0 {
				r.Direction = netfilter.DirOut
			}
			_, err := compileMatch(c.fam, &r, c.o)
			if err == nil {
				t.Fatalf("compileMatch succeeded, want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if errors.Is(err, errUnsupported) || errors.Is(err, errNoRule) {
				t.Errorf("error %q is errUnsupported or errNoRule; bad input must be neither", err)
			}
		})
	}
}

// TestCompileMatchUnsupported checks the errUnsupported cases: the
// caller's attributes, gratuitous ARP and the shapes a shared lookup
// cannot take.
func TestCompileMatchUnsupported(t *testing.T) {
	out := matchOptions{Dir: netfilter.DirOut}
	shared := func(idx ...int) matchOptions {
		return matchOptions{Dir: netfilter.DirOut, Shared: idx, Set: testSet}
	}
	cases := []struct {
		name string
		rule netfilter.Rule
		o    matchOptions
		want string
	}{
		{"state", netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{f("dstportstart", "22"), f("state", "NEW")}}, out, `tcp: state="NEW": connection states are the caller's`},
		{"state NONE", netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{f("state", "NONE"), f("flags", "SYN/ALL")}}, out, "state"},
		{"connlimit-above", netfilter.Rule{Protocol: "icmp", Fields: []netfilter.Field{f("connlimit-above", "1")}}, out, "connlimit-above"},
		{"ipset", netfilter.Rule{Protocol: "all", Fields: []netfilter.Field{f("ipset", "tck_test"), f("ipsetflags", "src,dst")}}, out, "ipset"},
		{"ipsetflags", netfilter.Rule{Protocol: "all-ipv6", Fields: []netfilter.Field{f("ipsetflags", "src")}}, out, "ipsetflags"},
		{"gratuitous", netfilter.Rule{Protocol: "arp", Fields: []netfilter.Field{f("gratuitous", "true")}}, out, `arp: gratuitous="true": it compares the sender and target IP addresses`},
		{"shared mask", netfilter.Rule{Protocol: "ip", Fields: []netfilter.Field{f("srcipaddr", "10.0.0.0"), v("srcipmask", "M", "8")}}, shared(1), "it qualifies srcipaddr"},
		{"shared range start", netfilter.Rule{Protocol: "udp", Fields: []netfilter.Field{v("dstportstart", "P", "1"), f("dstportend", "9")}}, shared(0), "a range (dstportstart..dstportend)"},
		{"shared range end", netfilter.Rule{Protocol: "udp", Fields: []netfilter.Field{f("dstportstart", "1"), v("dstportend", "P", "9")}}, shared(1), "it qualifies dstportstart"},
		{"shared ipv6 typeend", netfilter.Rule{Protocol: "ipv6", Fields: []netfilter.Field{f("protocol", "icmpv6"), v("typeend", "T", "9")}}, shared(1), "range end"},
		{"shared tcp flags", netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{v("flags", "F", "SYN/SYN")}}, shared(0), "tcp flags"},
		{"shared tcp option", netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{v("option", "O", "2")}}, shared(0), "tcp option"},
		{"shared icmp type", netfilter.Rule{Protocol: "icmp", Fields: []netfilter.Field{v("type", "T", "8")}}, shared(0), "icmp type"},
		{"shared dscp", netfilter.Rule{Protocol: "udp", Fields: []netfilter.Field{v("dscp", "D", "8")}}, shared(0), "DSCP"},
		{"shared ignored iprange", netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{f("srcipaddr", "10.0.0.1"), v("srcipfrom", "F", "10.0.0.1")}}, shared(1), "libvirt ignores it"},
		{"shared ignored stp field", netfilter.Rule{Protocol: "stp", Fields: []netfilter.Field{f("type", "0x80"), v("port", "P", "1")}}, shared(1), "libvirt ignores it"},
		{"shared stp type with config", netfilter.Rule{Protocol: "stp", Fields: []netfilter.Field{v("type", "T", "0"), f("port", "1")}}, shared(0), "literal type"},
		{"shared negated two fields", netfilter.Rule{Protocol: "mac", Negate: true, Fields: []netfilter.Field{v("srcmacaddr", "M", "01:02:03:04:05:06"), v("protocolid", "P", "arp")}}, shared(0, 1), "match='no' negates each attribute alone"},
		{"shared key too many parts", netfilter.Rule{Protocol: "ipv6", Fields: []netfilter.Field{
			v("srcmacaddr", "A", "01:02:03:04:05:06"), v("dstmacaddr", "B", "01:02:03:04:05:07"), v("srcipaddr", "C", "::1"), v("dstipaddr", "D", "::2"), v("protocol", "E", "udp")}},
			shared(0, 1, 2, 3, 4), "exceeds the kernel's 5 parts and 64 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := compile(c.rule, c.o)
			if !errors.Is(err, errUnsupported) {
				t.Fatalf("error %v, want errUnsupported", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// TestCompileMatchNoRule checks the rules libvirt does not emit, and that
// their other halves compile.
func TestCompileMatchNoRule(t *testing.T) {
	mac := f("srcmacaddr", "01:02:03:04:05:06")
	cases := []struct {
		name string
		rule netfilter.Rule
		o    matchOptions
	}{
		{"srcmacaddr only, reply", netfilter.Rule{Protocol: "all", Fields: []netfilter.Field{mac}}, matchOptions{Dir: netfilter.DirIn, Swap: true}},
		{"srcmacaddr only, reply, negated", netfilter.Rule{Protocol: "all", Negate: true, Fields: []netfilter.Field{mac}}, matchOptions{Dir: netfilter.DirOut, Swap: true}},
		{"srcmacaddr only, reply, tcp-ipv6", netfilter.Rule{Protocol: "tcp-ipv6", Fields: []netfilter.Field{mac}}, matchOptions{Dir: netfilter.DirIn, Swap: true}},
		{"icmp type, reply", netfilter.Rule{Protocol: "icmp", Fields: []netfilter.Field{f("type", "8")}}, matchOptions{Dir: netfilter.DirIn, Swap: true}},
		{"icmpv6 type, inout", netfilter.Rule{Protocol: "icmpv6", Direction: netfilter.DirInOut, Fields: []netfilter.Field{f("type", "128")}}, matchOptions{Dir: netfilter.DirIn}},
		{"icmp type 255 negated", netfilter.Rule{Protocol: "icmp", Negate: true, Fields: []netfilter.Field{f("type", "255")}}, matchOptions{Dir: netfilter.DirOut}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := compile(c.rule, c.o)
			if !errors.Is(err, errNoRule) {
				t.Fatalf("error %v, want errNoRule", err)
			}
		})
	}
	// The same rules in the direction libvirt keeps compile.
	keep := []struct {
		name string
		rule netfilter.Rule
		o    matchOptions
	}{
		{"srcmacaddr only", netfilter.Rule{Protocol: "all", Fields: []netfilter.Field{mac}}, matchOptions{Dir: netfilter.DirOut}},
		{"srcmacaddr and address, reply", netfilter.Rule{Protocol: "all", Fields: []netfilter.Field{mac, f("srcipaddr", "10.0.0.1")}}, matchOptions{Dir: netfilter.DirIn, Swap: true}},
		{"icmp type", netfilter.Rule{Protocol: "icmp", Fields: []netfilter.Field{f("type", "8")}}, matchOptions{Dir: netfilter.DirOut}},
		{"icmp without type, inout reply", netfilter.Rule{Protocol: "icmp", Direction: netfilter.DirInOut}, matchOptions{Dir: netfilter.DirOut, Swap: true}},
	}
	for _, c := range keep {
		t.Run("keeps "+c.name, func(t *testing.T) {
			if _, err := compile(c.rule, c.o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// keyLoads returns the registers and lengths of the loads between the
// port name and the lookup of a compiled shared match.
func keyLoads(t *testing.T, exprs []expr.Any) (lookup *expr.Lookup, regs, lens []uint32) {
	t.Helper()
	start := -1
	for i, e := range exprs {
		if m, ok := e.(*expr.Meta); ok && m.Register == unix.NFT_REG32_00 {
			start = i
		}
	}
	if start < 0 {
		t.Fatalf("no port name load into NFT_REG32_00 in %#v", exprs)
	}
	for _, e := range exprs[start+1:] {
		switch e := e.(type) {
		case *expr.Payload:
			regs, lens = append(regs, e.DestRegister), append(lens, e.Len)
		case *expr.Meta:
			regs, lens = append(regs, e.Register), append(lens, 1)
		case *expr.Bitwise:
			if e.SourceRegister != e.DestRegister || e.DestRegister != regs[len(regs)-1] {
				t.Fatalf("bitwise %#v does not mask the part just loaded", e)
			}
		case *expr.Lookup:
			lookup = e
		default:
			t.Fatalf("unexpected %T in the key loads", e)
		}
	}
	if lookup == nil {
		t.Fatal("no lookup")
	}
	return lookup, regs, lens
}

// TestSharedKeyConsistency checks that sharedKey, sharedKeyType and the
// loads of compileMatch agree: key length, part count, and registers.
func TestSharedKeyConsistency(t *testing.T) {
	mac := "52:54:00:12:34:56"
	cases := []struct {
		name  string
		rule  netfilter.Rule
		share []int
		swap  bool
		dir   netfilter.Direction
		parts []int // padded key part lengths after the port name
	}{
		{"mac", netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{v("srcmacaddr", "MAC", mac)}}, []int{0}, false, netfilter.DirOut, []int{8}},
		{"mac protocolid", netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{v("srcmacaddr", "MAC", mac), v("protocolid", "P", "ipv6")}}, []int{0, 1}, false, netfilter.DirOut, []int{8, 4}},
		{"arp", netfilter.Rule{Protocol: "arp", Fields: []netfilter.Field{v("srcmacaddr", "MAC", mac), v("arpsrcipaddr", "IP", "10.0.0.1"), v("opcode", "O", "Request")}}, []int{0, 1, 2}, false, netfilter.DirOut, []int{8, 4, 4}},
		{"ip masked", netfilter.Rule{Protocol: "ip", Fields: []netfilter.Field{v("srcipaddr", "IP", "10.1.2.3"), f("srcipmask", "16"), f("protocol", "tcp"), v("dstportstart", "P", "22")}}, []int{0, 3}, false, netfilter.DirIn, []int{4, 4}},
		{"ipv6 macs and addresses", netfilter.Rule{Protocol: "ipv6", Fields: []netfilter.Field{
			v("srcmacaddr", "A", mac), v("dstmacaddr", "B", mac), v("srcipaddr", "C", "2001:db8::1"), v("dstipaddr", "D", "2001:db8::2")}},
			[]int{0, 1, 2, 3}, false, netfilter.DirOut, []int{8, 8, 16, 16}},
		{"vlan", netfilter.Rule{Protocol: "vlan", Fields: []netfilter.Field{v("vlanid", "V", "7"), v("encap-protocol", "E", "0x88b5")}}, []int{0, 1}, false, netfilter.DirIn, []int{4, 4}},
		{"stp", netfilter.Rule{Protocol: "stp", Fields: []netfilter.Field{v("root-address", "A", mac), f("root-address-mask", "ff:ff:ff:00:00:00"), v("root-cost", "C", "100"), v("flags", "F", "1")}}, []int{0, 2, 3}, false, netfilter.DirIn, []int{8, 4, 4}},
		{"ip tos", netfilter.Rule{Protocol: "ip", Fields: []netfilter.Field{v("dscp", "D", "46")}}, []int{0}, false, netfilter.DirOut, []int{4}},
		{"tcp swap drops srcmacaddr", netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{v("srcmacaddr", "MAC", mac), v("srcipaddr", "IP", "10.0.0.1")}}, []int{0, 1}, true, netfilter.DirIn, []int{4}},
		{"tcp-ipv6", netfilter.Rule{Protocol: "tcp-ipv6", Fields: []netfilter.Field{v("srcmacaddr", "MAC", mac), v("dstipaddr", "IP", "::1"), v("srcportstart", "P", "1024")}}, []int{0, 1, 2}, false, netfilter.DirOut, []int{8, 16, 4}},
		{"ipv6 icmp", netfilter.Rule{Protocol: "ipv6", Fields: []netfilter.Field{f("protocol", "icmpv6"), v("type", "T", "135"), v("code", "C", "0")}}, []int{1, 2}, false, netfilter.DirOut, []int{4, 4}},
		{"sctp", netfilter.Rule{Protocol: "sctp", Fields: []netfilter.Field{v("srcipfrom", "F", "10.0.0.1"), v("dstportstart", "P", "9")}}, []int{0, 1}, false, netfilter.DirOut, []int{4, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.rule
			r.Direction = c.dir
			fields := keyFields(&r, c.share)
			kt, err := sharedKeyType(r.Protocol, fields, c.swap)
			if err != nil {
				t.Fatalf("sharedKeyType: %v", err)
			}
			key, err := sharedKey("vnet12", r.Protocol, fields, c.swap)
			if err != nil {
				t.Fatalf("sharedKey: %v", err)
			}
			want := ifNameSize
			for _, p := range c.parts {
				want += p
			}
			if len(key) != want || int(kt.Bytes) != want {
				t.Errorf("key is %d bytes, key type %s %d bytes, want both %d", len(key), kt.Name, kt.Bytes, want)
			}
			if got := len(nftables.ConcatSetTypeElements(kt)); got != len(c.parts)+1 {
				t.Errorf("key type %s has %d parts, want %d", kt.Name, got, len(c.parts)+1)
			}
			if !bytes.Equal(key[:ifNameSize], append([]byte("vnet12"), make([]byte, 10)...)) {
				t.Errorf("key starts with %x, want the zero-padded port name", key[:ifNameSize])
			}
			exprs, err := compileMatch(mustFamily(r.Protocol), &r, matchOptions{Dir: c.dir, Swap: c.swap, Shared: c.share, Set: testSet})
			if err != nil {
				t.Fatalf("compileMatch: %v", err)
			}
			lookup, regs, lens := keyLoads(t, exprs)
			if lookup.SourceRegister != unix.NFT_REG32_00 || lookup.SetName != "s" || lookup.SetID != 7 || lookup.Invert != r.Negate {
				t.Errorf("lookup %#v", lookup)
			}
			if len(regs) != len(c.parts) {
				t.Fatalf("%d key parts loaded, want %d", len(regs), len(c.parts))
			}
			next := uint32(unix.NFT_REG32_00 + ifNameSize/4)
			for i := range regs {
				if regs[i] != next {
					t.Errorf("part %d loaded into register %d, want %d", i, regs[i], next)
				}
				if padded := int((lens[i] + 3) / 4 * 4); padded != c.parts[i] {
					t.Errorf("part %d loads %d bytes (%d padded), key type has %d", i, lens[i], padded, c.parts[i])
				}
				next += (lens[i] + 3) / 4
			}
			// A port name too long for the kernel is refused.
			if _, err := sharedKey("a-very-long-name0", r.Protocol, fields, c.swap); err == nil {
				t.Error("sharedKey accepted a 17-byte port name")
			}
		})
	}
}

// mustFamily returns the family of a known protocol element.
func mustFamily(proto string) nftables.TableFamily {
	fam, _ := protocolFamily(proto)
	return fam
}

// TestSharedKeyValues checks the bytes of some keys: masks applied, names
// encoded as numbers, padding.
func TestSharedKeyValues(t *testing.T) {
	r := netfilter.Rule{Protocol: "ip", Direction: netfilter.DirOut, Fields: []netfilter.Field{
		v("srcipaddr", "NET", "192.168.7.200"), f("srcipmask", "24"), f("protocol", "udp"), v("dstportstart", "P", "53")}}
	fields := keyFields(&r, []int{0, 3})
	if len(fields) != 3 || fields[1].Attr != "srcipmask" {
		t.Fatalf("keyFields = %v, want srcipaddr, its mask, dstportstart", fields)
	}
	key, err := sharedKey("vnet0", "ip", fields, false)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte("vnet0"), make([]byte, 11)...), 192, 168, 7, 0, 0, 53, 0, 0)
	if !bytes.Equal(key, want) {
		t.Errorf("key %x, want %x (address masked to /24, port padded)", key, want)
	}
	// Named values encode as their numbers.
	key, err = sharedKey("vnet0", "arp", []netfilter.Field{f("opcode", "Reply"), f("protocoltype", "0x800")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := key[ifNameSize:]; !bytes.Equal(got, []byte{0, 2, 0, 0, 8, 0, 0, 0}) {
		t.Errorf("arp key parts %x, want opcode 2 and ptype 0x0800", got)
	}
	// A bad value is an error naming it.
	if _, err := sharedKey("vnet0", "mac", []netfilter.Field{f("srcmacaddr", "zz")}, false); err == nil || !strings.Contains(err.Error(), "srcmacaddr") {
		t.Errorf("bad MAC: error %v", err)
	}
	// The caller's attributes are refused here too.
	if _, err := sharedKeyType("tcp", []netfilter.Field{f("state", "NEW")}, false); !errors.Is(err, errUnsupported) {
		t.Errorf("state: error %v, want errUnsupported", err)
	}
}

// TestGoldenCasesCoverEveryAttribute checks that the kernel golden cases
// exercise every protocol element and every attribute compileMatch
// implements, literal and negated.
func TestGoldenCasesCoverEveryAttribute(t *testing.T) {
	seen := map[string]bool{}
	negated := map[string]bool{}
	for _, c := range goldenCases() {
		seen[c.rule.Protocol] = true
		for _, fl := range c.rule.Fields {
			seen[c.rule.Protocol+" "+fl.Attr] = true
			if c.rule.Negate {
				negated[c.rule.Protocol] = true
			}
		}
	}
	var missing []string
	check := func(proto string, attrs []string) {
		if !seen[proto] {
			missing = append(missing, "element "+proto)
		}
		for _, a := range attrs {
			if _, ok := callerAttrs[a]; ok {
				continue
			}
			if !seen[proto+" "+a] {
				missing = append(missing, proto+" "+a)
			}
		}
	}
	for proto, attrs := range ethernetProtocols {
		check(proto, attrs)
	}
	for proto, p := range ipProtocols {
		check(proto, append(append([]string(nil), ipCommonAttrs...), p.attrs...))
	}
	for _, proto := range []string{"mac", "vlan", "stp", "arp", "ip", "ipv6", "tcp", "all", "all-ipv6", "icmp", "icmpv6"} {
		if !negated[proto] {
			missing = append(missing, "negated "+proto)
		}
	}
	if len(missing) > 0 {
		t.Errorf("no golden case covers: %s", strings.Join(missing, ", "))
	}
}

// TestCompiledShapes spot-checks expressions the kernel listing does not
// show plainly (nft hides dependencies it considers implied).
func TestCompiledShapes(t *testing.T) {
	exprs, err := compile(netfilter.Rule{Protocol: "icmp", Negate: true, Fields: []netfilter.Field{f("type", "8"), f("code", "0")}}, matchOptions{Dir: netfilter.DirOut})
	if err != nil {
		t.Fatal(err)
	}
	want := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: unix.NFT_REG_1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG_1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: []byte{unix.IPPROTO_ICMP}},
		&expr.Payload{DestRegister: unix.NFT_REG_1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Range{Op: expr.CmpOpNeq, Register: unix.NFT_REG_1, FromData: []byte{8, 0}, ToData: []byte{8, 0}},
	}
	if !sameExprs(exprs, want) {
		t.Errorf("negated icmp type/code:\n got %s\nwant %s", dumpExprs(exprs), dumpExprs(want))
	}
	// A negated Swap rule whose only shared field is srcmacaddr has no
	// lookup (it would match nothing), only its literal fields.
	exprs, err = compile(netfilter.Rule{Protocol: "all", Negate: true, Direction: netfilter.DirInOut,
		Fields: []netfilter.Field{v("srcmacaddr", "MAC", "52:54:00:00:00:01"), f("srcipaddr", "10.0.0.1")}},
		matchOptions{Dir: netfilter.DirOut, Swap: true, Shared: []int{0}, Set: testSet})
	if err != nil {
		t.Fatal(err)
	}
	want = []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: unix.NFT_REG_1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: unix.NFT_REG_1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: unix.NFT_REG_1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: unix.NFT_REG_1, Data: []byte{10, 0, 0, 1}},
	}
	if !sameExprs(exprs, want) {
		t.Errorf("negated reply rule with srcmacaddr shared:\n got %s\nwant %s", dumpExprs(exprs), dumpExprs(want))
	}
	// A rule without a protocol element matches everything.
	exprs, err = compile(netfilter.Rule{}, matchOptions{Dir: netfilter.DirIn})
	if err != nil || len(exprs) != 0 {
		t.Errorf("empty rule: %s, %v; want no expressions", dumpExprs(exprs), err)
	}
}

// sameExprs compares expression lists by their Go representation.
func sameExprs(a, b []expr.Any) bool { return dumpExprs(a) == dumpExprs(b) }

// dumpExprs renders expressions for messages.
func dumpExprs(es []expr.Any) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%#v", e))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
