package dbusapi

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
)

// The filter and binding objects are not exported one by one: one
// handler per interface serves the whole subtree below
// NWFilterPathPrefix (or NWFilterBindingPathPrefix), reads the path of
// each call from its message and asks the Manager what is there. An
// object therefore exists exactly while its filter or binding does, with
// nothing to keep in step.

// callPath returns the object path a call was made on.
func callPath(msg dbus.Message) dbus.ObjectPath {
	p, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	return p
}

// lookupFilterAt returns the filter whose object is path, or an
// UnknownObject error.
func (s *Server) lookupFilterAt(ctx context.Context, path dbus.ObjectPath) (Filter, error) {
	uuid, ok := nwfilterUUID(path)
	if !ok {
		return Filter{}, notFoundAt(path)
	}
	f, err := s.m.LookupFilterByUUID(ctx, uuid)
	if ErrorName(err) == ErrorNotFound || err == nil && NWFilterPath(f.UUID) != path {
		return Filter{}, notFoundAt(path)
	}
	return f, err
}

// lookupBindingAt returns the binding whose object is path, or an
// UnknownObject error.
func (s *Server) lookupBindingAt(ctx context.Context, path dbus.ObjectPath) (Binding, error) {
	port, ok := bindingPort(path)
	if !ok {
		return Binding{}, notFoundAt(path)
	}
	b, err := s.m.LookupBinding(ctx, port)
	if ErrorName(err) == ErrorNotFound {
		return Binding{}, notFoundAt(path)
	}
	return b, err
}

// objectSpec returns the netwarden interface of the object at path below
// root, with the current values of its properties, and the object's
// polkit details (those its path gives when it cannot be found).
func (s *Server) objectSpec(ctx context.Context, root, path dbus.ObjectPath) (ifaceSpec, details, error) {
	switch root {
	case NetworkPathPrefix:
		spec, d, ok, err := s.networkTreeSpec(ctx, path)
		if err == nil && !ok {
			err = dbus.NewError(ErrorUnknownInterface, []any{fmt.Sprintf("object %s has no properties", path)})
		}
		return spec, d, err
	case NWFilterPathPrefix:
		var f Filter
		d, err := s.filterAt(path, &f)(ctx)
		return nwfilterSpec(f), d, err
	}
	var b Binding
	d, err := s.bindingAt(path, &b)(ctx)
	return nwfilterBindingSpec(b), d, err
}

// readAction is the action reading the objects below root needs.
func readAction(root dbus.ObjectPath) string {
	switch root {
	case NetworkPathPrefix:
		return polkit.ActionNetworkRead
	case NWFilterPathPrefix:
		return polkit.ActionNWFilterRead
	}
	return polkit.ActionBindingRead
}

// filterAt returns a resolver for the filter at path, which it stores in
// *f.
func (s *Server) filterAt(path dbus.ObjectPath, f *Filter) resolver {
	return func(ctx context.Context) (details, error) {
		var err error
		if *f, err = s.lookupFilterAt(ctx, path); err != nil {
			uuid, _ := nwfilterUUID(path)
			return details{}.add(polkit.DetailNWFilterUUID, uuid), err
		}
		return filterDetails(*f), nil
	}
}

// bindingAt returns a resolver for the binding at path, which it stores
// in *b.
func (s *Server) bindingAt(path dbus.ObjectPath, b *Binding) resolver {
	return func(ctx context.Context) (details, error) {
		var err error
		if *b, err = s.lookupBindingAt(ctx, path); err != nil {
			port, _ := bindingPort(path)
			return details{}.add(polkit.DetailBindingPortDev, port), err
		}
		return bindingDetails(*b), nil
	}
}

// nwfilterObjects serves NWFilterInterface on every filter object. Its
// exported methods returning *dbus.Error are the interface's methods
// (see nwfilterSpec); dbus.Sender and dbus.Message parameters are filled
// in by godbus and are not part of the signature.
type nwfilterObjects struct {
	s *Server
}

// GetXMLDesc returns the filter's XML. No flags are defined (as in
// libvirt's virNWFilterGetXMLDesc).
func (o *nwfilterObjects) GetXMLDesc(sender dbus.Sender, msg dbus.Message, flags uint32) (string, *dbus.Error) {
	var xml string
	var f Filter
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNWFilterRead, o.s.filterAt(callPath(msg), &f), func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		xml = f.XML
		return nil
	})
	return xml, derr
}

// Undefine removes the filter's definition.
func (o *nwfilterObjects) Undefine(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	var f Filter
	return o.s.callOn(callerOf(sender, msg), polkit.ActionNWFilterManage, o.s.filterAt(callPath(msg), &f), func(ctx context.Context) error {
		if err := o.s.m.UndefineFilter(ctx, f.Name); err != nil {
			return err
		}
		var restored *Filter
		if r, err := o.s.m.LookupFilter(ctx, f.Name); err == nil {
			restored = &r
		}
		o.s.filterUndefined(f, restored)
		return nil
	})
}

// bindingObjects serves NWFilterBindingInterface on every binding
// object, like nwfilterObjects.
type bindingObjects struct {
	s *Server
}

// GetXMLDesc returns the binding's XML. No flags are defined (as in
// libvirt's virNWFilterBindingGetXMLDesc).
func (o *bindingObjects) GetXMLDesc(sender dbus.Sender, msg dbus.Message, flags uint32) (string, *dbus.Error) {
	var xml string
	var b Binding
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionBindingRead, o.s.bindingAt(callPath(msg), &b), func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		xml = b.XML
		return nil
	})
	return xml, derr
}

