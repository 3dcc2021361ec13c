package network_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/tests/lab"
)

const labLeaseDoc = `<network>
  <name>leasenet</name>
  <bridge name='nwlease0'/>
  <ip address='10.77.6.1' prefix='24'>
    <dhcp>
      <range start='10.77.6.10' end='10.77.6.20'><lease expiry='10' unit='minutes'/></range>
    </dhcp>
  </ip>
</network>`

// TestLabLeases runs a real dnsmasq with the generated configuration: a
// guest leases an address, ReadLeases finds it in the lease database with
// the guest's MAC, name and client ID, and ReleaseLease (dhcp_release in
// the namespace) makes dnsmasq drop it from the file.
func TestLabLeases(t *testing.T) {
	if os.Getenv("NETWARDEN_INTEGRATION") != "1" && os.Getenv("CI") != "true" {
		t.Skip("lab test: set NETWARDEN_INTEGRATION=1 (needs root, iproute2, dnsmasq, busybox, dhcp_release)")
	}
	l := lab.New(t)
	lab.Require(t, "dnsmasq", "busybox", "dhcp_release")
	hv := l.Hypervisor()
	g := l.AddGuest()
	links := newLinks(t, hv)

	n := mustParse(t, labLeaseDoc)
	hv.AddBridge(n.Bridge.Name, "10.77.6.1/24", g.HostIface)

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
	for p, text := range map[string]string{conf: files.Config + "log-facility=-\nlog-dhcp\n", paths.HostsFile: files.HostsFile, paths.AddnHostsFile: files.AddnHosts} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := l.Start("dnsmasq-leasenet", hv.Command(context.Background(), "dnsmasq", "--conf-file="+conf, "--keep-in-foreground"))
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

	before := time.Now()
	lease, err := g.DHCPWith(lab.DHCPOptions{Timeout: 20 * time.Second, Hostname: "leaser"})
	if err != nil {
		t.Fatal(err)
	}
	leases, err := network.ReadLeases(paths.LeaseFile, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 {
		t.Fatalf("leases %+v, want one", leases)
	}
	got := leases[0]
	got.Prefix = n.LeasePrefix(got.IPAddr)
	if got.Type != network.LeaseIPv4 || got.MAC != g.MAC.String() || got.IPAddr.String() != lease.IP.String() ||
		got.Prefix != 24 || got.Hostname != "leaser" {
		t.Errorf("lease %+v; want ipv4, %s, %s/24, leaser", got, g.MAC, lease.IP)
	}
	if exp := got.Expiry.Sub(before); exp < 9*time.Minute || exp > 11*time.Minute {
		t.Errorf("lease expires in %v, want the range's 10m", exp)
	}
	// The lease is gone once its expiry is past.
	if later, err := network.ReadLeases(paths.LeaseFile, got.Expiry.Add(time.Second)); err != nil || len(later) != 0 {
		t.Errorf("after expiry: %+v, %v", later, err)
	}

	ctx := context.Background()
	if err := links.ReleaseLease(ctx, n.Bridge.Name, got.IPAddr, got.MAC, got.ClientID); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		leases, err = network.ReadLeases(paths.LeaseFile, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(leases) == 0 {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.Log)
			t.Fatalf("lease still there after ReleaseLease: %+v; dnsmasq log:\n%s", leases, log)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Releasing on a bridge the namespace lacks fails with dhcp_release's
	// reason; nothing ran in the test's own namespace.
	if err := links.ReleaseLease(ctx, "nwnone0", netip.MustParseAddr("10.77.6.10"), got.MAC, ""); err == nil {
		t.Error("ReleaseLease on a missing bridge succeeded")
	}
}
