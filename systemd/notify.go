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
// Reloads are reported as RELOADING=1 with the MONOTONIC_USEC systemd
// 253 and later require (Reloading), followed by READY=1 once done; the
// watchdog is kept alive with Watchdog messages at the interval
// WatchdogInterval derives from WATCHDOG_USEC. Sockets passed by socket
// activation (LISTEN_FDS) are taken by PassedSockets.
package systemd

import (
	"fmt"
	"strconv"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// States netwardend reports, as sd_notify(3) spells them.
const (
	// Ready says start-up is complete: the bus name is owned and the
	// API objects are exported.
	Ready = sddaemon.SdNotifyReady
	// Stopping says shutdown has begun.
	Stopping = sddaemon.SdNotifyStopping
	// Watchdog keeps the service manager's watchdog from firing.
	Watchdog = sddaemon.SdNotifyWatchdog
	// ReloadingState is the first line of Reloading's message.
	ReloadingState = sddaemon.SdNotifyReloading
)

// Reloading returns the message that says a reload has begun:
// RELOADING=1 and the current CLOCK_MONOTONIC time as MONOTONIC_USEC,
// which Type=notify-reload units of systemd 253 and later require and
// older versions ignore. READY=1 ends the reload.
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return ReloadingState // cannot happen on Linux
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return ReloadingState + "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
}

// WatchdogInterval returns how often to send Watchdog: half of the
// WATCHDOG_USEC the service manager set (sd_watchdog_enabled(3)), or 0
// when the watchdog is off (no WATCHDOG_USEC, or WATCHDOG_PID names
// another process). An unparsable value is an error. The variables are
// left set.
func WatchdogInterval() (time.Duration, error) {
	d, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("watchdog: %w", err)
	}
	return d / 2, nil
}

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
