package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Mode of the files and directories a Dir creates: definitions can name
// addresses and hosts, so they are readable by root only.
const (
	FileMode os.FileMode = 0o600
	DirMode  os.FileMode = 0o700
)

// Dir is a directory holding one kind of definition, one file per object:
// the object called name lives in "<name><ext>" (for example
// "clean-traffic.xml"). Every write is atomic (see WriteFileAtomic) and a
// Dir serialises its writers, so concurrent Puts and Deletes from several
// goroutines each take effect whole, one after the other.
//
// A Dir knows nothing about what its files contain. It is safe for
// concurrent use. Create one with OpenDir.
type Dir struct {
	path string
	ext  string
	mu   sync.Mutex // serialises Put and Delete
}

// OpenDir returns the Dir for the directory path, whose definition files
// end in ext (".xml"). The directory is created with mode 0700, parents
// included, if it does not exist; an existing directory keeps its mode.
// Temporary files that an interrupted write left behind (".<name><ext>.tmp-*")
// are removed; nothing else in the directory is touched.
//
// ext must start with '.' and contain neither '/' nor NUL.
func OpenDir(path, ext string) (*Dir, error) {
	if len(ext) < 2 || ext[0] != '.' || strings.ContainsAny(ext, "/\x00") {
		return nil, fmt.Errorf("store: open %s: invalid extension %q", path, ext)
	}
	if err := makeDir(path); err != nil {
		return nil, err
	}
	d := &Dir{path: path, ext: ext}
	if err := d.removeTempFiles(); err != nil {
		return nil, err
	}
	return d, nil
}

// makeDir creates path with mode DirMode, whatever the umask, unless it
// exists already; an existing path must be a directory.
func makeDir(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("store: open %s: not a directory", path)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.MkdirAll(path, DirMode); err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.Chmod(path, DirMode); err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	return nil
}

// removeTempFiles deletes the regular files of d that are temporary files
// of ours by their name.
func (d *Dir) removeTempFiles() error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", d.path, err)
	}
	removed := false
	for _, e := range entries {
		if !e.Type().IsRegular() || !isTempFile(e.Name(), d.ext) {
			continue
		}
		if err := os.Remove(filepath.Join(d.path, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: open %s: removing a temporary file: %w", d.path, err)
		}
		removed = true
	}
	if removed {
		if err := syncDir(d.path); err != nil {
			return fmt.Errorf("store: open %s: %w", d.path, err)
		}
	}
	return nil
}

// Path returns the directory's path as given to OpenDir.
func (d *Dir) Path() string { return d.path }

// File returns the path of the file that holds the object called name. It
// does not check name; Put, Read and Delete do.
func (d *Dir) File(name string) string { return filepath.Join(d.path, name+d.ext) }

// Put stores data as the definition of name, replacing any previous one
// atomically, in a file of mode 0600. name must pass ValidateName, else the
// error is a *NameError (matching ErrInvalidName) and nothing is written.
// Put does not look at data.
func (d *Dir) Put(name string, data []byte) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return WriteFileAtomic(d.File(name), data, FileMode)
}

// Read returns the stored definition of name. A missing definition is an
// error matching ErrNotFound; an invalid name a *NameError.
func (d *Dir) Read(name string) ([]byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(d.File(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: %w", &notFound{err})
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return data, nil
}

// Delete removes the definition of name durably. A missing definition is
// an error matching ErrNotFound; an invalid name a *NameError.
func (d *Dir) Delete(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return RemoveFile(d.File(name))
}

// Problem is a file that Load could not load: it could not be read, or its
// name is not a valid name, or the parse callback rejected it. The file is
// left exactly as it was found.
type Problem struct {
	// Path is the file's path (or the directory's, if it could not be
	// listed).
	Path string
	// Err says why: the callback's error as it returned it, or the error
	// reading the file.
	Err error
}

// Error returns "<path>: <err>", so that a Problem can be logged or joined
// as an error.
func (p Problem) Error() string { return p.Path + ": " + p.Err.Error() }

// Unwrap returns p.Err.
func (p Problem) Unwrap() error { return p.Err }

// Load hands every definition in the directory to parse and returns how
// many it accepted and the files it did not.
//
// It considers the files named "<name><ext>", in the order of their names;
// files of other names, names starting with '.' (so temporary files) and
// subdirectories are skipped silently. For each one it reads the content
// and calls parse(name, data), where name is the file name without the
// extension. A file that cannot be read, whose name fails ValidateName, or
// for which parse returns an error becomes a Problem for the caller to log;
// Load never deletes, renames or rewrites any file, so a definition that a
// newer or older daemon cannot parse is still there, unchanged, for the
// administrator.
//
// Load does not look inside the files: the callback must check that the
// object's own name (for example the <name> element or attribute of the
// XML) equals name, and reject the file if not.
//
// Load takes no lock: parse may call the Dir's methods. Each file is read
// whole and atomically, but a Put or Delete running at the same time may or
// may not be seen; Load is meant for start-up.
func (d *Dir) Load(parse func(name string, data []byte) error) (loaded int, problems []Problem) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return 0, []Problem{{Path: d.path, Err: err}}
	}
	for _, e := range entries {
		file := e.Name()
		if e.IsDir() || strings.HasPrefix(file, ".") || !strings.HasSuffix(file, d.ext) {
			continue
		}
		name := strings.TrimSuffix(file, d.ext)
		path := filepath.Join(d.path, file)
		data, err := readDefinition(path, name)
		if err != nil {
			problems = append(problems, Problem{Path: path, Err: err})
			continue
		}
		if err := parse(name, data); err != nil {
			problems = append(problems, Problem{Path: path, Err: err})
			continue
		}
		loaded++
	}
	return loaded, problems
}

// readDefinition reads the definition file path of the object name. It
// returns an error for a name that fails ValidateName and for anything that
// is not a regular file after following symbolic links; such a file is
// never opened, so that a FIFO cannot block the daemon.
func readDefinition(path, name string) ([]byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	return os.ReadFile(path)
}
