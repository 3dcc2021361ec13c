// Supervised dnsmasq: the network's DHCP and DNS server run as a child of
// the daemon, restarted with back-off when it dies, and signalled only
// after its identity has been checked through /proc.

package network

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Default timing of a Dnsmasq; a zero field in Dnsmasq means its default.
const (
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultStableAfter  = 60 * time.Second
	DefaultStartTimeout = 10 * time.Second
	DefaultStopTimeout  = 5 * time.Second
)

// readyMarker is the line dnsmasq logs once its sockets are bound and its
// PID file written.
const readyMarker = "started, version"

// Dnsmasq runs one network's dnsmasq as a supervised child process:
//
//	dnsmasq --conf-file=CONF --keep-in-foreground --log-facility=- [--pid-file=PID]
//
// --conf-file keeps dnsmasq from reading /etc/dnsmasq.conf;
// --keep-in-foreground keeps it a child the supervisor can wait for;
// --log-facility=- sends its log to stderr, which goes line by line to
// Logger (a configuration that sets log-facility itself overrides this,
// as dnsmasq reads its configuration file after the command line).
//
// dnsmasq drops root privileges after binding its sockets (to the user
// it was built with unless the configuration says user=), so the
// hosts and addn-hosts files and their directories must be readable by
// that user: SIGHUP re-reads them unprivileged.
//
// Fill in the exported fields, then call Start once; Stop ends it. The
// methods are safe for concurrent use. A Dnsmasq does not adopt a dnsmasq
// left running by an earlier daemon: before Start the daemon removes such
// a leftover with KillStale, which checks its identity first.
type Dnsmasq struct {
	// Binary is the dnsmasq program, "dnsmasq" (looked up in PATH) if empty.
	Binary string
	// ConfFile is the configuration file's absolute path, written by the
	// caller (DnsmasqConfig, store.WriteFileAtomic) before Start.
	ConfFile string
	// PIDFile, if not empty, is passed as --pid-file. It should be the
	// DnsmasqPaths.PIDFile the configuration names.
	PIDFile string
	// Command builds the command that runs argv, e.g. inside the
	// network's namespace (`ip netns exec NAME argv…`, which must exec
	// argv in place, not fork). nil runs argv directly. The context it
	// gets lives as long as the supervision.
	Command func(ctx context.Context, argv ...string) *exec.Cmd
	// Logger receives dnsmasq's output, its exits and restarts;
	// slog.Default() if nil.
	Logger *slog.Logger

	// MinBackoff is the first restart delay, doubled after each exit up
	// to MaxBackoff; it is reset when dnsmasq has run for StableAfter.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// StartTimeout bounds the wait for a started dnsmasq to report that
	// it bound its sockets.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration

	mu      sync.Mutex
	started bool         // Start succeeded once (a Dnsmasq is not reused)
	cur     *dnsmasqProc // the running process, nil between runs
	cancel  context.CancelFunc
	killc   chan struct{} // closed by Stop to skip the SIGTERM grace
	done    chan struct{} // closed when the supervisor has ended
	stopped bool
}

// dnsmasqProc is one run of dnsmasq.
type dnsmasqProc struct {
	cmd       *exec.Cmd
	pid       int
	startTime uint64 // field 22 of /proc/PID/stat
	since     time.Time
	ready     chan struct{} // closed when the ready marker was logged
	exited    chan struct{} // closed when the process was reaped
	waitErr   error
	readerEnd chan struct{} // closed when the output reader has ended
	out       *tailBuffer
}

func (d *Dnsmasq) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

