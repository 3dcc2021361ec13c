package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/netfilter"
)

// Backend names a firewall backend.
type Backend string

// The firewall backends.
const (
	// BackendAuto picks nftables where the kernel supports it and
	// iptables otherwise.
	BackendAuto Backend = "auto"
	// BackendNFTables programs nftables through netlink.
	BackendNFTables Backend = "nftables"
	// BackendIPTables programs iptables, ip6tables and ebtables.
	BackendIPTables Backend = "iptables"
	// BackendXTables is BackendIPTables under the backend's own name.
	BackendXTables Backend = "xtables"
)

// ParseBackend returns the backend named s: nftables, xtables (or
// iptables) or auto.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case BackendAuto, BackendNFTables, BackendIPTables, BackendXTables:
		return b, nil
	}
	return "", fmt.Errorf("unknown firewall backend %q: want nftables, iptables or auto (xtables is another name of iptables)", s)
}

// Notifier reports the daemon's state to its service manager;
// systemd.Notifier is the real one. Notify must be a no-op without a
// service manager.
type Notifier interface {
	Notify(state string) error
}

// Config is what Run needs. Fields marked optional may be left zero.
type Config struct {
	// ConfigDir holds the persistent definitions (networks, filters).
	// Run creates it with mode 0755 if it is absent. Absolute.
	ConfigDir string
	// StateDir holds runtime state that outlives one daemon process
	// (ports, bindings). Run creates it with mode 0700 if it is absent
	// and refuses to start if it cannot. Absolute, and not ConfigDir.
	StateDir string
	// Backend selects the firewall backend; optional, empty means
	// BackendAuto.
	Backend Backend
	// Version is the daemon's version, served as Manager.Version.
	Version string
	// Logger receives the daemon's structured log; optional, nil means
	// slog.Default().
	Logger *slog.Logger
	// Connect opens the bus connection the API is served on; optional,
	// nil means the system bus named by DBUS_SYSTEM_BUS_ADDRESS (or the
	// standard socket). Run closes the connection it returns.
	Connect func(ctx context.Context) (*dbus.Conn, error)
	// Notifier reports readiness and shutdown; optional, nil means
	// systemd.Notifier, which does nothing without NOTIFY_SOCKET.
	Notifier Notifier
	// Firewall is the kernel backend; optional, nil means the one Backend
	// names, working in the daemon's network namespace. Tests give a
	// netfilter.Fake.
	Firewall netfilter.Backend
	// VerifyInterval is how often the engine checks that the kernel
	// still enforces the desired state and restores it if not;
	// optional, zero means 5 seconds, negative disables the check.
	VerifyInterval time.Duration
	// Reload delivers on-demand verifications (SIGHUP); optional. Each
	// is reported to the service manager as RELOADING=1, then READY=1
	// once the verification is done.
	Reload <-chan struct{}
	// Watchdog is how often the daemon sends WATCHDOG=1 while it runs
	// (cmd/netwardend sets half of systemd's WATCHDOG_USEC); optional,
	// zero sends none. Once the engine runs, a ping is sent only when
	// the engine and the networks answer (their locks can be taken), so
	// a deadlocked daemon is restarted by systemd.
	Watchdog time.Duration
	// IdleTimeout makes the daemon exit by itself (status 0) once it has
	// been idle that long: no active network, no binding, and no API
	// call running or made meanwhile; optional, zero never exits. Bus
	// activation starts it again on the next call.
	IdleTimeout time.Duration
	// LinkEvents is a NETLINK_ROUTE socket bound to the link multicast
	// group (RTMGRP_LINK) that the service manager holds across daemon
	// restarts (netwardend.socket, ListenNetlink=route 1); optional. Run
	// checks it is one (SO_DOMAIN, SO_PROTOCOL), owns and closes it, and
	// reads it while it runs: link events that arrived while no daemon
	// ran are read at start. Nothing acts on them yet (each is logged at
	// debug level); the netlink monitor of the one path will consume
	// them from here.
	LinkEvents *os.File
	// Dnsmasq is the dnsmasq program networks run; optional, empty means
	// "dnsmasq" looked up in PATH.
	Dnsmasq string
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct{ name, path string }{
		{"config directory", c.ConfigDir},
		{"state directory", c.StateDir},
	} {
		switch {
		case d.path == "":
			errs = append(errs, fmt.Errorf("%s: not set", d.name))
		case !filepath.IsAbs(d.path):
			errs = append(errs, fmt.Errorf("%s %q: not an absolute path", d.name, d.path))
		}
	}
	if c.ConfigDir != "" && filepath.Clean(c.ConfigDir) == filepath.Clean(c.StateDir) {
		errs = append(errs, fmt.Errorf("config and state directory are both %s", c.ConfigDir))
	}
	if c.Backend != "" {
		if _, err := ParseBackend(string(c.Backend)); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Watchdog < 0 {
		errs = append(errs, fmt.Errorf("watchdog interval %v: negative", c.Watchdog))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle timeout %v: negative", c.IdleTimeout))
	}
	if c.Version == "" {
		errs = append(errs, errors.New("version: not set"))
	}
	return errors.Join(errs...)
}
