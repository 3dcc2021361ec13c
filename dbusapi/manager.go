package dbusapi

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

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
func (o *managerObject) ListNWFilters(sender dbus.Sender, msg dbus.Message, flags uint32) ([]dbus.ObjectPath, *dbus.Error) {
	var paths []dbus.ObjectPath
	derr := o.s.call(callerOf(sender, msg), polkit.ActionNWFilterRead, func(ctx context.Context) error {
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
func (o *managerObject) NWFilterDefineXML(sender dbus.Sender, msg dbus.Message, xml string) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNWFilterManage, func(ctx context.Context) (details, error) {
		return o.s.filterXMLDetails(ctx, xml), nil
	}, func(ctx context.Context) error {
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
func (o *managerObject) NWFilterLookupByName(sender dbus.Sender, msg dbus.Message, name string) (dbus.ObjectPath, *dbus.Error) {
	var f Filter
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNWFilterRead, func(ctx context.Context) (details, error) {
		var err error
		if f, err = o.s.m.LookupFilter(ctx, name); err != nil {
			return details{}.add(polkit.DetailNWFilterName, name), err
		}
		return filterDetails(f), nil
	}, noop)
	if derr != nil {
		return "", derr
	}
	return NWFilterPath(f.UUID), nil
}

// NWFilterLookupByUUID returns the object of the filter with the given
// UUID (any case).
func (o *managerObject) NWFilterLookupByUUID(sender dbus.Sender, msg dbus.Message, uuid string) (dbus.ObjectPath, *dbus.Error) {
	var f Filter
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionNWFilterRead, func(ctx context.Context) (details, error) {
		var err error
		if f, err = o.s.m.LookupFilterByUUID(ctx, uuid); err != nil {
			return details{}.add(polkit.DetailNWFilterUUID, strings.ToLower(uuid)), err
		}
		return filterDetails(f), nil
	}, noop)
	if derr != nil {
		return "", derr
	}
	return NWFilterPath(f.UUID), nil
}

// ListNWFilterBindings returns the objects of all bindings. No flags are
// defined (as in libvirt's virConnectListAllNWFilterBindings).
func (o *managerObject) ListNWFilterBindings(sender dbus.Sender, msg dbus.Message, flags uint32) ([]dbus.ObjectPath, *dbus.Error) {
	var paths []dbus.ObjectPath
	derr := o.s.call(callerOf(sender, msg), polkit.ActionBindingRead, func(ctx context.Context) error {
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
func (o *managerObject) NWFilterBindingCreateXML(sender dbus.Sender, msg dbus.Message, xml string, flags uint32) (dbus.ObjectPath, *dbus.Error) {
	var path dbus.ObjectPath
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionBindingManage, func(context.Context) (details, error) {
		return bindingXMLDetails(xml), nil
	}, func(ctx context.Context) error {
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
func (o *managerObject) NWFilterBindingLookupByPortDev(sender dbus.Sender, msg dbus.Message, port string) (dbus.ObjectPath, *dbus.Error) {
	var b Binding
	derr := o.s.callOn(callerOf(sender, msg), polkit.ActionBindingRead, func(ctx context.Context) (details, error) {
		var err error
		if b, err = o.s.m.LookupBinding(ctx, port); err != nil {
			return details{}.add(polkit.DetailBindingPortDev, port), err
		}
		return bindingDetails(b), nil
	}, noop)
	if derr != nil {
		return "", derr
	}
	return NWFilterBindingPath(b.PortDev), nil
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
// object is listed with its netwarden interface only. Each kind of
// object is listed if the caller may read it (ActionNWFilterRead,
// ActionBindingRead, ActionNetworkRead, asked at the same time); a
// caller that may read none is refused.
func (o *objectManager) GetManagedObjects(sender dbus.Sender, msg dbus.Message) (map[dbus.ObjectPath]map[string]map[string]dbus.Variant, *dbus.Error) {
	c := callerOf(sender, msg)
	kinds := []struct {
		action string
		add    func(ctx context.Context, objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant) error
	}{
		{polkit.ActionNWFilterRead, func(ctx context.Context, objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant) error {
			fs, err := o.s.m.Filters(ctx)
			for _, f := range fs {
				objs[NWFilterPath(f.UUID)] = map[string]map[string]dbus.Variant{NWFilterInterface: propertyValues(nwfilterSpec(f))}
			}
			return err
		}},
		{polkit.ActionBindingRead, func(ctx context.Context, objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant) error {
			bs, err := o.s.m.Bindings(ctx)
			for _, b := range bs {
				objs[NWFilterBindingPath(b.PortDev)] = map[string]map[string]dbus.Variant{NWFilterBindingInterface: propertyValues(nwfilterBindingSpec(b))}
			}
			return err
		}},
		{polkit.ActionNetworkRead, o.s.managedNetworks},
	}
	// Each kind in its own call, so that a refusal of one leaves out its
	// objects only; all at once, so that a slow polkitd is waited for once.
	parts := make([]map[dbus.ObjectPath]map[string]map[string]dbus.Variant, len(kinds))
	errs := make([]*dbus.Error, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := map[dbus.ObjectPath]map[string]map[string]dbus.Variant{}
			errs[i] = o.s.call(c, k.action, func(ctx context.Context) error { return k.add(ctx, part) })
			parts[i] = part
		}()
	}
	wg.Wait()
	objs := map[dbus.ObjectPath]map[string]map[string]dbus.Variant{}
	allowed := 0
	for i, part := range parts {
		switch {
		case errs[i] == nil:
			maps.Copy(objs, part)
			allowed++
		case errs[i].Name != ErrorAccessDenied:
			return nil, errs[i]
		}
	}
	if allowed == 0 {
		return nil, errs[0]
	}
	return objs, nil
}

// noop is the work of a call whose resolver did it all (a lookup).
func noop(context.Context) error { return nil }

// notFoundAt is the error for a call on an object that does not exist
// (any more).
func notFoundAt(path dbus.ObjectPath) *dbus.Error {
	return dbus.NewError(ErrorUnknownObject, []any{fmt.Sprintf("no object at %s", path)})
}