func (d *Dnsmasq) binary() string {
	if d.Binary != "" {
		return d.Binary
	}
	return "dnsmasq"
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

func (d *Dnsmasq) command(ctx context.Context, argv ...string) *exec.Cmd {
	if d.Command != nil {
		return d.Command(ctx, argv...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// argv is dnsmasq's command line.
func (d *Dnsmasq) argv() []string {
	a := []string{d.binary(), "--conf-file=" + d.ConfFile, "--keep-in-foreground", "--log-facility=-"}
	if d.PIDFile != "" {
		a = append(a, "--pid-file="+d.PIDFile)
	}
	return a
}

// Start checks the configuration with `dnsmasq --test`, starts dnsmasq
// and waits (at most StartTimeout, and until ctx ends) until it reports
// that it bound its sockets: it logs "started, version …", or writes its
// PID into PIDFile. A bad configuration, an early exit or the deadline
// returns an error carrying dnsmasq's own message, and nothing is left
// running. On success dnsmasq is supervised until Stop: each exit is
// logged and followed by a restart after a back-off delay.
func (d *Dnsmasq) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.started || d.stopped {
		d.mu.Unlock()
		return fmt.Errorf("dnsmasq %s: already started or stopped", d.ConfFile)
	}
	if !filepath.IsAbs(d.ConfFile) {
		d.mu.Unlock()
		return fmt.Errorf("dnsmasq: configuration file %q is not an absolute path", d.ConfFile)
	}
	// life ends the supervision (Stop cancels it, also during Start);
	// procs, the context Command gets, ends only after the last process
	// was reaped, so a Command made with exec.CommandContext cannot skip
	// SIGTERM.
	life, cancel := context.WithCancel(context.Background())
	procs, cancelProcs := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.started, d.cancel, d.killc, d.done = true, cancel, make(chan struct{}), done
	d.mu.Unlock()

	// Start's waits end with ctx or with Stop.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	defer context.AfterFunc(life, wcancel)()
	p, err := d.testAndSpawn(wctx, procs)
	if err != nil {
		cancel()
		cancelProcs()
		d.mu.Lock()
		if !d.stopped {
			d.started = false // Start may be tried again
		}
		d.mu.Unlock()
		close(done)
		return err
	}
	d.mu.Lock()
	d.cur = p
	d.mu.Unlock()
	go func() {
		defer cancelProcs()
		// If Stop came during Start, supervise sees life ended and
		// terminates p at once.
		d.supervise(life, procs, p)
	}()
	return nil
}

func (d *Dnsmasq) testAndSpawn(ctx, procs context.Context) (*dnsmasqProc, error) {
	if err := d.test(ctx); err != nil {
		return nil, err
	}
	return d.spawn(ctx, procs)
}

// test runs `dnsmasq --conf-file=CONF --test`.
func (d *Dnsmasq) test(ctx context.Context) error {
	cmd := d.command(ctx, d.binary(), "--conf-file="+d.ConfFile, "--test")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("dnsmasq %s: configuration check failed: %s", d.ConfFile, msg)
	}
	return nil
}

// spawn starts one dnsmasq and waits until it is ready; waitCtx bounds
// the wait, procs is the context given to Command. On error the process
// has been killed and reaped.
func (d *Dnsmasq) spawn(waitCtx, procs context.Context) (*dnsmasqProc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("dnsmasq %s: %w", d.ConfFile, err)
	}
	cmd := d.command(procs, d.argv()...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("dnsmasq %s: start: %w", d.ConfFile, err)
	}
	w.Close()
	p := &dnsmasqProc{
		cmd:       cmd,
		pid:       cmd.Process.Pid,
		since:     time.Now(),
		ready:     make(chan struct{}),
		exited:    make(chan struct{}),
		readerEnd: make(chan struct{}),
		out:       &tailBuffer{max: 20},
	}
	p.startTime, _ = procStartTime(p.pid) // checked again once ready
	go p.readOutput(r, d.logger())
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
		// dnsmasq's TCP children may hold the pipe a little longer.
		select {
		case <-p.readerEnd:
		case <-time.After(time.Second):
			r.Close()
			<-p.readerEnd
		}
	}()

	ctx, cancel := context.WithTimeout(waitCtx, orDefault(d.StartTimeout, DefaultStartTimeout))
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	fail := func(reason string) (*dnsmasqProc, error) {
		_ = cmd.Process.Kill()
		<-p.exited
		<-p.readerEnd
		return nil, fmt.Errorf("dnsmasq %s: %s%s", d.ConfFile, reason, p.out.String())
	}
	for {
		select {
		case <-p.ready:
		case <-tick.C:
			if !d.pidFileWritten(p) {
				continue
			}
		case <-p.exited:
			<-p.readerEnd
			return nil, fmt.Errorf("dnsmasq %s: exited during start-up (%s)%s", d.ConfFile, exitStatus(p.waitErr), p.out.String())
		case <-ctx.Done():
			if waitCtx.Err() != nil {
				return fail(fmt.Sprintf("start-up interrupted: %v", waitCtx.Err()))
			}
			return fail(fmt.Sprintf("did not report started within %v (killed)", orDefault(d.StartTimeout, DefaultStartTimeout)))
		}
		break
	}
	// Ready: it is dnsmasq itself now (not the namespace helper that
	// exec'd it); record its identity for later signals.
	st, err := procStartTime(p.pid)
	if err != nil || (p.startTime != 0 && st != p.startTime) {
		return fail("process vanished after start-up")
	}
	p.startTime = st
	if err := d.checkIdentity(p); err != nil {
		return fail(err.Error())
	}
	d.logger().Info("dnsmasq started", "conf", d.ConfFile, "pid", p.pid)
	return p, nil
}

