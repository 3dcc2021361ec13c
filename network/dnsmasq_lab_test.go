package network_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/tests/lab"
)

// labDnsmasqDoc is the network the lab test serves: a static lease for
// the guest (its MAC is filled in), a DNS host record, a domain and a TXT
// records whose values dnsmasq would cut at '#' or strip of quotes and
// backslashes if they were not quoted.
const labDnsmasqDoc = `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
  <name>labnet</name>
  <forward mode='nat'/>
  <bridge name='nwbr0'/>
  <domain name='example.test'/>
  <dns>
    <txt name='info' value='a #b'/>
    <txt name='quoted' value='say "hi" \o/,x'/>
    <host ip='10.77.5.1'><hostname>gw</hostname><hostname>gateway</hostname></host>
  </dns>
  <ip address='10.77.5.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.77.5.10' end='10.77.5.20'><lease expiry='5' unit='minutes'/></range>
      <host mac='GUESTMAC' name='vm0' ip='10.77.5.50'/>
    </dhcp>
  </ip>
  <dnsmasq:options>
    <dnsmasq:option value='log-facility=-'/>
    <dnsmasq:option value='no-hosts'/>
  </dnsmasq:options>
</network>`

// TestLabDnsmasqConfig runs a real dnsmasq in a lab namespace with the
// configuration DnsmasqConfig generates (and nothing but --conf-file and
// --keep-in-foreground on its command line): a guest on the bridge gets
// its static lease with the network's domain, router and lease time, and
// DNS answers the <dns><host> record (plain and with the domain), the
// guest's DHCP name and the TXT record.
func TestLabDnsmasqConfig(t *testing.T) {
	if os.Getenv("NETWARDEN_INTEGRATION") != "1" && os.Getenv("CI") != "true" {
		t.Skip("lab test: set NETWARDEN_INTEGRATION=1 (needs root, iproute2, dnsmasq, busybox)")
	}
	l := lab.New(t)
	lab.Require(t, "dnsmasq", "busybox")
	hv := l.Hypervisor()
	g := l.AddGuest()

	n, err := network.Parse([]byte(strings.Replace(labDnsmasqDoc, "GUESTMAC", g.MAC.String(), 1)))
	if err != nil {
		t.Fatal(err)
	}
	hv.AddBridge(n.Bridge.Name, "10.77.5.1/24", g.HostIface)

	dir := filepath.Join(l.Dir, "dnsmasq")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := network.DnsmasqPaths{
		HostsFile:     filepath.Join(dir, n.Name+".hostsfile"),
		AddnHostsFile: filepath.Join(dir, n.Name+".addnhosts"),
		PIDFile:       filepath.Join(dir, n.Name+".pid"),
		LeaseFile:     filepath.Join(dir, n.Name+".leases"),
	}
	files, err := network.DnsmasqConfig(n, paths, network.DnsmasqOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, n.Name+".conf")
	for p, text := range map[string]string{conf: files.Config, paths.HostsFile: files.HostsFile, paths.AddnHostsFile: files.AddnHosts} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("configuration:\n%s", files.Config)

	p := l.Start("dnsmasq-labnet", hv.Command(context.Background(), "dnsmasq", "--conf-file="+conf, "--keep-in-foreground"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, _ := os.ReadFile(p.Log)
		if strings.Contains(string(log), "started, version") {
			break
		}
		if !p.Alive() || time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not start: %v; log:\n%s", p.Err(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}

	lease, err := g.DHCP(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !lease.IP.Equal(net.IPv4(10, 77, 5, 50)) || lease.Prefix != 24 {
		t.Errorf("leased %s, want the static 10.77.5.50/24", lease.CIDR())
	}
	if !lease.Router.Equal(net.IPv4(10, 77, 5, 1)) || lease.Domain != "example.test" {
		t.Errorf("router %v domain %q, want 10.77.5.1 and example.test", lease.Router, lease.Domain)
	}
	if lease.LeaseTime != 5*time.Minute {
		// A static host without <lease> of its own gets its range's.
		t.Errorf("lease time %v, want the range's 5m", lease.LeaseTime)
	}

	for name, want := range map[string]net.IP{
		"gw":                   net.IPv4(10, 77, 5, 1),
		"gateway.example.test": net.IPv4(10, 77, 5, 1),
		"vm0.example.test":     net.IPv4(10, 77, 5, 50),
	} {
		ips, err := g.LookupDNS("10.77.5.1", name, layers.DNSTypeA, 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(ips) != 1 || !ips[0].Equal(want) {
			t.Errorf("%s: %v, want %v", name, ips, want)
		}
	}

	for name, want := range map[string][]string{
		"info":   {"a #b"},
		"quoted": {`say "hi" \o/`, "x"}, // a comma separates strings, as in libvirt
	} {
		answers, err := g.QueryDNS("10.77.5.1", name, layers.DNSTypeTXT, 5*time.Second)
		if err != nil {
			t.Errorf("TXT %s: %v", name, err)
			continue
		}
		var txts []string
		for _, rr := range answers {
			for _, s := range rr.TXTs {
				txts = append(txts, string(s))
			}
		}
		if !slices.Equal(txts, want) {
			t.Errorf("TXT %s: %q, want %q", name, txts, want)
		}
	}
}
