package firewalld

import (
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// ExceptionName is the D-Bus error name of every error firewalld itself
// raises. The error's message starts with firewalld's error code (see
// firewall/errors.py), optionally followed by ": " and a detail.
const ExceptionName = "org.fedoraproject.FirewallD1.Exception"

// firewalld's error codes netwarden acts on (firewall/errors.py). The set is
// open: Error.Code holds any code firewalld sends.
const (
	CodeAlreadyEnabled   = "ALREADY_ENABLED"
	CodeNotEnabled       = "NOT_ENABLED"
	CodeZoneAlreadySet   = "ZONE_ALREADY_SET"
	CodeZoneConflict     = "ZONE_CONFLICT"
	CodeNameConflict     = "NAME_CONFLICT"
	CodeAlreadySet       = "ALREADY_SET"
	CodeInvalidZone      = "INVALID_ZONE"
	CodeInvalidPolicy    = "INVALID_POLICY"
	CodeInvalidInterface = "INVALID_INTERFACE"
	CodeInvalidName      = "INVALID_NAME"
	CodeNotRunning       = "NOT_RUNNING"
	CodeNotAuthorized    = "NOT_AUTHORIZED"
	CodeAccessDenied     = "ACCESS_DENIED"
)

// D-Bus error names other than firewalld's own that the client tells apart.
const (
	errUnknownMethod    = "org.freedesktop.DBus.Error.UnknownMethod"
	errUnknownInterface = "org.freedesktop.DBus.Error.UnknownInterface"
	errUnknownObject    = "org.freedesktop.DBus.Error.UnknownObject"
	errServiceUnknown   = "org.freedesktop.DBus.Error.ServiceUnknown"
	errNameHasNoOwner   = "org.freedesktop.DBus.Error.NameHasNoOwner"
)

// Error is an error raised by firewalld (D-Bus error
// org.fedoraproject.FirewallD1.Exception), split into firewalld's error
// code and the rest of its message.
type Error struct {
	// Code is firewalld's error code, e.g. "ZONE_ALREADY_SET"; empty when
	// the message did not start with one (an unexpected exception inside
	// firewalld).
	Code string
	// Message is the detail after the code (or the whole message when
	// there is no code).
	Message string
	// Method is the firewalld method that failed ("zone.changeZoneOfInterface").
	Method string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("firewalld")
	if e.Method != "" {
		b.WriteString(" " + e.Method)
	}
	b.WriteString(": ")
	switch {
	case e.Code != "" && e.Message != "":
		fmt.Fprintf(&b, "%s: %s", e.Code, e.Message)
	case e.Code != "":
		b.WriteString(e.Code)
	default:
		b.WriteString(e.Message)
	}
	return b.String()
}

// ParseException splits the message of a firewalld exception into its
// error code and detail: "ZONE_ALREADY_SET: libvirt" → ("ZONE_ALREADY_SET",
// "libvirt"), "NAME_CONFLICT" → ("NAME_CONFLICT", ""). A message that does
// not start with a code (upper-case letters, digits and '_', starting with
// a letter) has no code: ("", message).
func ParseException(msg string) (code, detail string) {
	head, rest, found := strings.Cut(msg, ":")
	if !isCode(head) {
		return "", msg
	}
	if !found {
		return head, ""
	}
	return head, strings.TrimSpace(rest)
}

func isCode(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// wrapError turns the error of a call of method into an *Error when
// firewalld raised it; other D-Bus errors (UnknownMethod, AccessDenied,
// ServiceUnknown, …) are returned wrapped with the method's name, so
// errors.As still finds the dbus.Error.
func wrapError(method string, err error) error {
	if err == nil {
		return nil
	}
	var de dbus.Error
	if errors.As(err, &de) && de.Name == ExceptionName {
		msg := ""
		if len(de.Body) > 0 {
			if s, ok := de.Body[0].(string); ok {
				msg = s
			}
		}
		code, detail := ParseException(msg)
		return &Error{Code: code, Message: detail, Method: method}
	}
	var dep *dbus.Error
	if errors.As(err, &dep) && dep.Name == ExceptionName {
		return wrapError(method, *dep)
	}
	return fmt.Errorf("firewalld %s: %w", method, err)
}

// HasCode reports whether err is (or wraps) a firewalld *Error with code.
func HasCode(err error, code string) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Code == code
}

// IsZoneAlreadySet: the interface (or source) is already in that zone.
func IsZoneAlreadySet(err error) bool { return HasCode(err, CodeZoneAlreadySet) }

// IsInvalidZone: no zone of that name.
func IsInvalidZone(err error) bool { return HasCode(err, CodeInvalidZone) }

// IsInvalidPolicy: no policy of that name.
func IsInvalidPolicy(err error) bool { return HasCode(err, CodeInvalidPolicy) }

// IsNameConflict: a zone, policy, service … of that name exists already
// (config.addZone2, config.addPolicy).
func IsNameConflict(err error) bool { return HasCode(err, CodeNameConflict) }

// IsAlreadyEnabled: the setting is on already.
func IsAlreadyEnabled(err error) bool { return HasCode(err, CodeAlreadyEnabled) }

// IsNotEnabled: the setting is off already.
func IsNotEnabled(err error) bool { return HasCode(err, CodeNotEnabled) }

// dbusErrorName returns the D-Bus error name of err, or "".
func dbusErrorName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dep *dbus.Error
	if errors.As(err, &dep) {
		return dep.Name
	}
	return ""
}

// IsUnknownMethod reports whether err says the method (or its interface
// or object) does not exist in this firewalld: a firewalld older than the
// call.
func IsUnknownMethod(err error) bool {
	switch dbusErrorName(err) {
	case errUnknownMethod, errUnknownInterface, errUnknownObject:
		return true
	}
	return false
}

// IsNotRunning reports whether err says that firewalld is not on the bus
// (no owner of its name), or that firewalld says it is not running yet.
func IsNotRunning(err error) bool {
	switch dbusErrorName(err) {
	case errServiceUnknown, errNameHasNoOwner:
		return true
	}
	return HasCode(err, CodeNotRunning)
}

// ErrPoliciesUnsupported is returned by the policy calls of a firewalld
// without policy objects (before 0.9.0).
var ErrPoliciesUnsupported = errors.New("firewalld: policies unsupported (firewalld before 0.9.0)")
