package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// TestUserName is the unprivileged account authorization tests run
// clients as. scripts/install-deps creates it.
const TestUserName = "netwarden-test"

// Polkit is polkitd, activated on the lab bus.
type Polkit struct {
	// Process is polkitd (adopted: dbus-daemon started it).
	Process *Process
	bus     *Bus
}

// Polkit activates polkitd on the lab bus (the first call to its
// authority starts it) and tracks its PID so that Close stops it.
func (l *Lab) Polkit() *Polkit {
	l.t.Helper()
	if l.polkit != nil {
		return l.polkit
	}
	Require(l.t, "/usr/lib/polkit-1/polkitd")
	b := l.Bus()
	conn := b.Conn()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	obj := conn.Object("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority")
	v, err := obj.GetProperty("org.freedesktop.PolicyKit1.Authority.BackendVersion")
	if err != nil {
		l.fatalf("activate polkitd: %v", err)
	}
	pid, err := b.NameOwnerPID(ctx, conn, "org.freedesktop.PolicyKit1")
	if err != nil {
		l.fatalf("%v", err)
	}
	l.polkit = &Polkit{Process: l.Adopt("polkitd", pid), bus: b}
	l.t.Logf("lab %s: polkitd %v running as pid %d", l.ID, v.Value(), pid)
	return l.polkit
}

// AddRule writes a polkit JavaScript rules file (name like
// "50-test.rules") that polkitd picks up live, and waits briefly for it
// to be read.
func (p *Polkit) AddRule(name, js string) {
	p.bus.lab.t.Helper()
	if err := os.WriteFile(filepath.Join(p.bus.PolkitRulesDir, name), []byte(js), 0o644); err != nil {
		p.bus.lab.fatalf("%v", err)
	}
}

// TestUser is the unprivileged account for authorization tests.
type TestUser struct {
	Name     string
	UID, GID uint32
}

// TestUser returns the unprivileged test account; a machine without it
// lacks a prerequisite.
func (l *Lab) TestUser() TestUser {
	l.t.Helper()
	u, err := user.Lookup(TestUserName)
	if err != nil {
		missing(l.t, fmt.Sprintf("test user %s: %v", TestUserName, err))
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return TestUser{Name: u.Username, UID: uint32(uid), GID: uint32(gid)}
}

// As makes cmd run as the user, with no supplementary groups.
func (u TestUser) As(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
	return cmd
}

// StartTime returns the start time of a process as polkit's unix-process
// subject wants it (clock ticks since boot).
func StartTime(pid int) (uint64, error) { return procStartTime(pid) }
