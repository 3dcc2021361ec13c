package dbusapi

import (
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// Manager is the daemon core as the org.netwarden1.Manager object sees
// it. The object's properties and (in later versions) methods call it.
// Calls arrive on D-Bus goroutines, concurrently: an implementation must
// be safe for that.
type Manager interface {
	// Version returns the daemon's version, served as the read-only,
	// constant Version property.
	Version() string
}

// managerObject is exported as ManagerInterface. Its exported methods
// that return *dbus.Error become the interface's D-Bus methods; there are
// none yet. Each one added here needs its entry in managerSpec.
type managerObject struct {
	m Manager
}

// managerSpec is the introspection and property table of
// ManagerInterface.
func managerSpec(m Manager) ifaceSpec {
	return ifaceSpec{
		name: ManagerInterface,
		props: []property{
			readOnlyProperty("Version", emitsConst, m.Version),
		},
	}
}

// Server is netwardend's API exported on one bus connection. It is made
// by Export and ends with Unexport; it does not own the connection.
type Server struct {
	conn  *dbus.Conn
	props *properties
}

// Export exports the manager object at ObjectPath on conn, serving m.
// It does not take BusName: call RequestName after Export, so the
// object is there as soon as clients can see the name.
func Export(conn *dbus.Conn, m Manager) (*Server, error) {
	if m == nil {
		return nil, errors.New("export API: no Manager")
	}
	specs := append(standardSpecs(), managerSpec(m))
	xmlDoc, err := introspectionXML(specs)
	if err != nil {
		return nil, fmt.Errorf("export API: %w", err)
	}
	s := &Server{
		conn:  conn,
		props: &properties{path: ObjectPath, ifaces: specs, emit: conn},
	}
	exports := []struct {
		v     any
		iface string
	}{
		{introspect.Introspectable(xmlDoc), introspectableInterface},
		{s.props, propertiesInterface},
		{&managerObject{m: m}, ManagerInterface},
	}
	for _, e := range exports {
		if err := conn.Export(e.v, ObjectPath, e.iface); err != nil {
			s.Unexport()
			return nil, fmt.Errorf("export %s on %s: %w", e.iface, ObjectPath, err)
		}
	}
	// org.freedesktop.DBus.Peer is answered by the connection itself.
	return s, nil
}

// Unexport removes the exported objects from the connection. Calls
// already being handled finish; later ones fail with UnknownInterface.
// It is safe to call more than once.
func (s *Server) Unexport() {
	for _, iface := range []string{introspectableInterface, propertiesInterface, ManagerInterface} {
		// Export(nil, …) only fails for an invalid path, and ours is valid.
		_ = s.conn.Export(nil, ObjectPath, iface)
	}
}

// PropertiesChanged emits org.freedesktop.DBus.Properties.PropertiesChanged
// for the named properties of iface on the manager object, with their
// current values. Naming a constant property is an error.
func (s *Server) PropertiesChanged(iface string, names ...string) error {
	return s.props.changed(iface, names...)
}
