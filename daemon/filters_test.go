package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/netwarden/netwarden/policy"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openFilters(t *testing.T, dir string) *Filters {
	t.Helper()
	s, err := OpenFilters(dir, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFiltersBuiltinsLoad(t *testing.T) {
	s := openFilters(t, t.TempDir())
	want := map[string]string{
		"clean-traffic":   "db0b1767-d62b-269b-ea96-0cc8b451144e",
		"no-ip-spoofing":  "7ee20370-8106-765d-f7ff-8a60d5aaf30b",
		"allow-dhcpv6":    "7680776c-77aa-496f-90d6-13097664b925",
		"no-mac-spoofing": "fb57c546-76dc-a372-513f-e8179011b48a",
	}
	if n := len(s.Registry().Names()); n != 24 {
		t.Fatalf("%d filters, want the 24 built-ins", n)
	}
	for name, uuid := range want {
		f, ok := s.Registry().Filter(name)
		if !ok || f.UUID != uuid {
			t.Errorf("%s: %v %v, want UUID %s", name, f, ok, uuid)
		}
	}
}

func TestFiltersDefinePersists(t *testing.T) {
	dir := t.TempDir()
	s := openFilters(t, dir)
	def, created, err := s.Define([]byte(`<filter name='web' chain='ipv4'><rule action='accept' direction='in'><tcp dstportstart='80'/></rule></filter>`))
	if err != nil || !created || def.UUID == "" {
		t.Fatalf("define: %+v %v %v", def, created, err)
	}
	path := filepath.Join(dir, "nwfilter", "web.xml")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	// A new daemon finds the definition with the same UUID.
	again := openFilters(t, dir)
	f, ok := again.Registry().Filter("web")
	if !ok || f.UUID != def.UUID {
		t.Fatalf("after reopen: %+v %v, want UUID %s", f, ok, def.UUID)
	}
	// Invalid input stores nothing and changes nothing.
	before, _ := os.ReadFile(path)
	if _, _, err := s.Define([]byte(`<filter name='web'><rule action='accept' direction='in'><tcp dstportstart='70000'/></rule></filter>`)); !policy.IsValidationError(err) {
		t.Fatalf("bad port: %v, want a validation error", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a refused define changed the stored file")
	}
	if err := s.Undefine("web", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file still there after undefine: %v", err)
	}
}

func TestFiltersBadFilesSkipped(t *testing.T) {
	dir := t.TempDir()
	s := openFilters(t, dir)
	if _, _, err := s.Define([]byte(`<filter name='good'/>`)); err != nil {
		t.Fatal(err)
	}
	nw := filepath.Join(dir, "nwfilter")
	files := map[string]string{
		"corrupt.xml":  "<filter name='corrupt'><rule",
		"misnamed.xml": "<filter name='other'/>",
		"badport.xml":  "<filter name='badport'><rule action='accept' direction='in'><tcp dstportstart='99999'/></rule></filter>",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(nw, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	again := openFilters(t, dir)
	for _, name := range []string{"corrupt", "misnamed", "other", "badport"} {
		if _, ok := again.Registry().Filter(name); ok {
			t.Errorf("%s loaded", name)
		}
	}
	if _, ok := again.Registry().Filter("good"); !ok {
		t.Error("good filter not loaded")
	}
	for name, text := range files {
		got, err := os.ReadFile(filepath.Join(nw, name))
		if err != nil || string(got) != text {
			t.Errorf("%s changed or removed: %q, %v", name, got, err)
		}
	}
}

func TestFiltersOverrideBuiltin(t *testing.T) {
	dir := t.TempDir()
	s := openFilters(t, dir)
	builtinDef, _ := s.Registry().Filter("no-mac-broadcast")
	def, created, err := s.Define([]byte(`<filter name='no-mac-broadcast' chain='mac'><rule action='drop' direction='out'><mac dstmacaddr='ff:ff:ff:ff:ff:ff'/></rule></filter>`))
	if err != nil || created || def.UUID != builtinDef.UUID {
		t.Fatalf("override: %+v created=%v err=%v", def, created, err)
	}
	// The override survives a restart.
	again := openFilters(t, dir)
	if f, _ := again.Registry().Filter("no-mac-broadcast"); f.Chain != "mac" {
		t.Fatalf("after restart chain %q, want the override's", f.Chain)
	}
	if err := again.Undefine("no-mac-broadcast", nil); err != nil {
		t.Fatal(err)
	}
	if f, _ := again.Registry().Filter("no-mac-broadcast"); f.Chain != builtinDef.Chain {
		t.Fatalf("after undefine chain %q, want the built-in's %q", f.Chain, builtinDef.Chain)
	}
	if third := openFilters(t, dir); third.Registry().Origin("no-mac-broadcast") != policy.BuiltIn {
		t.Fatal("override came back after restart")
	}
}

func TestFiltersConcurrentDefines(t *testing.T) {
	dir := t.TempDir()
	s := openFilters(t, dir)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			doc := fmt.Sprintf(`<filter name='f%02d' chain='root'><rule action='drop' direction='in'><tcp dstportstart='%d'/></rule></filter>`, i, 1000+i)
			if _, _, err := s.Define([]byte(doc)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	again := openFilters(t, dir)
	for i := 0; i < 50; i++ {
		if _, ok := again.Registry().Filter(fmt.Sprintf("f%02d", i)); !ok {
			t.Errorf("f%02d lost", i)
		}
	}
}
