package network

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// update regenerates golden files (go test ./network -run Dnsmasq -update).
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// libvirtDnsmasqDir is where libvirt's test data puts the hosts files.
const libvirtDnsmasqDir = "/var/lib/libvirt/dnsmasq"

// confPathOptions are the options whose value is a path chosen by the
// caller: conformance compares them as "PATH".
var confPathOptions = []string{"dhcp-hostsfile", "addn-hosts", "pid-file", "dhcp-leasefile"}

// confOptions returns the options of a dnsmasq configuration text (comments
// and empty lines left out), with path values normalised.
func confOptions(conf string) []string {
	var opts []string
	for _, l := range strings.Split(conf, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		key, _, hasValue := strings.Cut(l, "=")
		if hasValue && slices.Contains(confPathOptions, key) {
			l = key + "=PATH"
		}
		opts = append(opts, l)
	}
	return opts
}

// diffOptionSets compares two option lists as multisets, except that
// server= lines (asked in order under strict-order) must keep their
// order. It returns "" when they agree.
func diffOptionSets(got, want []string) string {
	count := map[string]int{}
	for _, o := range want {
		count[o]++
	}
	for _, o := range got {
		count[o]--
	}
	var missing, extra []string
	for o, c := range count {
		for ; c > 0; c-- {
			missing = append(missing, o)
		}
		for ; c < 0; c++ {
			extra = append(extra, o)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	var b strings.Builder
	if len(missing) > 0 {
		fmt.Fprintf(&b, "missing: %q ", missing)
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, "unexpected: %q ", extra)
	}
	servers := func(opts []string) []string {
		var s []string
		for _, o := range opts {
			if strings.HasPrefix(o, "server=") {
				s = append(s, o)
			}
		}
		return s
	}
	if b.Len() == 0 && !slices.Equal(servers(got), servers(want)) {
		fmt.Fprintf(&b, "server order %q, want %q", servers(got), servers(want))
	}
	return strings.TrimSpace(b.String())
}

// knownDnsmasqDifferences lists the networkxml2confdata cases whose
// output differs from libvirt's on purpose, with the reason. Empty: every
// case agrees.
var knownDnsmasqDifferences = map[string]string{}

// TestConformanceDnsmasqConfig generates the configuration of every case
// of libvirt's networkxml2confdata and compares it with libvirt's
// expected .conf as a set of options (libvirt's header comment and the
// paths aside, server order kept), and the hosts files exactly.
func TestConformanceDnsmasqConfig(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "networkxml2confdata")
	files := xmlFiles(t, dir)
	passed := 0
	var failed []string
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".xml")
		ok := t.Run(name, func(t *testing.T) {
			d := conformanceDnsmasqDiff(t, dir, name)
			if reason, known := knownDnsmasqDifferences[name]; known {
				if d == "" {
					t.Fatalf("listed as a known difference (%s) but agrees with libvirt: remove it from the list", reason)
				}
				t.Skipf("known difference: %s (%s)", reason, d)
			}
			if d != "" {
				t.Fatal(d)
			}
		})
		if ok {
			passed++
		} else {
			failed = append(failed, name)
		}
	}
	t.Logf("networkxml2confdata: %d/%d cases agree with libvirt (%d known differences)", passed-len(knownDnsmasqDifferences), len(files), len(knownDnsmasqDifferences))
	if len(failed) > 0 {
		t.Errorf("failing cases: %s", strings.Join(failed, ", "))
	}
}

