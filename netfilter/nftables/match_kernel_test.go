package nftables

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/netfilter"
)

// The kernel tests of the match compiler: every case is compiled, loaded
// into a private network namespace through netlink, and listed back with
// the nft command; the listing is compared with a golden file in
// testdata/match. The nft CLI's decoding of what the kernel holds is the
// review of each compiled match: read the golden files against libvirt's
// meaning (the comment at the top of each says what the rule is).
//
// Run as root; without root or nft the tests are skipped, except with
// CI=true or NETWARDEN_INTEGRATION=1, where they fail. Regenerate the
// golden files with `go test ./netfilter/nftables/ -run Kernel -update`.

// init defines -update unless another test file of the package did.
func init() {
	// Another test file of the package may define -update too; the
	// first definition wins and both read it through updateGolden.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

// updateGolden reports whether -update was given.
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// strictKernel reports whether missing prerequisites must fail the test.
func strictKernel() bool {
	return os.Getenv("CI") == "true" || os.Getenv("NETWARDEN_INTEGRATION") == "1"
}

// requireKernel skips (or, in strict mode, fails) a test that needs root,
// ip and nft.
func requireKernel(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "kernel test needs " + strings.Join(missing, ", ")
	if strictKernel() {
		t.Fatal(msg)
	}
	t.Skip(msg + "; set NETWARDEN_INTEGRATION=1 to make this a failure")
}

// testNS is a private network namespace for one test, deleted at its end.
type testNS struct {
	name string
	fd   netns.NsHandle
}

// newTestNS creates a namespace named nwm-<random>.
func newTestNS(t *testing.T) *testNS {
	t.Helper()
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	n := &testNS{name: "nwm-" + hex.EncodeToString(id)}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", n.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	fd, err := netns.GetFromName(n.name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", n.name, err)
	}
	n.fd = fd
	t.Cleanup(func() { n.fd.Close() })
	return n
}

// conn returns a netlink connection to nftables in the namespace.
func (n *testNS) conn() *nftables.Conn { return &nftables.Conn{NetNS: int(n.fd)} }

// run runs a command inside the namespace.
func (n *testNS) run(argv ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name}, argv...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// mustRun is run that fails the test on error.
func (n *testNS) mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := n.run(argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// f builds a literal field.
func f(attr, value string) netfilter.Field { return netfilter.Field{Attr: attr, Value: value} }

// v builds a field whose value came from a variable.
func v(attr, variable, value string) netfilter.Field {
	return netfilter.Field{Attr: attr, Value: value, Var: variable}
}

// elem is one element of a shared case's set: a port and the values of
// the shared fields for it, in Shared order.
type elem struct {
	port   string
	values []string
}

// matchCase is one golden case.
type matchCase struct {
	name  string
	rule  netfilter.Rule
	dir   netfilter.Direction
	swap  bool
	share []int
	elems []elem
	// note explains something the listing does not show plainly.
	note string
}

// family returns the table family of the case's protocol.
func (c *matchCase) family() nftables.TableFamily {
	fam, _ := protocolFamily(c.rule.Protocol)
	return fam
}

// describe is the comment at the top of the case's golden file.
func (c *matchCase) describe() string {
	var b strings.Builder
	dir := c.rule.Direction
	if dir == 0 {
		dir = c.dir
	}
	fmt.Fprintf(&b, "# %s\n# rule: %s%s\n", c.name, dir, c.rule.MatchString())
	fmt.Fprintf(&b, "# compiled for: dir=%s swap=%v", c.dir, c.swap)
	if len(c.share) > 0 {
		var names []string
		for _, i := range c.share {
			names = append(names, c.rule.Fields[i].Attr)
		}
		fmt.Fprintf(&b, " shared=%s", strings.Join(names, ","))
	}
	b.WriteString("\n")
	for _, e := range c.elems {
		fmt.Fprintf(&b, "# element: %s %s\n", e.port, strings.Join(e.values, " "))
	}
	if c.note != "" {
		fmt.Fprintf(&b, "# note: %s\n", c.note)
	}
	return b.String()
}

// instance returns the case's rule with the shared fields set to an
// element's values.
func (c *matchCase) instance(e elem) *netfilter.Rule {
	r := c.rule
	r.Fields = append([]netfilter.Field(nil), c.rule.Fields...)
	for i, idx := range c.share {
		r.Fields[idx].Value = e.values[i]
	}
	return &r
}

// load compiles the case into table nwm (chain c, set s) of its family in
// the namespace: one rule with a counter and accept.
func (c *matchCase) load(t *testing.T, conn *nftables.Conn) {
	t.Helper()
	r := c.rule
	if r.Direction == 0 {
		r.Direction = c.dir
	}
	fam := c.family()
	table := conn.AddTable(&nftables.Table{Family: fam, Name: "nwm"})
	chain := conn.AddChain(&nftables.Chain{Table: table, Name: "c"})
	o := matchOptions{Dir: c.dir, Swap: c.swap, Shared: c.share}
	if len(c.share) > 0 {
		fields := keyFields(&r, c.share)
		kt, err := sharedKeyType(r.Protocol, fields, c.swap)
		if err != nil {
			t.Fatalf("sharedKeyType: %v", err)
		}
		set := &nftables.Set{Table: table, Name: "s", KeyType: kt, Concatenation: len(nftables.ConcatSetTypeElements(kt)) > 1}
		var elems []nftables.SetElement
		for _, e := range c.elems {
			key, err := sharedKey(e.port, r.Protocol, keyFields(c.instance(e), c.share), c.swap)
			if err != nil {
				t.Fatalf("sharedKey(%s): %v", e.port, err)
			}
			if len(key) != int(kt.Bytes) {
				t.Fatalf("sharedKey(%s) is %d bytes, key type %s is %d", e.port, len(key), kt.Name, kt.Bytes)
			}
			elems = append(elems, nftables.SetElement{Key: key})
		}
		if err := conn.AddSet(set, elems); err != nil {
			t.Fatalf("add set: %v", err)
		}
		o.Set = set
	}
	exprs, err := compileMatch(fam, &r, o)
	if err != nil {
		t.Fatalf("compileMatch: %v", err)
	}
	exprs = append(exprs, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept})
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs})
	if err := conn.Flush(); err != nil {
		t.Fatalf("load into the kernel: %v", err)
	}
}

