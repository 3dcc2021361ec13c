package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/netwarden/netwarden/internal/uuid"
)

// Registry holds the defined filters: the built-ins, and the user's
// definitions, which may override a built-in of the same name. It keeps
// the filter graph a DAG and names and UUIDs unique, and is safe for
// concurrent use; definitions are immutable once stored (callers must
// not change a *Filter they passed in or got back).
//
// The registry does not persist anything and does not know about
// bindings: Define and Undefine take a commit function that the caller
// uses to persist the change, run under the registry's lock so that
// changes are serialised and the in-memory state changes only when the
// commit succeeded.
type Registry struct {
	mu      sync.RWMutex
	builtin map[string]*Filter
	user    map[string]*Filter
}

// NewRegistry returns a registry with the given built-in filters.
func NewRegistry(builtins []*Filter) (*Registry, error) {
	r := &Registry{builtin: map[string]*Filter{}, user: map[string]*Filter{}}
	for _, f := range builtins {
		if f.UUID == "" {
			return nil, fmt.Errorf("built-in filter %q has no UUID", f.Name)
		}
		if _, dup := r.builtin[f.Name]; dup {
			return nil, fmt.Errorf("built-in filter %q defined twice", f.Name)
		}
		r.builtin[f.Name] = f
	}
	return r, nil
}

// Filter returns the effective definition of name: the user's, else the
// built-in. It makes a Registry a Resolver.
func (r *Registry) Filter(name string) (*Filter, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lookup(name)
}

func (r *Registry) lookup(name string) (*Filter, bool) {
	if f, ok := r.user[name]; ok {
		return f, true
	}
	f, ok := r.builtin[name]
	return f, ok
}

// LookupUUID returns the effective filter with the given UUID.
func (r *Registry) LookupUUID(uuid string) (*Filter, bool) {
	uuid = strings.ToLower(uuid)
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, name := range r.namesLocked() {
		f, _ := r.lookup(name)
		if f.UUID == uuid {
			return f, true
		}
	}
	return nil, false
}

// Names returns the names of all effective filters, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Registry) namesLocked() []string {
	seen := make(map[string]bool, len(r.builtin)+len(r.user))
	for n := range r.builtin {
		seen[n] = true
	}
	for n := range r.user {
		seen[n] = true
	}
	return sortedKeys(seen)
}

// Origin tells where the effective definition of a filter comes from.
type Origin int

// Origins of a filter definition.
const (
	// NotDefined: no such filter.
	NotDefined Origin = iota
	// BuiltIn: the shipped definition.
	BuiltIn
	// UserDefined: the user's definition of a name no built-in has.
	UserDefined
	// Overridden: the user's definition of a built-in's name; undefining
	// it brings the built-in back.
	Overridden
)

// Origin reports where name's effective definition comes from.
func (r *Registry) Origin(name string) Origin {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, u := r.user[name]
	_, b := r.builtin[name]
	switch {
	case u && b:
		return Overridden
	case u:
		return UserDefined
	case b:
		return BuiltIn
	}
	return NotDefined
}

// Users returns the filters whose effective definition references name
// directly, sorted.
func (r *Registry) Users(name string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.usersLocked(name)
}

func (r *Registry) usersLocked(name string) []string {
	var users []string
	for _, n := range r.namesLocked() {
		f, _ := r.lookup(n)
		for _, ref := range f.References() {
			if ref == name {
				users = append(users, n)
				break
			}
		}
	}
	return users
}

// Dependents returns name and every filter that reaches it through
// references, sorted: the filters whose instantiations change when name
// changes.
func (r *Registry) Dependents(name string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[string]bool{name: true}
	queue := []string{name}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, u := range r.usersLocked(n) {
			if !seen[u] {
				seen[u] = true
				queue = append(queue, u)
			}
		}
	}
	return sortedKeys(seen)
}

// Errors of Define and Undefine; test for them with errors.Is.
var (
	// ErrCycle: the definition would make the filter graph cyclic.
	ErrCycle = errors.New("filter reference cycle")
	// ErrConflict: the name or UUID belongs to another filter.
	ErrConflict = errors.New("filter name or UUID conflict")
	// ErrInUse: the filter is referenced by filters or bindings.
	ErrInUse = errors.New("filter in use")
	// ErrNotFound: no such filter.
	ErrNotFound = errors.New("no such filter")
	// ErrBuiltIn: a built-in filter that is not overridden cannot be
	// undefined.
	ErrBuiltIn = errors.New("built-in filter")
)

// GraphError explains a refused Define or Undefine; it wraps one of the
// Err values above.
type GraphError struct {
	// Kind is ErrCycle, ErrConflict, ErrInUse, ErrNotFound or ErrBuiltIn.
	Kind error
	// Filter is the filter being defined or undefined.
	Filter string
	// Cycle is the reference path that closes the cycle (ErrCycle),
	// starting and ending with Filter.
	Cycle []string
	// Filters and Bindings are the users (ErrInUse).
	Filters, Bindings []string
	// Detail says more (ErrConflict and others).
	Detail string
}

