package dbusapi

import (
	"context"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/polkit"
)

// caller is who made a call, as its authorization needs it.
type caller struct {
	// sender is the caller's unique bus name.
	sender dbus.Sender
	// interactive: the call has the ALLOW_INTERACTIVE_AUTHORIZATION flag.
	interactive bool
}

// callerOf returns the caller of the call msg.
func callerOf(sender dbus.Sender, msg dbus.Message) caller {
	return caller{sender: sender, interactive: msg.Flags&dbus.FlagAllowInteractiveAuthorization != 0}
}

// details are the polkit details of one check (polkit.Detail* keys).
type details map[string]string

// add sets key to value unless value is empty.
func (d details) add(key, value string) details {
	if value != "" {
		d[key] = value
	}
	return d
}

// resolver finds the object a call is about, without changing anything,
// and returns its details. It returns what details it knows (those the
// call names, say) together with an error when it cannot find it.
type resolver func(ctx context.Context) (details, error)

// filterDetails, bindingDetails, networkDetails and portDetails are the
// details of an object, named as libvirt's polkit access driver names
// them.
func filterDetails(f Filter) details {
	return details{}.add(polkit.DetailNWFilterName, f.Name).add(polkit.DetailNWFilterUUID, f.UUID)
}

func bindingDetails(b Binding) details {
	return details{}.add(polkit.DetailBindingPortDev, b.PortDev).add(polkit.DetailBindingFilter, b.FilterName)
}

func networkDetails(n Network) details {
	return details{}.add(polkit.DetailNetworkName, n.Name).add(polkit.DetailNetworkUUID, n.UUID)
}

func portDetails(p Port) details {
	return networkDetails(Network{Name: p.Network, UUID: p.NetworkUUID}).add(polkit.DetailPortUUID, p.UUID)
}

// The *XMLDetails functions read the details of the object a document
// defines or creates, with the parser the daemon uses, so that the object
// authorized is the object changed. A document that does not parse gives
// no details: the check is made without them, and the core then refuses
// the document.

// filterXMLDetails returns the details of a filter definition; a
// definition without a UUID takes that of the filter it redefines.
func (s *Server) filterXMLDetails(ctx context.Context, xml string) details {
	f, err := policy.ParseFilter([]byte(xml))
	if err != nil {
		return nil
	}
	uuid := f.UUID
	if uuid == "" {
		if old, err := s.m.LookupFilter(ctx, f.Name); err == nil {
			uuid = old.UUID
		}
	}
	return filterDetails(Filter{Name: f.Name, UUID: uuid})
}

// bindingXMLDetails returns the details of a binding to create.
func bindingXMLDetails(xml string) details {
	b, err := policy.ParseBinding([]byte(xml))
	if err != nil {
		return nil
	}
	return bindingDetails(Binding{PortDev: b.PortDev, FilterName: b.Filter})
}

// networkXMLDetails returns the details of a network definition; a
// definition without a UUID takes that of the network it redefines.
func (s *Server) networkXMLDetails(ctx context.Context, xml string) details {
	n, err := network.Parse([]byte(xml))
	if err != nil {
		return nil
	}
	uuid := n.UUID
	if uuid == "" {
		if old, err := s.m.LookupNetwork(ctx, n.Name); err == nil {
			uuid = old.UUID
		}
	}
	return networkDetails(Network{Name: n.Name, UUID: uuid})
}

// portXMLDetails returns the details of a port to create on n.
func portXMLDetails(n Network, xml string) details {
	d := networkDetails(n)
	if p, err := network.ParsePort([]byte(xml)); err == nil {
		d.add(polkit.DetailPortUUID, p.UUID)
	}
	return d
}