var (
	counterRE  = regexp.MustCompile(`counter packets \d+ bytes \d+`)
	elementsRE = regexp.MustCompile(`(?s)(\n\t*)elements = \{ (.*?) \}\n`)
)

// listing returns nft's listing of the case's table, normalised: counters
// zero, set elements sorted one per line (the kernel lists a hash set in
// an order of its own).
func (n *testNS) listing(t *testing.T, fam nftables.TableFamily) string {
	t.Helper()
	out := n.mustRun(t, "nft", "list", "table", familyName(fam), "nwm")
	out = counterRE.ReplaceAllString(out, "counter packets 0 bytes 0")
	return elementsRE.ReplaceAllStringFunc(out, func(m string) string {
		sub := elementsRE.FindStringSubmatch(m)
		var elems []string
		for _, e := range strings.Split(sub[2], ",") {
			elems = append(elems, strings.TrimSpace(e))
		}
		sort.Strings(elems)
		return sub[1] + "elements = {" + sub[1] + "\t" + strings.Join(elems, ","+sub[1]+"\t") + sub[1] + "}\n"
	})
}

// checkGolden compares got with testdata/match/<name>.golden, or writes it
// with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "match", name+".golden")
	if updateGolden() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the kernel's listing (-want +got):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff is a minimal line diff for failure messages.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "-%s\n+%s\n", w, g)
		}
	}
	return b.String()
}

// TestKernelMatchGolden loads every case into the kernel and compares
// nft's listing with its golden file.
func TestKernelMatchGolden(t *testing.T) {
	requireKernel(t)
	ns := newTestNS(t)
	seen := make(map[string]bool)
	for _, c := range goldenCases() {
		if seen[c.name] {
			t.Fatalf("duplicate case name %s", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			conn := ns.conn()
			conn.FlushRuleset()
			if err := conn.Flush(); err != nil {
				t.Fatalf("flush ruleset: %v", err)
			}
			c.load(t, conn)
			checkGolden(t, c.name, c.describe()+ns.listing(t, c.family()))
		})
	}
	if updateGolden() {
		// Remove golden files of cases that no longer exist.
		files, _ := filepath.Glob(filepath.Join("testdata", "match", "*.golden"))
		for _, p := range files {
			if !seen[strings.TrimSuffix(filepath.Base(p), ".golden")] {
				os.Remove(p)
			}
		}
	}
}

