package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/tests/lab"
)

// activatable makes netwardend bus-activatable on the lab bus: an
// activation file runs a script that starts it in the hypervisor
// namespace with the lab's directories, args, and its output appended to
// the returned log file. The daemon is not started. It must come before
// the lab's bus is started: the bus runs in a mount namespace of its own,
// which sees only the network namespaces that existed when it was made.
func activatable(t *testing.T, l *lab.Lab, args ...string) (logPath string) {
	t.Helper()
	lab.Require(t, "ip")
	hv := l.Hypervisor()
	bus := l.Bus()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(l.Dir, "log", "netwardend-activated.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	argv := []string{ip, "netns", "exec", hv.Name, netwardend,
		"--config-dir", filepath.Join(l.Dir, "etc"), "--state-dir", filepath.Join(l.Dir, "run")}
	argv = append(argv, args...)
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	// exec all the way: the PID the bus sees is the daemon's.
	script := fmt.Sprintf("#!/bin/sh\nexec >>'%s' 2>&1\nexec %s\n", logPath, strings.Join(quoted, " "))
	path := filepath.Join(l.Dir, "activate-netwardend")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	bus.AddService(dbusapi.BusName, path, "root")
	return logPath
}

// listFilters calls Manager.ListNWFilters with busctl, as a client that
// knows nothing of activation would, and returns its output.
func listFilters(t *testing.T, bus *lab.Bus) string {
	t.Helper()
	out, err := bus.Busctl("call", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.ManagerInterface, "ListNWFilters", "u", "0")
	if err != nil {
		t.Fatalf("ListNWFilters: %v", err)
	}
	if !strings.Contains(out, "/org/netwarden1/nwfilter/") {
		t.Fatalf("ListNWFilters answered %q, want filter paths", out)
	}
	return out
}

