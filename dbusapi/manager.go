package dbusapi

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
)

// managerObject is exported as ManagerInterface. Its exported methods
// that return *dbus.Error are the interface's D-Bus methods; each one
// needs its entry in managerSpec (a test checks this). The parameter of
// type dbus.Sender is filled in by godbus and is not part of the D-Bus
// signature.
type managerObject struct {
	s *Server
}

// ListNWFilters returns the objects of all filters. No flags are
// defined (as in libvirt's virConnectListAllNWFilters).
func (o *managerObject) ListNWFilters(sender dbus.Sender, flags uint32) ([]dbus.ObjectPath, *dbus.Error) {
	var paths []dbus.ObjectPath
	derr := o.s.call(sender, polkit.ActionRead, func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		fs, err := o.s.m.Filters(ctx)
		if err != nil {
			return err
		}
		paths = make([]dbus.ObjectPath, 0, len(fs))
		for _, f := range fs {
			paths = append(paths, NWFilterPath(f.UUID))
		}
		return nil
	})
	return paths, derr
}

// NWFilterDefineXML defines or redefines a filter and returns its
// object. libvirt-dbus's call has no flags argument, nor has this one.
func (o *managerObject) NWFilterDefineXML(sender dbus.Sender, xml string) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.call(sender, polkit.ActionNWFilterManage, func(ctx context.Context) error {
		f, created, err := o.s.m.DefineFilter(ctx, xml)
		if f.Name != "" {
			// Stored, even if err says it is not enforced.
			path = NWFilterPath(f.UUID)
			o.s.filterDefined(f, created)
		}
		return err
	})
	return path, derr
}

// NWFilterLookupByName returns the object of the filter called name.
func (o *managerObject) NWFilterLookupByName(sender dbus.Sender, name string) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.call(sender, polkit.ActionRead, func(ctx context.Context) error {
		f, err := o.s.m.LookupFilter(ctx, name)
		path = NWFilterPath(f.UUID)
		return err
	})
	return path, derr
}

// NWFilterLookupByUUID returns the object of the filter with the given
// UUID (any case).
func (o *managerObject) NWFilterLookupByUUID(sender dbus.Sender, uuid string) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.call(sender, polkit.ActionRead, func(ctx context.Context) error {
		f, err := o.s.m.LookupFilterByUUID(ctx, uuid)
		path = NWFilterPath(f.UUID)
		return err
	})
	return path, derr
}

// ListNWFilterBindings returns the objects of all bindings. No flags are
// defined (as in libvirt's virConnectListAllNWFilterBindings).
func (o *managerObject) ListNWFilterBindings(sender dbus.Sender, flags uint32) ([]dbus.ObjectPath, *dbus.Error) {
	var paths []dbus.ObjectPath
	derr := o.s.call(sender, polkit.ActionRead, func(ctx context.Context) error {
		if err := checkFlags(flags, 0); err != nil {
			return err
		}
		bs, err := o.s.m.Bindings(ctx)
		if err != nil {
			return err
		}
		paths = make([]dbus.ObjectPath, 0, len(bs))
		for _, b := range bs {
			paths = append(paths, NWFilterBindingPath(b.PortDev))
		}
		return nil
	})
	return paths, derr
}

// NWFilterBindingCreateXML creates a binding and returns its object once
// the kernel enforces it. flags: 0 or BindingCreateValidate.
func (o *managerObject) NWFilterBindingCreateXML(sender dbus.Sender, xml string, flags uint32) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.call(sender, polkit.ActionNWFilterManage, func(ctx context.Context) error {
		if err := checkFlags(flags, BindingCreateValidate); err != nil {
			return err
		}
		b, err := o.s.m.CreateBinding(ctx, xml)
		if err != nil {
			return err
		}
		path = NWFilterBindingPath(b.PortDev)
		o.s.signal(ObjectPath, objectManagerInterface+".InterfacesAdded", path,
			map[string]map[string]dbus.Variant{NWFilterBindingInterface: propertyValues(nwfilterBindingSpec(b))})
		o.s.signal(ObjectPath, ManagerInterface+".NWFilterBindingEvent", path, NWFilterBindingEventCreated)
		return nil
	})
	return path, derr
}

