package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/polkit"
)

// Bus is the lab's private system-type D-Bus daemon.
//
// It listens on a filesystem socket (reachable from every network
// namespace), includes the machine's /usr/share/dbus-1/system.d and the
// project's own bus policy, and activates services from ServiceDir and
// from /usr/share/dbus-1/system-services (not with BusWithoutSystemServices).
//
// The daemon runs in a private mount namespace in which polkit's action
// and rules directories are replaced by lab copies (the machine's files
// plus netwarden's action file), so polkitd, which it activates, sees the
// project's actions while the machine's own directories stay untouched.
type Bus struct {
	// Address is the bus address (unix:path=…), as DBUS_SYSTEM_BUS_ADDRESS.
	Address string
	// Socket is the path of the listening socket.
	Socket string
	// ServiceDir is an activation directory: a NAME.service file written
	// there makes NAME activatable at once.
	ServiceDir string
	// PolicyDir is an included system.d directory for more bus policy.
	PolicyDir string
	// PolkitRulesDir is what polkitd sees as /etc/polkit-1/rules.d; rules
	// written there are picked up live.
	PolkitRulesDir string
	// Process is the dbus-daemon.
	Process *Process

	lab   *Lab
	conns []*dbus.Conn
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%[1]s/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <servicedir>%[1]s/services</servicedir>
%[2]s  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>%[1]s/system.d</includedir>
</busconfig>
`

// Polkit file locations polkitd reads; the bus's mount namespace
// replaces them with lab copies.
const (
	polkitActionsDir = "/usr/share/polkit-1/actions"
	polkitRulesDir   = "/etc/polkit-1/rules.d"
)

// systemServiceDir is the machine's activation directory (polkitd's
// activation file is there).
const systemServiceDir = "/usr/share/dbus-1/system-services"

// Bus returns the lab's private system bus, starting it on first use.
// From then on Env (and so every child the lab starts) carries its
// address.
func (l *Lab) Bus() *Bus {
	l.t.Helper()
	return l.startBus(true)
}

// BusWithoutSystemServices starts the lab's bus like Bus, but without the
// machine's activation directory: only services in ServiceDir can be
// activated, so polkitd cannot be (tests of the daemon without polkit).
// It must be the lab's first call of Bus.
func (l *Lab) BusWithoutSystemServices() *Bus {
	l.t.Helper()
	if l.bus != nil {
		l.fatalf("BusWithoutSystemServices: the lab's bus is already running")
	}
	return l.startBus(false)
}

func (l *Lab) startBus(systemServices bool) *Bus {
	l.t.Helper()
	if l.bus != nil {
		return l.bus
	}
	Require(l.t, "dbus-daemon", "unshare", "mount")
	dir := filepath.Join(l.Dir, "bus")
	b := &Bus{
		Address:        "unix:path=" + filepath.Join(dir, "system_bus_socket"),
		Socket:         filepath.Join(dir, "system_bus_socket"),
		ServiceDir:     filepath.Join(dir, "services"),
		PolicyDir:      filepath.Join(dir, "system.d"),
		PolkitRulesDir: filepath.Join(dir, "polkit", "rules.d"),
		lab:            l,
	}
	actions := filepath.Join(dir, "polkit", "actions")
	for _, d := range []string{b.ServiceDir, b.PolicyDir, actions, b.PolkitRulesDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			l.fatalf("%v", err)
		}
	}
	must := func(err error) {
		if err != nil {
			l.fatalf("bus setup: %v", err)
		}
	}
	services := ""
	if systemServices {
		services = "  <servicedir>" + systemServiceDir + "</servicedir>\n"
	}
	must(os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(fmt.Sprintf(busConfig, dir, services)), 0o644))
	must(os.WriteFile(filepath.Join(b.PolicyDir, "org.netwarden1.conf"), dbusapi.BusPolicy, 0o644))
	must(copyDir(polkitActionsDir, actions))
	must(os.WriteFile(filepath.Join(actions, "org.netwarden1.policy"), polkit.ActionsFile, 0o644))
	must(copyDir(polkitRulesDir, b.PolkitRulesDir))

	// unshare without --fork execs the shell in the same process, and the
	// shell execs dbus-daemon: the PID the lab holds is dbus-daemon's.
	script := fmt.Sprintf(`set -e
mount --bind %q %q
if [ -d %q ]; then mount --bind %q %q; fi
exec dbus-daemon --nofork --nopidfile --config-file=%q`,
		actions, polkitActionsDir,
		polkitRulesDir, b.PolkitRulesDir, polkitRulesDir,
		filepath.Join(dir, "bus.conf"))
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	b.Process = l.Start("dbus-daemon", cmd)
	l.bus = b // Env now carries the address.

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := b.dial()
		if err == nil {
			conn.Close()
			break
		}
		if !b.Process.Alive() || time.Now().After(deadline) {
			l.fatalf("dbus-daemon did not come up: %v; log:\n%s", err, readFile(b.Process.Log))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Runs before the daemon is stopped (clean-ups run in reverse):
	// services the bus activated (polkitd, test services) are stopped
	// by PID too.
	l.onClose("services activated by the bus", func() error {
		for _, pid := range childrenOf(b.Process.PID) {
			if st, err := procStartTime(pid); err == nil {
				p := &Process{Name: fmt.Sprintf("activated service (pid %d)", pid), PID: pid, startTime: st}
				if err := p.Stop(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	l.onClose("bus connections", func() error {
		for _, c := range b.conns {
			c.Close()
		}
		return nil
	})
	return b
}

func (b *Bus) dial() (*dbus.Conn, error) {
	conn, err := dbus.Dial(b.Address)
	if err != nil {
		return nil, err
	}
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Conn returns a new connection to the bus as the test process (root),
// closed at Close.
func (b *Bus) Conn() *dbus.Conn {
	b.lab.t.Helper()
	conn, err := b.dial()
	if err != nil {
		b.lab.fatalf("connect to lab bus: %v", err)
	}
	b.lab.mu.Lock()
	b.conns = append(b.conns, conn)
	b.lab.mu.Unlock()
	return conn
}

// AddService writes an activation file for name that runs execLine.
func (b *Bus) AddService(name, execLine, user string) {
	b.lab.t.Helper()
	text := fmt.Sprintf("[D-BUS Service]\nName=%s\nExec=%s\nUser=%s\n", name, execLine, user)
	if err := os.WriteFile(filepath.Join(b.ServiceDir, name+".service"), []byte(text), 0o644); err != nil {
		b.lab.fatalf("%v", err)
	}
}

// NameOwnerPID returns the PID of the process owning name on the bus.
func (b *Bus) NameOwnerPID(ctx context.Context, conn *dbus.Conn, name string) (int, error) {
	var pid uint32
	err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixProcessID", 0, name).Store(&pid)
	if err != nil {
		return 0, fmt.Errorf("pid of %s: %w", name, err)
	}
	return int(pid), nil
}

// Busctl runs busctl against the lab bus as root and returns its output.
func (b *Bus) Busctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "busctl", append([]string{"--system"}, args...)...)
	cmd.Env = b.lab.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("busctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// copyDir copies the regular files of src (if it exists), and those
// that symbolic links in it point to, into dst.
func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		// Follow symbolic links (Debian's alternatives use them).
		fi, err := os.Stat(filepath.Join(src, e.Name()))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(b)
}

// childrenOf lists the live processes whose parent is ppid.
func childrenOf(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) && pidAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
