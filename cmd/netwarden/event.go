package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netwarden/netwarden/dbusapi"
)

// eventLine is the line printed for an event, as virsh prints its
// lifecycle events ("event 'lifecycle' for network default: Started"),
// with virsh's timestamp in front when stamp is not zero.
func eventLine(ev dbusapi.Event, stamp time.Time) string {
	kind, what := "nwfilter", eventName(ev)
	switch ev.Kind {
	case dbusapi.NWFilterBindingEventKind:
		kind = "nwfilter-binding"
	case dbusapi.NetworkEventKind:
		kind = "network"
	}
	line := fmt.Sprintf("event 'lifecycle' for %s %s: %s\n", kind, ev.Name, what)
	if !stamp.IsZero() {
		line = stamp.UTC().Format("2006-01-02 15:04:05.000+0000") + ": " + line
	}
	return line
}

// eventName is the word for an event's lifecycle number.
func eventName(ev dbusapi.Event) string {
	switch {
	case ev.Kind == dbusapi.NWFilterEventKind && ev.Event == dbusapi.NWFilterEventDefined:
		return "Defined"
	case ev.Kind == dbusapi.NWFilterEventKind && ev.Event == dbusapi.NWFilterEventUndefined:
		return "Undefined"
	case ev.Kind == dbusapi.NWFilterBindingEventKind && ev.Event == dbusapi.NWFilterBindingEventCreated:
		return "Created"
	case ev.Kind == dbusapi.NWFilterBindingEventKind && ev.Event == dbusapi.NWFilterBindingEventDeleted:
		return "Deleted"
	case ev.Kind == dbusapi.NetworkEventKind:
		switch ev.Event {
		case dbusapi.NetworkEventDefined:
			return "Defined"
		case dbusapi.NetworkEventUndefined:
			return "Undefined"
		case dbusapi.NetworkEventStarted:
			return "Started"
		case dbusapi.NetworkEventStopped:
			return "Stopped"
		}
	}
	return fmt.Sprintf("Unknown (%d)", ev.Event)
}

// event prints the daemon's events until the first one (or, with
// --loop, until interrupted), or until --timeout.
func event(s *session, c api, p parsed) error {
	ctx := s.ctx
	interrupted := func() bool { return false }
	if s.signals {
		sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx = sctx
		interrupted = func() bool { return sctx.Err() != nil }
	}
	timedOut := func() bool { return false }
	if n, ok := p.number("timeout"); ok {
		tctx, cancel := context.WithTimeout(ctx, time.Duration(n)*time.Second)
		defer cancel()
		ctx = tctx
		timedOut = func() bool { return errors.Is(tctx.Err(), context.DeadlineExceeded) }
	}
	loop, stamp := p.has("loop"), p.has("timestamp")
	count := 0
	err := c.WatchEvents(ctx, nil, func(ev dbusapi.Event) bool {
		var t time.Time
		if stamp {
			t = s.now()
		}
		s.stdout.Write([]byte(eventLine(ev, t)))
		count++
		return loop
	})
	switch {
	case err == nil:
	case interrupted():
		fmt.Fprint(s.stdout, "event loop interrupted\n")
	case timedOut():
		fmt.Fprint(s.stdout, "event loop timed out\n")
	default:
		return fail(readFailure("failed to watch events", ""), err)
	}
	fmt.Fprintf(s.stdout, "events received: %d\n", count)
	if count == 0 {
		return errSilent
	}
	return nil
}
