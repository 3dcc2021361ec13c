// Package dbusapi is netwardend's D-Bus API: the objects it exports on the
// system bus, their introspection data and error names, the bus name it
// owns, and a small client for the same API.
//
// The daemon exports its objects first and takes its name second, so that
// the objects exist the moment a client sees the name:
//
//	srv, err := dbusapi.Export(conn, core) // core implements dbusapi.Manager
//	if err != nil { … }
//	defer srv.Unexport()
//	if err := dbusapi.RequestName(ctx, conn); err != nil {
//		var taken *dbusapi.NameTakenError
//		if errors.As(err, &taken) { … another daemon runs: taken.Owner, taken.PID }
//	}
//
// The object at ObjectPath implements org.freedesktop.DBus.Introspectable,
// org.freedesktop.DBus.Peer, org.freedesktop.DBus.Properties and
// ManagerInterface. Property values are read from the Manager at every
// Get or GetAll, so they are never stale; when a value changes the daemon
// calls Server.PropertiesChanged.
//
// The package holds no state of the daemon and makes no decisions: it
// translates between D-Bus and the Manager interface that the daemon core
// implements. It does not authorise callers yet; methods that change
// something will ask polkit (package polkit) before calling the core.
package dbusapi
