package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Prefix starts the name of every network namespace a lab creates, so a
// leak check (and a person running `ip netns list`) can tell lab
// namespaces from anything else on the machine.
const Prefix = "nwl"

// Strict reports whether a missing prerequisite must fail a test rather
// than skip it: true when NETWARDEN_INTEGRATION=1 or when running in CI
// (CI=true). In strict mode nothing is ever skipped for lack of a tool.
func Strict() bool {
	return os.Getenv("NETWARDEN_INTEGRATION") == "1" || os.Getenv("CI") == "true"
}

// TB is the part of testing.TB a lab uses. *testing.T and *testing.B
// satisfy it; programs outside tests (the demo) supply their own, see
// Runner.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Lab is one throw-away world for a test: network namespaces, links,
// processes and files, all of which it removes again when the test ends.
//
// A Lab is made by New and torn down by Close (which New registers with
// t.Cleanup). Its facilities are created lazily: Hypervisor, AddGuest,
// Upstream, Bus, Polkit, StartFirewalld, StartDnsmasq. Each one that
// needs a program on the machine checks for it first and, if it is
// missing, skips the test (or fails it in strict mode, see Strict).
//
// Methods fail the test (t.Fatal) on error, like httptest; they may be
// called from the test's goroutine only, except where a method says
// otherwise.
type Lab struct {
	t TB

	// ID is the short random identifier in every name this lab makes.
	ID string
	// Dir is the lab's private temporary directory (configs, logs,
	// sockets); removed on Close unless the test failed and
	// NETWARDEN_KEEP_LAB=1 is set.
	Dir string

	mu         sync.Mutex
	closed     bool
	namespaces []*Netns
	procs      []*Process
	cleanups   []cleanup
	guests     int

	hv       *Netns
	upstream *Upstream
	bus      *Bus
	polkit   *Polkit
	fw       *Firewalld
}

type cleanup struct {
	what string
	fn   func() error
}

// New creates an empty lab for t. It requires root and iproute2; without
// them the test is skipped (failed in strict mode). The lab is closed and
// checked for leaks when t ends: anything left behind fails the test.
func New(t TB) *Lab {
	t.Helper()
	Require(t, "ip")
	if os.Geteuid() != 0 {
		missing(t, "the lab needs root (network namespaces, veth, firewall)")
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		t.Fatalf("lab: random id: %v", err)
	}
	dir, err := os.MkdirTemp("", "netwarden-lab-")
	if err != nil {
		t.Fatalf("lab: temp dir: %v", err)
	}
	// Processes that drop privileges (polkitd, the test user) must be
	// able to reach sockets below Dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	l := &Lab{t: t, ID: hex.EncodeToString(id), Dir: dir}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab %s: %v", l.ID, err)
		}
	})
	return l
}

// Require checks that every named program is on PATH. A missing one skips
// the test with the reason, or fails it in strict mode.
func Require(t TB, programs ...string) {
	t.Helper()
	var absent []string
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			absent = append(absent, p)
		}
	}
	if len(absent) > 0 {
		missing(t, "missing prerequisite programs: "+strings.Join(absent, ", ")+" (run scripts/install-deps)")
	}
}

func missing(t TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("lab: %s", reason)
	}
	t.Skipf("lab: %s; set NETWARDEN_INTEGRATION=1 to make this a failure", reason)
}

// T returns the test the lab belongs to.
func (l *Lab) T() TB { return l.t }

// name returns a lab-unique kernel-safe name with the given suffix.
func (l *Lab) name(suffix string) string {
	return Prefix + l.ID + "-" + suffix
}

// fatalf fails the test with the lab's identity in the message.
func (l *Lab) fatalf(format string, args ...any) {
	l.t.Helper()
	l.t.Fatalf("lab %s: "+format, append([]any{l.ID}, args...)...)
}

// onClose registers fn to run at Close, in reverse order of registration.
func (l *Lab) onClose(what string, fn func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cleanups = append(l.cleanups, cleanup{what, fn})
}

// Close tears the lab down: it stops every process it started (by PID),
// deletes its namespaces, and removes its files, then runs the leak check.
// The returned error lists every clean-up step that failed and everything
// the leak check found. Close is idempotent; later calls return nil.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	cleanups := l.cleanups
	l.cleanups = nil
	l.mu.Unlock()

	var errs []error
	for i := len(cleanups) - 1; i >= 0; i-- {
		if err := cleanups[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("clean-up %s: %w", cleanups[i].what, err))
		}
	}
	if leaks := l.Leaks(); len(leaks) > 0 {
		errs = append(errs, fmt.Errorf("leak check: %s", strings.Join(leaks, "; ")))
	}
	keep := os.Getenv("NETWARDEN_KEEP_LAB") == "1" && l.t.Failed()
	if keep {
		l.t.Logf("lab %s: keeping %s for inspection", l.ID, l.Dir)
	} else if err := os.RemoveAll(l.Dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", l.Dir, err))
	}
	return errors.Join(errs...)
}

// Leaks lists what this lab left behind: namespaces whose name carries the
// lab's prefix, processes it started that are still alive, and processes
// still running inside one of its namespaces. Close runs it after the
// clean-up; tests may call it to prove the check itself.
func (l *Lab) Leaks() []string {
	var leaks []string
	names, err := listNetns()
	if err != nil {
		return []string{fmt.Sprintf("cannot list namespaces: %v", err)}
	}
	mine := Prefix + l.ID + "-"
	for _, n := range names {
		if strings.HasPrefix(n, mine) {
			leaks = append(leaks, "network namespace "+n+" still exists")
		}
	}
	l.mu.Lock()
	procs := append([]*Process(nil), l.procs...)
	l.mu.Unlock()
	for _, p := range procs {
		if p.Alive() {
			leaks = append(leaks, fmt.Sprintf("process %s (pid %d) still running", p.Name, p.PID))
		}
	}
	return leaks
}
