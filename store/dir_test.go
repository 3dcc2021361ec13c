package store_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netwarden/netwarden/store"
)

// definition returns a small filter definition called name, padded with
// rules to about size bytes.
func definition(name string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<filter name='%s' chain='root'>\n", name)
	for i := 0; b.Len() < size-len("</filter>\n"); i++ {
		fmt.Fprintf(&b, "  <rule action='accept' direction='out' priority='%d'><ip srcipaddr='10.0.%d.%d'/></rule>\n", i, i/256%256, i%256)
	}
	b.WriteString("</filter>\n")
	return b.Bytes()
}

// parseFilter is a Load callback that accepts well-formed <filter> XML
// whose name attribute is the file's name, and records what it accepted.
func parseFilter(got map[string][]byte) func(string, []byte) error {
	return func(name string, data []byte) error {
		var f struct {
			XMLName xml.Name `xml:"filter"`
			Name    string   `xml:"name,attr"`
		}
		if err := xml.Unmarshal(data, &f); err != nil {
			return err
		}
		if f.Name != name {
			return fmt.Errorf("defines filter %q, not %q", f.Name, name)
		}
		got[name] = data
		return nil
	}
}

// entries returns the names in dir, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range des {
		out = append(out, e.Name())
	}
	return out
}

func openDir(t *testing.T) *store.Dir {
	t.Helper()
	d, err := store.OpenDir(filepath.Join(t.TempDir(), "nwfilter"), ".xml")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpenDirCreatesPrivateDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "netwarden", "nwfilter")
	d, err := store.OpenDir(path, ".xml")
	if err != nil {
		t.Fatal(err)
	}
	if d.Path() != path {
		t.Errorf("Path() = %q, want %q", d.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fs.ModeDir | 0o700; fi.Mode() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
	}
}

func TestOpenDirKeepsExistingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nwfilter")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "a.xml"), []byte("<filter name='a'/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenDir(path, ".xml"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fs.ModeDir | 0o755; fi.Mode() != want {
		t.Errorf("existing %s changed to mode %v, want %v", path, fi.Mode(), want)
	}
	if got := entries(t, path); !slices.Equal(got, []string{"a.xml"}) {
		t.Errorf("directory holds %q, want a.xml untouched", got)
	}
}

func TestOpenDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, ext string
	}{
		{"not a directory", file, ".xml"},
		{"below a file", filepath.Join(file, "sub"), ".xml"},
		{"empty extension", t.TempDir(), ""},
		{"extension without dot", t.TempDir(), "xml"},
		{"extension only a dot", t.TempDir(), "."},
		{"extension with slash", t.TempDir(), ".x/ml"},
		{"extension with NUL", t.TempDir(), ".x\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := store.OpenDir(tt.path, tt.ext)
			if err == nil {
				t.Fatalf("OpenDir(%q, %q) = %v, want an error", tt.path, tt.ext, d)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name %s", err, tt.path)
			}
		})
	}
}

