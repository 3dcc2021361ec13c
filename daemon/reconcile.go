package daemon

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// reconciler is the one place where the daemon re-applies its desired
// state to the kernel outside API calls. Every such trigger comes here:
// the periodic verification, SIGHUP, the kernel reporting that someone
// changed netwarden's tables, firewalld reloading or restarting. Triggers
// that arrive while a reconcile runs are coalesced into the next one, and
// a reconcile is serialised with API calls by the engine's and the
// networks' locks, so a burst of a hundred firewalld reloads costs a
// handful of reconciles, never a queue.
//
// A reconcile verifies the kernel state and restores it where it
// differs (Engine.Verify: one Apply of the whole desired state), and puts
// the networks' bridges back into their firewalld zones (Networks.Reconcile).
type reconciler struct {
	log    *slog.Logger
	engine *Engine
	nets   *Networks
	// done is called after every triggered reconcile (to announce the
	// new LastFirewallReapply).
	done func()

	kick chan struct{} // capacity 1: a pending kick absorbs more

	mu      sync.Mutex
	reasons []string     // why the pending reconcile was asked for
	waiters []chan error // requests waiting for the pending reconcile
	last    time.Time    // when the last triggered reconcile completed
	count   uint64       // triggered reconciles completed
}

func newReconciler(log *slog.Logger, e *Engine, nets *Networks, done func()) *reconciler {
	if done == nil {
		done = func() {}
	}
	return &reconciler{log: log, engine: e, nets: nets, done: done, kick: make(chan struct{}, 1)}
}

// trigger asks for a reconcile without waiting for it.
func (r *reconciler) trigger(reason string) {
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// request asks for a reconcile and waits until one that started after
// the request has completed, returning its error.
func (r *reconciler) request(ctx context.Context, reason string) error {
	ch := make(chan error, 1)
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.waiters = append(r.waiters, ch)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch forwards every signal of events to trigger with reason, until
// ctx ends or events is closed.
func (r *reconciler) watch(ctx context.Context, events <-chan struct{}, reason string) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			r.trigger(reason)
		}
	}
}

// last returns when the last triggered reconcile completed and how many
// have.
func (r *reconciler) lastReapply() (time.Time, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.count
}

// run reconciles on every trigger and every interval (5 s when zero,
// never when negative) until ctx ends. Periodic checks that find the
// kernel as it should be are silent and do not count as re-applies.
func (r *reconciler) run(ctx context.Context, interval time.Duration) {
	if interval == 0 {
		interval = 5 * time.Second
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			waiters := r.waiters
			r.waiters = nil
			r.mu.Unlock()
			for _, w := range waiters {
				w <- ctx.Err()
			}
			return
		case <-tick:
			restores := r.engine.Stats().Restores
			if err := r.engine.Verify(ctx); err != nil {
				r.log.Error("kernel state could not be restored", "error", err)
			}
			if r.engine.Stats().Restores != restores {
				r.finish(nil, nil)
			}
		case <-r.kick:
			r.mu.Lock()
			reasons, waiters := r.reasons, r.waiters
			r.reasons, r.waiters = nil, nil
			r.mu.Unlock()
			start := time.Now()
			err := r.engine.Verify(ctx)
			if nerr := r.nets.Reconcile(ctx); err == nil {
				err = nerr
			}
			if err != nil {
				r.log.Error("re-apply failed", "reason", strings.Join(dedup(reasons), ", "), "error", err)
			} else {
				r.log.Info("re-applied", "reason", strings.Join(dedup(reasons), ", "), "duration", time.Since(start))
			}
			r.finish(waiters, err)
		}
	}
}

// finish records a completed re-apply and answers its waiters with err.
func (r *reconciler) finish(waiters []chan error, err error) {
	r.mu.Lock()
	r.last = time.Now()
	r.count++
	r.mu.Unlock()
	for _, w := range waiters {
		w <- err
	}
	r.done()
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