// pidFileWritten reports whether p wrote its PID into PIDFile (a file
// older than p holding the same number is an earlier process's).
func (d *Dnsmasq) pidFileWritten(p *dnsmasqProc) bool {
	if d.PIDFile == "" {
		return false
	}
	fi, err := os.Stat(d.PIDFile)
	// File times come from a coarse clock: allow a little slack.
	return err == nil && !fi.ModTime().Before(p.since.Add(-50*time.Millisecond)) && d.pidFileNames(p.pid)
}

// pidFileNames reports whether PIDFile holds pid.
func (d *Dnsmasq) pidFileNames(pid int) bool {
	if d.PIDFile == "" {
		return false
	}
	got, err := readPIDFile(d.PIDFile)
	return err == nil && got == pid
}

// readOutput logs dnsmasq's output line by line, keeps the last lines for
// error messages, and closes p.ready at the ready marker.
func (p *dnsmasqProc) readOutput(r *os.File, log *slog.Logger) {
	defer close(p.readerEnd)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	ready := false
	for sc.Scan() {
		line := sc.Text()
		p.out.add(line)
		log.Info("dnsmasq", "pid", p.pid, "line", line)
		if !ready && strings.Contains(line, readyMarker) {
			ready = true
			close(p.ready)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		// A line longer than the buffer: drain the rest unlogged.
		_, _ = io.Copy(io.Discard, r)
	}
}

// supervise waits for p to exit and restarts dnsmasq until Stop.
func (d *Dnsmasq) supervise(life, procs context.Context, p *dnsmasqProc) {
	defer close(d.done)
	log := d.logger()
	backoff := orDefault(d.MinBackoff, DefaultMinBackoff)
	for {
		if p != nil {
			select {
			case <-p.exited:
			case <-life.Done():
				d.terminate(p)
				return
			}
			<-p.readerEnd
			ran := time.Since(p.since)
			d.mu.Lock()
			d.cur = nil
			d.mu.Unlock()
			if ran >= orDefault(d.StableAfter, DefaultStableAfter) {
				backoff = orDefault(d.MinBackoff, DefaultMinBackoff)
			}
			log.Warn("dnsmasq exited", "conf", d.ConfFile, "pid", p.pid, "status", exitStatus(p.waitErr),
				"ran", ran.Round(time.Millisecond), "restart_in", backoff)
		}
		select {
		case <-time.After(backoff):
		case <-life.Done():
			return
		}
		backoff = min(backoff*2, orDefault(d.MaxBackoff, DefaultMaxBackoff))
		np, err := d.spawn(life, procs)
		if err != nil {
			if life.Err() != nil {
				return
			}
			log.Error("dnsmasq restart failed", "conf", d.ConfFile, "err", err, "retry_in", backoff)
			p = nil
			continue
		}
		d.mu.Lock()
		if d.stopped {
			d.mu.Unlock()
			d.terminate(np)
			return
		}
		d.cur = np
		d.mu.Unlock()
		log.Info("dnsmasq restarted", "conf", d.ConfFile, "pid", np.pid)
		p = np
	}
}

// terminate ends p: SIGTERM, then SIGKILL after StopTimeout or as soon as
// Stop gives up waiting.
func (d *Dnsmasq) terminate(p *dnsmasqProc) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // pidfd: never a recycled PID
	t := time.NewTimer(orDefault(d.StopTimeout, DefaultStopTimeout))
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		d.logger().Warn("dnsmasq ignored SIGTERM; killing it", "conf", d.ConfFile, "pid", p.pid)
		_ = p.cmd.Process.Kill()
		<-p.exited
	case <-d.killc:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	<-p.readerEnd
	d.mu.Lock()
	d.cur = nil
	d.mu.Unlock()
	d.logger().Info("dnsmasq stopped", "conf", d.ConfFile, "pid", p.pid, "status", exitStatus(p.waitErr))
	if d.pidFileNames(p.pid) {
		_ = os.Remove(d.PIDFile)
	}
}

