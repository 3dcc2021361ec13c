package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Firewalld is a firewalld running in the hypervisor namespace on the lab
// bus, with its configuration in the lab directory.
type Firewalld struct {
	// Process is the firewalld daemon.
	Process *Process
	// Backend is "nftables" or "iptables".
	Backend string
	// ConfigDir is its --system-config directory (zones/, policies/ …).
	ConfigDir string
	// LogFile is firewalld's own log.
	LogFile string

	lab *Lab
}

// StartFirewalld starts firewalld in the hypervisor namespace on the lab
// bus with the given backend ("nftables" or "iptables") and waits until
// it reports running. A lab has at most one (one firewalld per bus).
func (l *Lab) StartFirewalld(backend string) *Firewalld {
	l.t.Helper()
	if l.fw != nil {
		l.fatalf("firewalld already started")
	}
	if backend != "nftables" && backend != "iptables" {
		l.fatalf("firewalld backend %q: want nftables or iptables", backend)
	}
	Require(l.t, "firewalld", "firewall-cmd", "nft")
	if backend == "iptables" {
		Require(l.t, "iptables", "ip6tables", "ebtables")
	}
	l.Hypervisor()
	l.Bus()
	fw := &Firewalld{
		Backend:   backend,
		ConfigDir: filepath.Join(l.Dir, "firewalld"),
		LogFile:   filepath.Join(l.Dir, "log", "firewalld-own.log"),
		lab:       l,
	}
	for _, d := range []string{"zones", "policies", "services", "ipsets", "icmptypes", "helpers"} {
		if err := os.MkdirAll(filepath.Join(fw.ConfigDir, d), 0o755); err != nil {
			l.fatalf("%v", err)
		}
	}
	if err := writeFirewalldConf(filepath.Join(fw.ConfigDir, "firewalld.conf"), backend); err != nil {
		l.fatalf("%v", err)
	}
	fw.Process = l.Start("firewalld", fw.command())
	l.fw = fw
	if err := fw.WaitRunning(30 * time.Second); err != nil {
		l.fatalf("%v", err)
	}
	return fw
}

// writeFirewalldConf writes a firewalld.conf based on the machine's, with
// the chosen backend and clean-up on exit.
func writeFirewalldConf(path, backend string) error {
	base, err := os.ReadFile("/etc/firewalld/firewalld.conf")
	if err != nil {
		base = nil // firewalld's built-in defaults apply
	}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(base)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "FirewallBackend=") || strings.HasPrefix(line, "CleanupOnExit=") {
			continue
		}
		out.WriteString(line + "\n")
	}
	fmt.Fprintf(&out, "FirewallBackend=%s\nCleanupOnExit=yes\n", backend)
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

// command returns the command line that runs firewalld in the hypervisor
// namespace. firewalld keeps run-time files in /run/firewalld, which
// would be shared by every firewalld on the machine; it runs in a private
// mount namespace with its own /run, so labs can run in parallel and
// nothing is left in the machine's /run.
func (fw *Firewalld) command() *exec.Cmd {
	script := fmt.Sprintf("mount -t tmpfs -o mode=0755 lab-run /run && exec firewalld --nofork --nopid --log-target file --log-file %q --system-config %q",
		fw.LogFile, fw.ConfigDir)
	return fw.lab.Hypervisor().Command(context.Background(), "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
}

// Cmd runs firewall-cmd with args in the hypervisor namespace on the lab bus.
func (fw *Firewalld) Cmd(args ...string) (string, error) {
	return fw.lab.Hypervisor().Run(append([]string{"firewall-cmd"}, args...)...)
}

// WaitRunning polls `firewall-cmd --state` until it says running.
func (fw *Firewalld) WaitRunning(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		out, err := fw.Cmd("--state")
		if err == nil && strings.TrimSpace(out) == "running" {
			return nil
		}
		if !fw.Process.Alive() {
			return fmt.Errorf("firewalld exited: %v; log:\n%s%s", fw.Process.Err(), readFile(fw.Process.Log), readFile(fw.LogFile))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("firewalld not running after %v: %s", d, strings.TrimSpace(out))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart stops firewalld and starts it again with the same configuration.
func (fw *Firewalld) Restart() error {
	if err := fw.Process.Stop(); err != nil {
		return err
	}
	p, err := fw.lab.start("firewalld", fw.command())
	if err != nil {
		return err
	}
	fw.Process = p
	return fw.WaitRunning(30 * time.Second)
}

// Dnsmasq describes a dnsmasq for lab tests below the network layer.
type Dnsmasq struct {
	// Interface to serve (bound with --bind-interfaces).
	Interface string
	// DHCPRange as dnsmasq takes it, e.g. "10.9.0.10,10.9.0.20,1h"; empty
	// for DNS only.
	DHCPRange string
	// Hosts maps names to addresses answered by DNS (--address).
	Hosts map[string]string
	// Extra holds more dnsmasq options.
	Extra []string
}

// DnsmasqServer is a running lab dnsmasq.
type DnsmasqServer struct {
	Process *Process
	// Leases is the lease file.
	Leases string
}

// StartDnsmasq runs dnsmasq in ns with a private configuration (never
// /etc/dnsmasq.conf, never /etc/hosts or resolv.conf), leases in the lab
// directory, and waits until it has bound its sockets.
func (l *Lab) StartDnsmasq(ns *Netns, cfg Dnsmasq) *DnsmasqServer {
	l.t.Helper()
	Require(l.t, "dnsmasq")
	l.mu.Lock()
	n := len(l.procs)
	l.mu.Unlock()
	leases := filepath.Join(l.Dir, fmt.Sprintf("dnsmasq-%d.leases", n))
	args := []string{"dnsmasq", "--conf-file=/dev/null", "--keep-in-foreground", "--log-facility=-",
		"--user=root", "--group=root", "--pid-file=", "--no-hosts", "--no-resolv",
		"--bind-interfaces", "--interface=" + cfg.Interface, "--except-interface=lo",
		"--dhcp-leasefile=" + leases, "--log-queries", "--log-dhcp"}
	if cfg.DHCPRange != "" {
		args = append(args, "--dhcp-range="+cfg.DHCPRange, "--dhcp-authoritative")
	}
	for name, addr := range cfg.Hosts {
		args = append(args, fmt.Sprintf("--address=/%s/%s", name, addr))
	}
	args = append(args, cfg.Extra...)
	p := l.Start(fmt.Sprintf("dnsmasq-%d", n), ns.Command(context.Background(), args...))
	// dnsmasq logs "started" once its sockets are bound.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readFile(p.Log), "started, version") {
		if !p.Alive() || time.Now().After(deadline) {
			l.fatalf("dnsmasq did not start: %v; log:\n%s", p.Err(), readFile(p.Log))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &DnsmasqServer{Process: p, Leases: leases}
}

// LookPath reports whether a program is on PATH (for tests that adapt).
func LookPath(p string) bool {
	_, err := exec.LookPath(p)
	return err == nil
}