// NWFilterBindingLookupByPortDev returns the object of the binding of
// port.
func (o *managerObject) NWFilterBindingLookupByPortDev(sender dbus.Sender, port string) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.call(sender, polkit.ActionRead, func(ctx context.Context) error {
		b, err := o.s.m.LookupBinding(ctx, port)
		if err != nil {
			return err
		}
		path = NWFilterBindingPath(b.PortDev)
		return nil
	})
	return path, derr
}

// filterDefined announces a definition: a new object (InterfacesAdded)
// or a changed one (PropertiesChanged), then NWFilterEvent.
func (s *Server) filterDefined(f Filter, created bool) {
	path := NWFilterPath(f.UUID)
	if created {
		s.signal(ObjectPath, objectManagerInterface+".InterfacesAdded", path,
			map[string]map[string]dbus.Variant{NWFilterInterface: propertyValues(nwfilterSpec(f))})
	} else {
		s.filterChanged(f)
	}
	s.signal(ObjectPath, ManagerInterface+".NWFilterEvent", path, NWFilterEventDefined)
}

// filterChanged emits PropertiesChanged for the filter's changing
// property (BuiltIn: a definition overrode a built-in, or an override
// was removed).
func (s *Server) filterChanged(f Filter) {
	p := &properties{path: NWFilterPath(f.UUID), ifaces: []ifaceSpec{nwfilterSpec(f)}, emit: s.emit}
	if err := p.changed(NWFilterInterface, "BuiltIn"); err != nil {
		s.log.Warn("cannot emit signal", "path", p.path, "signal", "PropertiesChanged", "error", err)
	}
}

// filterUndefined announces the removal of a definition. restored is
// the built-in that took its place, if any: its object stays.
func (s *Server) filterUndefined(f Filter, restored *Filter) {
	path := NWFilterPath(f.UUID)
	if restored == nil {
		s.signal(ObjectPath, objectManagerInterface+".InterfacesRemoved", path, []string{NWFilterInterface})
		s.signal(ObjectPath, ManagerInterface+".NWFilterEvent", path, NWFilterEventUndefined)
		return
	}
	s.signal(ObjectPath, ManagerInterface+".NWFilterEvent", path, NWFilterEventUndefined)
	s.filterChanged(*restored)
	s.signal(ObjectPath, ManagerInterface+".NWFilterEvent", NWFilterPath(restored.UUID), NWFilterEventDefined)
}

// objectManager implements org.freedesktop.DBus.ObjectManager on the
// manager object: every filter, binding, network and port object with
// its properties.
type objectManager struct {
	s *Server
}

// GetManagedObjects implements org.freedesktop.DBus.ObjectManager. Each
// object is listed with its netwarden interface only.
func (o *objectManager) GetManagedObjects(sender dbus.Sender) (map[dbus.ObjectPath]map[string]map[string]dbus.Variant, *dbus.Error) {
	objs := map[dbus.ObjectPath]map[string]map[string]dbus.Variant{}
	derr := o.s.call(sender, polkit.ActionRead, func(ctx context.Context) error {
		fs, err := o.s.m.Filters(ctx)
		if err != nil {
			return err
		}
		bs, err := o.s.m.Bindings(ctx)
		if err != nil {
			return err
		}
		for _, f := range fs {
			objs[NWFilterPath(f.UUID)] = map[string]map[string]dbus.Variant{NWFilterInterface: propertyValues(nwfilterSpec(f))}
		}
		for _, b := range bs {
			objs[NWFilterBindingPath(b.PortDev)] = map[string]map[string]dbus.Variant{NWFilterBindingInterface: propertyValues(nwfilterBindingSpec(b))}
		}
		return o.s.managedNetworks(ctx, objs)
	})
	return objs, derr
}

// notFoundAt is the error for a call on an object that does not exist
// (any more).
func notFoundAt(path dbus.ObjectPath) *dbus.Error {
	return dbus.NewError(ErrorUnknownObject, []any{fmt.Sprintf("no object at %s", path)})
}