// conformanceDnsmasqDiff generates one case and returns how it differs
// from libvirt's expected files ("" when it agrees).
func conformanceDnsmasqDiff(t *testing.T, dir, name string) string {
	t.Helper()
	in, err := readConformanceFile(filepath.Join(dir, name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	files, err := DnsmasqConfig(n, libvirtPaths(n.Name), DnsmasqOptions{})
	if err != nil {
		return err.Error()
	}
	want, err := readConformanceFile(filepath.Join(dir, name+".conf"))
	if err != nil {
		t.Fatal(err)
	}
	var diffs []string
	if d := diffOptionSets(confOptions(files.Config), confOptions(string(want))); d != "" {
		diffs = append(diffs, "conf: "+d+"\n"+files.Config)
	}
	for _, f := range []struct{ ext, got string }{{".hostsfile", files.HostsFile}, {".addnhosts", files.AddnHosts}} {
		want, err := readConformanceFile(filepath.Join(dir, name+f.ext))
		if errors.Is(err, os.ErrNotExist) {
			// libvirt's test writes no file for an empty list.
			if f.ext == ".hostsfile" && f.got != "" {
				diffs = append(diffs, fmt.Sprintf("%s: libvirt has none, got %q", f.ext, f.got))
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.got != string(want) {
			diffs = append(diffs, fmt.Sprintf("%s: got %q, want %q", f.ext, f.got, want))
		}
	}
	return strings.Join(diffs, "\n")
}

// libvirtPaths returns the paths libvirt's test data uses (its .conf files
// have no pid-file).
func libvirtPaths(name string) DnsmasqPaths {
	return DnsmasqPaths{
		HostsFile:     libvirtDnsmasqDir + "/" + name + ".hostsfile",
		AddnHostsFile: libvirtDnsmasqDir + "/" + name + ".addnhosts",
	}
}

// goldenPaths returns the paths the golden files are generated with.
func goldenPaths(name string) DnsmasqPaths {
	return DnsmasqPaths{
		HostsFile:     "/run/netwarden/dnsmasq/" + name + ".hostsfile",
		AddnHostsFile: "/run/netwarden/dnsmasq/" + name + ".addnhosts",
		PIDFile:       "/run/netwarden/dnsmasq/" + name + ".pid",
		LeaseFile:     "/run/netwarden/dnsmasq/" + name + ".leases",
	}
}

// extraDnsmasqCases are golden cases of netwarden's own, beyond libvirt's
// data: dnsmasq options, values that must be quoted, IPv6 leases and a
// static-hosts-only network with TFTP and a boot server.
var extraDnsmasqCases = []struct {
	name string
	opts DnsmasqOptions
	doc  string
}{
	{"nw-bind-interfaces-no-ra-param", DnsmasqOptions{BindInterfaces: true, NoRAParam: true}, `<network>
  <name>iso</name><bridge name='nwbr9'/>
  <ip address='10.9.0.1' prefix='24'><dhcp><range start='10.9.0.10' end='10.9.0.20'/></dhcp></ip>
  <ip family='ipv6' address='fd00:9::1' prefix='64'/>
</network>`},
	{"nw-quoting", DnsmasqOptions{}, `<network>
  <name>q</name><forward mode='route'/><bridge name='nwbr8'/>
  <dns forwardPlainNames='no'>
    <txt name='a' value='v=1,k #2, y'/>
    <txt name='b' value='say "hi" \o/'/>
    <host ip='10.8.0.1'><hostname>gw</hostname></host>
    <host ip='fd00:8::1'><hostname>gw</hostname></host>
    <host ip='10.8.0.1'><hostname>router</hostname></host>
  </dns>
  <ip address='10.8.0.1' prefix='24'>
    <tftp root='/srv/tftp #1'/>
    <dhcp><range start='10.8.0.10' end='10.8.0.20'/><bootp file='boot,x.img'/></dhcp>
  </ip>
</network>`},
	{"nw-ipv6-leases-static-v4", DnsmasqOptions{}, `<network>
  <name>v6</name><forward mode='nat'/><bridge name='nwbr7'/><mtu size='9000'/>
  <ip address='10.7.0.1' prefix='24' localPtr='yes'>
    <dhcp>
      <host mac='52:54:00:00:00:01' ip='10.7.0.5'><lease expiry='1' unit='hours'/></host>
      <host name='named' ip='10.7.0.6'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00:7::1' prefix='64' localPtr='yes'>
    <dhcp>
      <range start='fd00:7::100' end='fd00:7::1ff'><lease expiry='0'/></range>
      <host id='0:3:0:1:52:54:0:0:0:1' ip='fd00:7::5'><lease expiry='300' unit='seconds'/></host>
    </dhcp>
  </ip>
</network>`},
}

// TestDnsmasqGolden compares the full generated files of every
// networkxml2confdata case with netwarden's own golden files in
// testdata/dnsmasq (regenerate with -update): <case>.conf, and
// <case>.hostsfile and <case>.addnhosts when not empty.
func TestDnsmasqGolden(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "networkxml2confdata")
	golden := filepath.Join("testdata", "dnsmasq")
	if *update {
		if err := os.MkdirAll(golden, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	type goldenCase struct {
		name string
		opts DnsmasqOptions
		doc  func() ([]byte, error)
	}
	var cases []goldenCase
	for _, file := range xmlFiles(t, dir) {
		cases = append(cases, goldenCase{strings.TrimSuffix(filepath.Base(file), ".xml"), DnsmasqOptions{},
			func() ([]byte, error) { return readConformanceFile(file) }})
	}
	for _, c := range extraDnsmasqCases {
		cases = append(cases, goldenCase{c.name, c.opts, func() ([]byte, error) { return []byte(c.doc), nil }})
	}
	for _, c := range cases {
		name := c.name
		t.Run(name, func(t *testing.T) {
			in, err := c.doc()
			if err != nil {
				t.Fatal(err)
			}
			n, err := Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			files, err := DnsmasqConfig(n, goldenPaths(n.Name), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ ext, got string }{{".conf", files.Config}, {".hostsfile", files.HostsFile}, {".addnhosts", files.AddnHosts}} {
				p := filepath.Join(golden, name+f.ext)
				if *update {
					if f.got == "" && f.ext != ".conf" {
						if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
							t.Fatal(err)
						}
						continue
					}
					if err := os.WriteFile(p, []byte(f.got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(p)
				if errors.Is(err, os.ErrNotExist) && f.ext != ".conf" {
					want, err = nil, nil
				}
				if err != nil {
					t.Fatalf("%v (regenerate with -update)", err)
				}
				if f.got != string(want) {
					t.Errorf("%s differs from %s (regenerate with -update if intended):\n%s", f.ext, p, f.got)
				}
			}
		})
	}
}

// mustParse parses a network document for a test.
func mustParse(t testing.TB, doc string) *Network {
	t.Helper()
	n, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const natNetworkDoc = `<network>
  <name>t</name>
  <forward mode='nat'/>
  <bridge name='nwbr0'/>
  <ip address='10.9.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.9.0.10' end='10.9.0.20'/>
    </dhcp>
  </ip>
</network>`

func TestDnsmasqOptions(t *testing.T) {
	n := mustParse(t, natNetworkDoc)
	files, err := DnsmasqConfig(n, goldenPaths("t"), DnsmasqOptions{BindInterfaces: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := confOptions(files.Config)
	for _, want := range []string{"bind-interfaces", "listen-address=10.9.0.1", "pid-file=PATH", "dhcp-leasefile=PATH", "dhcp-lease-max=11"} {
		if !slices.Contains(opts, want) {
			t.Errorf("no %q in %q", want, opts)
		}
	}
	for _, absent := range []string{"bind-dynamic", "interface=nwbr0"} {
		if slices.Contains(opts, absent) {
			t.Errorf("%q with BindInterfaces: %q", absent, opts)
		}
	}

	iso := mustParse(t, `<network><name>i</name><bridge name='nwbr1'/><ip address='10.9.1.1' prefix='24'/></network>`)
	files, err = DnsmasqConfig(iso, goldenPaths("i"), DnsmasqOptions{NoRAParam: true})
	if err != nil {
		t.Fatal(err)
	}
	if opts := confOptions(files.Config); slices.Contains(opts, "ra-param=*,0,0") || !slices.Contains(opts, "no-resolv") {
		t.Errorf("NoRAParam: %q", opts)
	}
}

func TestDnsmasqNeeded(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want bool
	}{
		{natNetworkDoc, true},
		{`<network><name>a</name><bridge name='b0'/></network>`, false},
		{`<network><name>a</name><bridge name='b0'/><ip address='10.0.0.1' prefix='24'/></network>`, true},
		{`<network><name>a</name><bridge name='b0'/><dns enable='no'/><ip address='10.0.0.1' prefix='24'/></network>`, false},
		{`<network><name>a</name><forward mode='bridge'/><bridge name='br0'/></network>`, false},
	} {
		if got := DnsmasqNeeded(mustParse(t, c.doc)); got != c.want {
			t.Errorf("%s: %v, want %v", c.doc, got, c.want)
		}
	}
}

// TestDnsmasqValuesCannotInject builds networks in code (past the
// parser's checks) whose values try to add an option, and checks that
// every one is refused or written as one quoted value on its own line.
func TestDnsmasqValuesCannotInject(t *testing.T) {
	refused := map[string]func(n *Network){
		"txt newline":      func(n *Network) { n.DNS = &DNS{TXTs: []DNSTXT{{Name: "x", Value: "a\ndhcp-script=/bin/sh"}}} },
		"txt CR":           func(n *Network) { n.DNS = &DNS{TXTs: []DNSTXT{{Name: "x", Value: "a\rb"}}} },
		"txt name comma":   func(n *Network) { n.DNS = &DNS{TXTs: []DNSTXT{{Name: "x,y", Value: "v"}}} },
		"domain newline":   func(n *Network) { n.Domain = &Domain{Name: "a\nport=0"} },
		"forwarder domain": func(n *Network) { n.DNS = &DNS{Forwarders: []DNSForwarder{{Domain: "a/b"}}} },
		"srv target":       func(n *Network) { n.DNS = &DNS{SRVs: []DNSSRV{{Service: "s", Protocol: "tcp", Target: "a\nx"}}} },
		"srv service":      func(n *Network) { n.DNS = &DNS{SRVs: []DNSSRV{{Service: "s,1", Protocol: "tcp"}}} },
		"dns host name space": func(n *Network) {
			n.DNS = &DNS{Hosts: []DNSHost{{IP: netip.MustParseAddr("10.9.0.5"), Hostnames: []string{"a b"}}}}
		},
		"dhcp host name": func(n *Network) {
			n.IPs[0].DHCP.Hosts = []DHCPHost{{MAC: "52:54:00:00:00:01", Name: "a,infinite", IP: netip.MustParseAddr("10.9.0.30")}}
		},
		"dhcp host mac": func(n *Network) {
			n.IPs[0].DHCP.Hosts = []DHCPHost{{MAC: "x\ny", IP: netip.MustParseAddr("10.9.0.30")}}
		},
		"dhcp host anonymous": func(n *Network) { n.IPs[0].DHCP.Hosts = []DHCPHost{{IP: netip.MustParseAddr("10.9.0.30")}} },
		"bridge":              func(n *Network) { n.Bridge.Name = "br\n0" },
		"tftp relative":       func(n *Network) { n.IPs[0].TFTPRoot = "tftp" },
		"tftp newline":        func(n *Network) { n.IPs[0].TFTPRoot = "/srv\nconf-file=/tmp/x" },
		"boot file NUL":       func(n *Network) { n.IPs[0].DHCP.Bootp = &Bootp{File: "a\x00b"} },
		"dnsmasq option":      func(n *Network) { n.DnsmasqOptions = []string{"foo=bar\ndhcp-script=/bin/sh"} },
		"ptr prefix":          func(n *Network) { n.IPs[0].LocalPtr = Yes; n.IPs[0].Netmask = netip.Addr{}; n.IPs[0].Prefix = 20 },
	}
	for name, mutate := range refused {
		t.Run(name, func(t *testing.T) {
			n := mustParse(t, natNetworkDoc)
			mutate(n)
			_, err := DnsmasqConfig(n, goldenPaths("t"), DnsmasqOptions{})
			var de *DnsmasqError
			if !errors.As(err, &de) {
				t.Fatalf("not refused with a *DnsmasqError: %v", err)
			}
			t.Log(err)
		})
	}

	quoted := map[string]struct {
		mutate func(n *Network)
		line   string
	}{
		"txt comment":    {func(n *Network) { n.DNS = &DNS{TXTs: []DNSTXT{{Name: "x", Value: "a #b"}}} }, `txt-record=x,"a #b"`},
		"txt quote":      {func(n *Network) { n.DNS = &DNS{TXTs: []DNSTXT{{Name: "x", Value: `say "hi" \o/`}}} }, `txt-record=x,"say \"hi\" \\o/"`},
		"txt strings":    {func(n *Network) { n.DNS = &DNS{TXTs: []DNSTXT{{Name: "x", Value: "v=1,k=2"}}} }, `txt-record=x,v=1,k=2`},
		"txt fields":     {func(n *Network) { n.DNS = &DNS{TXTs: []DNSTXT{{Name: "x", Value: "v=1,k #2, y"}}} }, `txt-record=x,v=1,"k #2"," y"`},
		"boot file":      {func(n *Network) { n.IPs[0].DHCP.Bootp = &Bootp{File: "a,b"} }, `dhcp-boot="a,b"`},
		"tftp spaces":    {func(n *Network) { n.IPs[0].TFTPRoot = "/srv/t #1 " }, `tftp-root="/srv/t #1 "`},
		"quoted path":    {func(n *Network) {}, `pid-file="/run/a\"b.pid"`},
		"dnsmasq option": {func(n *Network) { n.DnsmasqOptions = []string{"cname=a,b"} }, `cname=a,b`},
	}
	for name, c := range quoted {
		t.Run(name, func(t *testing.T) {
			n := mustParse(t, natNetworkDoc)
			c.mutate(n)
			paths := goldenPaths("t")
			if name == "quoted path" {
				paths.PIDFile = `/run/a"b.pid`
			}
			files, err := DnsmasqConfig(n, paths, DnsmasqOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(strings.Split(files.Config, "\n"), c.line) {
				t.Fatalf("no line %s in\n%s", c.line, files.Config)
			}
		})
	}
}

func TestDnsmasqRefusesNetworksWithoutBridge(t *testing.T) {
	for _, doc := range []string{
		`<network><name>a</name><forward mode='bridge'/><bridge name='br0'/></network>`,
		`<network><name>a</name><ip address='10.0.0.1' prefix='24'/></network>`, // no bridge name yet
	} {
		_, err := DnsmasqConfig(mustParse(t, doc), goldenPaths("a"), DnsmasqOptions{})
		var de *DnsmasqError
		if !errors.As(err, &de) {
			t.Errorf("%s: %v", doc, err)
		}
	}
	if _, err := DnsmasqConfig(nil, DnsmasqPaths{}, DnsmasqOptions{}); err == nil {
		t.Error("nil network accepted")
	}
}

func TestPTRDomain(t *testing.T) {
	for _, c := range []struct{ prefix, want string }{
		{"192.168.122.0/24", "122.168.192.in-addr.arpa"},
		{"10.0.0.0/8", "10.in-addr.arpa"},
		{"2001:db8:ac10:fe01::/64", "1.0.e.f.0.1.c.a.8.b.d.0.1.0.0.2.ip6.arpa"},
		{"2001:db8::/36", "0.8.b.d.0.1.0.0.2.ip6.arpa"},
	} {
		got, err := ptrDomain(netip.MustParsePrefix(c.prefix))
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.prefix, got, err, c.want)
		}
	}
	for _, p := range []string{"10.0.0.0/20", "2001:db8::/62"} {
		if _, err := ptrDomain(netip.MustParsePrefix(p)); err == nil {
			t.Errorf("%s: no error", p)
		}
	}
}

// natNetworkWithHosts returns a NAT network with n static DHCP hosts.
func natNetworkWithHosts(tb testing.TB, hosts int) *Network {
	var b strings.Builder
	b.WriteString(`<network><name>bench</name><forward mode='nat'/><bridge name='nwbr0'/>
<domain name='example.test'/><ip address='10.8.0.1' prefix='16'><dhcp>
<range start='10.8.100.1' end='10.8.200.254'/>`)
	for i := 0; i < hosts; i++ {
		fmt.Fprintf(&b, "<host mac='52:54:00:00:%02x:%02x' name='vm%d' ip='10.8.%d.%d'/>\n", i>>8, i&0xff, i, 1+i/250, 1+i%250)
	}
	b.WriteString(`</dhcp></ip></network>`)
	return mustParse(tb, b.String())
}

func TestDnsmasqManyHosts(t *testing.T) {
	files, err := DnsmasqConfig(natNetworkWithHosts(t, 100), goldenPaths("bench"), DnsmasqOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(files.HostsFile, "\n"); lines != 100 {
		t.Errorf("%d host lines, want 100", lines)
	}
	if !strings.HasPrefix(files.HostsFile, "52:54:00:00:00:00,10.8.1.1,vm0\n") {
		t.Errorf("hosts file starts %q", files.HostsFile[:40])
	}
}

// BenchmarkDnsmasqConfig generates the files of a NAT network with 100
// static hosts.
func BenchmarkDnsmasqConfig(b *testing.B) {
	n := natNetworkWithHosts(b, 100)
	paths := goldenPaths("bench")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DnsmasqConfig(n, paths, DnsmasqOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDnsmasqGoldenSyntax has the installed dnsmasq syntax-check every
// golden configuration (dnsmasq --test). dnsmasq-options is expected to
// fail: libvirt's case passes through a made-up option, foo=bar.
func TestDnsmasqGoldenSyntax(t *testing.T) {
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("NETWARDEN_INTEGRATION") == "1" {
			t.Fatal("dnsmasq is not installed")
		}
		t.Skip("dnsmasq is not installed")
	}
	confs, err := filepath.Glob(filepath.Join("testdata", "dnsmasq", "*.conf"))
	if err != nil || len(confs) == 0 {
		t.Fatalf("no golden configurations: %v", err)
	}
	for _, conf := range confs {
		name := strings.TrimSuffix(filepath.Base(conf), ".conf")
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command("dnsmasq", "--test", "--conf-file="+conf).CombinedOutput()
			if name == "dnsmasq-options" {
				if err == nil || !strings.Contains(string(out), "bad option at line") {
					t.Fatalf("foo=bar accepted? %v: %s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		})
	}
}
