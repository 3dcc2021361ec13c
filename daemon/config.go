package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
)

// ParseBackend returns the backend named s: nftables, iptables or auto.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case BackendAuto, BackendNFTables, BackendIPTables:
		return b, nil
	}
	return "", fmt.Errorf("unknown firewall backend %q: want nftables, iptables or auto", s)
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
	// Reload delivers on-demand verifications (SIGHUP); optional.
	Reload <-chan struct{}
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
	if c.Version == "" {
		errs = append(errs, errors.New("version: not set"))
	}
	return errors.Join(errs...)
}
