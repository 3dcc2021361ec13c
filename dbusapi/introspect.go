package dbusapi

import (
	"encoding/xml"
	"fmt"

	"github.com/godbus/dbus/v5/introspect"
)

// ifaceSpec describes one interface of an exported object. The same table
// feeds introspection and org.freedesktop.DBus.Properties, so the two
// cannot disagree.
type ifaceSpec struct {
	name    string
	methods []introspect.Method
	signals []introspect.Signal
	props   []property
	// annotations are the interface's own annotations.
	annotations []introspect.Annotation
}

// The standard interfaces, as introspection shows them.
var (
	introspectableSpec = ifaceSpec{
		name: introspectableInterface,
		methods: []introspect.Method{{Name: "Introspect", Args: []introspect.Arg{
			{Name: "xml_data", Type: "s", Direction: "out"},
		}}},
	}
	peerSpec = ifaceSpec{
		name: peerInterface,
		methods: []introspect.Method{
			{Name: "Ping"},
			{Name: "GetMachineId", Args: []introspect.Arg{{Name: "machine_uuid", Type: "s", Direction: "out"}}},
		},
	}
	propertiesSpec = ifaceSpec{
		name: propertiesInterface,
		methods: []introspect.Method{
			{Name: "Get", Args: []introspect.Arg{
				{Name: "interface_name", Type: "s", Direction: "in"},
				{Name: "property_name", Type: "s", Direction: "in"},
				{Name: "value", Type: "v", Direction: "out"},
			}},
			{Name: "GetAll", Args: []introspect.Arg{
				{Name: "interface_name", Type: "s", Direction: "in"},
				{Name: "props", Type: "a{sv}", Direction: "out"},
			}},
			{Name: "Set", Args: []introspect.Arg{
				{Name: "interface_name", Type: "s", Direction: "in"},
				{Name: "property_name", Type: "s", Direction: "in"},
				{Name: "value", Type: "v", Direction: "in"},
			}},
		},
		signals: []introspect.Signal{{Name: "PropertiesChanged", Args: []introspect.Arg{
			{Name: "interface_name", Type: "s"},
			{Name: "changed_properties", Type: "a{sv}"},
			{Name: "invalidated_properties", Type: "as"},
		}}},
	}
)

// standardSpecs returns the specs of the standard interfaces every
// exported object implements, in introspection order.
func standardSpecs() []ifaceSpec {
	return []ifaceSpec{introspectableSpec, peerSpec, propertiesSpec}
}

// introspectionXML renders the introspection document of an object with
// the given interfaces and child nodes, indented, with the standard
// document type.
func introspectionXML(specs []ifaceSpec, children ...string) (string, error) {
	node := introspect.Node{}
	for _, c := range children {
		node.Children = append(node.Children, introspect.Node{Name: c})
	}
	for _, s := range specs {
		iface := introspect.Interface{Name: s.name, Methods: s.methods, Signals: s.signals, Annotations: s.annotations}
		for _, p := range s.props {
			access := "read"
			if p.set != nil {
				access = "readwrite"
			}
			prop := introspect.Property{Name: p.name, Type: p.signature.String(), Access: access}
			if p.emits != emitsTrue {
				prop.Annotations = []introspect.Annotation{
					{Name: "org.freedesktop.DBus.Property.EmitsChangedSignal", Value: string(p.emits)},
				}
			}
			iface.Properties = append(iface.Properties, prop)
		}
		node.Interfaces = append(node.Interfaces, iface)
	}
	b, err := xml.MarshalIndent(node, "", "  ")
	if err != nil {
		return "", fmt.Errorf("introspection XML: %w", err)
	}
	return doctype + string(b) + "\n", nil
}

// doctype opens every introspection document.
const doctype = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
`
