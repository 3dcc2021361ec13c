package dbusapi

import (
	"fmt"

	"github.com/godbus/dbus/v5"
)

// emitsChanged is the value of a property's
// org.freedesktop.DBus.Property.EmitsChangedSignal annotation: how
// PropertiesChanged reports a change of it.
type emitsChanged string

const (
	// emitsTrue: PropertiesChanged carries the new value (the default).
	emitsTrue emitsChanged = "true"
	// emitsInvalidates: PropertiesChanged names the property only.
	emitsInvalidates emitsChanged = "invalidates"
	// emitsConst: the value never changes while the object exists.
	emitsConst emitsChanged = "const"
	// emitsFalse: the value may change without a signal; read it again.
	emitsFalse emitsChanged = "false"
)

// property is one property of an exported interface.
type property struct {
	name string
	// signature is the property's D-Bus type; get always returns a value
	// of it.
	signature dbus.Signature
	// get returns the current value.
	get func() any
	// set, if not nil, makes the property writable. It receives the
	// caller, to authorize, and a value whose signature has been checked.
	set func(c caller, value any) *dbus.Error
	// emits says how PropertiesChanged reports a change.
	emits emitsChanged
}

// readOnlyProperty returns a read-only property whose D-Bus type is that
// of T.
func readOnlyProperty[T any](name string, emits emitsChanged, get func() T) property {
	var zero T
	return property{
		name:      name,
		signature: dbus.SignatureOf(zero),
		get:       func() any { return get() },
		emits:     emits,
	}
}

// emitter sends signals; *dbus.Conn is one.
type emitter interface {
	Emit(path dbus.ObjectPath, name string, values ...any) error
}

// properties implements org.freedesktop.DBus.Properties for one object
// from its interface table. It keeps no values of its own: every Get asks
// the getters, so it is as safe for concurrent use as they are.
type properties struct {
	path   dbus.ObjectPath
	ifaces []ifaceSpec
	emit   emitter
}

func (p *properties) iface(name string) (*ifaceSpec, *dbus.Error) {
	for i := range p.ifaces {
		if p.ifaces[i].name == name {
			return &p.ifaces[i], nil
		}
	}
	return nil, dbus.NewError(ErrorUnknownInterface,
		[]any{fmt.Sprintf("object %s has no interface %q", p.path, name)})
}

// lookup finds a property. An empty iface, which the specification allows
// in Get and Set, matches the first interface having the property.
func (p *properties) lookup(iface, name string) (*property, *dbus.Error) {
	if iface == "" {
		for i := range p.ifaces {
			for j := range p.ifaces[i].props {
				if p.ifaces[i].props[j].name == name {
					return &p.ifaces[i].props[j], nil
				}
			}
		}
		return nil, dbus.NewError(ErrorUnknownProperty,
			[]any{fmt.Sprintf("object %s has no property %q", p.path, name)})
	}
	spec, err := p.iface(iface)
	if err != nil {
		return nil, err
	}
	for j := range spec.props {
		if spec.props[j].name == name {
			return &spec.props[j], nil
		}
	}
	return nil, dbus.NewError(ErrorUnknownProperty,
		[]any{fmt.Sprintf("interface %s has no property %q", iface, name)})
}

// Get implements org.freedesktop.DBus.Properties.Get.
func (p *properties) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	prop, err := p.lookup(iface, name)
	if err != nil {
		return dbus.Variant{}, err
	}
	return dbus.MakeVariantWithSignature(prop.get(), prop.signature), nil
}

// GetAll implements org.freedesktop.DBus.Properties.GetAll. An empty
// iface returns the properties of every interface.
func (p *properties) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	specs := p.ifaces
	if iface != "" {
		spec, err := p.iface(iface)
		if err != nil {
			return nil, err
		}
		specs = []ifaceSpec{*spec}
	}
	out := map[string]dbus.Variant{}
	for _, spec := range specs {
		for _, prop := range spec.props {
			out[prop.name] = dbus.MakeVariantWithSignature(prop.get(), prop.signature)
		}
	}
	return out, nil
}

// Set implements org.freedesktop.DBus.Properties.Set.
func (p *properties) Set(sender dbus.Sender, msg dbus.Message, iface, name string, value dbus.Variant) *dbus.Error {
	prop, err := p.lookup(iface, name)
	if err != nil {
		return err
	}
	if prop.set == nil {
		return dbus.NewError(ErrorPropertyReadOnly,
			[]any{fmt.Sprintf("property %s is read-only", name)})
	}
	if value.Signature() != prop.signature {
		return dbus.NewError(ErrorInvalidArgs,
			[]any{fmt.Sprintf("property %s has type %s, not %s", name, prop.signature, value.Signature())})
	}
	return prop.set(callerOf(sender, msg), value.Value())
}

// changed emits PropertiesChanged for the named properties of iface:
// with their current values, or by name only for those that emit
// "invalidates". A property that never emits is a programming error.
func (p *properties) changed(iface string, names ...string) error {
	if iface == "" {
		return fmt.Errorf("PropertiesChanged needs an interface name")
	}
	values := map[string]dbus.Variant{}
	invalidated := []string{}
	for _, name := range names {
		prop, err := p.lookup(iface, name)
		if err != nil {
			return fmt.Errorf("PropertiesChanged: %s", err.Error())
		}
		switch prop.emits {
		case emitsTrue:
			values[name] = dbus.MakeVariantWithSignature(prop.get(), prop.signature)
		case emitsInvalidates:
			invalidated = append(invalidated, name)
		default:
			return fmt.Errorf("PropertiesChanged: property %s.%s does not emit changes (%s)", iface, name, prop.emits)
		}
	}
	if err := p.emit.Emit(p.path, propertiesInterface+".PropertiesChanged", iface, values, invalidated); err != nil {
		return fmt.Errorf("emit PropertiesChanged on %s: %w", p.path, err)
	}
	return nil
}
