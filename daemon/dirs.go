package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Modes of the directories Run creates.
const (
	configDirMode fs.FileMode = 0o755
	// The state directory may be traversed, not listed, by others:
	// dnsmasq drops its privileges and still re-reads its hosts files
	// under STATE/dnsmasq. Everything else below it is private.
	stateDirMode fs.FileMode = 0o711
)

// prepareDirs makes sure the config and state directories exist and are
// writable.
func prepareDirs(cfg Config) error {
	if err := ensureDir(cfg.ConfigDir, configDirMode); err != nil {
		return fmt.Errorf("config directory: %w", err)
	}
	if err := ensureDir(cfg.StateDir, stateDirMode); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	// An existing state directory keeps its mode, but dnsmasq must be
	// able to pass through it.
	fi, err := os.Stat(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if fi.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(cfg.StateDir, fi.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("state directory: let dnsmasq pass through: %w", err)
		}
	}
	return nil
}

// ensureDir creates path (and its parents) if it does not exist, giving
// the directory itself exactly mode whatever the umask. An existing
// directory keeps its mode: the administrator may have chosen it. Either
// way it must be a directory the daemon can write to.
func ensureDir(path string, mode fs.FileMode) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(path, mode); err != nil {
			return err
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s: not a directory", path)
	}
	if err := unix.Access(path, unix.W_OK|unix.X_OK); err != nil {
		return &fs.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}