// Error implements error.
func (e *GraphError) Error() string {
	switch e.Kind {
	case ErrCycle:
		return fmt.Sprintf("filter %q: references form a cycle: %s", e.Filter, strings.Join(e.Cycle, " → "))
	case ErrInUse:
		var users []string
		if len(e.Filters) > 0 {
			users = append(users, "filters "+strings.Join(e.Filters, ", "))
		}
		if len(e.Bindings) > 0 {
			users = append(users, "bindings on "+strings.Join(e.Bindings, ", "))
		}
		return fmt.Sprintf("filter %q is in use by %s", e.Filter, strings.Join(users, " and "))
	}
	return fmt.Sprintf("filter %q: %s", e.Filter, e.Detail)
}

// Unwrap returns the kind, for errors.Is.
func (e *GraphError) Unwrap() error { return e.Kind }

// Define adds or replaces a user definition. A definition without a UUID
// keeps the UUID of the filter it replaces (built-in included) or gets a
// new random one. It is refused if its UUID differs from the one the
// name already has, if its UUID belongs to a filter of another name, or
// if it would create a reference cycle (self-references included); a
// reference to a filter that is not defined is allowed. commit (may be
// nil) runs under the lock with the final definition; if it fails,
// nothing changes. Define returns the stored definition and whether the
// name was new.
func (r *Registry) Define(f *Filter, commit func(*Filter) error) (*Filter, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	def := *f
	def.UUID = strings.ToLower(def.UUID)
	old, exists := r.lookup(def.Name)
	switch {
	case exists && def.UUID == "":
		def.UUID = old.UUID
	case exists && def.UUID != old.UUID:
		return nil, false, &GraphError{Kind: ErrConflict, Filter: def.Name,
			Detail: fmt.Sprintf("already defined with UUID %s, not %s", old.UUID, def.UUID)}
	case def.UUID == "":
		id, err := uuid.New()
		if err != nil {
			return nil, false, fmt.Errorf("filter %q: %w", def.Name, err)
		}
		def.UUID = id
	}
	for _, n := range r.namesLocked() {
		other, _ := r.lookup(n)
		if n != def.Name && other.UUID == def.UUID {
			return nil, false, &GraphError{Kind: ErrConflict, Filter: def.Name,
				Detail: fmt.Sprintf("UUID %s already belongs to filter %q", def.UUID, n)}
		}
	}
	if cycle := r.findCycle(&def); cycle != nil {
		return nil, false, &GraphError{Kind: ErrCycle, Filter: def.Name, Cycle: cycle}
	}
	if commit != nil {
		if err := commit(&def); err != nil {
			return nil, false, err
		}
	}
	r.user[def.Name] = &def
	return &def, !exists, nil
}

// findCycle returns a reference path from def back to itself, if the
// graph with def in place would have one.
func (r *Registry) findCycle(def *Filter) []string {
	get := func(name string) (*Filter, bool) {
		if name == def.Name {
			return def, true
		}
		return r.lookup(name)
	}
	visited := map[string]bool{}
	var path []string
	var dfs func(name string) bool
	dfs = func(name string) bool {
		path = append(path, name)
		f, ok := get(name)
		if ok {
			for _, ref := range f.References() {
				if ref == def.Name {
					path = append(path, ref)
					return true
				}
				if !visited[ref] {
					visited[ref] = true
					if dfs(ref) {
						return true
					}
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if dfs(def.Name) {
		return path
	}
	return nil
}

// Undefine removes the user's definition of name; a built-in it
// overrode becomes effective again. It is refused while other filters
// reference name (unless a built-in takes its place) or bindings (given
// by the caller: the ports whose binding references name directly) use
// it; the error lists them. A built-in that is not overridden cannot be
// undefined. commit (may be nil) runs under the lock; if it fails,
// nothing changes.
func (r *Registry) Undefine(name string, bindings []string, commit func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.user[name]; !ok {
		if _, ok := r.builtin[name]; ok {
			return &GraphError{Kind: ErrBuiltIn, Filter: name, Detail: "is built in and cannot be undefined (define a filter of the same name to override it)"}
		}
		return &GraphError{Kind: ErrNotFound, Filter: name, Detail: "is not defined"}
	}
	if _, restoring := r.builtin[name]; !restoring {
		users := r.usersLocked(name)
		if len(users) > 0 || len(bindings) > 0 {
			b := append([]string(nil), bindings...)
			sort.Strings(b)
			return &GraphError{Kind: ErrInUse, Filter: name, Filters: users, Bindings: b}
		}
	}
	if commit != nil {
		if err := commit(); err != nil {
			return err
		}
	}
	delete(r.user, name)
	return nil
}
