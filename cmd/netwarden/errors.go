package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
)

// failure says what a command was doing, so that an error can be told
// in words.
type failure struct {
	// doing starts the message: "failed to define network filter from f.xml".
	doing string
	// denied completes "you are not allowed to …": "define network filters".
	denied string
	// action is the polkit action the call needs, named when it is refused.
	action string
	// missing is said when the object does not exist: "no network filter 'x'".
	missing string
}

// busError is a failure to reach the system bus at all.
type busError struct {
	addr string
	err  error
}

func (e *busError) Error() string {
	return fmt.Sprintf("cannot connect to the system bus at %s: %v", e.addr, e.err)
}

func (e *busError) Unwrap() error { return e.err }

// Names of the bus's own errors that mean the daemon is not there.
const (
	errServiceUnknown = "org.freedesktop.DBus.Error.ServiceUnknown"
	errNameHasNoOwner = "org.freedesktop.DBus.Error.NameHasNoOwner"
	errNoReply        = "org.freedesktop.DBus.Error.NoReply"
	errTimeout        = "org.freedesktop.DBus.Error.Timeout"
	errDisconnected   = "org.freedesktop.DBus.Error.Disconnected"
	errSpawnPrefix    = "org.freedesktop.DBus.Error.Spawn."
)

// describe turns err into one line for "error: …": the D-Bus error
// name in words, with the daemon's message where it says more.
func (f failure) describe(err error) string {
	var be *busError
	if errors.As(err, &be) {
		return be.Error()
	}
	name := dbusapi.ErrorNameOf(err)
	msg := dbusapi.ErrorMessageOf(err)
	with := func(words string) string {
		if f.doing == "" {
			return words
		}
		return f.doing + ": " + words
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || name == errNoReply || name == errTimeout:
		return with("netwardend did not answer in time")
	case name == errServiceUnknown || name == errNameHasNoOwner:
		return fmt.Sprintf("netwardend is not running: nothing owns %s on the system bus and it cannot be activated", dbusapi.BusName)
	case strings.HasPrefix(name, errSpawnPrefix):
		return fmt.Sprintf("netwardend could not be started by the bus: %s", msg)
	case name == errDisconnected || errors.Is(err, dbus.ErrClosed):
		return with("lost the connection to the system bus")
	case name == dbusapi.ErrorAccessDenied:
		// The polkit action the daemon's message names, if it does.
		action := regexp.MustCompile(`org\.netwarden1\.[a-z][a-z.]*[a-z]`).FindString(msg)
		if action == "" {
			action = f.action
		}
		what := f.denied
		if what == "" {
			what = "do this"
		}
		return fmt.Sprintf("you are not allowed to %s: %s", what, action)
	case name == dbusapi.ErrorNotFound || name == dbusapi.ErrorUnknownObject:
		if f.missing != "" {
			return with(f.missing)
		}
		return with("not found: " + msg)
	case name == dbusapi.ErrorInvalidArgument:
		return with("invalid: " + msg)
	case name == dbusapi.ErrorInUse:
		return with("in use: " + msg)
	case name == dbusapi.ErrorExists:
		return with("already exists: " + msg)
	case name == dbusapi.ErrorFailed:
		return with(msg)
	case name != "" && msg != "":
		return with(fmt.Sprintf("%s (%s)", msg, name))
	case name != "":
		return with(name)
	}
	return with(err.Error())
}
