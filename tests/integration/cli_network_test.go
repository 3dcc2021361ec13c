package integration

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/tests/lab"
)

// cli runs netwarden as root against the network lab's daemon and
// fails the test unless it exits with want.
func (n *netLab) cli(t *testing.T, want int, stdin string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, n.l, nil, stdin, nil, args...)
	if r.code != want {
		t.Fatalf("netwarden %s: want exit status %d, got %v\ndaemon log:\n%s", strings.Join(args, " "), want, r, n.d.log(t))
	}
	return r
}

// netListHeader is the header and rule of net-list's table without
// rows; netListHead matches them in any width.
const netListHeader = " Name   State   Autostart   Persistent\n----------------------------------------\n"

var netListHead = regexp.MustCompile(`^ Name {3,}State {3,}Autostart {3,}Persistent\n-{40,}\n`)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// infoField returns the value of a "Key:   value" line of net-info.
func infoField(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "<absent>"
}

// TestCLINetwork drives the net-* and net-port-* verbs of the netwarden
// command against the daemon, as root: a persistent NAT network from
// definition to undefinition, a port adopting a guest's veth, the
// guest's lease, and a transient network.
func TestCLINetwork(t *testing.T) {
	n := newNetLab(t)
	hv := n.l.Hypervisor()
	dir := n.l.Dir
	g := n.l.AddGuest()

	// No networks yet: an empty table.
	if r := n.cli(t, 0, "", "net-list", "--all"); r.stdout != netListHeader+"\n" {
		t.Errorf("net-list --all without networks: %q", r.stdout)
	}

	// Define from a file: listed as inactive and persistent.
	netFile := writeFile(t, dir, "clinet.xml", natNetwork("clinet", "nwbr7", "89", net.HardwareAddr{2, 0, 0, 0, 0, 7}))
	if r := n.cli(t, 0, "", "net-define", netFile); r.stdout != "Network clinet defined from "+netFile+"\n" {
		t.Errorf("net-define printed %q", r.stdout)
	}
	inactiveRow := tableRow("clinet", "inactive", "no", "yes")
	if r := n.cli(t, 0, "", "net-list"); strings.Contains(r.stdout, "clinet") {
		t.Errorf("net-list (active only) lists the inactive network:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"net-list", "--all"}, {"net-list", "--inactive"}} {
		r := n.cli(t, 0, "", args...)
		if !netListHead.MatchString(r.stdout) || !inactiveRow.MatchString(r.stdout) {
			t.Errorf("netwarden %s:\n%s", strings.Join(args, " "), r.stdout)
		}
	}
	if _, err := hv.Run("ip", "link", "show", "nwbr7"); err == nil {
		t.Error("net-define created the bridge")
	}

	// uuid ↔ name, info.
	uuid := strings.TrimSpace(n.cli(t, 0, "", "net-uuid", "clinet").stdout)
	if !uuidRE.MatchString(uuid) {
		t.Fatalf("net-uuid printed %q", uuid)
	}
	if r := n.cli(t, 0, "", "net-name", uuid); r.stdout != "clinet\n" {
		t.Errorf("net-name %s printed %q", uuid, r.stdout)
	}
	info := n.cli(t, 0, "", "net-info", "clinet").stdout
	for k, v := range map[string]string{"Name": "clinet", "UUID": uuid, "Active": "no", "Persistent": "yes", "Autostart": "no", "Bridge": "nwbr7"} {
		if got := infoField(info, k); got != v {
			t.Errorf("net-info %s: %q, want %q\n%s", k, got, v, info)
		}
	}
	if byUUID := n.cli(t, 0, "", "net-info", uuid).stdout; byUUID != info {
		t.Errorf("net-info by UUID:\n%s\nwant\n%s", byUUID, info)
	}

	// Autostart on and off.
	if r := n.cli(t, 0, "", "net-autostart", "clinet"); r.stdout != "Network clinet marked as autostarted\n" {
		t.Errorf("net-autostart printed %q", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--all", "--autostart"); !tableRow("clinet", "inactive", "yes", "yes").MatchString(r.stdout) {
		t.Errorf("net-list --all --autostart:\n%s", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--all", "--no-autostart"); strings.Contains(r.stdout, "clinet") {
		t.Errorf("net-list --all --no-autostart lists an autostarted network:\n%s", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-autostart", "clinet", "--disable"); r.stdout != "Network clinet unmarked as autostarted\n" {
		t.Errorf("net-autostart --disable printed %q", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--all", "--autostart"); strings.Contains(r.stdout, "clinet") {
		t.Errorf("net-list --all --autostart after --disable:\n%s", r.stdout)
	}

	// Start: the bridge is there, the network active.
	if r := n.cli(t, 0, "", "net-start", "clinet"); r.stdout != "Network clinet started\n" {
		t.Errorf("net-start printed %q", r.stdout)
	}
	if _, err := hv.Run("ip", "link", "show", "nwbr7"); err != nil {
		t.Fatalf("no bridge nwbr7 after net-start: %v", err)
	}
	if r := n.cli(t, 0, "", "net-list"); !tableRow("clinet", "active", "no", "yes").MatchString(r.stdout) {
		t.Errorf("net-list after net-start:\n%s", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--inactive"); strings.Contains(r.stdout, "clinet") {
		t.Errorf("net-list --inactive lists the active network:\n%s", r.stdout)
	}
	n.cli(t, 0, "", "net-autostart", "clinet")
	if r := n.cli(t, 0, "", "net-list", "--autostart"); !tableRow("clinet", "active", "yes", "yes").MatchString(r.stdout) {
		t.Errorf("net-list --autostart:\n%s", r.stdout)
	}
	n.cli(t, 0, "", "net-autostart", "--disable", "clinet")
	if r := n.cli(t, 1, "", "net-start", "clinet"); r.stderr != "error: failed to start network clinet: invalid: network \"clinet\" is already active\n" {
		t.Errorf("net-start of an active network: %v", r)
	}
	if got := infoField(n.cli(t, 0, "", "net-info", "clinet").stdout, "Active"); got != "yes" {
		t.Errorf("net-info Active after net-start: %q", got)
	}

	// dumpxml, live and inactive; the inactive one defines the same
	// network again.
	live := n.cli(t, 0, "", "net-dumpxml", "clinet").stdout
	inactive := n.cli(t, 0, "", "net-dumpxml", "--inactive", "clinet").stdout
	for what, doc := range map[string]string{"live": live, "inactive": inactive} {
		for _, want := range []string{"<name>clinet</name>", "<uuid>" + uuid + "</uuid>", "<forward mode='nat'", "<bridge name='nwbr7'", "<ip address='10.89.0.1'", "<range start='10.89.0.100' end='10.89.0.150'/>"} {
			if !strings.Contains(doc, want) {
				t.Errorf("net-dumpxml (%s) lacks %s:\n%s", what, want, doc)
			}
		}
		if !strings.HasPrefix(doc, "<network") || !strings.HasSuffix(doc, "</network>\n") {
			t.Errorf("net-dumpxml (%s) is not one network document:\n%s", what, doc)
		}
	}
	if byUUID := n.cli(t, 0, "", "net-dumpxml", "--inactive", uuid).stdout; byUUID != inactive {
		t.Errorf("net-dumpxml --inactive by UUID:\n%s\nwant\n%s", byUUID, inactive)
	}
	if r := n.cli(t, 0, inactive, "net-define", "-"); r.stdout != "Network clinet defined from standard input\n" {
		t.Errorf("net-define - printed %q", r.stdout)
	}
	if again := n.cli(t, 0, "", "net-dumpxml", "--inactive", "clinet").stdout; again != inactive {
		t.Errorf("dumpxml --inactive after defining its output:\n%s\nwant\n%s", again, inactive)
	}

	// A port adopting the guest's veth.
	if r := n.cli(t, 0, "", "net-port-list", "clinet"); r.stdout != " UUID\n-------\n\n" {
		t.Errorf("net-port-list without ports: %q", r.stdout)
	}
	portFile := writeFile(t, dir, "clinet-port.xml", portXML(g, "nwbr7", ""))
	r := n.cli(t, 0, "", "net-port-create", "clinet", portFile)
	m := regexp.MustCompile(`^Network port (\S+) created from ` + regexp.QuoteMeta(portFile) + "\n$").FindStringSubmatch(r.stdout)
	if m == nil || !uuidRE.MatchString(m[1]) {
		t.Fatalf("net-port-create printed %q", r.stdout)
	}
	port := m[1]
	n.waitForwarding(t, g.HostIface)
	if master := hv.MustRun("cat", "/sys/class/net/"+g.HostIface+"/master/uevent"); !strings.Contains(master, "INTERFACE=nwbr7") {
		t.Errorf("%s not on nwbr7: %s", g.HostIface, master)
	}
	r = n.cli(t, 0, "", "net-port-list", "clinet")
	if !strings.HasPrefix(r.stdout, " UUID\n---") || !tableRow(port).MatchString(r.stdout) {
		t.Errorf("net-port-list:\n%s", r.stdout)
	}
	pdump := n.cli(t, 0, "", "net-port-dumpxml", "clinet", port).stdout
	for _, want := range []string{"<networkport>", "<uuid>" + port + "</uuid>", "<mac address='" + g.MAC.String() + "'/>",
		"<name>guest" + fmt.Sprint(g.Index) + "</name>", "bridge='nwbr7'", "dev='" + g.HostIface + "'"} {
		if !strings.Contains(pdump, want) {
			t.Errorf("net-port-dumpxml lacks %s:\n%s", want, pdump)
		}
	}
	if byUUID := n.cli(t, 0, "", "net-port-dumpxml", uuid, strings.ToUpper(port)).stdout; byUUID != pdump {
		t.Errorf("net-port-dumpxml by network UUID and upper-case port UUID:\n%s\nwant\n%s", byUUID, pdump)
	}
	if r := n.cli(t, 1, "", "net-port-create", "clinet", portFile); !strings.HasPrefix(r.stderr, "error: failed to create network port from "+portFile+": ") || r.stdout != "" {
		t.Errorf("second port on the same device: %v", r)
	}

	// The guest leases an address; net-dhcp-leases shows it.
	lease, err := g.DHCPWith(lab.DHCPOptions{Hostname: "cli-guest", Timeout: 15 * time.Second})
	if err != nil {
		t.Fatalf("DHCP: %v\n%s", err, n.d.log(t))
	}
	r = n.cli(t, 0, "", "net-dhcp-leases", "clinet")
	leaseRow := regexp.MustCompile(`(?m)^ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {3,}` + regexp.QuoteMeta(g.MAC.String()) + ` {3,}ipv4 {3,}` +
		regexp.QuoteMeta(lease.CIDR()) + ` {3,}cli-guest {3,}\S+$`)
	if !strings.HasPrefix(r.stdout, " Expiry Time ") || !strings.Contains(r.stdout, "MAC address") || !leaseRow.MatchString(r.stdout) {
		t.Errorf("net-dhcp-leases (guest leased %s):\n%s", lease.CIDR(), r.stdout)
	}
	if r := n.cli(t, 0, "", "net-dhcp-leases", "clinet", "--mac", g.MAC.String()); !leaseRow.MatchString(r.stdout) {
		t.Errorf("net-dhcp-leases --mac %s:\n%s", g.MAC, r.stdout)
	}
	if r := n.cli(t, 0, "", "net-dhcp-leases", "clinet", "--mac", "52:54:00:ff:ff:ff"); strings.Contains(r.stdout, g.MAC.String()) {
		t.Errorf("net-dhcp-leases --mac of another guest:\n%s", r.stdout)
	}

	// Delete the port: unlisted, the adopted veth stays.
	if r := n.cli(t, 0, "", "net-port-delete", "clinet", port); r.stdout != "Network port "+port+" deleted\n" {
		t.Errorf("net-port-delete printed %q", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-port-list", "clinet"); strings.Contains(r.stdout, port) {
		t.Errorf("net-port-list after delete:\n%s", r.stdout)
	}
	if _, err := hv.Run("ip", "link", "show", g.HostIface); err != nil {
		t.Errorf("the adopted %s was deleted with its port: %v", g.HostIface, err)
	}
	if r := n.cli(t, 1, "", "net-port-delete", "clinet", port); !strings.HasPrefix(r.stderr, "error: failed to get network port '"+port+"': ") {
		t.Errorf("net-port-delete of a deleted port: %v", r)
	}

	// Destroy: the bridge goes, the definition stays.
	if r := n.cli(t, 0, "", "net-destroy", "clinet"); r.stdout != "Network clinet destroyed\n" {
		t.Errorf("net-destroy printed %q", r.stdout)
	}
	if _, err := hv.Run("ip", "link", "show", "nwbr7"); err == nil {
		t.Error("bridge nwbr7 still there after net-destroy")
	}
	if r := n.cli(t, 0, "", "net-list", "--inactive"); !inactiveRow.MatchString(r.stdout) {
		t.Errorf("net-list --inactive after net-destroy:\n%s", r.stdout)
	}
	n.cli(t, 1, "", "net-destroy", "clinet")

	// Undefine: gone.
	if r := n.cli(t, 0, "", "net-undefine", "clinet"); r.stdout != "Network clinet has been undefined\n" {
		t.Errorf("net-undefine printed %q", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--all"); strings.Contains(r.stdout, "clinet") {
		t.Errorf("net-list --all after net-undefine:\n%s", r.stdout)
	}
	if r := n.cli(t, 0, "", "-q", "net-list", "--all"); r.stdout != "" {
		t.Errorf("quiet empty net-list printed %q", r.stdout)
	}

	// An active network undefined goes on as a transient one.
	n.cli(t, 0, "", "net-define", netFile)
	n.cli(t, 0, "", "net-start", "clinet")
	n.cli(t, 0, "", "net-undefine", "clinet")
	if r := n.cli(t, 0, "", "net-list", "--all"); !tableRow("clinet", "active", "no", "no").MatchString(r.stdout) {
		t.Errorf("net-list after undefining an active network:\n%s", r.stdout)
	}
	n.cli(t, 0, "", "net-destroy", "clinet")
	n.cli(t, 1, "", "net-info", "clinet")

	// net-create: a transient network, gone when destroyed.
	tmpFile := writeFile(t, dir, "clitmp.xml", `<network><name>clitmp</name><bridge name='nwbr8'/><ip address='10.90.0.1' prefix='24'/></network>`)
	if r := n.cli(t, 0, "", "net-create", tmpFile); r.stdout != "Network clitmp created from "+tmpFile+"\n" {
		t.Errorf("net-create printed %q", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list"); !tableRow("clitmp", "active", "no", "no").MatchString(r.stdout) {
		t.Errorf("net-list with a transient network:\n%s", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--all", "--transient"); !tableRow("clitmp", "active", "no", "no").MatchString(r.stdout) {
		t.Errorf("net-list --all --transient:\n%s", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--all", "--persistent"); strings.Contains(r.stdout, "clitmp") {
		t.Errorf("net-list --all --persistent lists a transient network:\n%s", r.stdout)
	}
	info = n.cli(t, 0, "", "net-info", "clitmp").stdout
	if infoField(info, "Persistent") != "no" || infoField(info, "Active") != "yes" || infoField(info, "Bridge") != "nwbr8" {
		t.Errorf("net-info of a transient network:\n%s", info)
	}
	if _, err := hv.Run("ip", "link", "show", "nwbr8"); err != nil {
		t.Errorf("no bridge nwbr8 after net-create: %v", err)
	}
	if r := n.cli(t, 1, "", "net-autostart", "clitmp"); !strings.HasPrefix(r.stderr, "error: failed to mark as autostarted network clitmp: ") {
		t.Errorf("net-autostart of a transient network: %v", r)
	}
	if r := n.cli(t, 0, "", "net-destroy", "clitmp"); r.stdout != "Network clitmp destroyed\n" {
		t.Errorf("net-destroy of a transient network printed %q", r.stdout)
	}
	if r := n.cli(t, 0, "", "net-list", "--all"); strings.Contains(r.stdout, "clitmp") {
		t.Errorf("the transient network is listed after net-destroy:\n%s", r.stdout)
	}
	if _, err := hv.Run("ip", "link", "show", "nwbr8"); err == nil {
		t.Error("bridge nwbr8 still there after net-destroy")
	}
}

// TestCLINetworkErrors: unknown networks, malformed documents and an
// unsupported forward mode fail with exit status 1 and a message on
// standard error, and change nothing.
func TestCLINetworkErrors(t *testing.T) {
	n := newNetLab(t)
	hv := n.l.Hypervisor()
	dir := n.l.Dir
	missing := "error: failed to get network 'nosuch': no network with that name or UUID\n"
	for _, args := range [][]string{
		{"net-info", "nosuch"}, {"net-uuid", "nosuch"}, {"net-dumpxml", "nosuch"}, {"net-start", "nosuch"},
		{"net-destroy", "nosuch"}, {"net-undefine", "nosuch"}, {"net-autostart", "nosuch"},
		{"net-dhcp-leases", "nosuch"}, {"net-port-list", "nosuch"},
	} {
		r := n.cli(t, 1, "", args...)
		if r.stderr != missing || r.stdout != "" {
			t.Errorf("netwarden %s: %v\nwant stderr %q", strings.Join(args, " "), r, missing)
		}
	}
	unknownUUID := "00000000-0000-4000-8000-000000000000"
	if r := n.cli(t, 1, "", "net-name", unknownUUID); r.stderr != "error: failed to get network '"+unknownUUID+"': no network with that name or UUID\n" {
		t.Errorf("net-name of an unknown UUID: %v", r)
	}

	// Malformed XML, from a file and from standard input.
	bad := writeFile(t, dir, "bad-net.xml", "<network><name>broken</name><ip address='10.91.0.1'")
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"net-define", bad}, "error: failed to define network from " + bad + ": invalid: "},
		{"", []string{"net-create", bad}, "error: failed to create network from " + bad + ": invalid: "},
		{"<network><name>x</name><bogus", []string{"net-define", "-"}, "error: failed to define network from standard input: invalid: "},
		{"<network><name>bad/name</name></network>", []string{"net-define", "-"}, "error: failed to define network from standard input: invalid: "},
		{"", []string{"net-define", filepath.Join(dir, "absent.xml")}, "error: failed to open file '" + filepath.Join(dir, "absent.xml") + "': no such file or directory\n"},
	} {
		r := n.cli(t, 1, c.stdin, c.args...)
		if !strings.HasPrefix(r.stderr, c.want) || r.stdout != "" {
			t.Errorf("netwarden %s: %v\nwant stderr starting %q", strings.Join(c.args, " "), r, c.want)
		}
	}
	if r := n.cli(t, 0, "", "net-list", "--all"); r.stdout != netListHeader+"\n" {
		t.Errorf("a refused definition is listed:\n%s", r.stdout)
	}

	// vepa: defined, refused at start with the reason, no link left.
	linksBefore := hv.MustRun("ip", "-br", "link")
	vepa := writeFile(t, dir, "vepa.xml", `<network><name>clivepa</name><forward mode='vepa'><interface dev='eth9'/></forward></network>`)
	n.cli(t, 0, "", "net-define", vepa)
	r := n.cli(t, 1, "", "net-start", "clivepa")
	if !strings.HasPrefix(r.stderr, "error: failed to start network clivepa: ") || !strings.Contains(r.stderr, "not supported") || r.stdout != "" {
		t.Errorf("net-start of a vepa network: %v", r)
	}
	if r := n.cli(t, 0, "", "net-list", "--all"); !tableRow("clivepa", "inactive", "no", "yes").MatchString(r.stdout) {
		t.Errorf("net-list after a refused start:\n%s", r.stdout)
	}
	if links := hv.MustRun("ip", "-br", "link"); links != linksBefore {
		t.Errorf("a refused start changed the links:\n%s\nbefore:\n%s", links, linksBefore)
	}
	// net-create of the same is refused and leaves no transient network.
	vepa2 := writeFile(t, dir, "vepa2.xml", `<network><name>clivepa2</name><forward mode='vepa'><interface dev='eth9'/></forward></network>`)
	if r := n.cli(t, 1, "", "net-create", vepa2); !strings.Contains(r.stderr, "not supported") {
		t.Errorf("net-create of a vepa network: %v", r)
	}
	if r := n.cli(t, 0, "", "net-list", "--all"); strings.Contains(r.stdout, "clivepa2") {
		t.Errorf("a refused net-create left a network:\n%s", r.stdout)
	}
	n.cli(t, 0, "", "net-undefine", "clivepa")

	// Ports: on an inactive network, of an unknown UUID, malformed.
	n.cli(t, 0, "", "net-define", writeFile(t, dir, "idle.xml", `<network><name>idle</name><bridge name='nwbr9'/><ip address='10.92.0.1' prefix='24'/></network>`))
	g := n.l.AddGuest()
	portFile := writeFile(t, dir, "idle-port.xml", portXML(g, "nwbr9", ""))
	if r := n.cli(t, 1, "", "net-port-create", "idle", portFile); !strings.HasPrefix(r.stderr, "error: failed to create network port from "+portFile+": ") {
		t.Errorf("net-port-create on an inactive network: %v", r)
	}
	n.cli(t, 0, "", "net-start", "idle")
	if r := n.cli(t, 1, "", "net-port-dumpxml", "idle", unknownUUID); r.stderr != "error: failed to get network port '"+unknownUUID+"': no port with that UUID on the network\n" {
		t.Errorf("net-port-dumpxml of an unknown port: %v", r)
	}
	if r := n.cli(t, 1, "<networkport><mac address='zz'/>", "net-port-create", "idle", "-"); !strings.HasPrefix(r.stderr, "error: failed to create network port from standard input: invalid: ") {
		t.Errorf("net-port-create of malformed XML: %v", r)
	}
	if r := n.cli(t, 0, "", "net-port-list", "idle"); r.stdout != " UUID\n-------\n\n" {
		t.Errorf("refused ports are listed: %q", r.stdout)
	}
	n.cli(t, 0, "", "net-destroy", "idle")
	n.cli(t, 0, "", "net-undefine", "idle")

	// Usage errors: exit status 2.
	n.cli(t, 2, "", "net-define")
	n.cli(t, 2, "", "net-port-delete", "idle")
	n.cli(t, 2, "", "net-list", "--bogus")
}
