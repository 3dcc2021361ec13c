// Package polkit asks polkitd whether a caller may perform one of
// netwardend's actions, and ships the action definitions.
//
//	auth := polkit.NewAuthority(conn)
//	res, err := auth.Check(ctx, polkit.BusNameSubject(sender), polkit.ActionNWFilterManage, 0)
//	if err == nil && res.Authorized { … }
//
// It does not cache answers and does not decide on its own what happens
// when polkitd is absent: that policy belongs to the caller.
package polkit

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// The actions netwardend checks; their defaults are in ActionsFile.
const (
	// ActionRead covers listing and reading networks, filters and bindings.
	ActionRead = "org.netwarden1.read"
	// ActionNetworkManage covers defining, starting, stopping networks and
	// creating or deleting their ports.
	ActionNetworkManage = "org.netwarden1.network.manage"
	// ActionNWFilterManage covers defining and undefining filters and
	// creating or deleting bindings.
	ActionNWFilterManage = "org.netwarden1.nwfilter.manage"
)

// D-Bus names of polkitd's authority.
const (
	busName        = "org.freedesktop.PolicyKit1"
	objectPath     = "/org/freedesktop/PolicyKit1/Authority"
	authorityIface = "org.freedesktop.PolicyKit1.Authority"
)

// CheckFlags are the flags of CheckAuthorization.
type CheckFlags uint32

// AllowUserInteraction lets polkitd ask an authentication agent.
const AllowUserInteraction CheckFlags = 1

// Subject is whom an authorization is checked for, in polkit's
// (kind, details) form.
type Subject struct {
	Kind    string
	Details map[string]dbus.Variant
}

// BusNameSubject is the subject for the client owning a unique bus name;
// it is what a D-Bus service should check for its caller.
func BusNameSubject(uniqueName string) Subject {
	return Subject{Kind: "system-bus-name", Details: map[string]dbus.Variant{"name": dbus.MakeVariant(uniqueName)}}
}

// ProcessSubject is the subject for a process, identified by PID, start
// time (clock ticks since boot, from /proc/PID/stat) and UID.
func ProcessSubject(pid uint32, startTime uint64, uid int32) Subject {
	return Subject{Kind: "unix-process", Details: map[string]dbus.Variant{
		"pid":        dbus.MakeVariant(pid),
		"start-time": dbus.MakeVariant(startTime),
		"uid":        dbus.MakeVariant(uid),
	}}
}

// Result is polkitd's answer.
type Result struct {
	// Authorized is true if the subject may perform the action.
	Authorized bool
	// Challenge is true if it could, after authenticating.
	Challenge bool
	// Details are polkitd's extra details.
	Details map[string]string
}

// Authority is a client of polkitd's CheckAuthorization.
type Authority struct {
	obj dbus.BusObject
}

// NewAuthority returns a client speaking to polkitd over conn (the system bus).
func NewAuthority(conn *dbus.Conn) *Authority {
	return &Authority{obj: conn.Object(busName, objectPath)}
}

// Check asks whether subject may perform action. An error means polkitd
// could not answer (absent, or the action is unknown to it); it is never
// a denial.
func (a *Authority) Check(ctx context.Context, subject Subject, action string, flags CheckFlags) (Result, error) {
	var out struct {
		Authorized, Challenge bool
		Details               map[string]string
	}
	call := a.obj.CallWithContext(ctx, authorityIface+".CheckAuthorization", 0,
		subject, action, map[string]string{}, uint32(flags), "")
	if call.Err != nil {
		return Result{}, fmt.Errorf("polkit CheckAuthorization %s: %w", action, call.Err)
	}
	if err := call.Store(&out); err != nil {
		return Result{}, fmt.Errorf("polkit CheckAuthorization %s: reply: %w", action, err)
	}
	return Result{Authorized: out.Authorized, Challenge: out.Challenge, Details: out.Details}, nil
}