// TestModesIgnoreUmask checks the modes of new directories and files under
// a umask that would take the owner's permissions away. It changes the
// process's umask, so it must not run in parallel.
func TestModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)

	path := filepath.Join(t.TempDir(), "bindings")
	d, err := store.OpenDir(path, ".xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("vnet0", []byte("<filterbinding/>")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(path, "other.conf")
	if err := store.WriteFileAtomic(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{
		path:            fs.ModeDir | 0o700,
		d.File("vnet0"): 0o600,
		other:           0o644,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestPut(t *testing.T) {
	d := openDir(t)
	if err := d.Put("clean-traffic", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put("clean-traffic", []byte("two")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Path(), "clean-traffic.xml")
	if d.File("clean-traffic") != path {
		t.Errorf("File = %q, want %q", d.File("clean-traffic"), path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "two" {
		t.Errorf("%s holds %q, want %q", path, got, "two")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode())
	}
	if got := entries(t, d.Path()); !slices.Equal(got, []string{"clean-traffic.xml"}) {
		t.Errorf("directory holds %q, want only clean-traffic.xml", got)
	}
	if data, err := d.Read("clean-traffic"); err != nil || string(data) != "two" {
		t.Errorf("Read = %q, %v; want %q", data, err, "two")
	}
}

func TestNameValidation(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"clean-traffic", true},
		{"no-ip-spoofing.v2", true},
		{"with space", true},
		{"-leading-dash", true},
		{"trailing.", true},
		{"ünïcödé", true},
		{strings.Repeat("x", store.MaxNameLen), true},
		{"", false},
		{strings.Repeat("x", store.MaxNameLen+1), false},
		{"a/b", false},
		{"/abs", false},
		{"../escape", false},
		{"a\x00b", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{".a.xml.tmp-1", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.name), func(t *testing.T) {
			d := openDir(t)
			check := func(op string, err error) {
				t.Helper()
				if tt.ok {
					if err != nil {
						t.Errorf("%s: %v", op, err)
					}
					return
				}
				if !errors.Is(err, store.ErrInvalidName) {
					t.Errorf("%s = %v, want an error matching ErrInvalidName", op, err)
				}
				var ne *store.NameError
				if !errors.As(err, &ne) || ne.Name != tt.name || ne.Reason == "" {
					t.Errorf("%s = %#v, want a *NameError for the name with a reason", op, err)
				}
			}
			check("ValidateName", store.ValidateName(tt.name))
			check("Put", d.Put(tt.name, []byte("x")))
			_, err := d.Read(tt.name)
			check("Read", err)
			check("Delete", d.Delete(tt.name))
			if got := entries(t, d.Path()); len(got) != 0 {
				t.Errorf("directory holds %q after Put and Delete, want nothing", got)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	d := openDir(t)
	for _, n := range []string{"a", "b"} {
		if err := d.Put(n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, d.Path()); !slices.Equal(got, []string{"b.xml"}) {
		t.Errorf("directory holds %q after Delete(a), want [b.xml]", got)
	}

	err := d.Delete("a")
	if !store.IsNotFound(err) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Delete(a) = %v, want a not-found error", err)
	}
	if err != nil && !strings.Contains(err.Error(), d.File("a")) {
		t.Errorf("error %q does not name %s", err, d.File("a"))
	}
	if _, err := d.Read("a"); !store.IsNotFound(err) {
		t.Errorf("Read of a deleted definition = %v, want a not-found error", err)
	}
}

func TestLoad(t *testing.T) {
	d := openDir(t)
	want := map[string][]byte{}
	for _, n := range []string{"allow-arp", "clean-traffic", "no-ip-spoofing"} {
		want[n] = definition(n, 300)
		if err := d.Put(n, want[n]); err != nil {
			t.Fatal(err)
		}
	}
	// Things that are not definitions and must be passed over in silence.
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(d.Path(), name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("README", "not a definition")
	write("allow-arp.xml.bak", "<filter name='allow-arp'/>")
	write("allow-arp.XML", "<filter name='allow-arp'/>")
	write(".hidden.xml", "<filter name='.hidden'/>")
	write(".allow-arp.xml.tmp-123", "<filter name='allow-ar") // a crashed write
	if err := os.Mkdir(filepath.Join(d.Path(), "subdir.xml"), 0o700); err != nil {
		t.Fatal(err)
	}

	got := map[string][]byte{}
	n, problems := d.Load(parseFilter(got))
	if n != len(want) || len(problems) != 0 {
		t.Errorf("Load = %d, %v; want %d, no problems", n, problems, len(want))
	}
	if len(got) != len(want) {
		t.Errorf("loaded %d definitions, want %d", len(got), len(want))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("%s: loaded %q, want %q", name, got[name], data)
		}
	}
}

// TestLoadKeepsBadFiles checks that files Load cannot load are reported
// with their path and left byte for byte, mode and time as they were.
func TestLoadKeepsBadFiles(t *testing.T) {
	d := openDir(t)
	if err := d.Put("good", []byte("<filter name='good'/>")); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"corrupt.xml":   []byte("<filter name='corrupt'><rule\x00 garbage"),
		"truncated.xml": []byte("<filter name='truncated'><rule action='acc"),
		"renamed.xml":   []byte("<filter name='someone-else'/>"),
		"empty.xml":     {},
		strings.Repeat("n", store.MaxNameLen+1) + ".xml": []byte("<filter name='long'/>"),
	}
	stamp := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, data := range bad {
		p := filepath.Join(d.Path(), name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	dangling := filepath.Join(d.Path(), "dangling.xml")
	if err := os.Symlink("nowhere.xml", dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(d.Path(), "fifo.xml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	before := entries(t, d.Path())

	got := map[string][]byte{}
	n, problems := d.Load(parseFilter(got))
	if n != 1 || got["good"] == nil {
		t.Errorf("Load accepted %d (%v), want only good", n, slices.Sorted(maps.Keys(got)))
	}
	var paths []string
	for _, p := range problems {
		paths = append(paths, p.Path)
		if p.Err == nil || !strings.HasPrefix(p.Error(), p.Path+": ") {
			t.Errorf("problem %q: Error() = %q, want the path and a reason", p.Path, p.Error())
		}
	}
	var wantPaths []string
	for name := range bad {
		wantPaths = append(wantPaths, filepath.Join(d.Path(), name))
	}
	wantPaths = append(wantPaths, dangling, fifo)
	slices.Sort(wantPaths)
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("problems at %q, want %q", paths, wantPaths)
	}

	if after := entries(t, d.Path()); !slices.Equal(after, before) {
		t.Errorf("directory holds %q after Load, want %q", after, before)
	}
	for name, data := range bad {
		p := filepath.Join(d.Path(), name)
		content, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(content, data) {
			t.Errorf("%s changed to %q, want %q", name, content, data)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o644 || !fi.ModTime().Equal(stamp) {
			t.Errorf("%s: mode %v, time %v; want 0644 and %v", name, fi.Mode(), fi.ModTime(), stamp)
		}
	}
}

func TestLoadProblemWrapsCallbackError(t *testing.T) {
	d := openDir(t)
	if err := d.Put("a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	sentinel := errors.New("unsupported element")
	_, problems := d.Load(func(string, []byte) error { return fmt.Errorf("rule 3: %w", sentinel) })
	if len(problems) != 1 || !errors.Is(problems[0], sentinel) || problems[0].Path != d.File("a") {
		t.Errorf("problems = %v, want one for %s matching the callback's error", problems, d.File("a"))
	}
}

func TestLoadMissingDir(t *testing.T) {
	d := openDir(t)
	if err := os.Remove(d.Path()); err != nil {
		t.Fatal(err)
	}
	n, problems := d.Load(func(string, []byte) error { return nil })
	if n != 0 || len(problems) != 1 || problems[0].Path != d.Path() || !errors.Is(problems[0].Err, fs.ErrNotExist) {
		t.Errorf("Load of a missing directory = %d, %v; want one problem for %s", n, problems, d.Path())
	}
}

// TestOpenDirRemovesTempFiles checks that OpenDir removes the temporary
// files a crash left behind, and only those.
func TestOpenDirRemovesTempFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nwfilter")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{ // name → kept by OpenDir
		".a.xml.tmp-123":           false,
		".clean-traffic.xml.tmp-9": false,
		"a.xml":                    true,
		".keep":                    true,
		".a.conf.tmp-1":            true, // not for our extension
		"notes.txt":                true,
		"a.xml.tmp-5":              true, // not hidden: not ours
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(path, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A directory with a temporary file's name is not ours either.
	if err := os.Mkdir(filepath.Join(path, ".b.xml.tmp-7"), 0o700); err != nil {
		t.Fatal(err)
	}
	files[".b.xml.tmp-7"] = true

	if _, err := store.OpenDir(path, ".xml"); err != nil {
		t.Fatal(err)
	}
	var want []string
	for name, kept := range files {
		if kept {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	if got := entries(t, path); !slices.Equal(got, want) {
		t.Errorf("after OpenDir the directory holds %q, want %q", got, want)
	}
}

// TestPutConcurrentDistinct has 50 goroutines Put 50 names at once; every
// definition must be there, whole.
func TestPutConcurrentDistinct(t *testing.T) {
	d := openDir(t)
	const n = 50
	want := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("filter-%02d", i)
		want[name] = definition(name, 4096)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for name, data := range want {
		wg.Go(func() { errs <- d.Put(name, data) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	got := map[string][]byte{}
	loaded, problems := d.Load(parseFilter(got))
	if loaded != n || len(problems) != 0 {
		t.Fatalf("Load = %d, %v; want %d, no problems", loaded, problems, n)
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("%s: stored %d bytes, not the %d put", name, len(got[name]), len(data))
		}
	}
	if got := entries(t, d.Path()); len(got) != n {
		t.Errorf("directory holds %d entries, want %d: %q", len(got), n, got)
	}
}

// TestPutConcurrentSame has 50 goroutines Put different definitions of the
// same name at once; what remains must be exactly one of them.
func TestPutConcurrentSame(t *testing.T) {
	d := openDir(t)
	const n = 50
	versions := make([][]byte, n)
	for i := range versions {
		// Same name, a different (and large) body each.
		versions[i] = append(definition("shared", 64<<10), fmt.Sprintf("<!-- version %d -->\n", i)...)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, v := range versions {
		wg.Go(func() { errs <- d.Put("shared", v) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	if got := entries(t, d.Path()); !slices.Equal(got, []string{"shared.xml"}) {
		t.Errorf("directory holds %q, want only shared.xml", got)
	}
	data, err := d.Read("shared")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, data) }) {
		t.Errorf("shared.xml (%d bytes) is none of the versions put", len(data))
	}
	got := map[string][]byte{}
	if loaded, problems := d.Load(parseFilter(got)); loaded != 1 || len(problems) != 0 {
		t.Errorf("Load = %d, %v; want 1, no problems", loaded, problems)
	}
}

// BenchmarkPut measures one durable replacement of a definition of about
// 2 KiB (write, fsync, rename, fsync of the directory).
func BenchmarkPut(b *testing.B) {
	d, err := store.OpenDir(filepath.Join(b.TempDir(), "nwfilter"), ".xml")
	if err != nil {
		b.Fatal(err)
	}
	data := definition("clean-traffic", 2048)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := d.Put("clean-traffic", data); err != nil {
			b.Fatal(err)
		}
	}
}
