package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/netwarden/netwarden/systemd"
)

// watchdog sends WATCHDOG=1 every interval. Once a probe is set, each
// ping is sent only after the probe has returned: a probe that blocks
// (a deadlock on the engine's or the networks' lock) stops the pings,
// and systemd restarts the daemon.
type watchdog struct {
	probe  atomic.Pointer[func()]
	cancel context.CancelFunc
	done   chan struct{}
}

// startWatchdog starts pinging; with interval 0 it does nothing.
func startWatchdog(ctx context.Context, interval time.Duration, n Notifier, log *slog.Logger) *watchdog {
	w := &watchdog{done: make(chan struct{})}
	ctx, w.cancel = context.WithCancel(ctx)
	if interval <= 0 {
		close(w.done)
		return w
	}
	log.Debug("watchdog on", "ping_interval", interval)
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		warned := false
		for {
			if p := w.probe.Load(); p != nil {
				(*p)()
			}
			if ctx.Err() != nil {
				return
			}
			if err := n.Notify(systemd.Watchdog); err != nil && !warned {
				log.Warn("cannot ping the service manager's watchdog", "err", err)
				warned = true
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// setProbe makes every later ping wait for probe.
func (w *watchdog) setProbe(probe func()) { w.probe.Store(&probe) }

// stop ends the pings. It waits a little for the pinger, which may be
// stuck in its probe, and returns anyway.
func (w *watchdog) stop() {
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(time.Second):
	}
}
