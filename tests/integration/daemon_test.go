package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/tests/lab"
)

// timeout bounds every wait in these tests; they poll, never sleep.
const timeout = 30 * time.Second

// daemon is a netwardend started in the lab.
type daemon struct {
	*lab.Process
	configDir, stateDir string
}

// startDaemon starts netwardend in the hypervisor namespace on the lab
// bus, with its directories in the lab directory, env added to the lab's
// environment, and args after the directory options.
func startDaemon(t *testing.T, l *lab.Lab, name string, env []string, args ...string) *daemon {
	t.Helper()
	l.Bus() // before Command, so the environment carries the bus address
	d := &daemon{configDir: filepath.Join(l.Dir, "etc"), stateDir: filepath.Join(l.Dir, "run")}
	argv := []string{netwardend, "--config-dir", d.configDir, "--state-dir", d.stateDir}
	if testBackend() == "xtables" && !slices.Contains(args, "--backend") {
		// NETWARDEN_BACKEND=xtables: the same tests on the other backend.
		argv = append(argv, "--backend", "xtables")
	}
	argv = append(argv, args...)
	cmd := l.Hypervisor().Command(context.Background(), argv...)
	cmd.Env = append(cmd.Env, env...)
	d.Process = l.Start(name, cmd)
	return d
}

// log returns what the daemon has logged so far.
func (d *daemon) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(d.Log)
	if err != nil {
		t.Fatalf("read %s: %v", d.Log, err)
	}
	return string(b)
}

// waitExit waits for the daemon to exit and returns its exit status.
func (d *daemon) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-d.Exited():
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v; log:\n%s", d.Name, timeout, d.log(t))
	}
	var exitErr *exec.ExitError
	switch err := d.Err(); {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		return exitErr.ExitCode()
	default:
		t.Fatalf("%s: %v", d.Name, err)
		return -1
	}
}

// hasOwner reports whether the bus name has an owner.
func hasOwner(t *testing.T, conn *dbus.Conn, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil {
		t.Fatalf("NameHasOwner %s: %v", name, err)
	}
	return has
}

// waitOwned waits until d owns org.netwarden1 and returns the owner's
// unique name.
func (d *daemon) waitOwned(t *testing.T, conn *dbus.Conn) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !hasOwner(t, conn, dbusapi.BusName) {
		if !d.Alive() {
			t.Fatalf("%s exited (%v) before owning %s; log:\n%s", d.Name, d.Err(), dbusapi.BusName, d.log(t))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not own %s after %v; log:\n%s", d.Name, dbusapi.BusName, timeout, d.log(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	var owner string
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, dbusapi.BusName).Store(&owner); err != nil {
		t.Fatalf("GetNameOwner: %v", err)
	}
	return owner
}

func TestDaemonServesVersion(t *testing.T) {
	l := lab.New(t)
	bus := l.Bus()
	conn := bus.Conn()
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)

	// The lab's PID is the daemon's own (ip netns exec execs it).
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if pid, err := bus.NameOwnerPID(ctx, conn, dbusapi.BusName); err != nil || pid != d.PID {
		t.Errorf("owner of %s is pid %d (%v), want %d", dbusapi.BusName, pid, err, d.PID)
	}

	want := binaryVersion(t)
	out, err := bus.Busctl("get-property", dbusapi.BusName, string(dbusapi.ObjectPath), dbusapi.ManagerInterface, "Version")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != fmt.Sprintf("s %q", want) {
		t.Errorf("busctl get-property Version = %s, want s %q", got, want)
	}

	out, err = bus.Busctl("introspect", dbusapi.BusName, string(dbusapi.ObjectPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{
		{dbusapi.ManagerInterface, "interface"},
		{".Version", "property", "s", fmt.Sprintf("%q", want), "const"},
		{"org.freedesktop.DBus.Properties", "interface"},
		{".PropertiesChanged", "signal", "sa{sv}as"},
		{"org.freedesktop.DBus.Introspectable", "interface"},
		{"org.freedesktop.DBus.Peer", "interface"},
	} {
		if !hasLine(out, want) {
			t.Errorf("busctl introspect lacks a line %q:\n%s", want, out)
		}
	}
	if out, err := bus.Busctl("tree", dbusapi.BusName); err != nil || !strings.Contains(out, string(dbusapi.ObjectPath)) {
		t.Errorf("busctl tree: %v\n%s", err, out)
	}

	// The directories exist with their modes (dnsmasq, unprivileged,
	// passes through the state directory).
	for dir, mode := range map[string]os.FileMode{d.configDir: 0o755, d.stateDir: 0o711} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Errorf("%v", err)
		} else if !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want a directory with %v", dir, fi.Mode(), mode)
		}
	}

	// The client reads the same version over the bus.
	out, err = l.Hypervisor().Run(netwarden, "version")
	if err != nil || !strings.Contains(out, "Daemon version: "+want) {
		t.Errorf("netwarden version: %v\n%s", err, out)
	}
}

