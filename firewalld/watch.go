package firewalld

import (
	"context"
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// EventKind says what happened to firewalld.
type EventKind int

const (
	// Reloaded: firewalld reloaded its configuration (its Reloaded
	// signal). Run-time zone bindings are gone.
	Reloaded EventKind = iota + 1
	// Started: firewalld's bus name has a new owner (a firewalld started
	// or restarted; a restart emits no Reloaded). Its run-time state is
	// fresh.
	Started
	// Stopped: firewalld's bus name lost its owner.
	Stopped
)

func (k EventKind) String() string {
	switch k {
	case Reloaded:
		return "reloaded"
	case Started:
		return "started"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one thing that happened to firewalld.
type Event struct {
	Kind EventKind
	// Owner is the unique bus name of the firewalld concerned (for
	// Stopped, the one that went away).
	Owner string
}

// match rules of Watch: firewalld's Reloaded, and NameOwnerChanged of its
// name (arg0), sent by the bus.
func watchRules() [][]dbus.MatchOption {
	return [][]dbus.MatchOption{
		{
			dbus.WithMatchSender(BusName),
			dbus.WithMatchObjectPath(Path),
			dbus.WithMatchInterface(Interface),
			dbus.WithMatchMember("Reloaded"),
		},
		{
			dbus.WithMatchSender("org.freedesktop.DBus"),
			dbus.WithMatchObjectPath("/org/freedesktop/DBus"),
			dbus.WithMatchInterface("org.freedesktop.DBus"),
			dbus.WithMatchMember("NameOwnerChanged"),
			dbus.WithMatchArg(0, BusName),
		},
	}
}

// Watch subscribes to firewalld's Reloaded signal and to the owner changes
// of its bus name, and returns the events in the order the bus sent them.
// The match rules are added on the bus before Watch returns (an error if
// the bus refuses one) and removed when ctx ends; the channel is then
// closed. It is also closed when the connection closes.
//
// The connection may carry other signals (the daemon's connection does):
// only Reloaded from the current owner of firewalld's name and
// NameOwnerChanged from the bus for that name become events. A restart
// that the bus reports as one owner change (old → new) gives Stopped then
// Started. The consumer must keep reading: events queue without bound.
func (c *Client) Watch(ctx context.Context) (<-chan Event, error) {
	rules := watchRules()
	added := 0
	remove := func() {
		rctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		for _, r := range rules[:added] {
			// The connection may be closed already; nothing to undo then.
			_ = c.conn.RemoveMatchSignalContext(rctx, r...)
		}
	}
	for _, r := range rules {
		cctx, cancel := c.ctx(ctx)
		err := c.conn.AddMatchSignalContext(cctx, r...)
		cancel()
		if err != nil {
			remove()
			return nil, fmt.Errorf("firewalld: watch: AddMatch: %w", err)
		}
		added++
	}
	sigs := make(chan *dbus.Signal, 16)
	c.conn.Signal(sigs)
	// The owner is asked after the subscription, so an owner change is
	// either already in the answer or still to come as a signal.
	owner, err := c.Owner(ctx)
	if err != nil {
		c.conn.RemoveSignal(sigs)
		remove()
		return nil, fmt.Errorf("firewalld: watch: %w", err)
	}
	out := make(chan Event, 16)
	go func() {
		defer close(out)
		defer remove()
		defer c.conn.RemoveSignal(sigs)
		send := func(e Event) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			var s *dbus.Signal
			var ok bool
			select {
			case <-ctx.Done():
				return
			case s, ok = <-sigs:
				if !ok {
					return // connection closed
				}
			}
			switch {
			case s.Name == Interface+".Reloaded" && s.Path == Path:
				if owner == "" || s.Sender != owner {
					continue // not from the firewalld that owns the name
				}
				if !send(Event{Kind: Reloaded, Owner: owner}) {
					return
				}
			case s.Name == "org.freedesktop.DBus.NameOwnerChanged" && s.Path == "/org/freedesktop/DBus" &&
				s.Sender == "org.freedesktop.DBus":
				name, old, nw, err := nameOwnerChanged(s)
				if err != nil || name != BusName {
					continue
				}
				if old != "" && old == owner {
					owner = ""
					if !send(Event{Kind: Stopped, Owner: old}) {
						return
					}
				}
				if nw != "" && nw != owner {
					owner = nw
					if !send(Event{Kind: Started, Owner: nw}) {
						return
					}
				}
			}
		}
	}()
	return out, nil
}

func nameOwnerChanged(s *dbus.Signal) (name, old, nw string, err error) {
	if len(s.Body) != 3 {
		return "", "", "", errors.New("NameOwnerChanged: want 3 arguments")
	}
	var ok [3]bool
	name, ok[0] = s.Body[0].(string)
	old, ok[1] = s.Body[1].(string)
	nw, ok[2] = s.Body[2].(string)
	if !ok[0] || !ok[1] || !ok[2] {
		return "", "", "", errors.New("NameOwnerChanged: want (sss)")
	}
	return name, old, nw, nil
}
