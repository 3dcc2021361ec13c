package network_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/tests/lab"
)

// Lab tests of the supervised dnsmasq: a real dnsmasq in a lab hypervisor
// namespace, entered with `ip netns exec` through Dnsmasq.Command.

// superviseDoc is a small NAT network with a DHCP range.
const superviseDoc = `<network>
  <name>supnet</name>
  <forward mode='nat'/>
  <bridge name='nwsup0'/>
  <domain name='sup.test'/>
  <ip address='10.78.6.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.78.6.10' end='10.78.6.20'/>
    </dhcp>
  </ip>
</network>`

func requireLab(t *testing.T) *lab.Lab {
	t.Helper()
	if os.Getenv("NETWARDEN_INTEGRATION") != "1" && os.Getenv("CI") != "true" {
		t.Skip("lab test: set NETWARDEN_INTEGRATION=1 (needs root, iproute2, dnsmasq, busybox)")
	}
	l := lab.New(t)
	lab.Require(t, "dnsmasq", "busybox")
	return l
}

// labDir returns a directory for dnsmasq's files under the lab's
// directory, readable by the unprivileged user dnsmasq switches to (a
// t.TempDir is not).
func labDir(t *testing.T, l *lab.Lab) string {
	t.Helper()
	dir, err := os.MkdirTemp(l.Dir, "dnsmasq-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// logBuffer is a concurrency-safe log sink for a Dnsmasq's logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newDnsmasq returns a Dnsmasq for conf running in ns, whose Stop runs
// at the end of the test (before the lab is torn down), and its log.
func newDnsmasq(t *testing.T, ns *lab.Netns, conf, pidFile string) (*network.Dnsmasq, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	d := &network.Dnsmasq{
		ConfFile:     conf,
		PIDFile:      pidFile,
		Command:      ns.Command,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StartTimeout: 10 * time.Second,
		StopTimeout:  3 * time.Second,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("dnsmasq log:\n%s", logs.String())
		}
	})
	return d, logs
}

// writeNetworkConf writes superviseDoc's dnsmasq files under dir and
// returns the configuration file and the paths.
func writeNetworkConf(t *testing.T, dir string) (string, network.DnsmasqPaths) {
	t.Helper()
	n, err := network.Parse([]byte(superviseDoc))
	if err != nil {
		t.Fatal(err)
	}
	paths := network.DnsmasqPaths{
		HostsFile:     filepath.Join(dir, "supnet.hostsfile"),
		AddnHostsFile: filepath.Join(dir, "supnet.addnhosts"),
		PIDFile:       filepath.Join(dir, "supnet.pid"),
		LeaseFile:     filepath.Join(dir, "supnet.leases"),
	}
	files, err := network.DnsmasqConfig(n, paths, network.DnsmasqOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "supnet.conf")
	for p, text := range map[string]string{conf: files.Config, paths.HostsFile: files.HostsFile, paths.AddnHostsFile: files.AddnHosts} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return conf, paths
}