// Delete removes the binding.
func (o *bindingObjects) Delete(sender dbus.Sender, msg dbus.Message) *dbus.Error {
	path := callPath(msg)
	var b Binding
	return o.s.callOn(callerOf(sender, msg), polkit.ActionBindingManage, o.s.bindingAt(path, &b), func(ctx context.Context) error {
		if err := o.s.m.DeleteBinding(ctx, b.PortDev); err != nil {
			return err
		}
		o.s.signal(ObjectPath, objectManagerInterface+".InterfacesRemoved", path, []string{NWFilterBindingInterface})
		o.s.signal(ObjectPath, ManagerInterface+".NWFilterBindingEvent", path, NWFilterBindingEventDeleted)
		return nil
	})
}

// subtreeIntrospectable answers Introspect below root: at root itself
// with one child node per object, at an object with its interfaces.
// Introspection needs no authorization, as everywhere on the bus; it
// shows which objects exist (filter, network and port UUIDs and bound
// port names), not what they hold. Below NetworkPathPrefix a network's
// object has one child, "port", whose children are its ports.
type subtreeIntrospectable struct {
	s    *Server
	root dbus.ObjectPath
}

// Introspect implements org.freedesktop.DBus.Introspectable.
func (i *subtreeIntrospectable) Introspect(msg dbus.Message) (string, *dbus.Error) {
	ctx, cancel := context.WithTimeout(i.s.ctx, i.s.timeout)
	defer cancel()
	path := callPath(msg)
	var doc string
	var err error
	if i.root == NetworkPathPrefix {
		doc, err = i.s.introspectNetworkTree(ctx, path)
		return doc, dbusError(err)
	}
	if path == i.root {
		var children []string
		children, err = i.children(ctx)
		if err == nil {
			doc, err = introspectionXML([]ifaceSpec{introspectableSpec, peerSpec}, children...)
		}
	} else {
		var spec ifaceSpec
		spec, _, err = i.s.objectSpec(ctx, i.root, path)
		if err == nil {
			doc, err = introspectionXML(append(standardSpecs(), spec))
		}
	}
	return doc, dbusError(err)
}

// children returns the path elements of the objects below root.
func (i *subtreeIntrospectable) children(ctx context.Context) ([]string, error) {
	var names []string
	if i.root == NWFilterPathPrefix {
		fs, err := i.s.m.Filters(ctx)
		for _, f := range fs {
			names = append(names, string(NWFilterPath(f.UUID)[len(i.root)+1:]))
		}
		return names, err
	}
	bs, err := i.s.m.Bindings(ctx)
	for _, b := range bs {
		names = append(names, string(NWFilterBindingPath(b.PortDev)[len(i.root)+1:]))
	}
	return names, err
}

// subtreeProperties implements org.freedesktop.DBus.Properties on every
// object below root, from the same table as its introspection.
// Reading needs the read action of the object's kind (readAction), with
// its details.
type subtreeProperties struct {
	s    *Server
	root dbus.ObjectPath
}

// resolve returns a resolver for the properties of the object a call
// was made on, which it stores in *props.
func (p *subtreeProperties) resolve(msg dbus.Message, props **properties) resolver {
	return func(ctx context.Context) (details, error) {
		path := callPath(msg)
		if path == p.root {
			return nil, dbus.NewError(ErrorUnknownInterface, []any{fmt.Sprintf("object %s has no properties", path)})
		}
		spec, d, err := p.s.objectSpec(ctx, p.root, path)
		if err != nil {
			return d, err
		}
		*props = &properties{path: path, ifaces: []ifaceSpec{spec}, emit: p.s.emit}
		return d, nil
	}
}

// Get implements org.freedesktop.DBus.Properties.Get.
func (p *subtreeProperties) Get(sender dbus.Sender, msg dbus.Message, iface, name string) (dbus.Variant, *dbus.Error) {
	var v dbus.Variant
	var props *properties
	derr := p.s.callOn(callerOf(sender, msg), readAction(p.root), p.resolve(msg, &props), func(context.Context) error {
		var derr *dbus.Error
		v, derr = props.Get(iface, name)
		return asError(derr)
	})
	return v, derr
}

// GetAll implements org.freedesktop.DBus.Properties.GetAll.
func (p *subtreeProperties) GetAll(sender dbus.Sender, msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	var all map[string]dbus.Variant
	var props *properties
	derr := p.s.callOn(callerOf(sender, msg), readAction(p.root), p.resolve(msg, &props), func(context.Context) error {
		var derr *dbus.Error
		all, derr = props.GetAll(iface)
		return asError(derr)
	})
	return all, derr
}

// Set implements org.freedesktop.DBus.Properties.Set. The only writable
// property below the roots is a network's Autostart, whose setter
// authorizes the caller itself (network.manage, with the network's
// details) before it changes anything.
func (p *subtreeProperties) Set(sender dbus.Sender, msg dbus.Message, iface, name string, value dbus.Variant) *dbus.Error {
	ctx, cancel := context.WithTimeout(p.s.ctx, p.s.timeout)
	defer cancel()
	var props *properties
	if _, err := p.resolve(msg, &props)(ctx); err != nil {
		return dbusError(err)
	}
	return props.Set(sender, msg, iface, name, value)
}

// asError returns a *dbus.Error as an error, keeping nil nil.
func asError(e *dbus.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// BindingChanged emits PropertiesChanged for LearnedAddresses of the
// binding b (its addresses were learned, renewed or expired).
func (s *Server) BindingChanged(b Binding) {
	p := &properties{path: NWFilterBindingPath(b.PortDev), ifaces: []ifaceSpec{nwfilterBindingSpec(b)}, emit: s.emit}
	if err := p.changed(NWFilterBindingInterface, "LearnedAddresses"); err != nil {
		s.log.Warn("cannot emit signal", "path", p.path, "signal", "PropertiesChanged", "error", err)
	}
}
