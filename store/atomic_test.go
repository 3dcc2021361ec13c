package store

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// names returns the entries of dir, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// checkFile fails t unless path holds want with mode perm.
func checkFile(t *testing.T, path string, want []byte, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), perm)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	for _, perm := range []os.FileMode{0o600, 0o644, 0o400} {
		t.Run(perm.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a.xml")
			if err := WriteFileAtomic(path, []byte("old"), perm); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, []byte("old"), perm)
			if err := WriteFileAtomic(path, []byte("new content"), perm); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, []byte("new content"), perm)
			if got := names(t, dir); !slices.Equal(got, []string{"a.xml"}) {
				t.Errorf("directory holds %q, want only a.xml", got)
			}
		})
	}
}

func TestWriteFileAtomicChangesMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.xml")
	if err := WriteFileAtomic(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("y"), 0o600)
}

// TestWriteFileAtomicFailureKeepsOld makes each step of a write fail and
// checks that the old file is intact and no temporary file remains.
func TestWriteFileAtomicFailureKeepsOld(t *testing.T) {
	injected := errors.New("injected failure")
	tests := []struct {
		name string
		// setup prepares dir (holding a.xml = "old") and returns the
		// target path to write.
		setup func(t *testing.T, dir string) string
		write func(io.Writer) error
		// is is an error the result must match.
		is error
	}{{
		name:  "writer fails before writing",
		setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "a.xml") },
		write: func(io.Writer) error { return injected },
		is:    injected,
	}, {
		name:  "writer fails half-way",
		setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "a.xml") },
		write: func(w io.Writer) error {
			if _, err := w.Write([]byte("<filter name='half")); err != nil {
				return err
			}
			return injected
		},
		is: injected,
	}, {
		name: "rename over a non-empty directory",
		setup: func(t *testing.T, dir string) string {
			target := filepath.Join(dir, "b.xml")
			if err := os.MkdirAll(filepath.Join(target, "inside"), 0o700); err != nil {
				t.Fatal(err)
			}
			return target
		},
		write: func(w io.Writer) error { _, err := w.Write([]byte("new")); return err },
	}, {
		name:  "directory missing",
		setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "missing", "a.xml") },
		write: func(w io.Writer) error { _, err := w.Write([]byte("new")); return err },
		is:    fs.ErrNotExist,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			old := filepath.Join(dir, "a.xml")
			if err := WriteFileAtomic(old, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := names(t, dir)
			target := tt.setup(t, dir)
			want := names(t, dir)

			err := writeAtomic(target, 0o600, tt.write)
			if err == nil {
				t.Fatal("write succeeded, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), target) {
				t.Errorf("error %q does not name %s", err, target)
			}
			checkFile(t, old, []byte("old"), 0o600)
			if got := names(t, dir); !slices.Equal(got, want) {
				t.Errorf("directory holds %q after the failure, want %q (before setup: %q)", got, want, before)
			}
		})
	}
}

func TestRemoveFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.xml")
	if err := WriteFileAtomic(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still there after RemoveFile (%v)", path, err)
	}

	err := RemoveFile(path)
	if !IsNotFound(err) || !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveFile of a missing file = %v, want a not-found error", err)
	}
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestIsTempFile(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{".a.xml.tmp-123", true},
		{".clean-traffic.xml.tmp-4242", true},
		{".a.b.xml.tmp-x", true},
		{"a.xml.tmp-123", false},   // not hidden
		{".a.xml.tmp-", false},     // no random part
		{"..xml.tmp-1", false},     // empty name
		{".a.conf.tmp-1", false},   // another extension
		{".a.xml", false},          // no infix
		{".keep", false},           // unrelated dot file
		{"a.xml", false},           // a definition
		{".a.xmlx.tmp-1", false},   // extension does not end the target
		{".tmp-1.xml.tmp-2", true}, // odd but ours
	}
	for _, tt := range tests {
		if got := isTempFile(tt.name, ".xml"); got != tt.want {
			t.Errorf("isTempFile(%q, .xml) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
