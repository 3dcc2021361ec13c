// Package systemd is netwardend's side of its service manager: sd_notify
// readiness and shutdown messages, and (as files in this directory) the
// unit and D-Bus activation files that start the daemon.
//
//	var n systemd.Notifier
//	if err := n.Notify(systemd.Ready); err != nil {
//		log.Warn("cannot notify the service manager", "err", err)
//	}
//
// Notifications go to the datagram socket named by NOTIFY_SOCKET, which
// systemd sets for Type=notify services. Without the variable every
// notification is a silent no-op, so the daemon runs the same way from a
// shell, under D-Bus activation, or in tests.
//
// The package does not run a watchdog and does not receive sockets
// (LISTEN_FDS); both arrive with the issues that need them.
package systemd

import (
	"fmt"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// States netwardend reports, as sd_notify(3) spells them.
const (
	// Ready says start-up is complete: the bus name is owned and the
	// API objects are exported.
	Ready = sddaemon.SdNotifyReady
	// Stopping says shutdown has begun.
	Stopping = sddaemon.SdNotifyStopping
)

// Notifier sends sd_notify messages to the socket named by the
// NOTIFY_SOCKET environment variable at the time of each call. Its zero
// value is ready to use. It leaves the variable set, so that later
// messages (Stopping after Ready) reach the same socket; it does not
// scrub it from the environment of child processes either, which is the
// job of whoever starts them.
type Notifier struct{}

// Notify sends state (for example Ready or Stopping) to the service
// manager. Without NOTIFY_SOCKET it does nothing and returns nil; an error
// means the variable is set but the message could not be delivered.
func (Notifier) Notify(state string) error {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}
