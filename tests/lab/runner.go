package lab

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// Runner lets a program that is not a test (the demo) use a lab. It
// implements TB: Logf writes to Out, Fatalf and Skipf end the current Run
// after the clean-ups registered so far have run.
type Runner struct {
	// Out receives log lines; os.Stderr if nil.
	Out io.Writer

	mu       sync.Mutex
	failed   bool
	cleanups []func()
}

// stop is the panic value Fatalf and Skipf use to leave Run.
type stop struct{}

// Run calls f, then every clean-up f registered (in reverse), whether f
// returned, failed or was skipped. It returns an error if f failed or
// any clean-up reported an error.
func (r *Runner) Run(f func(TB)) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stop); !ok {
				r.runCleanups()
				panic(v)
			}
		}
		r.runCleanups()
		if r.Failed() {
			err = fmt.Errorf("failed")
		}
	}()
	f(r)
	return nil
}

func (r *Runner) runCleanups() {
	for {
		r.mu.Lock()
		if len(r.cleanups) == 0 {
			r.mu.Unlock()
			return
		}
		fn := r.cleanups[len(r.cleanups)-1]
		r.cleanups = r.cleanups[:len(r.cleanups)-1]
		r.mu.Unlock()
		fn()
	}
}

func (r *Runner) out() io.Writer {
	if r.Out == nil {
		return os.Stderr
	}
	return r.Out
}

// Helper does nothing; it exists to satisfy TB.
func (r *Runner) Helper() {}

// Logf prints a line.
func (r *Runner) Logf(format string, args ...any) {
	fmt.Fprintf(r.out(), format+"\n", args...)
}

// Errorf prints a line and marks the run failed.
func (r *Runner) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	fmt.Fprintf(r.out(), "error: "+format+"\n", args...)
}

// Fatalf is Errorf, then ends the run.
func (r *Runner) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(stop{})
}

// Skipf prints the reason and ends the run (a missing prerequisite
// outside strict mode).
func (r *Runner) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	fmt.Fprintf(r.out(), "cannot run: "+format+"\n", args...)
	panic(stop{})
}

// Cleanup registers fn to run when Run ends.
func (r *Runner) Cleanup(fn func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, fn)
	r.mu.Unlock()
}

// Failed reports whether Errorf, Fatalf or Skipf was called.
func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}