// goldenCases are the golden cases: every protocol element and every
// attribute, literal and negated, masks, ranges, names and numbers,
// reversed and swapped rules, and shared lookups.
func goldenCases() []matchCase {
	out, in := netfilter.DirOut, netfilter.DirIn
	rule := func(proto string, fields ...netfilter.Field) netfilter.Rule {
		return netfilter.Rule{Protocol: proto, Fields: fields, StateMatch: true, Action: netfilter.Accept}
	}
	neg := func(r netfilter.Rule) netfilter.Rule { r.Negate = true; return r }
	inout := func(r netfilter.Rule) netfilter.Rule { r.Direction = netfilter.DirInOut; return r }
	mac1, mac2 := "01:02:03:04:05:06", "aa:bb:cc:dd:ee:ff"
	return append(ipAllAttrCases(), []matchCase{
		// A rule without a protocol element matches every frame.
		{name: "none", rule: rule(""), dir: out},

		// mac: ebtables -s, -d, -p.
		{name: "mac-srcmacaddr", rule: rule("mac", f("srcmacaddr", mac1)), dir: out},
		{name: "mac-srcmacaddr-mask", rule: rule("mac", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:00:00:00")), dir: out},
		{name: "mac-dstmacaddr-fullmask", rule: rule("mac", f("dstmacaddr", mac2), f("dstmacmask", "ff:ff:ff:ff:ff:ff")), dir: in},
		{name: "mac-protocolid-name", rule: rule("mac", f("protocolid", "arp")), dir: out},
		{name: "mac-protocolid-hex", rule: rule("mac", f("protocolid", "0x1234")), dir: in},
		{name: "mac-protocolid-decimal", rule: rule("mac", f("protocolid", "1536")), dir: in},
		{name: "mac-negated", rule: neg(rule("mac", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:ff:00:00"), f("protocolid", "ipv4"))), dir: out},
		{name: "mac-inout-out-reversed", rule: inout(rule("mac", f("srcmacaddr", mac1), f("dstmacaddr", mac2), f("dstmacmask", "ff:ff:ff:00:00:00"))), dir: out},
		{name: "mac-inout-in", rule: inout(rule("mac", f("srcmacaddr", mac1), f("dstmacaddr", mac2), f("dstmacmask", "ff:ff:ff:00:00:00"))), dir: in},

		// vlan: -p 0x8100, --vlan-id, --vlan-encap.
		{name: "vlan-vlanid-hex", rule: rule("vlan", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:ff:ff:ff"), f("dstmacaddr", mac2), f("dstmacmask", "ff:ff:ff:ff:00:00"), f("vlanid", "0x123")), dir: in},
		{name: "vlan-vlanid-decimal", rule: rule("vlan", f("vlanid", "1234")), dir: out},
		{name: "vlan-encap-name", rule: rule("vlan", f("encap-protocol", "arp")), dir: out},
		{name: "vlan-encap-hex", rule: rule("vlan", f("encap-protocol", "0x1234")), dir: out},
		{name: "vlan-negated", rule: neg(rule("vlan", f("vlanid", "291"), f("encap-protocol", "ipv4"))), dir: out},

		// stp: -d 01:80:c2:00:00:00 and --stp-*.
		{name: "stp-srcmacaddr", rule: rule("stp", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:ff:ff:00")), dir: in},
		{name: "stp-type-flags-not-config", note: "flags is a configuration BPDU field, never read for type 0x12", rule: rule("stp", f("srcmacaddr", mac1), f("type", "0x12"), f("flags", "0x44")), dir: in},
		{name: "stp-type0-root", rule: rule("stp", f("type", "0"), f("flags", "0x01"), f("root-priority", "0x1234"), f("root-priority-hi", "0x2345"),
			f("root-address", "06:05:04:03:02:01"), f("root-address-mask", "ff:ff:ff:ff:ff:ff"), f("root-cost", "0x11223344"), f("root-cost-hi", "0x22334455")), dir: out},
		{name: "stp-config-without-type", note: "@nh,48,8 0x0: configuration BPDUs only (ebtables would also match other BPDU types)", rule: rule("stp", f("sender-priority", "0x1234"), f("sender-address", "06:05:04:03:02:01"), f("sender-address-mask", "ff:ff:ff:00:00:00"),
			f("port", "123"), f("port-hi", "234"), f("age", "5544"), f("age-hi", "5555"), f("max-age", "7777"), f("max-age-hi", "8888"),
			f("hello-time", "12345"), f("hello-time-hi", "12346"), f("forward-delay", "54321"), f("forward-delay-hi", "65432")), dir: in},
		{name: "stp-single-values", rule: rule("stp", f("root-priority", "32768"), f("root-cost", "4"), f("port", "0x8001"), f("age", "1"),
			f("max-age", "20"), f("hello-time", "2"), f("forward-delay", "15"), f("sender-priority", "4096"), f("sender-priority-hi", "8192")), dir: in},
		{name: "stp-negated", rule: neg(rule("stp", f("srcmacaddr", mac1), f("root-priority", "0x1000"), f("root-priority-hi", "0x8000"), f("root-address", "06:05:04:03:02:01"))), dir: in},
		{name: "stp-negated-type0", note: "flags is a configuration BPDU field, never read when the type is not 0", rule: neg(rule("stp", f("type", "0"), f("flags", "0x01"))), dir: in},
		{name: "stp-negated-type-tcn", rule: neg(rule("stp", f("type", "0x80"), f("port", "1"))), dir: in,
			note: "@nh,48,8 0x0: configuration BPDUs only (ebtables would also match other BPDU types but 0x80)"},
		{name: "stp-inout-out", rule: inout(rule("stp", f("type", "0x80"))), dir: out},

		// arp and rarp: -p 0x0806/0x8035 and --arp-*.
		{name: "arp-libvirt-rule1", rule: rule("arp", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:ff:ff:ff"), f("dstmacaddr", mac2), f("dstmacmask", "ff:ff:ff:ff:ff:ff"),
			f("hwtype", "12"), f("protocoltype", "34"), f("opcode", "Request"), f("arpsrcmacaddr", mac1), f("arpdstmacaddr", "0a:0b:0c:0d:0e:0f")), dir: out},
		{name: "arp-numbers", rule: rule("arp", f("hwtype", "0x12"), f("protocoltype", "0x56"), f("opcode", "11")), dir: out},
		{name: "arp-opcode-names", rule: rule("arp", f("opcode", "DRARP_Error")), dir: out},
		{name: "arp-ip-masks", rule: rule("arp", f("arpsrcipaddr", "10.1.2.3"), f("arpsrcipmask", "24"), f("arpdstipaddr", "10.0.0.1")), dir: out},
		{name: "arp-negated", rule: neg(rule("arp", f("opcode", "Reply"), f("arpsrcmacaddr", mac1), f("arpsrcipaddr", "10.0.0.1"), f("arpdstipaddr", "10.0.0.0"), f("arpdstipmask", "8"))), dir: out},
		{name: "arp-inout-out-reversed", rule: inout(rule("arp", f("srcmacaddr", mac1), f("arpsrcmacaddr", mac1), f("arpsrcipaddr", "10.0.0.1"), f("arpdstipaddr", "10.0.0.2"))), dir: out},
		{name: "arp-gratuitous-false", rule: rule("arp", f("gratuitous", "false")), dir: in},
		{name: "rarp-rule", rule: rule("rarp", f("srcmacaddr", mac1), f("opcode", "Request_Reverse"), f("arpdstmacaddr", mac2), f("arpdstipaddr", "192.0.2.1")), dir: out},
		{name: "rarp-all-attrs", rule: rule("rarp", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:00:00:00"), f("dstmacaddr", mac2), f("dstmacmask", "ff:00:00:00:00:00"),
			f("hwtype", "1"), f("protocoltype", "0x0800"), f("opcode", "Reply_Reverse"), f("arpsrcmacaddr", mac1), f("arpdstmacaddr", mac2),
			f("arpsrcipaddr", "192.0.2.1"), f("arpsrcipmask", "30"), f("arpdstipaddr", "198.51.100.0"), f("arpdstipmask", "24"), f("gratuitous", "false")), dir: in},

		// ip: -p ipv4 and --ip-*.
		{name: "ip-libvirt-rule1", rule: rule("ip", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:ff:ff:ff"), f("dstmacaddr", mac2), f("dstmacmask", "ff:ff:ff:ff:ff:ff"),
			f("srcipaddr", "10.1.2.3"), f("srcipmask", "32"), f("dstipaddr", "10.1.2.3"), f("dstipmask", "32"), f("protocol", "udp"),
			f("srcportstart", "20"), f("srcportend", "22"), f("dstportstart", "100"), f("dstportend", "101")), dir: out},
		{name: "ip-masks-dscp", rule: rule("ip", f("srcipaddr", "10.1.2.3"), f("srcipmask", "17"), f("dstipaddr", "10.1.2.3"), f("dstipmask", "24"), f("protocol", "udp"), f("dscp", "63")), dir: out,
			note: "dscp is ebtables --ip-tos: the whole TOS byte == 63, which nft shows as dscp 0x0f and ecn ce"},
		{name: "ip-protocol-number", rule: rule("ip", f("protocol", "255"), f("dscp", "0x32")), dir: in},
		{name: "ip-ports-single", rule: rule("ip", f("protocol", "tcp"), f("srcportstart", "0x123"), f("dstportstart", "80")), dir: out},
		{name: "ip-ports-dccp", rule: rule("ip", f("protocol", "33"), f("dstportstart", "5000"), f("dstportend", "5001")), dir: out},
		{name: "ip-negated", rule: neg(rule("ip", f("srcipaddr", "10.0.0.0"), f("srcipmask", "8"), f("protocol", "17"), f("dscp", "2"))), dir: out,
			note: "dscp is ebtables --ip-tos: the whole TOS byte != 2"},
		{name: "ip-inout-out-reversed", rule: inout(rule("ip", f("srcipaddr", "10.1.2.3"), f("protocol", "tcp"), f("srcportstart", "20"), f("dstportstart", "100"), f("dstportend", "101"))), dir: out},

		// ipv6: -p ipv6 and --ip6-*.
		{name: "ipv6-libvirt-rule1", rule: rule("ipv6", f("srcmacaddr", mac1), f("srcmacmask", "ff:ff:ff:ff:ff:fe"), f("dstmacaddr", mac2), f("dstmacmask", "ff:ff:ff:ff:ff:80"),
			f("srcipaddr", "::ffff:10.1.2.3"), f("srcipmask", "22"), f("dstipaddr", "::ffff:10.1.2.3"), f("dstipmask", "113"), f("protocol", "udp"),
			f("srcportstart", "20"), f("srcportend", "22"), f("dstportstart", "100"), f("dstportend", "101")), dir: out},
		{name: "ipv6-tcp-ports", rule: rule("ipv6", f("srcipaddr", "1::2"), f("srcipmask", "128"), f("dstipaddr", "a:b:c::"), f("dstipmask", "65"), f("protocol", "tcp"),
			f("srcportstart", "255"), f("srcportend", "256"), f("dstportstart", "65535"), f("dstportend", "65535")), dir: in},
		{name: "ipv6-protocol-number", rule: rule("ipv6", f("protocol", "18")), dir: in},
		{name: "ipv6-icmp-ranges", rule: rule("ipv6", f("protocol", "icmpv6"), f("type", "1"), f("typeend", "11"), f("code", "10"), f("codeend", "11")), dir: in},
		{name: "ipv6-icmp-type-code", rule: rule("ipv6", f("protocol", "icmpv6"), f("type", "1"), f("code", "10")), dir: in},
		{name: "ipv6-icmp-code", rule: rule("ipv6", f("protocol", "icmpv6"), f("code", "10")), dir: in},
		{name: "ipv6-icmp-typeend", rule: rule("ipv6", f("protocol", "icmpv6"), f("typeend", "5")), dir: in},
		{name: "ipv6-negated", rule: neg(rule("ipv6", f("srcipaddr", "2001:db8::"), f("srcipmask", "32"), f("protocol", "udp"))), dir: out},
		{name: "ipv6-inout-out-reversed", rule: inout(rule("ipv6", f("srcipaddr", "2001:db8::1"), f("dstipaddr", "2001:db8::"), f("dstipmask", "64"), f("protocol", "udp"), f("srcportstart", "546"), f("dstportstart", "547"))), dir: out},

		// tcp: iptables -p tcp.
		{name: "tcp-out", rule: rule("tcp", f("srcmacaddr", mac1), f("dstipaddr", "10.1.2.3"), f("dstipmask", "32"), f("dscp", "2")), dir: out},
		{name: "tcp-out-reply-swapped", rule: rule("tcp", f("srcmacaddr", mac1), f("dstipaddr", "10.1.2.3"), f("dstipmask", "32"), f("dscp", "2")), dir: in, swap: true},
		{name: "tcp-in-ports", rule: rule("tcp", f("srcmacaddr", mac1), f("srcipaddr", "10.1.2.3"), f("srcipmask", "32"), f("dscp", "33"),
			f("srcportstart", "20"), f("srcportend", "21"), f("dstportstart", "100"), f("dstportend", "1111")), dir: in},
		{name: "tcp-in-ports-reply-swapped", rule: rule("tcp", f("srcmacaddr", mac1), f("srcipaddr", "10.1.2.3"), f("srcipmask", "32"), f("dscp", "33"),
			f("srcportstart", "20"), f("srcportend", "21"), f("dstportstart", "100"), f("dstportend", "1111")), dir: out, swap: true},
		{name: "tcp-flags-syn-all", rule: rule("tcp", f("flags", "SYN/ALL")), dir: in},
		{name: "tcp-flags-synack-syn", rule: rule("tcp", f("flags", "SYN,ACK/SYN")), dir: in},
		{name: "tcp-flags-rst-none", rule: rule("tcp", f("flags", "RST/NONE")), dir: in},
		{name: "tcp-flags-all-finsynrstpshackurg", rule: rule("tcp", f("flags", "ALL/FIN,SYN,RST,PSH,ACK,URG")), dir: in},
		{name: "tcp-option", rule: rule("tcp", f("option", "8"), f("dstportstart", "22")), dir: out},
		{name: "tcp-option-negated", rule: neg(rule("tcp", f("option", "2"))), dir: out},
		{name: "tcp-ipranges", rule: rule("tcp", f("srcipfrom", "10.0.0.1"), f("srcipto", "10.0.0.10"), f("dstipfrom", "10.0.1.1")), dir: out},
		{name: "tcp-ipranges-reply-swapped", rule: rule("tcp", f("srcipfrom", "10.0.0.1"), f("srcipto", "10.0.0.10"), f("dstipfrom", "10.0.1.1")), dir: in, swap: true},
		{name: "tcp-ipaddr-hides-iprange", rule: rule("tcp", f("srcipaddr", "10.0.0.1"), f("srcipfrom", "10.0.0.1"), f("srcipto", "10.0.0.10")), dir: out},
		{name: "tcp-negated", rule: neg(rule("tcp", f("srcmacaddr", mac1), f("srcipaddr", "10.0.0.0"), f("srcipmask", "24"), f("dstipfrom", "10.0.1.1"), f("dstipto", "10.0.1.9"),
			f("dscp", "10"), f("srcportstart", "1024"), f("srcportend", "2048"), f("dstportstart", "80"), f("flags", "SYN,ACK/SYN"))), dir: out},

		// udp, sctp, udplite, esp, ah, igmp, all.
		{name: "udp-ports", rule: rule("udp", f("srcmacaddr", mac1), f("srcipaddr", "10.1.2.3"), f("srcipmask", "32"), f("dscp", "63"),
			f("srcportstart", "255"), f("srcportend", "256"), f("dstportstart", "65535"), f("dstportend", "65535")), dir: in},
		{name: "udp-ports-reply-swapped", rule: rule("udp", f("srcportstart", "67"), f("dstportstart", "68")), dir: out, swap: true},
		{name: "sctp-ports", rule: rule("sctp", f("dstipaddr", "10.1.2.3"), f("srcportstart", "20"), f("dstportstart", "100"), f("dstportend", "1111")), dir: out},
		{name: "udplite", rule: rule("udplite", f("srcmacaddr", mac1), f("dstipaddr", "10.1.2.3"), f("dstipmask", "16"), f("dscp", "2")), dir: out},
		{name: "esp", rule: rule("esp", f("srcipaddr", "10.1.2.3"), f("dstipfrom", "10.1.0.1"), f("dstipto", "10.1.0.20")), dir: out},
		{name: "ah", rule: rule("ah", f("srcipfrom", "10.1.2.3"), f("dscp", "0x3f")), dir: in},
		{name: "igmp", rule: rule("igmp", f("dstipaddr", "224.0.0.0"), f("dstipmask", "4")), dir: in},
		{name: "all", rule: rule("all", f("srcmacaddr", mac1), f("srcipaddr", "10.1.2.3"), f("dstipaddr", "10.1.2.4")), dir: out},
		{name: "all-none", rule: rule("all"), dir: out},
		{name: "all-negated-srcmacaddr", rule: neg(rule("all", f("srcmacaddr", "12:34:56:78:9a:bc"))), dir: in},

		// icmp: --icmp-type TYPE[/CODE].
		{name: "icmp-type-code", rule: rule("icmp", f("srcmacaddr", mac1), f("dstipaddr", "10.1.2.3"), f("dscp", "2"), f("type", "12"), f("code", "11")), dir: out},
		{name: "icmp-type", rule: rule("icmp", f("type", "8")), dir: out},
		{name: "icmp-type-255-any", rule: rule("icmp", f("srcipaddr", "10.1.2.3"), f("srcipmask", "22"), f("type", "255"), f("code", "255")), dir: in},
		{name: "icmp-negated-type-code", rule: neg(rule("icmp", f("type", "8"), f("code", "0"))), dir: out,
			note: "one comparison of the 16 bits type.code (iptables: not (type 8 and code 0)); nft names them th sport"},
		{name: "icmp-negated-type", rule: neg(rule("icmp", f("type", "3"))), dir: out},
		{name: "icmp-no-type-reply-swapped", rule: rule("icmp", f("srcipaddr", "10.1.2.3")), dir: in, swap: true},

		// The -ipv6 elements and icmpv6.
		{name: "tcp-ipv6-ports-option", rule: rule("tcp-ipv6", f("srcmacaddr", mac1), f("srcipaddr", "a:b:c::"), f("srcipmask", "128"), f("dscp", "0x39"),
			f("srcportstart", "0x20"), f("srcportend", "0x21"), f("dstportstart", "0x100"), f("dstportend", "0x1111"), f("option", "2")), dir: in},
		{name: "udp-ipv6", rule: rule("udp-ipv6", f("srcipaddr", "fe80::"), f("srcipmask", "10"), f("srcportstart", "546"), f("dstportstart", "547")), dir: out},
		{name: "udp-ipv6-reply-swapped", rule: rule("udp-ipv6", f("srcipaddr", "fe80::"), f("srcipmask", "10"), f("srcportstart", "546"), f("dstportstart", "547")), dir: in, swap: true},
		{name: "sctp-ipv6", rule: rule("sctp-ipv6", f("dstipaddr", "a:b:c::d:e:f"), f("dstipmask", "128"), f("dscp", "2"), f("dstportstart", "100")), dir: out},
		{name: "udplite-ipv6", rule: rule("udplite-ipv6", f("srcipfrom", "2001:db8::1"), f("srcipto", "2001:db8::ff")), dir: out},
		{name: "esp-ipv6", rule: rule("esp-ipv6", f("srcmacaddr", mac1)), dir: out},
		{name: "ah-ipv6", rule: rule("ah-ipv6", f("dstipfrom", "2001:db8::1")), dir: in},
		{name: "all-ipv6", rule: rule("all-ipv6", f("srcmacaddr", mac1), f("srcipaddr", "f:e:d::c:b:a"), f("srcipmask", "127"), f("dstipaddr", "a:b:c::d:e:f"), f("dstipmask", "128"), f("dscp", "2")), dir: out},
		{name: "all-ipv6-negated", rule: neg(rule("all-ipv6", f("srcipaddr", "::ffff:10.1.2.3"), f("dscp", "33"))), dir: in},
		{name: "icmpv6-type-code", rule: rule("icmpv6", f("srcmacaddr", mac1), f("srcipaddr", "f:e:d::c:b:a"), f("srcipmask", "127"), f("type", "12"), f("code", "11")), dir: out},
		{name: "icmpv6-type-255", rule: rule("icmpv6", f("type", "255")), dir: in},
		{name: "icmpv6-negated-type-code", rule: neg(rule("icmpv6", f("type", "135"), f("code", "0"))), dir: in,
			note: "one comparison of the 16 bits type.code (ip6tables: not (type 135 and code 0)); nft names them th sport"},

		// Shared lookups: port name . fields in a set.
		{name: "shared-mac-srcmacaddr", rule: rule("mac", v("srcmacaddr", "MAC", mac1)), dir: out, share: []int{0},
			elems: []elem{{"vnet0", []string{mac1}}, {"vnet1", []string{mac2}}}},
		{name: "shared-mac-negated", rule: neg(rule("mac", v("srcmacaddr", "MAC", mac1))), dir: out, share: []int{0},
			elems: []elem{{"vnet0", []string{mac1}}}},
		{name: "shared-mac-in-dstmacaddr", rule: rule("mac", v("dstmacaddr", "MAC", mac1), f("protocolid", "ipv4")), dir: in, share: []int{0},
			elems: []elem{{"vnet0", []string{mac1}}}},
		{name: "shared-arp-2", rule: rule("arp", v("srcmacaddr", "MAC", mac1), v("arpsrcipaddr", "IP", "10.0.0.1")), dir: out, share: []int{0, 1},
			elems: []elem{{"vnet0", []string{mac1, "10.0.0.1"}}, {"vnet0", []string{mac1, "10.0.0.2"}}, {"vnet1", []string{mac2, "10.0.0.3"}}}},
		{name: "shared-ip-3-masked", rule: rule("ip", v("srcmacaddr", "MAC", mac1), v("srcipaddr", "NET", "10.1.2.3"), f("srcipmask", "24"),
			f("protocol", "udp"), v("dstportstart", "PORT", "53")), dir: out, share: []int{0, 1, 4},
			elems: []elem{{"vnet0", []string{mac1, "10.1.2.3", "53"}}, {"vnet1", []string{mac2, "192.168.7.200", "5353"}}}},
		{name: "shared-vlan", rule: rule("vlan", v("vlanid", "VID", "42"), v("encap-protocol", "ET", "ipv6")), dir: in, share: []int{0, 1},
			elems: []elem{{"vnet0", []string{"42", "ipv6"}}, {"vnet1", []string{"4095", "0x88b5"}}}},
		{name: "shared-stp-config", rule: rule("stp", v("root-priority", "P", "32768"), v("root-cost", "C", "4"), v("root-address", "A", mac1), f("root-address-mask", "ff:ff:ff:ff:ff:00")),
			dir: in, share: []int{0, 1, 2}, elems: []elem{{"vnet0", []string{"32768", "4", mac1}}}},
		{name: "shared-ipv6-icmp", rule: rule("ipv6", v("srcipaddr", "IP", "2001:db8::1"), f("protocol", "icmpv6"), v("type", "T", "135"), v("code", "C", "0")),
			dir: out, share: []int{0, 2, 3}, elems: []elem{{"vnet0", []string{"2001:db8::1", "135", "0"}}}},
		{name: "shared-tcp-ipv6", rule: rule("tcp-ipv6", v("srcipaddr", "IP", "2001:db8::1"), v("dstportstart", "PORT", "22")), dir: out, share: []int{0, 1},
			elems: []elem{{"vnet0", []string{"2001:db8::1", "22"}}, {"vnet1", []string{"2001:db8::2", "80"}}}},
		{name: "shared-tcp-reply-swapped", rule: rule("tcp", v("srcmacaddr", "MAC", mac1), v("srcipaddr", "IP", "10.0.0.1"), v("dstportstart", "P", "80")), dir: in, swap: true, share: []int{0, 1, 2},
			note:  "srcmacaddr is not matched in a reply rule (iptables has no destination MAC match), so it is not part of the key",
			elems: []elem{{"vnet0", []string{mac1, "10.0.0.1", "80"}}, {"vnet1", []string{mac2, "10.0.0.2", "443"}}}},
		{name: "shared-ip-tos", rule: rule("ip", v("dscp", "D", "10"), f("protocol", "udp")), dir: out, share: []int{0},
			note:  "libvirt compares the whole TOS byte with dscp (ebtables --ip-tos); nft's dscp type shows the byte as that number",
			elems: []elem{{"vnet0", []string{"10"}}, {"vnet1", []string{"46"}}}},
		{name: "shared-arp-inout-out", rule: inout(rule("arp", v("arpsrcipaddr", "IP", "10.0.0.1"), v("opcode", "OP", "Reply"), v("hwtype", "HT", "1"), v("protocoltype", "PT", "0x800"))),
			dir: out, share: []int{0, 1, 2, 3}, elems: []elem{{"vnet0", []string{"10.0.0.1", "Reply", "1", "0x800"}}}},
	}...)
}

// ipAllAttrCases are two cases per IP-layer element that together use
// every attribute of the element: one with the source address and mask,
// a destination range and everything else; one with a source range and
// the destination address and mask, as a reply (Swap) rule.
func ipAllAttrCases() []matchCase {
	var out []matchCase
	for _, proto := range []string{"tcp", "udp", "sctp", "udplite", "esp", "ah", "igmp", "icmp", "all",
		"tcp-ipv6", "udp-ipv6", "sctp-ipv6", "udplite-ipv6", "esp-ipv6", "ah-ipv6", "icmpv6", "all-ipv6"} {
		p := ipProtocols[proto]
		a1, a2, a3, a4, mask := "10.1.2.3", "10.9.0.1", "10.9.0.254", "192.0.2.7", "24"
		if p.v6 {
			a1, a2, a3, a4, mask = "2001:db8:1::3", "2001:db8:9::1", "2001:db8:9::fe", "2001:db8:2::7", "48"
		}
		first := []netfilter.Field{f("srcmacaddr", "02:00:00:00:00:01"), f("srcipaddr", a1), f("srcipmask", mask),
			f("dstipfrom", a2), f("dstipto", a3), f("dscp", "46")}
		second := []netfilter.Field{f("srcipfrom", a2), f("srcipto", a3), f("dstipaddr", a4), f("dstipmask", mask)}
		for _, a := range p.attrs {
			switch a {
			case "srcportstart":
				first = append(first, f(a, "1024"))
				second = append(second, f(a, "68"))
			case "srcportend":
				first = append(first, f(a, "2047"))
			case "dstportstart":
				first = append(first, f(a, "80"))
				second = append(second, f(a, "67"))
			case "dstportend":
				first = append(first, f(a, "88"))
			case "option":
				first = append(first, f(a, "4"))
			case "flags":
				first = append(first, f(a, "SYN,ACK,RST/SYN"))
			case "type":
				first = append(first, f(a, "3"))
			case "code":
				first = append(first, f(a, "4"))
			}
		}
		out = append(out,
			matchCase{name: proto + "-all-attrs", rule: netfilter.Rule{Protocol: proto, Fields: first, StateMatch: true}, dir: netfilter.DirOut},
			matchCase{name: proto + "-all-attrs-reply", rule: netfilter.Rule{Protocol: proto, Direction: netfilter.DirIn, Fields: second, StateMatch: true}, dir: netfilter.DirOut, swap: true})
	}
	return out
}