// hasLine reports whether a line of out has all of fields among its
// whitespace-separated fields, in order.
func hasLine(out string, fields []string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		i := 0
		for _, w := range f {
			if i < len(fields) && w == fields[i] {
				i++
			}
		}
		if i == len(fields) {
			return true
		}
	}
	return false
}

func TestDaemonProperties(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)
	obj := conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var all map[string]dbus.Variant
	if err := obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.GetAll", 0, dbusapi.ManagerInterface).Store(&all); err != nil {
		t.Fatalf("GetAll: %v", err)
	}
	if v, ok := all["Version"]; !ok || v.Value() != binaryVersion(t) || len(all) != 6 {
		t.Errorf("GetAll(Manager) = %v; want Version, Backend, StatefulFiltering, FirewalldRunning, LastFirewallReapply and Restores", all)
	}
	if v := all["Backend"]; v.Value() != "nftables" {
		t.Errorf("Backend = %v, want nftables", v)
	}
	if err := obj.CallWithContext(ctx, "org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
		t.Errorf("Ping: %v", err)
	}

	for _, tc := range []struct {
		desc   string
		method string
		args   []any
		want   string
	}{
		{"set read-only", "org.freedesktop.DBus.Properties.Set",
			[]any{dbusapi.ManagerInterface, "Version", dbus.MakeVariant("9")}, dbusapi.ErrorPropertyReadOnly},
		{"get unknown property", "org.freedesktop.DBus.Properties.Get",
			[]any{dbusapi.ManagerInterface, "Nope"}, dbusapi.ErrorUnknownProperty},
		{"get unknown interface", "org.freedesktop.DBus.Properties.Get",
			[]any{"org.example.Nope", "Version"}, dbusapi.ErrorUnknownInterface},
		{"getall unknown interface", "org.freedesktop.DBus.Properties.GetAll",
			[]any{"org.example.Nope"}, dbusapi.ErrorUnknownInterface},
		{"unknown method", dbusapi.ManagerInterface + ".Frobnicate", nil, "org.freedesktop.DBus.Error.UnknownMethod"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := obj.CallWithContext(ctx, tc.method, 0, tc.args...).Err
			var dbusErr dbus.Error
			if !errors.As(err, &dbusErr) || dbusErr.Name != tc.want {
				t.Errorf("%s: error %v, want %s", tc.method, err, tc.want)
			}
		})
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	l := lab.New(t)
	bus := l.Bus()
	conn := bus.Conn()
	first := startDaemon(t, l, "netwardend-1", nil)
	owner := first.waitOwned(t, conn)

	second := startDaemon(t, l, "netwardend-2", nil)
	if code := second.waitExit(t); code != 1 {
		t.Errorf("second netwardend exited with %d, want 1; log:\n%s", code, second.log(t))
	}
	log := second.log(t)
	for _, want := range []string{"already owned by " + owner, fmt.Sprintf("pid %d", first.PID), "level=ERROR"} {
		if !strings.Contains(log, want) {
			t.Errorf("second netwardend's log lacks %q:\n%s", want, log)
		}
	}
	if !first.Alive() || first.waitOwned(t, conn) != owner {
		t.Errorf("the first netwardend lost %s", dbusapi.BusName)
	}
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	d := startDaemon(t, l, "netwardend", nil, "--log-level", "debug")
	d.waitOwned(t, conn)

	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.waitExit(t); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0; log:\n%s", code, d.log(t))
	}
	if hasOwner(t, conn, dbusapi.BusName) {
		t.Errorf("%s still has an owner after the daemon stopped", dbusapi.BusName)
	}
	log := d.log(t)
	for _, want := range []string{"msg=\"released bus name\"", "msg=stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "level=ERROR") || strings.Contains(log, "level=WARN") {
		t.Errorf("clean stop logged a warning or error:\n%s", log)
	}
}

