package daemon

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/policy/builtin"
	"github.com/netwarden/netwarden/store"
)

// Filters is the daemon's catalogue of network filters: the built-ins,
// and the user's definitions kept in CONFIG/nwfilter/<name>.xml.
//
// Every change is validated completely before it touches the disk, is
// written atomically, and reaches the in-memory registry only once it is
// on disk; changes are serialised by the registry. Filters knows nothing
// of bindings or of the kernel: Undefine takes the ports of the bindings
// that use a filter from its caller.
type Filters struct {
	reg *policy.Registry
	dir *store.Dir
	log *slog.Logger
}

// OpenFilters loads the built-in filters and the definitions stored under
// configDir/nwfilter. A stored file that cannot be parsed, whose name
// does not match its <name>, or that would close a reference cycle is
// logged and skipped, never changed or removed.
func OpenFilters(configDir string, log *slog.Logger) (*Filters, error) {
	var builtins []*policy.Filter
	for _, name := range builtin.Names() {
		f, err := policy.ParseFilter(builtin.Files()[name])
		if err != nil {
			return nil, fmt.Errorf("built-in filter %s: %w", name, err)
		}
		builtins = append(builtins, f)
	}
	reg, err := policy.NewRegistry(builtins)
	if err != nil {
		return nil, err
	}
	dir, err := store.OpenDir(filepath.Join(configDir, "nwfilter"), ".xml")
	if err != nil {
		return nil, fmt.Errorf("filter definitions: %w", err)
	}
	s := &Filters{reg: reg, dir: dir, log: log}
	loaded, problems := dir.Load(func(name string, data []byte) error {
		f, err := policy.ParseFilter(data)
		if err != nil {
			return err
		}
		if f.Name != name {
			return fmt.Errorf("file is named %q but defines filter %q", name, f.Name)
		}
		_, _, err = reg.Define(f, nil)
		return err
	})
	for _, p := range problems {
		log.Warn("skipping stored filter definition", "file", p.Path, "error", p.Err)
	}
	log.Info("filters loaded", "builtin", len(builtins), "stored", loaded, "skipped", len(problems))
	return s, nil
}

// Registry returns the registry, the Resolver instantiation uses.
func (s *Filters) Registry() *policy.Registry { return s.reg }

// Define parses, validates and stores a filter definition, replacing any
// definition of the same name. It returns the stored definition (with its
// UUID) and whether the name was new.
func (s *Filters) Define(xml []byte) (*policy.Filter, bool, error) {
	f, err := policy.ParseFilter(xml)
	if err != nil {
		return nil, false, err
	}
	def, created, err := s.reg.Define(f, func(def *policy.Filter) error {
		data, err := def.FormatXML()
		if err != nil {
			return fmt.Errorf("filter %q: format: %w", def.Name, err)
		}
		return s.dir.Put(def.Name, data)
	})
	if err != nil {
		return nil, false, err
	}
	s.log.Info("filter defined", "name", def.Name, "uuid", def.UUID, "new", created)
	return def, created, nil
}

// Undefine removes the user's definition of name (bringing back a
// built-in it overrode). bindings are the ports whose bindings reference
// name directly; while there are any, or while other filters reference
// it, it is refused.
func (s *Filters) Undefine(name string, bindings []string) error {
	err := s.reg.Undefine(name, bindings, func() error {
		return s.dir.Delete(name)
	})
	if err != nil {
		return err
	}
	s.log.Info("filter undefined", "name", name, "builtin_restored", s.reg.Origin(name) == policy.BuiltIn)
	return nil
}
