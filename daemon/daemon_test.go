package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/netwarden/netwarden/netfilter"
)

func validConfig(t *testing.T) Config {
	dir := t.TempDir()
	return Config{
		ConfigDir: filepath.Join(dir, "etc"),
		StateDir:  filepath.Join(dir, "run"),
		Version:   "1.2.3",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Never the real kernel backend: these tests run in the
		// machine's own network namespace.
		Firewall: &netfilter.Fake{},
	}
}

func TestParseBackend(t *testing.T) {
	for _, s := range []string{"auto", "nftables", "iptables"} {
		b, err := ParseBackend(s)
		if err != nil || string(b) != s {
			t.Errorf("ParseBackend(%q) = %q, %v", s, b, err)
		}
	}
	for _, s := range []string{"", "nft", "NFTABLES", "ebtables"} {
		if _, err := ParseBackend(s); err == nil || !strings.Contains(err.Error(), "want nftables, iptables or auto") {
			t.Errorf("ParseBackend(%q) error %v, want one listing the choices", s, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		change func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"explicit backend", func(c *Config) { c.Backend = BackendIPTables }, ""},
		{"no config dir", func(c *Config) { c.ConfigDir = "" }, "config directory: not set"},
		{"relative state dir", func(c *Config) { c.StateDir = "run" }, `state directory "run": not an absolute path`},
		{"same dirs", func(c *Config) { c.StateDir = c.ConfigDir + "/" }, "config and state directory are both"},
		{"bad backend", func(c *Config) { c.Backend = "pf" }, `unknown firewall backend "pf"`},
		{"no version", func(c *Config) { c.Version = "" }, "version: not set"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := validConfig(t)
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// All problems are reported at once.
	err := Config{}.Validate()
	if err == nil || !strings.Contains(err.Error(), "config directory") || !strings.Contains(err.Error(), "state directory") {
		t.Errorf("Validate of empty config: %v, want both directories named", err)
	}
}

func TestEnsureDirCreatesWithModeDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	base := t.TempDir()
	for _, mode := range []os.FileMode{configDirMode, stateDirMode} {
		path := filepath.Join(base, mode.String(), "nested")
		if err := ensureDir(path, mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s created with mode %v, want %v", path, got, mode)
		}
	}
}

func TestEnsureDirKeepsExistingMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(path, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := ensureDir(path, stateDirMode); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o750 {
		t.Errorf("existing directory's mode changed to %v", fi.Mode().Perm())
	}
}

func TestEnsureDirNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ensureDir(file, stateDirMode); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("ensureDir on a file: %v, want not a directory", err)
	}
	if err := ensureDir(filepath.Join(file, "sub"), stateDirMode); err == nil {
		t.Error("ensureDir below a file: nil error")
	}
}

// A state directory that cannot be made stops Run before it touches the bus.
func TestRunStateDirFailure(t *testing.T) {
	cfg := validConfig(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = filepath.Join(file, "run")
	cfg.Connect = func(context.Context) (*dbus.Conn, error) {
		t.Error("Run connected to the bus despite an unusable state directory")
		return nil, errors.New("unreachable")
	}
	err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "state directory") || !strings.Contains(err.Error(), cfg.StateDir) {
		t.Errorf("Run: %v, want a state directory error naming %s", err, cfg.StateDir)
	}
}

func TestRunInvalidConfig(t *testing.T) {
	cfg := validConfig(t)
	cfg.Backend = "pf"
	if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "invalid configuration") {
		t.Errorf("Run: %v, want invalid configuration", err)
	}
}

func TestRunConnectFailure(t *testing.T) {
	cfg := validConfig(t)
	boom := errors.New("no bus here")
	cfg.Connect = func(context.Context) (*dbus.Conn, error) { return nil, boom }
	err := Run(context.Background(), cfg)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "connect to the system bus") {
		t.Errorf("Run: %v, want the connect error wrapped", err)
	}
	for _, d := range []string{cfg.ConfigDir, cfg.StateDir} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("directory not created before connecting: %v", err)
		}
	}
}

// A stop requested while connecting is a clean stop, not a failure.
func TestRunCancelledWhileConnecting(t *testing.T) {
	cfg := validConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Connect = func(ctx context.Context) (*dbus.Conn, error) {
		cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := Run(ctx, cfg); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
}

func TestConnectSystemBusNoBus(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "absent"))
	if _, err := connectSystemBus(context.Background()); err == nil {
		t.Fatal("connectSystemBus to an absent socket: nil error")
	}
}