// ownerPID returns the PID of org.netwarden1's owner.
func ownerPID(t *testing.T, bus *lab.Bus, conn *dbus.Conn) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pid, err := bus.NameOwnerPID(ctx, conn, dbusapi.BusName)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitNameGone waits until org.netwarden1 has no owner and pid has
// exited, and returns how long that took.
func waitNameGone(t *testing.T, conn *dbus.Conn, pid int, within time.Duration, logPath string) time.Duration {
	t.Helper()
	start := time.Now()
	for hasOwner(t, conn, dbusapi.BusName) || pidRunning(pid) {
		if time.Since(start) > within {
			t.Fatalf("netwardend (pid %d) still there after %v (owner %v); log:\n%s",
				pid, within, hasOwner(t, conn, dbusapi.BusName), readLog(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// pidRunning reports whether pid is a live process (not a zombie).
func pidRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// TestActivationByBus: with no daemon running, the first call starts
// netwardend through the bus's activation file and is answered; the
// daemon exits by itself after its idle timeout, releasing the name,
// and the next call starts it again.
func TestActivationByBus(t *testing.T) {
	l := lab.New(t)
	const idle = 2 * time.Second
	logPath := activatable(t, l, "--idle-timeout="+idle.String(), "--log-level=debug")
	bus := l.Bus()
	conn := bus.Conn()
	if hasOwner(t, conn, dbusapi.BusName) {
		t.Fatalf("%s has an owner before any call", dbusapi.BusName)
	}

	first := listFilters(t, bus)
	pid1 := ownerPID(t, bus, conn)
	l.Adopt("netwardend (activated 1)", pid1)
	gone := waitNameGone(t, conn, pid1, idle+timeout, logPath)
	if gone < idle/2 {
		t.Errorf("netwardend exited %v after the call, before its idle timeout %v", gone, idle)
	}
	log := readLog(logPath)
	for _, want := range []string{`msg="idle: no active network, no binding and no call"`, `msg="released bus name"`, "msg=stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("idle exit logged an error:\n%s", log)
	}

	// Activated again by the next call, which is answered the same.
	if again := listFilters(t, bus); again != first {
		t.Errorf("second activation answered %q, first %q", again, first)
	}
	pid2 := ownerPID(t, bus, conn)
	l.Adopt("netwardend (activated 2)", pid2)
	if pid2 == pid1 {
		t.Errorf("the same process (pid %d) answered after the idle exit", pid1)
	}
	waitNameGone(t, conn, pid2, idle+timeout, logPath)
}

// TestActivationIdleKeptByBinding: a binding (kernel state netwarden
// enforces) keeps an idle daemon running; once it is deleted, the daemon
// exits after the idle timeout.
func TestActivationIdleKeptByBinding(t *testing.T) {
	l := lab.New(t)
	const idle = time.Second
	logPath := activatable(t, l, "--idle-timeout="+idle.String())
	bus := l.Bus()
	conn := bus.Conn()

	mgr := dbusapi.ManagerInterface
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x77, 0x00, 0x09}
	var bpath dbus.ObjectPath
	if err := call(conn, dbusapi.ObjectPath, mgr+".NWFilterBindingCreateXML", []any{testBindingXML("vnet9", mac, "allow-arp"), uint32(0)}, &bpath); err != nil {
		t.Fatalf("create binding: %v; log:\n%s", err, readLog(logPath))
	}
	pid := ownerPID(t, bus, conn)
	l.Adopt("netwardend (activated)", pid)

	// Several idle timeouts with a binding and no call: it stays.
	time.Sleep(4 * idle)
	if !hasOwner(t, conn, dbusapi.BusName) || ownerPID(t, bus, conn) != pid {
		t.Fatalf("netwardend exited while a binding existed; log:\n%s", readLog(logPath))
	}

	if err := call(conn, bpath, dbusapi.NWFilterBindingInterface+".Delete", nil); err != nil {
		t.Fatalf("delete binding: %v", err)
	}
	if gone := waitNameGone(t, conn, pid, idle+timeout, logPath); gone < idle/2 {
		t.Errorf("exited %v after the last call, before the idle timeout %v", gone, idle)
	}
}

// TestActivationSocketUnix: started by systemd-socket-activate with a
// unix listener (a socket netwardend has no use for), the daemon takes
// the passed descriptor, says it ignores it, and serves.
func TestActivationSocketUnix(t *testing.T) {
	l := lab.New(t)
	lab.Require(t, "systemd-socket-activate")
	bus := l.Bus()
	conn := bus.Conn()
	sock := filepath.Join(l.Dir, "api.sock")
	cmd := l.Hypervisor().Command(context.Background(), "systemd-socket-activate",
		"-E", "DBUS_SYSTEM_BUS_ADDRESS", "-E", "PATH", "-l", sock, "--fdname=api",
		netwardend, "--config-dir", filepath.Join(l.Dir, "etc"), "--state-dir", filepath.Join(l.Dir, "run"))
	d := &daemon{Process: l.Start("netwardend", cmd), configDir: filepath.Join(l.Dir, "etc"), stateDir: filepath.Join(l.Dir, "run")}

	// Without --accept, systemd-socket-activate runs the program at the
	// first connection.
	deadline := time.Now().Add(timeout)
	var c net.Conn
	for {
		var err error
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) || !d.Alive() {
			t.Fatalf("cannot connect to %s: %v; log:\n%s", sock, err, d.log(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	d.waitOwned(t, conn)
	if pid := ownerPID(t, bus, conn); pid != d.PID {
		t.Errorf("owner pid %d, want the activated process %d", pid, d.PID)
	}
	log := d.log(t)
	if !strings.Contains(log, `msg="ignoring a passed socket netwardend does not use" name=api socket="unix stream"`) {
		t.Errorf("log does not say the unix socket was ignored:\n%s", log)
	}
	listFilters(t, bus)
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.waitExit(t); code != 0 {
		t.Errorf("exit status %d; log:\n%s", code, d.log(t))
	}
}

// routeLinkSocket opens, in the hypervisor namespace, a NETLINK_ROUTE
// socket bound to RTMGRP_LINK, as systemd does for ListenNetlink=route 1.
func routeLinkSocket(t *testing.T, l *lab.Lab) *os.File {
	t.Helper()
	var fd int
	err := l.Hypervisor().Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK})
	})
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "netlink")
	t.Cleanup(func() { f.Close() })
	return f
}

// startWithSocket starts netwardend with f passed as systemd passes a
// socket: descriptor 3, LISTEN_FDS=1 and LISTEN_PID set to the daemon's
// own PID (the shell's, which execs it).
func startWithSocket(t *testing.T, l *lab.Lab, name string, f *os.File, args ...string) *daemon {
	t.Helper()
	l.Bus()
	d := &daemon{configDir: filepath.Join(l.Dir, "etc"), stateDir: filepath.Join(l.Dir, "run")}
	argv := append([]string{"sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=link-events exec "$0" "$@"`,
		netwardend, "--config-dir", d.configDir, "--state-dir", d.stateDir}, args...)
	cmd := l.Hypervisor().Command(context.Background(), argv...)
	cmd.ExtraFiles = []*os.File{f}
	d.Process = l.Start(name, cmd)
	return d
}

// waitLog waits until the daemon's log matches re.
func (d *daemon) waitLog(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !re.MatchString(d.log(t)) {
		if time.Now().After(deadline) || !d.Alive() {
			t.Fatalf("%s: no log line matching %s (alive %v); log:\n%s", d.Name, re, d.Alive(), d.log(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestActivationSocketNetlink: given a netlink route socket as
// netwardend.socket passes it, the daemon checks and takes it and reads
// link events from it — also those that happened while no daemon ran,
// which waited in the socket the service manager held.
func TestActivationSocketNetlink(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	f := routeLinkSocket(t, l)
	hv := l.Hypervisor()

	d := startWithSocket(t, l, "netwardend-1", f, "--log-level", "debug")
	d.waitOwned(t, conn)
	d.waitLog(t, regexp.MustCompile(`msg="link event socket taken from the service manager" name=link-events socket="netlink route \(groups 0x1\)"`))
	hv.MustRun("ip", "link", "add", "nwl-a0", "type", "veth", "peer", "name", "nwl-a1")
	d.waitLog(t, regexp.MustCompile(`msg="link event" event=new link=nwl-a0 index=\d+`))

	// A restart: the socket (held by the test, as by systemd) keeps what
	// happens while no daemon runs.
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit status %d; log:\n%s", code, d.log(t))
	}
	hv.MustRun("ip", "link", "del", "nwl-a0")
	d2 := startWithSocket(t, l, "netwardend-2", f, "--log-level", "debug")
	d2.waitOwned(t, conn)
	d2.waitLog(t, regexp.MustCompile(`msg="link event" event=deleted link=nwl-a0 `))
	if err := d2.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d2.waitExit(t); code != 0 {
		t.Errorf("exit status %d; log:\n%s", code, d2.log(t))
	}
}

// TestActivationSocketRejectsNonSocket: a descriptor that is not a
// socket is reported and the daemon still starts.
func TestActivationSocketRejectsNonSocket(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	d := startWithSocket(t, l, "netwardend", r)
	d.waitOwned(t, conn)
	if log := d.log(t); !strings.Contains(log, `msg="ignoring passed descriptors"`) || !strings.Contains(log, "not a socket") {
		t.Errorf("log does not report the pipe:\n%s", log)
	}
}

// notifications collects sd_notify datagrams from sock in a channel.
func notifications(t *testing.T, sock *net.UnixConn) <-chan string {
	t.Helper()
	ch := make(chan string, 256)
	go func() {
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

// nextNotify returns the next notification other than WATCHDOG=1, and
// how many WATCHDOG=1 came before it.
func nextNotify(t *testing.T, ch <-chan string, d *daemon) (string, int) {
	t.Helper()
	pings := 0
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("notification socket closed; log:\n%s", d.log(t))
			}
			if m == "WATCHDOG=1" {
				pings++
				continue
			}
			return m, pings
		case <-deadline:
			t.Fatalf("no notification after %v; log:\n%s", timeout, d.log(t))
		}
	}
}

// TestNotifyReloadingAndWatchdog: under a watchdog (WATCHDOG_USEC) the
// daemon pings at half the period; SIGHUP is reported as RELOADING=1 with
// MONOTONIC_USEC, then READY=1 once the kernel state is verified.
func TestNotifyReloadingAndWatchdog(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	sockPath := filepath.Join(l.Dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	ch := notifications(t, sock)

	// 400 ms: a ping every 200 ms.
	d := startDaemon(t, l, "netwardend", []string{"NOTIFY_SOCKET=" + sockPath, "WATCHDOG_USEC=400000"})
	if m, _ := nextNotify(t, ch, d); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	if !hasOwner(t, conn, dbusapi.BusName) {
		t.Errorf("READY=1 received while %s has no owner", dbusapi.BusName)
	}
	// Pings keep coming while it runs.
	start := time.Now()
	pings := 0
	for pings < 5 {
		select {
		case m := <-ch:
			if m != "WATCHDOG=1" {
				t.Fatalf("unexpected notification %q", m)
			}
			pings++
		case <-time.After(timeout):
			t.Fatalf("%d watchdog pings in %v", pings, time.Since(start))
		}
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("5 pings took %v, want about 1 s", el)
	}

	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m, _ := nextNotify(t, ch, d)
	sc := bufio.NewScanner(strings.NewReader(m))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !regexp.MustCompile(`^MONOTONIC_USEC=\d+$`).MatchString(lines[1]) {
		t.Errorf("notification after SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC", m)
	}
	if m, _ := nextNotify(t, ch, d); m != "READY=1" {
		t.Errorf("notification after the reload %q, want READY=1", m)
	}
	if log := d.log(t); !strings.Contains(log, `msg="reload done"`) {
		t.Errorf("log does not report the reload:\n%s", log)
	}

	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if m, _ := nextNotify(t, ch, d); m != "STOPPING=1" {
		t.Errorf("notification after SIGTERM %q, want STOPPING=1", m)
	}
	if code := d.waitExit(t); code != 0 {
		t.Errorf("exit status %d, want 0; log:\n%s", code, d.log(t))
	}
}

// TestDaemonMakeInstall: make install puts every file where DESTDIR and
// PREFIX say, with the activation file and the unit naming the installed
// daemon.
func TestDaemonMakeInstall(t *testing.T) {
	lab.Require(t, "make", "install", "sed")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "stage")
	cmd := exec.Command("make", "-C", root, "install", "DESTDIR="+dest, "PREFIX=/usr/local",
		"BUILDDIR="+filepath.Join(tmp, "bin"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	var got []string
	err = filepath.WalkDir(dest, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, strings.TrimPrefix(path, dest))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/lib/systemd/system/netwardend.service",
		"/lib/systemd/system/netwardend.socket",
		"/usr/local/bin/netwarden",
		"/usr/local/sbin/netwardend",
		"/usr/local/share/dbus-1/system-services/org.netwarden1.service",
		"/usr/local/share/dbus-1/system.d/org.netwarden1.conf",
		"/usr/local/share/polkit-1/actions/org.netwarden1.policy",
		"/usr/local/lib/firewalld/zones/libvirt.xml",
		"/usr/local/lib/firewalld/zones/libvirt-routed.xml",
		"/usr/local/lib/firewalld/policies/libvirt-to-host.xml",
		"/usr/local/lib/firewalld/policies/libvirt-routed-in.xml",
		"/usr/local/lib/firewalld/policies/libvirt-routed-out.xml",
	}
	ifaces, err := filepath.Glob(filepath.Join(root, "dbusapi", "interfaces", "*.xml"))
	if err != nil || len(ifaces) == 0 {
		t.Fatalf("interface files: %v %v", ifaces, err)
	}
	for _, f := range ifaces {
		want = append(want, "/usr/local/share/dbus-1/interfaces/"+filepath.Base(f))
	}
	page, err := filepath.Glob(filepath.Join(root, "cockpit", "*"))
	if err != nil || len(page) == 0 {
		t.Fatalf("cockpit files: %v %v", page, err)
	}
	for _, f := range page {
		want = append(want, "/usr/local/share/cockpit/netwarden/"+filepath.Base(f))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("installed:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for file, line := range map[string]string{
		"/usr/local/share/dbus-1/system-services/org.netwarden1.service": "Exec=/usr/local/sbin/netwardend --idle-timeout=120s",
		"/lib/systemd/system/netwardend.service":                         "ExecStart=/usr/local/sbin/netwardend",
	} {
		b, err := os.ReadFile(filepath.Join(dest, file))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Split(string(b), "\n"), line) {
			t.Errorf("%s lacks the line %q:\n%s", file, line, b)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "/usr/local/sbin/netwardend")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("netwardend installed with %v (%v), want mode 0755", fi.Mode(), err)
	}
	// The installed daemon runs.
	out, err := exec.Command(filepath.Join(dest, "/usr/local/sbin/netwardend"), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "netwardend ") {
		t.Errorf("installed netwardend --version: %v: %s", err, out)
	}
}
