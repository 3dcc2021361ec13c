package dbusapi

import (
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/policy"
)

// Kinds of failure a Manager reports by wrapping them (see Mark); the
// API turns them into error names. The policy package's typed errors
// (*policy.ValidationError, *policy.InstantiateError, *policy.GraphError)
// are recognised as they are.
var (
	// ErrNotFound: no such filter or binding.
	ErrNotFound = errors.New("not found")
	// ErrExists: the object to be created exists already.
	ErrExists = errors.New("already exists")
	// ErrInUse: the object is used by others.
	ErrInUse = errors.New("in use")
	// ErrInvalidArgument: the request itself is wrong.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotSupported: the request is valid but asks for what netwardend
	// does not implement (a network's forward mode, say).
	ErrNotSupported = errors.New("not supported")
)

// Mark returns an error with err's message for which errors.Is(_, kind)
// holds, as well as errors.Is and errors.As for what err wraps. A Manager
// uses it to tell the API what kind of failure a core error is.
func Mark(err, kind error) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, kind: kind}
}

type markedError struct{ err, kind error }

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.err, e.kind} }

// DeniedError is an authorization refusal; it becomes
// org.freedesktop.DBus.Error.AccessDenied.
type DeniedError struct {
	// Action is the polkit action the call needed.
	Action string
	// Reason says why it was refused.
	Reason string
}

// Error names the action.
func (e *DeniedError) Error() string {
	return fmt.Sprintf("not authorized for %s: %s", e.Action, e.Reason)
}

// ErrorName returns the D-Bus error name err becomes, by its type and
// kind, never by its text: ErrorAccessDenied, ErrorInvalidArgument,
// ErrorNotFound, ErrorInUse, ErrorExists, ErrorNotSupported, or
// ErrorFailed for anything else.
func ErrorName(err error) string {
	var denied *DeniedError
	switch {
	case errors.As(err, &denied):
		return ErrorAccessDenied
	case policy.IsValidationError(err), policy.IsInstantiateError(err),
		errors.Is(err, policy.ErrCycle), errors.Is(err, policy.ErrBuiltIn),
		errors.Is(err, ErrInvalidArgument):
		return ErrorInvalidArgument
	case errors.Is(err, ErrNotFound), errors.Is(err, policy.ErrNotFound):
		return ErrorNotFound
	case errors.Is(err, ErrInUse), errors.Is(err, policy.ErrInUse):
		return ErrorInUse
	case errors.Is(err, ErrExists), errors.Is(err, policy.ErrConflict):
		return ErrorExists
	case errors.Is(err, ErrNotSupported):
		return ErrorNotSupported
	}
	return ErrorFailed
}

// dbusError turns an error of the core or the authorizer into the
// D-Bus error the caller receives: its name from ErrorName, its message
// err's message. A *dbus.Error made by this package (UnknownObject,
// UnknownProperty, …) passes as it is.
func dbusError(err error) *dbus.Error {
	if err == nil {
		return nil
	}
	var denied *DeniedError
	var de *dbus.Error
	if !errors.As(err, &denied) && errors.As(err, &de) {
		return de
	}
	return dbus.NewError(ErrorName(err), []any{err.Error()})
}
