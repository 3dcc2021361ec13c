package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/tests/lab"
)

// defaultNetworkXML is libvirt 9.0's default network
// (src/network/default.xml.in) with its subnet moved from
// 192.168.122.0/24 to the lab's 10.90.0.0/24. Like libvirt's, it names
// no forward mode (nat is the default) and no STP setting (on, with a
// delay of 0).
const defaultNetworkXML = `<network>
  <name>default</name>
  <bridge name='virbr0'/>
  <forward/>
  <ip address='10.90.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.90.0.2' end='10.90.0.254'/>
    </dhcp>
  </ip>
</network>
`

// networks shows libvirt's default network run by netwardend and driven
// by the netwarden command: defined, started, two guests plugged in,
// leasing, resolving each other, reaching the LAN through NAT, then
// destroyed and undefined.
func networks(t lab.TB, l *lab.Lab, cli string) {
	hv, up := l.Hypervisor(), l.Upstream()
	nw := func(args ...string) string { return netwarden(t, l, cli, args...) }

	step("libvirt's default network, defined and started with the netwarden command")
	netFile := filepath.Join(l.Dir, "default.xml")
	if err := os.WriteFile(netFile, []byte(defaultNetworkXML), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	show("%s (libvirt's default.xml.in on 10.90.0.0/24):", filepath.Base(netFile))
	for _, line := range strings.Split(strings.TrimSpace(defaultNetworkXML), "\n") {
		show("  %s", line)
	}
	nw("net-define", netFile)
	nw("net-start", "default")
	nw("net-list", "--all")
	nw("net-info", "default")

	step("two more guests plugged into it: ports adopting their veths")
	guests := []*lab.Guest{l.AddGuest(), l.AddGuest()}
	for _, g := range guests {
		port := fmt.Sprintf(`<networkport>
  <owner><name>guest%d</name><uuid>3b1f7c2e-5d4a-4e8b-9c6f-0000000000%02d</uuid></owner>
  <mac address='%s'/>
  <plug type='network' bridge='virbr0' dev='%s'/>
</networkport>
`, g.Index, g.Index, g.MAC, g.HostIface)
		portFile := filepath.Join(l.Dir, fmt.Sprintf("port-%s.xml", g.HostIface))
		if err := os.WriteFile(portFile, []byte(port), 0o644); err != nil {
			t.Fatalf("%v", err)
		}
		show("%s:", filepath.Base(portFile))
		for _, line := range strings.Split(strings.TrimSpace(port), "\n") {
			show("  %s", line)
		}
		nw("net-port-create", "default", portFile)
	}
	start := time.Now()
	for _, g := range guests {
		waitForwarding(t, hv, g.HostIface)
	}
	show("STP is on: the ports listened and learned, and forward after %.1f s", time.Since(start).Seconds())
	show("in %s: %s; ports: %s", hv.Name, strings.Join(strings.Fields(hv.MustRun("ip", "-br", "addr", "show", "virbr0")), " "),
		strings.Join(strings.Fields(hv.MustRun("ls", "/sys/class/net/virbr0/brif")), ", "))
	nw("net-port-list", "default")

	step("the guests lease addresses from the network's dnsmasq")
	names := []string{"alpha", "beta"}
	leases := make([]lab.Lease, len(guests))
	for i, g := range guests {
		lease, err := g.DHCPWith(lab.DHCPOptions{Hostname: names[i], Timeout: 15 * time.Second})
		if err != nil {
			t.Fatalf("DHCP in %s: %v", g.Name, err)
		}
		leases[i] = lease
		show("guest %s (%s, hostname %s): %s, router %s, DNS %v", g.Name, g.MAC, names[i], lease.CIDR(), lease.Router, lease.DNS)
	}

	step("they find each other by name through dnsmasq at 10.90.0.1, and talk")
	for i, g := range guests {
		other := names[1-i]
		ips, err := g.LookupDNS("10.90.0.1", other, layers.DNSTypeA, 3*time.Second)
		if err != nil || len(ips) == 0 || !ips[0].Equal(leases[1-i].IP) {
			t.Fatalf("%s resolving %s: %v %v, want %s", names[i], other, ips, err, leases[1-i].IP)
		}
		show("%s asks 10.90.0.1 for %s: A %s", names[i], other, ips[0])
	}
	if err := guests[0].Ping(leases[1].IP.String(), 2, 5*time.Second); err != nil {
		t.Fatalf("ping: %v", err)
	}
	show("ping alpha -> beta (%s): 2 of 2 replies", leases[1].IP)

	step("NAT: the guests reach the upstream LAN as the hypervisor")
	c, err := up.Capture(up.Iface, lab.MatchICMPv4(8))
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	defer c.Close()
	if err := guests[0].Ping(up.Addr.String(), 2, 5*time.Second); err != nil {
		t.Fatalf("ping upstream: %v", err)
	}
	show("ping alpha (%s) -> %s: 2 of 2 replies", leases[0].IP, up.Addr)
	pkts, err := c.Wait(3*time.Second, 1)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	ip := pkts[0].Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ip.SrcIP.Equal(up.HostAddr) {
		t.Fatalf("upstream saw the echo request from %s, want the masqueraded %s", ip.SrcIP, up.HostAddr)
	}
	show("capture on %s/%s: echo request %s -> %s (masqueraded; the guest's %s never leaves the hypervisor)",
		up.Name, up.Iface, ip.SrcIP, ip.DstIP, leases[0].IP)
	show("$ nft list table inet netwarden-net | grep masquerade")
	for _, line := range strings.Split(hv.MustRun("nft", "list", "table", "inet", "netwarden-net"), "\n") {
		if strings.Contains(line, "masquerade") {
			show("  %s", strings.TrimSpace(line))
		}
	}

	step("the leases, as the daemon reads them from dnsmasq")
	nw("net-dhcp-leases", "default")

	step("net-destroy and net-undefine: the network and everything made for it go")
	nw("net-destroy", "default")
	if _, err := hv.Run("ip", "link", "show", "virbr0"); err == nil {
		t.Fatalf("virbr0 still there after net-destroy")
	}
	if rules := hv.MustRun("nft", "list", "ruleset"); strings.Contains(rules, "virbr0") {
		t.Fatalf("rules for virbr0 left after net-destroy:\n%s", rules)
	}
	for _, pid := range strings.Fields(hv.MustRun("ip", "netns", "pids", hv.Name)) {
		if comm, err := os.ReadFile("/proc/" + pid + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "dnsmasq" {
			t.Fatalf("dnsmasq (pid %s) still running after net-destroy", pid)
		}
	}
	show("virbr0, its rules and its dnsmasq are gone; the guests' veths stay, unplugged")
	nw("net-undefine", "default")
	nw("net-list", "--all")
}

// netwarden runs the netwarden command on the lab bus, as root, prints
// the command line (file arguments by their base name) and its output,
// and fails unless it succeeds.
func netwarden(t lab.TB, l *lab.Lab, cli string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = l.Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if strings.HasPrefix(a, l.Dir) {
			shown[i] = filepath.Base(a)
		}
	}
	show("$ netwarden %s", strings.Join(shown, " "))
	if err != nil {
		t.Fatalf("netwarden %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
		show("  %s", line)
	}
	return stdout.String()
}

// waitForwarding waits until the bridge forwards through port dev (its
// STP state is 3, forwarding).
func waitForwarding(t lab.TB, hv *lab.Netns, dev string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		state, err := hv.Run("cat", "/sys/class/net/"+dev+"/brport/state")
		if err == nil && strings.TrimSpace(state) == "3" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s not forwarding (state %q, %v)", dev, state, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