// Stop ends supervision and dnsmasq: SIGTERM, then SIGKILL after
// StopTimeout, or at once when ctx ends first (ctx's error is then
// returned, after the process is gone). It returns when the process and
// the supervisor's goroutines have ended. A Start in progress is
// interrupted (it returns an error). Stop is idempotent, and a Dnsmasq
// that was never started stops without error; a stopped Dnsmasq cannot
// be started again.
func (d *Dnsmasq) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.started {
		d.stopped = true
		d.mu.Unlock()
		return nil
	}
	first := !d.stopped
	d.stopped = true
	cancel, done, killc := d.cancel, d.done, d.killc
	d.mu.Unlock()
	if !first {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("dnsmasq %s: stop: %w", d.ConfFile, ctx.Err())
		}
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		close(killc)
		<-done
		return fmt.Errorf("dnsmasq %s: stop: %w (killed)", d.ConfFile, ctx.Err())
	}
}

// Reload sends SIGHUP, which makes dnsmasq re-read its hosts and
// addn-hosts files (not the configuration file), after checking through
// /proc that the PID still names the dnsmasq that was started.
func (d *Dnsmasq) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.cur
	if p == nil {
		return fmt.Errorf("dnsmasq %s: reload: not running", d.ConfFile)
	}
	if err := d.checkIdentity(p); err != nil {
		return fmt.Errorf("dnsmasq %s: reload: %w", d.ConfFile, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("dnsmasq %s: reload: %w", d.ConfFile, err)
	}
	return nil
}

// PID returns the running dnsmasq's PID, 0 when none runs (before Start,
// after Stop, while a restart is pending).
func (d *Dnsmasq) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		return 0
	}
	return d.cur.pid
}

// Running reports whether dnsmasq runs: a process was started and /proc
// still shows it (same start time, not a zombie, the dnsmasq binary with
// this configuration).
func (d *Dnsmasq) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur != nil && d.checkIdentity(d.cur) == nil
}

// checkIdentity checks through /proc that p's PID still names the
// process that was started.
func (d *Dnsmasq) checkIdentity(p *dnsmasqProc) error {
	select {
	case <-p.exited:
		return fmt.Errorf("pid %d has exited", p.pid)
	default:
	}
	return checkDnsmasqProc(p.pid, p.startTime, d.ConfFile, filepath.Base(d.binary()))
}

