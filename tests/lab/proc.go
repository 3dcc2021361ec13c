package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a program the lab started (or adopted) and will stop by PID.
type Process struct {
	// Name is a short label used in logs and leak reports.
	Name string
	// PID is the process ID.
	PID int
	// Log is the file receiving the process's stdout and stderr, if the
	// lab started it.
	Log string

	startTime uint64        // from /proc/PID/stat, to recognise PID reuse
	cmd       *exec.Cmd     // nil for adopted processes
	done      chan struct{} // closed when a started process was reaped
	waitErr   error
}

// Start starts cmd with stdout and stderr going to a log file in the lab
// directory, and registers it to be stopped (SIGTERM, then SIGKILL after
// 5 s) at Close. cmd.Env, if nil, becomes the lab's environment.
func (l *Lab) Start(name string, cmd *exec.Cmd) *Process {
	l.t.Helper()
	p, err := l.start(name, cmd)
	if err != nil {
		l.fatalf("%v", err)
	}
	return p
}

func (l *Lab) start(name string, cmd *exec.Cmd) (*Process, error) {
	logPath := filepath.Join(l.Dir, "log", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	if cmd.Stderr == nil {
		cmd.Stderr = logf
	}
	if cmd.Env == nil {
		cmd.Env = l.Env()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(cmd.Args, " "), err)
	}
	p := &Process{Name: name, PID: cmd.Process.Pid, Log: logPath, cmd: cmd, done: make(chan struct{})}
	p.startTime, _ = procStartTime(p.PID)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	l.track(p)
	return p, nil
}

// Adopt tracks a process the lab did not start itself (for example one
// that dbus-daemon activated), so that Close stops it by PID and the leak
// check watches it.
func (l *Lab) Adopt(name string, pid int) *Process {
	st, err := procStartTime(pid)
	if err != nil {
		l.fatalf("adopt %s (pid %d): %v", name, pid, err)
	}
	p := &Process{Name: name, PID: pid, startTime: st}
	l.track(p)
	return p
}

func (l *Lab) track(p *Process) {
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	l.onClose("process "+p.Name, func() error { return p.Stop() })
}

// Exited returns a channel closed when a started process has exited and
// been reaped. For an adopted process it returns nil.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err returns the process's exit error once Exited is closed.
func (p *Process) Err() error { return p.waitErr }

// Alive reports whether the process still runs (a zombie counts as gone).
func (p *Process) Alive() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
		}
	}
	st, err := procStartTime(p.PID)
	return err == nil && st == p.startTime && pidAlive(p.PID)
}

// Signal sends sig to the process after checking, through /proc, that the
// PID still names the process the lab started (never a recycled PID).
func (p *Process) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return fmt.Errorf("%s (pid %d) is not running", p.Name, p.PID)
	}
	return syscall.Kill(p.PID, sig)
}

// Stop ends the process: SIGTERM, then SIGKILL if it has not exited after
// 5 seconds. Stopping a process that has already exited is not an error.
func (p *Process) Stop() error {
	if !p.Alive() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil && p.Alive() {
		return err
	}
	if p.wait(5 * time.Second) {
		return nil
	}
	_ = p.Signal(syscall.SIGKILL)
	if p.wait(5 * time.Second) {
		return fmt.Errorf("%s (pid %d) ignored SIGTERM and was killed", p.Name, p.PID)
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	if !p.wait(5 * time.Second) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return nil
}

func (p *Process) wait(d time.Duration) bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return !p.Alive()
}

// procStartTime reads the start time (field 22 of /proc/PID/stat, in
// clock ticks since boot) that, with the PID, identifies a process.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it start
	// after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("short stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// waitGone polls until none of pids is alive or d has passed.
func waitGone(pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		alive := false
		for _, pid := range pids {
			if pidAlive(pid) {
				alive = true
			}
		}
		if !alive {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
