package dbusapi

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// NameTakenError is returned by RequestName when another connection owns
// BusName: usually another netwardend.
type NameTakenError struct {
	// Name is the well-known name that was requested.
	Name string
	// Owner is the unique name (":1.42") of the connection owning it, or
	// "" if that connection went away before it could be asked.
	Owner string
	// PID is the owner's process ID, or 0 if the bus could not tell.
	PID uint32
}

// Error names the owner and, if known, its process.
func (e *NameTakenError) Error() string {
	switch {
	case e.Owner == "":
		return fmt.Sprintf("bus name %s is owned by another connection (which has gone since)", e.Name)
	case e.PID == 0:
		return fmt.Sprintf("bus name %s is already owned by %s; is another netwardend running?", e.Name, e.Owner)
	default:
		return fmt.Sprintf("bus name %s is already owned by %s (pid %d); is another netwardend running?", e.Name, e.Owner, e.PID)
	}
}

// busInterface is the interface of the bus daemon itself.
const busInterface = "org.freedesktop.DBus"

// RequestName asks the bus for BusName without queueing for it. If
// another connection owns it the error is a *NameTakenError that names
// the owner; if the bus policy forbids owning it (not root), the bus's
// AccessDenied error is wrapped.
func RequestName(ctx context.Context, conn *dbus.Conn) error {
	var reply uint32
	err := conn.BusObject().CallWithContext(ctx, busInterface+".RequestName", 0,
		BusName, uint32(dbus.NameFlagDoNotQueue)).Store(&reply)
	if err != nil {
		return fmt.Errorf("request bus name %s: %w", BusName, err)
	}
	switch dbus.RequestNameReply(reply) {
	case dbus.RequestNameReplyPrimaryOwner, dbus.RequestNameReplyAlreadyOwner:
		return nil
	case dbus.RequestNameReplyExists:
		return nameTaken(ctx, conn)
	default:
		return fmt.Errorf("request bus name %s: unexpected reply %d", BusName, reply)
	}
}

// nameTaken builds the NameTakenError, asking the bus who owns the name.
func nameTaken(ctx context.Context, conn *dbus.Conn) error {
	e := &NameTakenError{Name: BusName}
	bus := conn.BusObject()
	if err := bus.CallWithContext(ctx, busInterface+".GetNameOwner", 0, BusName).Store(&e.Owner); err != nil {
		e.Owner = "" // gone since
		return e
	}
	if err := bus.CallWithContext(ctx, busInterface+".GetConnectionUnixProcessID", 0, e.Owner).Store(&e.PID); err != nil {
		e.PID = 0 // unknown
	}
	return e
}

// ReleaseName gives BusName back to the bus. Releasing a name the
// connection does not own is not an error.
func ReleaseName(ctx context.Context, conn *dbus.Conn) error {
	var reply uint32
	err := conn.BusObject().CallWithContext(ctx, busInterface+".ReleaseName", 0, BusName).Store(&reply)
	if err != nil {
		return fmt.Errorf("release bus name %s: %w", BusName, err)
	}
	return nil
}
