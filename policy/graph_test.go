package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func mustParse(t testing.TB, doc string) *Filter {
	t.Helper()
	f, err := ParseFilter([]byte(doc))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, doc)
	}
	return f
}

func refFilter(name string, refs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<filter name='%s' chain='root'>", name)
	for _, r := range refs {
		fmt.Fprintf(&b, "<filterref filter='%s'/>", r)
	}
	b.WriteString("</filter>")
	return b.String()
}

func newTestRegistry(t testing.TB, builtins ...string) *Registry {
	t.Helper()
	var fs []*Filter
	for i, d := range builtins {
		f := mustParse(t, d)
		f.UUID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		fs = append(fs, f)
	}
	r, err := NewRegistry(fs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDefineRefusesCycles(t *testing.T) {
	tests := []struct {
		name  string
		defs  []string // defined first, in order
		next  string   // the definition that closes a cycle
		cycle string
	}{
		{name: "self reference", next: refFilter("a", "a"), cycle: "a → a"},
		{name: "two filters", defs: []string{refFilter("b", "a")}, next: refFilter("a", "b"), cycle: "a → b → a"},
		{name: "three filters", defs: []string{refFilter("b", "c"), refFilter("c", "a")}, next: refFilter("a", "x", "b"), cycle: "a → b → c → a"},
		{name: "redefinition", defs: []string{refFilter("a"), refFilter("b", "a")}, next: refFilter("a", "b"), cycle: "a → b → a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRegistry(t)
			for _, d := range tt.defs {
				if _, _, err := r.Define(mustParse(t, d), nil); err != nil {
					t.Fatalf("define %s: %v", d, err)
				}
			}
			before := r.Names()
			_, _, err := r.Define(mustParse(t, tt.next), nil)
			var ge *GraphError
			if !errors.As(err, &ge) || !errors.Is(err, ErrCycle) {
				t.Fatalf("err %v: want ErrCycle", err)
			}
			if got := strings.Join(ge.Cycle, " → "); got != tt.cycle {
				t.Fatalf("cycle %q, want %q", got, tt.cycle)
			}
			if strings.Join(r.Names(), ",") != strings.Join(before, ",") {
				t.Fatalf("refused define changed the registry: %v → %v", before, r.Names())
			}
		})
	}
}

func TestDefineUndefinedReferenceAllowed(t *testing.T) {
	r := newTestRegistry(t)
	if _, created, err := r.Define(mustParse(t, refFilter("a", "later")), nil); err != nil || !created {
		t.Fatalf("define with undefined reference: created %v, err %v", created, err)
	}
}

func TestUUIDRules(t *testing.T) {
	r := newTestRegistry(t, refFilter("builtin"))
	a, created, err := r.Define(mustParse(t, refFilter("a")), nil)
	if err != nil || !created || len(a.UUID) != 36 {
		t.Fatalf("define a: %+v %v %v", a, created, err)
	}
	// Redefining keeps the UUID.
	a2, created, err := r.Define(mustParse(t, refFilter("a", "builtin")), nil)
	if err != nil || created || a2.UUID != a.UUID {
		t.Fatalf("redefine a: uuid %s (was %s), created %v, err %v", a2.UUID, a.UUID, created, err)
	}
	// The same name with another UUID is refused.
	other := mustParse(t, refFilter("a"))
	other.UUID = "11111111-2222-4333-8444-555555555555"
	if _, _, err := r.Define(other, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("name with another UUID: err %v, want ErrConflict", err)
	}
	// A known UUID under another name is refused.
	stolen := mustParse(t, refFilter("b"))
	stolen.UUID = strings.ToUpper(a.UUID)
	if _, _, err := r.Define(stolen, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("UUID of another filter: err %v, want ErrConflict", err)
	}
	// Overriding a built-in keeps its UUID.
	bi, _ := r.Filter("builtin")
	ov, created, err := r.Define(mustParse(t, refFilter("builtin")), nil)
	if err != nil || created || ov.UUID != bi.UUID {
		t.Fatalf("override: %+v %v %v", ov, created, err)
	}
	if f, ok := r.LookupUUID(bi.UUID); !ok || f != ov {
		t.Fatalf("LookupUUID after override: %v %v", f, ok)
	}
}

func TestUndefine(t *testing.T) {
	r := newTestRegistry(t, refFilter("builtin"))
	for _, d := range []string{refFilter("leaf"), refFilter("mid", "leaf"), refFilter("top", "mid")} {
		if _, _, err := r.Define(mustParse(t, d), nil); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Undefine("leaf", []string{"vnet7", "vnet3"}, nil)
	var ge *GraphError
	if !errors.As(err, &ge) || !errors.Is(err, ErrInUse) {
		t.Fatalf("undefine used filter: %v, want ErrInUse", err)
	}
	if strings.Join(ge.Filters, ",") != "mid" || strings.Join(ge.Bindings, ",") != "vnet3,vnet7" {
		t.Fatalf("users %v / %v, want mid / vnet3,vnet7", ge.Filters, ge.Bindings)
	}
	if err := r.Undefine("top", []string{"vnet1"}, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("undefine filter used by a binding: %v", err)
	}
	if err := r.Undefine("top", nil, nil); err != nil {
		t.Fatalf("undefine unused: %v", err)
	}
	if _, ok := r.Filter("top"); ok {
		t.Fatal("top still defined")
	}
	if err := r.Undefine("top", nil, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("undefine twice: %v, want ErrNotFound", err)
	}
	if err := r.Undefine("builtin", nil, nil); !errors.Is(err, ErrBuiltIn) {
		t.Fatalf("undefine built-in: %v, want ErrBuiltIn", err)
	}
	// An override can go, even in use: the built-in takes its place.
	if _, _, err := r.Define(mustParse(t, refFilter("builtin", "leaf")), nil); err != nil {
		t.Fatal(err)
	}
	if r.Origin("builtin") != Overridden {
		t.Fatalf("origin %v, want Overridden", r.Origin("builtin"))
	}
	if err := r.Undefine("builtin", []string{"vnet0"}, nil); err != nil {
		t.Fatalf("undefine override: %v", err)
	}
	if f, _ := r.Filter("builtin"); len(f.References()) != 0 || r.Origin("builtin") != BuiltIn {
		t.Fatal("built-in not restored")
	}
}

func TestCommitFailureChangesNothing(t *testing.T) {
	r := newTestRegistry(t)
	boom := errors.New("disk full")
	if _, _, err := r.Define(mustParse(t, refFilter("a")), func(*Filter) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v, want the commit's", err)
	}
	if _, ok := r.Filter("a"); ok {
		t.Fatal("filter defined although its commit failed")
	}
	if _, _, err := r.Define(mustParse(t, refFilter("a")), nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Undefine("a", nil, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v, want the commit's", err)
	}
	if _, ok := r.Filter("a"); !ok {
		t.Fatal("filter removed although its commit failed")
	}
}

func TestDependents(t *testing.T) {
	r := newTestRegistry(t)
	for _, d := range []string{refFilter("leaf"), refFilter("mid", "leaf"), refFilter("top", "mid"), refFilter("other")} {
		if _, _, err := r.Define(mustParse(t, d), nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(r.Dependents("leaf"), ","); got != "leaf,mid,top" {
		t.Fatalf("dependents %s", got)
	}
}

func TestConcurrentDefines(t *testing.T) {
	r := newTestRegistry(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, err := r.Define(mustParse(t, refFilter(fmt.Sprintf("f%02d", i), fmt.Sprintf("f%02d", (i+1)%50))), nil)
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	refused := 0
	for err := range errs {
		if err != nil {
			if !errors.Is(err, ErrCycle) {
				t.Fatal(err)
			}
			refused++
		}
	}
	// f00 → f01 → … → f49 → f00: exactly the last definition to arrive
	// closes the ring and is refused.
	if refused != 1 || len(r.Names()) != 49 {
		t.Fatalf("refused %d, defined %d; want 1 and 49", refused, len(r.Names()))
	}
}
