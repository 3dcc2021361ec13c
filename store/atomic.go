package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempInfix separates a target's name from the random suffix in the name of
// its temporary file: ".<target>" + tempInfix + "<random>".
const tempInfix = ".tmp-"

// WriteFileAtomic replaces the file at path with data, so that at every
// moment, including after a crash, path holds either its old content or
// the new one in full.
//
// The data is written to a temporary file in the same directory (named
// ".<base>.tmp-<random>"), given exactly the mode perm (whatever the umask),
// synced, renamed over path, and then the directory is synced so that the
// rename itself is durable. On any error before the rename the temporary
// file is removed and the old file is left untouched. An error from the
// final directory sync means the new content is already in place but may
// not survive a power failure.
//
// The directory must exist. If path is a symbolic link, the link is
// replaced, not the file it points to. The owner of the new file is the
// caller's. Errors name the path.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic is WriteFileAtomic with the content produced by write, which
// lets tests inject a failing writer.
func writeAtomic(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	f, err := os.CreateTemp(dir, "."+base+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close() // a second Close after a failed one is harmless
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if err = write(f); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	renamed = true
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	return nil
}

// RemoveFile removes the file at path and syncs its directory, so that the
// removal survives a crash. A missing file is an error that matches
// ErrNotFound (and fs.ErrNotExist). Errors name the path.
func RemoveFile(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: %w", &notFound{err})
		}
		return fmt.Errorf("store: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("store: remove %s: %w", path, err)
	}
	return nil
}

// syncDir flushes the directory dir itself (its entries) to stable storage.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// isTempFile reports whether name (a directory entry) is a temporary file
// left by writeAtomic for a target whose name ends in ext.
func isTempFile(name, ext string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	i := strings.LastIndex(name, tempInfix)
	if i < 0 || i+len(tempInfix) == len(name) {
		return false
	}
	target := name[1:i]
	return len(target) > len(ext) && strings.HasSuffix(target, ext)
}
