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
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"
)

// The actions netwardend checks; their defaults are in ActionsFile. Each
// kind of object has a read action (allowed to everyone by default) and a
// manage action (an administrator, auth_admin_keep).
const (
	// ActionNetworkRead covers listing networks, looking them up, reading
	// their XML, properties and DHCP leases, and listing, looking up and
	// reading their ports.
	ActionNetworkRead = "org.netwarden1.network.read"
	// ActionNetworkManage covers defining, creating, starting, stopping
	// and undefining networks, setting their autostart, and creating and
	// deleting their ports.
	ActionNetworkManage = "org.netwarden1.network.manage"
	// ActionNWFilterRead covers listing filters, looking them up and
	// reading their XML and properties.
	ActionNWFilterRead = "org.netwarden1.nwfilter.read"
	// ActionNWFilterManage covers defining and undefining filters.
	ActionNWFilterManage = "org.netwarden1.nwfilter.manage"
	// ActionBindingRead covers listing filter bindings, looking them up
	// and reading their XML and properties.
	ActionBindingRead = "org.netwarden1.binding.read"
	// ActionBindingManage covers creating and deleting filter bindings.
	ActionBindingManage = "org.netwarden1.binding.manage"
)

// The details netwardend passes with a check, which rules.d rules read
// with action.lookup(key); the keys are those of libvirt's polkit access
// driver. A detail is only passed when the object is known (from the
// call's object, its arguments or the XML it carries).
const (
	// DetailNetworkName is the network's name (network and port calls).
	DetailNetworkName = "network_name"
	// DetailNetworkUUID is the network's UUID (network and port calls).
	DetailNetworkUUID = "network_uuid"
	// DetailPortUUID is the port's UUID (port calls).
	DetailPortUUID = "port_uuid"
	// DetailNWFilterName is the filter's name (filter calls).
	DetailNWFilterName = "nwfilter_name"
	// DetailNWFilterUUID is the filter's UUID (filter calls).
	DetailNWFilterUUID = "nwfilter_uuid"
	// DetailBindingPortDev is the bound port's interface (binding calls).
	DetailBindingPortDev = "nwfilter_binding_portdev"
	// DetailBindingFilter is the name of the bound filter (binding calls).
	DetailBindingFilter = "nwfilter_binding_filter"
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
	return a.CheckWithDetails(ctx, subject, action, nil, flags)
}

// cancelTimeout bounds CancelCheckAuthorization.
const cancelTimeout = 5 * time.Second

// CheckWithDetails is Check with details for polkit rules (see the
// Detail* keys); only a privileged caller (root) may pass them. When
// flags allow user interaction and ctx ends before polkitd answers, the
// pending check is cancelled, so that an authentication dialog does not
// outlive the request.
func (a *Authority) CheckWithDetails(ctx context.Context, subject Subject, action string, details map[string]string, flags CheckFlags) (Result, error) {
	if details == nil {
		details = map[string]string{}
	}
	cancelID := ""
	if flags&AllowUserInteraction != 0 {
		cancelID = fmt.Sprintf("netwarden-%d", cancelIDs.Add(1))
	}
	var out struct {
		Authorized, Challenge bool
		Details               map[string]string
	}
	call := a.obj.CallWithContext(ctx, authorityIface+".CheckAuthorization", 0,
		subject, action, details, uint32(flags), cancelID)
	if call.Err != nil {
		if cancelID != "" && ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
			// Best effort: polkitd may have answered meanwhile.
			_ = a.obj.CallWithContext(cctx, authorityIface+".CancelCheckAuthorization", 0, cancelID).Err
			cancel()
		}
		return Result{}, fmt.Errorf("polkit CheckAuthorization %s: %w", action, call.Err)
	}
	if err := call.Store(&out); err != nil {
		return Result{}, fmt.Errorf("polkit CheckAuthorization %s: reply: %w", action, err)
	}
	return Result{Authorized: out.Authorized, Challenge: out.Challenge, Details: out.Details}, nil
}

// cancelIDs numbers the cancellation IDs of interactive checks, which
// polkitd wants unique per connection.
var cancelIDs atomic.Uint64