// gone reports whether pid no longer names a live process.
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// netnsPIDs lists the processes in ns (run from outside it, so the
// listing does not include itself).
func netnsPIDs(t *testing.T, ns *lab.Netns) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", ns.Name).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v: %s", ns.Name, err, out)
	}
	return string(out)
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestDnsmasqSupervised runs a network's dnsmasq under supervision: a
// guest leases an address; after kill -9 dnsmasq is restarted and a
// second guest leases; Reload makes a new addn-hosts record resolvable;
// Stop ends the process and later calls do nothing.
func TestDnsmasqSupervised(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	hv := l.Hypervisor()
	g0, g1 := l.AddGuest(), l.AddGuest()
	hv.AddBridge("nwsup0", "10.78.6.1/24", g0.HostIface, g1.HostIface)
	dir := labDir(t, l)
	conf, paths := writeNetworkConf(t, dir)

	d, logs := newDnsmasq(t, hv, conf, paths.PIDFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	pid := d.PID()
	if pid == 0 || !d.Running() {
		t.Fatalf("after Start: pid %d running %v", pid, d.Running())
	}
	if b, err := os.ReadFile(paths.PIDFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Errorf("PID file: %q, %v; want %d", b, err, pid)
	}
	if err := d.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}

	lease, err := g0.DHCP(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !(&net.IPNet{IP: net.IPv4(10, 78, 6, 0), Mask: net.CIDRMask(24, 32)}).Contains(lease.IP) {
		t.Errorf("guest 0 leased %s, want one in 10.78.6.0/24", lease.CIDR())
	}

	// kill -9: the supervisor logs the exit and restarts it.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var pid2 int
	if !waitFor(10*time.Second, func() bool { pid2 = d.PID(); return pid2 != 0 && pid2 != pid }) {
		t.Fatalf("dnsmasq not restarted within 10 s after kill -9 (pid %d)", d.PID())
	}
	if !gone(pid) || !d.Running() {
		t.Errorf("after restart: old pid %d gone %v, running %v", pid, gone(pid), d.Running())
	}
	if !strings.Contains(logs.String(), "killed by signal 9") {
		t.Errorf("exit not logged with its status:\n%s", logs.String())
	}
	lease1, err := g1.DHCP(20 * time.Second)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if lease1.IP.Equal(lease.IP) {
		t.Errorf("both guests leased %s", lease.IP)
	}

	// Reload: a host added to addn-hosts is served after SIGHUP.
	const name = "added.sup.test"
	if _, err := g0.LookupDNS("10.78.6.1", name, layers.DNSTypeA, 3*time.Second); err == nil {
		t.Fatalf("%s resolves before it was added", name)
	}
	if err := os.WriteFile(paths.AddnHostsFile, []byte("10.78.6.77\tadded.sup.test\tadded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addnRead := regexp.MustCompile(`read \S*supnet\.addnhosts - [1-9]`)
	if err := d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !waitFor(5*time.Second, func() bool { return addnRead.MatchString(logs.String()) }) {
		t.Errorf("dnsmasq did not log re-reading the addn-hosts file")
	}
	ips, err := g0.LookupDNS("10.78.6.1", name, layers.DNSTypeA, 5*time.Second)
	if err != nil || len(ips) != 1 || !ips[0].Equal(net.IPv4(10, 78, 6, 77)) {
		t.Errorf("%s after Reload: %v, %v; want 10.78.6.77", name, ips, err)
	}

	// Stop ends it; later calls are no-ops.
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !gone(pid2) {
		t.Errorf("pid %d still runs after Stop", pid2)
	}
	if d.PID() != 0 || d.Running() {
		t.Errorf("after Stop: pid %d running %v", d.PID(), d.Running())
	}
	if err := d.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := d.Reload(); err == nil {
		t.Error("Reload after Stop succeeded")
	}
	if err := d.Start(ctx); err == nil {
		t.Error("Start after Stop succeeded")
	}
	time.Sleep(300 * time.Millisecond) // a restart would have happened by now
	if out := netnsPIDs(t, hv); strings.TrimSpace(out) != "" {
		t.Errorf("processes left in %s after Stop: %s", hv.Name, out)
	}
}

// TestDnsmasqStartFails shows that a configuration dnsmasq refuses, or a
// dnsmasq that exits during start-up, fails Start with dnsmasq's message
// and leaves nothing running.
func TestDnsmasqStartFails(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	hv := l.Hypervisor()
	dir := labDir(t, l)
	for _, tc := range []struct {
		name, conf, want string
	}{
		{"bad option", "port=0\nno-such-option\n", "bad option at line 2"},
		{"unknown interface", "port=0\nbind-interfaces\ninterface=nosuch0\ndhcp-range=10.9.9.10,10.9.9.20\n", "unknown interface nosuch0"},
	} {
		conf := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".conf")
		if err := os.WriteFile(conf, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		d, _ := newDnsmasq(t, hv, conf, filepath.Join(dir, "x.pid"))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := d.Start(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Start: %v, want an error with %q", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		if d.PID() != 0 || d.Running() {
			t.Errorf("%s: after a failed Start: pid %d running %v", tc.name, d.PID(), d.Running())
		}
		if out := netnsPIDs(t, hv); strings.TrimSpace(out) != "" {
			t.Errorf("%s: processes left in %s: %s", tc.name, hv.Name, out)
		}
	}
}

// TestDnsmasqStopUnstarted: Stop without Start is a no-op.
func TestDnsmasqStopUnstarted(t *testing.T) {
	t.Parallel()
	d := &network.Dnsmasq{ConfFile: "/nonexistent.conf"}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil {
		t.Error("Reload of an unstarted dnsmasq succeeded")
	}
	if d.PID() != 0 || d.Running() {
		t.Error("unstarted dnsmasq reports a process")
	}
}

// TestKillStale: a PID file naming a process that is not dnsmasq, or a
// dnsmasq of another configuration, is left alone; a stale dnsmasq of
// the configuration is killed; no PID file is nothing to do.
func TestKillStale(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	hv := l.Hypervisor()
	dir := labDir(t, l)
	pidFile := filepath.Join(dir, "stale.pid")
	conf := filepath.Join(dir, "stale.conf")
	if err := os.WriteFile(conf, []byte("port=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := network.KillStale(pidFile, conf); err != nil {
		t.Errorf("no PID file: %v", err)
	}

	sleep := l.Start("sleep", exec.Command("sleep", "300"))
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(sleep.PID)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := network.KillStale(pidFile, conf)
	if err == nil || !strings.Contains(err.Error(), "not dnsmasq") {
		t.Errorf("PID file naming sleep: %v, want a refusal", err)
	}
	time.Sleep(100 * time.Millisecond)
	if !sleep.Alive() {
		t.Fatal("KillStale killed the sleep")
	}

	p := l.Start("stale-dnsmasq", hv.Command(context.Background(),
		"dnsmasq", "--conf-file="+conf, "--keep-in-foreground", "--log-facility=-", "--pid-file="+pidFile))
	if !waitFor(10*time.Second, func() bool {
		b, _ := os.ReadFile(pidFile)
		return strings.TrimSpace(string(b)) == strconv.Itoa(p.PID)
	}) {
		t.Fatalf("dnsmasq did not write its PID file")
	}
	err = network.KillStale(pidFile, filepath.Join(dir, "other.conf"))
	if err == nil || !strings.Contains(err.Error(), "another configuration") {
		t.Errorf("dnsmasq of another configuration: %v, want a refusal", err)
	}
	if !p.Alive() {
		t.Fatal("KillStale killed a dnsmasq of another configuration")
	}
	if err := network.KillStale(pidFile, conf); err != nil {
		t.Fatalf("stale dnsmasq: %v", err)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("stale dnsmasq still runs after KillStale")
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PID file left behind: %v", err)
	}
}

// TestDnsmasqBackoff: when restarts fail the supervisor retries with a
// doubling delay (capped), logging each failure with dnsmasq's message;
// once the configuration is good again dnsmasq comes back; Stop ends
// supervision while a restart is pending.
func TestDnsmasqBackoff(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	hv := l.Hypervisor()
	dir := labDir(t, l)
	conf := filepath.Join(dir, "flaky.conf")
	const good = "port=0\n"
	const bad = "port=0\nbind-interfaces\ninterface=nosuch0\ndhcp-range=10.9.9.10,10.9.9.20\n"
	if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	d, logs := newDnsmasq(t, hv, conf, "")
	d.MinBackoff, d.MaxBackoff = 50*time.Millisecond, 400*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}

	// Break the configuration and kill dnsmasq: restarts fail.
	if err := os.WriteFile(conf, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	retry := regexp.MustCompile(`msg="dnsmasq restart failed".*unknown interface nosuch0.*retry_in=(\S+)`)
	if !waitFor(10*time.Second, func() bool { return len(retry.FindAllString(logs.String(), -1)) >= 5 }) {
		t.Fatalf("fewer than 5 failed restarts logged:\n%s", logs.String())
	}
	var delays []time.Duration
	for _, m := range retry.FindAllStringSubmatch(logs.String(), -1) {
		dl, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		delays = append(delays, dl)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	for i, w := range want {
		if delays[i] != w {
			t.Errorf("retry delays %v, want them to start %v (the first, after the exit, was 50ms; doubling, capped at 400ms)", delays, want)
			break
		}
	}
	if d.PID() != 0 || d.Running() {
		t.Errorf("while restarts fail: pid %d running %v", d.PID(), d.Running())
	}

	// Repair it: the next attempt succeeds.
	if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, d.Running) {
		t.Fatalf("dnsmasq not back after the configuration was repaired:\n%s", logs.String())
	}
	pid := d.PID()

	// Break it again and Stop while restarts are pending.
	if err := os.WriteFile(conf, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return d.PID() == 0 }) {
		t.Fatal("killed dnsmasq still reported running")
	}
	start := time.Now()
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Stop during back-off took %v", el)
	}
	if out := netnsPIDs(t, hv); strings.TrimSpace(out) != "" {
		t.Errorf("processes left in %s: %s", hv.Name, out)
	}
}

// TestDnsmasqStartUnverified: a dnsmasq that never reports that it
// started (its log goes elsewhere and it writes no PID file) is killed
// when StartTimeout passes, and a Stop during Start interrupts it; both
// leave nothing running.
func TestDnsmasqStartUnverified(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	hv := l.Hypervisor()
	dir := labDir(t, l)
	conf := filepath.Join(dir, "silent.conf")
	if err := os.WriteFile(conf, []byte("port=0\nlog-facility="+filepath.Join(dir, "silent.log")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	d, _ := newDnsmasq(t, hv, conf, "")
	d.StartTimeout = 500 * time.Millisecond
	err := d.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not report started within 500ms") {
		t.Errorf("Start: %v, want a start-up timeout", err)
	}
	if out := netnsPIDs(t, hv); strings.TrimSpace(out) != "" {
		t.Errorf("processes left in %s after the timeout: %s", hv.Name, out)
	}

	d2, _ := newDnsmasq(t, hv, conf, "")
	d2.StartTimeout = time.Minute
	errc := make(chan error, 1)
	go func() { errc <- d2.Start(context.Background()) }()
	time.Sleep(300 * time.Millisecond)
	if err := d2.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("Start interrupted by Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start still waiting after Stop")
	}
	if out := netnsPIDs(t, hv); strings.TrimSpace(out) != "" {
		t.Errorf("processes left in %s after Stop: %s", hv.Name, out)
	}
}

// TestDnsmasqNoGoroutineLeak (not parallel, so no other dnsmasq test
// runs meanwhile): after start, a restart, a reload and Stop, none of the
// supervisor's goroutines (nor os/exec's) is left.
func TestDnsmasqNoGoroutineLeak(t *testing.T) {
	l := requireLab(t)
	hv := l.Hypervisor()
	dir := labDir(t, l)
	conf := filepath.Join(dir, "leak.conf")
	if err := os.WriteFile(conf, []byte("port=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := newDnsmasq(t, hv, conf, filepath.Join(dir, "leak.pid"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := d.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return d.Running() && d.PID() != pid }) {
		t.Fatal("not restarted")
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	var before strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&before, 2)
	if !strings.Contains(before.String(), "network.(*Dnsmasq).supervise") {
		t.Fatal("the supervisor goroutine is not visible in the goroutine dump; the leak check would prove nothing")
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var stacks string
	if !waitFor(2*time.Second, func() bool {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		stacks = b.String()
		return !strings.Contains(stacks, "network.(*Dnsmasq)") &&
			!strings.Contains(stacks, "network.(*dnsmasqProc)") &&
			!strings.Contains(stacks, "os/exec.(*Cmd)")
	}) {
		t.Errorf("goroutines left after Stop:\n%s", stacks)
	}
}
