package daemon

import (
	"context"
	"sync"
	"time"
)

// activity follows the API calls, for the idle exit and for answering
// the calls still running when the daemon stops.
type activity struct {
	mu       sync.Mutex
	inFlight int
	last     time.Time // last call started or ended, or busy seen
	idle     chan struct{}
	now      func() time.Time
}

func newActivity() *activity {
	return &activity{now: time.Now, last: time.Now(), idle: make(chan struct{})}
}

// begin is dbusapi.Options.OnCall: a call has started; the function it
// returns ends it.
func (a *activity) begin() func() {
	a.mu.Lock()
	a.inFlight++
	a.last = a.now()
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		a.inFlight--
		a.last = a.now()
		if a.inFlight == 0 {
			close(a.idle)
			a.idle = make(chan struct{})
		}
		a.mu.Unlock()
	}
}

// touch restarts the idle time.
func (a *activity) touch() {
	a.mu.Lock()
	a.last = a.now()
	a.mu.Unlock()
}

// idleFor returns how long no call has been running or made; 0 while a
// call runs.
func (a *activity) idleFor() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inFlight > 0 {
		return 0
	}
	return a.now().Sub(a.last)
}

// drain waits until no call runs (true), or ctx ends first (false).
func (a *activity) drain(ctx context.Context) bool {
	for {
		a.mu.Lock()
		n, idle := a.inFlight, a.idle
		a.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return false
		}
	}
}

// busy says why the daemon may not exit when idle: "" when nothing is
// active, otherwise what is (an active network, a binding).
func busy(e *Engine, nets *Networks) string {
	for _, n := range nets.List() {
		if n.Active {
			return "network " + n.Name + " is active"
		}
	}
	if ports := e.Bindings(); len(ports) > 0 {
		return "port " + ports[0] + " has a binding"
	}
	return ""
}

// idleCheckInterval is how often watchIdle looks: a tenth of the
// timeout, between 10 ms and 1 s.
func idleCheckInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 10*time.Millisecond), time.Second)
}

// watchIdle returns a channel closed once the daemon has been idle for
// timeout: no active network, no binding, and no API call for that long
// (the time counts from the last call, or from when the last network
// or binding went away). It stops looking when ctx ends.
func watchIdle(ctx context.Context, timeout time.Duration, a *activity, e *Engine, nets *Networks) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		t := time.NewTicker(idleCheckInterval(timeout))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if busy(e, nets) != "" {
				a.touch()
				continue
			}
			if a.idleFor() >= timeout {
				close(out)
				return
			}
		}
	}()
	return out
}