func TestSIGHUPIsLogged(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for !strings.Contains(d.log(t), `msg="reload requested"`) {
		if time.Now().After(deadline) || !d.Alive() {
			t.Fatalf("no reload request logged (alive %v); log:\n%s", d.Alive(), d.log(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !hasOwner(t, conn, dbusapi.BusName) {
		t.Error("daemon gave up its name on SIGHUP")
	}
}

// TestReapplyIsAnnounced: a re-apply (here asked for by SIGHUP; firewalld
// reloads and flushes take the same path) advances LastFirewallReapply
// and announces it with PropertiesChanged; a flush of the ruleset is
// repaired and counted in Restores.
func TestReapplyIsAnnounced(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.DBus.Properties"), dbus.WithMatchObjectPath(dbusapi.ObjectPath)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	defer conn.RemoveSignal(ch)
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)
	d.waitReady(t)
	obj := conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
	var before uint64
	if err := obj.StoreProperty(dbusapi.ManagerInterface+".LastFirewallReapply", &before); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(timeout)
	for {
		select {
		case s := <-ch:
			if s.Name != "org.freedesktop.DBus.Properties.PropertiesChanged" || len(s.Body) < 2 {
				continue
			}
			changed, _ := s.Body[1].(map[string]dbus.Variant)
			v, ok := changed["LastFirewallReapply"]
			if !ok {
				continue
			}
			at, _ := v.Value().(uint64)
			if at <= before || time.UnixMicro(int64(at)).Before(sent.Add(-time.Second)) {
				t.Fatalf("LastFirewallReapply went from %d to %d", before, at)
			}
			return
		case <-deadline:
			t.Fatalf("no PropertiesChanged for LastFirewallReapply after SIGHUP; log:\n%s", d.log(t))
		}
	}
}

func TestNotifyReadyAndStopping(t *testing.T) {
	l := lab.New(t)
	conn := l.Bus().Conn()
	sockPath := filepath.Join(l.Dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	d := startDaemon(t, l, "netwardend", []string{"NOTIFY_SOCKET=" + sockPath})
	if got := readNotify(t, sock, d); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// READY=1 comes only once the name is owned.
	if !hasOwner(t, conn, dbusapi.BusName) {
		t.Errorf("READY=1 received while %s has no owner", dbusapi.BusName)
	}

	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, sock, d); got != "STOPPING=1" {
		t.Errorf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	if code := d.waitExit(t); code != 0 {
		t.Errorf("exit status %d, want 0; log:\n%s", code, d.log(t))
	}
}

// readNotify reads one sd_notify datagram.
func readNotify(t *testing.T, sock *net.UnixConn, d *daemon) string {
	t.Helper()
	if err := sock.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v; log:\n%s", err, d.log(t))
	}
	return string(buf[:n])
}

// An unusable state directory is a runtime failure (1) that names it.
func TestStateDirFailure(t *testing.T) {
	l := lab.New(t)
	l.Bus()
	file := filepath.Join(l.Dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(file, "run")
	out, err := l.Hypervisor().Run(netwardend, "--config-dir", filepath.Join(l.Dir, "etc"), "--state-dir", stateDir)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("netwardend with state dir below a file: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(out, "state directory") || !strings.Contains(out, stateDir) {
		t.Errorf("error does not name the state directory:\n%s", out)
	}
}

// Usage errors exit with 2 before touching anything; --help exits 0.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"--version"}, 0},
		{[]string{"--backend", "bogus"}, 2},
		{[]string{"--log-level", "loud"}, 2},
		{[]string{"stray"}, 2},
	} {
		cmd := exec.Command(netwardend, tc.args...)
		cmd.Env = []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/netwarden-test"}
		out, err := cmd.CombinedOutput()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if code != tc.want {
			t.Errorf("netwardend %v: exit status %d, want %d\n%s", tc.args, code, tc.want, out)
		}
	}
}

// Losing the bus is a runtime failure (1), not a clean stop.
func TestBusLossIsFailure(t *testing.T) {
	l := lab.New(t)
	bus := l.Bus()
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, bus.Conn())
	if err := bus.Process.Stop(); err != nil {
		t.Fatalf("stop dbus-daemon: %v", err)
	}
	if code := d.waitExit(t); code != 1 {
		t.Errorf("exit status %d after the bus went away, want 1; log:\n%s", code, d.log(t))
	}
	if log := d.log(t); !strings.Contains(log, "lost the connection to the system bus") {
		t.Errorf("log does not say the bus was lost:\n%s", log)
	}
}