// checkDnsmasqProc checks that pid is a live (not zombie) dnsmasq whose
// command line names confPath and, if startTime is not 0, that it has
// that start time. Its executable must be named "dnsmasq" or exeName.
func checkDnsmasqProc(pid int, startTime uint64, confPath, exeName string) error {
	st, state, err := procStat(pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	if state == 'Z' || state == 'X' {
		return fmt.Errorf("pid %d has exited (state %c)", pid, state)
	}
	if startTime != 0 && st != startTime {
		return fmt.Errorf("pid %d is another process (start time %d, want %d)", pid, st, startTime)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	exe = strings.TrimSuffix(exe, " (deleted)") // dnsmasq upgraded while running
	if base := filepath.Base(exe); base != "dnsmasq" && base != exeName {
		return fmt.Errorf("pid %d is %s, not dnsmasq", pid, exe)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	if !cmdlineHasConf(cmdline, confPath) {
		return fmt.Errorf("pid %d is a dnsmasq for another configuration (%q)",
			pid, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
	}
	return nil
}

// cmdlineHasConf reports whether a NUL-separated command line passes
// confPath as the configuration file.
func cmdlineHasConf(cmdline []byte, confPath string) bool {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	for i, a := range args {
		if a == "--conf-file="+confPath || a == "-C"+confPath ||
			((a == "--conf-file" || a == "-C") && i+1 < len(args) && args[i+1] == confPath) {
			return true
		}
	}
	return false
}

// KillStale removes a dnsmasq left running by an earlier daemon (which
// netwarden does not adopt): it reads the PID in pidFile and, only if
// /proc shows a live dnsmasq whose command line passes confPath as its
// configuration file, sends it SIGTERM, then SIGKILL after 5 s, and
// removes the PID file. A missing PID file or a PID that no longer runs
// is not an error (there is nothing to kill). Any other process is left
// alone and the error says why; the signals go through a pidfd opened
// before the check, so a PID recycled in between is never signalled.
func KillStale(pidFile, confPath string) error {
	pid, err := readPIDFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stale dnsmasq: %w", err)
	}
	proc, err := os.FindProcess(pid) // holds a pidfd on Linux
	if err != nil {
		return fmt.Errorf("stale dnsmasq: pid %d: %w", pid, err)
	}
	defer proc.Release()
	st, state, err := procStat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return nil // gone already
	}
	if err := checkDnsmasqProc(pid, st, confPath, "dnsmasq"); err != nil {
		return fmt.Errorf("stale dnsmasq: %s names %w; left alone", pidFile, err)
	}
	gone := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for {
			if s, state, err := procStat(pid); err != nil || s != st || state == 'Z' || state == 'X' {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stale dnsmasq: pid %d: %w", pid, err)
	}
	if !gone(DefaultStopTimeout) {
		if err := proc.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("stale dnsmasq: pid %d: %w", pid, err)
		}
		if !gone(DefaultStopTimeout) {
			return fmt.Errorf("stale dnsmasq: pid %d survived SIGKILL", pid)
		}
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stale dnsmasq: %w", err)
	}
	return nil
}

// readPIDFile reads a PID file holding one positive decimal PID.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: no PID in %q", path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// procStat returns the start time (field 22 of /proc/PID/stat, clock
// ticks since boot) and the state (field 3) of pid.
func procStat(pid int) (uint64, byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after it start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, f[0][0], nil
}

// procStartTime is procStat's start time.
func procStartTime(pid int) (uint64, error) {
	st, _, err := procStat(pid)
	return st, err
}

// exitStatus describes how a process ended.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		}
	}
	return err.Error()
}

// tailBuffer keeps the last max lines of a process's output.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (b *tailBuffer) add(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
	if len(b.lines) > b.max {
		b.lines = b.lines[len(b.lines)-b.max:]
	}
}

// String returns the kept lines as ": line; line", "" if none.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.lines) == 0 {
		return ""
	}
	return ": " + strings.Join(b.lines, "; ")
}
