// Package store keeps netwarden's definitions and runtime state on disk so
// that they survive a crash or a restart of the daemon.
//
//	filters, err := store.OpenDir("/etc/netwarden/nwfilter", ".xml")
//	if err != nil {
//		return err
//	}
//	// At start-up: hand every definition to the parser. A file that does
//	// not parse is reported and left exactly as it is.
//	n, problems := filters.Load(func(name string, data []byte) error {
//		f, err := policy.ParseFilter(data)
//		if err != nil {
//			return err
//		}
//		if f.Name != name {
//			return fmt.Errorf("defines filter %q, not %q", f.Name, name)
//		}
//		return defs.Add(f)
//	})
//	for _, p := range problems {
//		log.Warn("definition not loaded", "path", p.Path, "err", p.Err)
//	}
//	log.Info("definitions loaded", "count", n)
//
//	// On nwfilter-define and nwfilter-undefine:
//	err = filters.Put("clean-traffic", xmlBytes) // clean-traffic.xml, mode 0600
//	err = filters.Delete("clean-traffic")        // store.IsNotFound(err) if absent
//
// Every write is atomic: the data goes to a temporary file in the same
// directory, which is synced, renamed over the target and followed by a sync
// of the directory (WriteFileAtomic). A reader, or a daemon restarted after
// a crash at any moment, sees either the old file or the new one, never a
// mixture or a truncated file. Temporary files are named
// ".<target>.tmp-<random>"; a crash can leave one behind, and OpenDir
// removes those of its directory.
//
// A Dir holds one kind of definition (networks, filters, bindings, …), one
// file per object, named after the object. Names are checked by
// ValidateName before they become file names.
//
// The package does not parse, validate or cache the contents of the files:
// that belongs to the callers (policy, network, daemon). It does not lock
// the directory against other processes either; netwardend is the only
// writer, guaranteed by its ownership of the bus name.
package store
