package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Netns is a named network namespace created by a lab (`ip netns add`).
type Netns struct {
	// Name is the namespace's name as `ip netns` knows it.
	Name string
	lab  *Lab
}

// NewNetns creates a namespace named after the lab and suffix, brings its
// loopback up, and registers its deletion at Close. Anything still running
// in it at Close is killed and reported as a leak.
func (l *Lab) NewNetns(suffix string) *Netns {
	l.t.Helper()
	n := &Netns{Name: l.name(suffix), lab: l}
	if out, err := exec.Command("ip", "netns", "add", n.Name).CombinedOutput(); err != nil {
		l.fatalf("ip netns add %s: %v: %s", n.Name, err, out)
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, n)
	l.mu.Unlock()
	l.onClose("namespace "+n.Name, n.remove)
	n.MustRun("ip", "link", "set", "lo", "up")
	return n
}

// remove kills whatever still runs in the namespace and deletes it. A
// process found there is an error: the test started something the lab
// did not track.
func (n *Netns) remove() error {
	var errs []error
	pids, err := netnsPIDs(n.Name)
	if err != nil {
		errs = append(errs, err)
	}
	if len(pids) > 0 {
		errs = append(errs, fmt.Errorf("untracked processes still running in %s: %v (killed)", n.Name, pids))
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(pids, 2*time.Second)
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", n.Name, err, bytes.TrimSpace(out)))
	}
	return errors.Join(errs...)
}

// Command returns a command that runs argv inside the namespace
// (through `ip netns exec`), with the lab bus address in its environment
// if the lab has a bus.
func (n *Netns) Command(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
	cmd.Env = n.lab.Env()
	return cmd
}

// Run runs argv inside the namespace and returns its combined output. The
// error carries the command line and the output.
func (n *Netns) Run(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := n.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %w: %s", n.Name, strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (n *Netns) MustRun(argv ...string) string {
	n.lab.t.Helper()
	out, err := n.Run(argv...)
	if err != nil {
		n.lab.fatalf("%v", err)
	}
	return out
}

// Do runs f on an OS thread that has entered the namespace, and waits for
// it. Sockets that f opens belong to the namespace for their whole life,
// so f may return them for use from any goroutine. f must not start
// goroutines that expect to be in the namespace.
func (n *Netns) Do(f func() error) error {
	return doInNetns(n.Name, f)
}

func doInNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked (and so discarded by the runtime
		// when this goroutine ends) unless it is back in its original
		// namespace.
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// listNetns returns the names of all named network namespaces.
func listNetns() ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// netnsPIDs lists the processes whose network namespace is the named one.
func netnsPIDs(name string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", name, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err == nil && pidAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
