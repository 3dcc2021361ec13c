package dbusapi

import "context"

// NetworkManager is the part of Manager that serves virtual networks and
// their ports. Names and UUIDs identify networks as in libvirt; ports are
// identified by their UUID within their network.
type NetworkManager interface {
	// Networks returns every network, defined or transient, active or
	// not, sorted by name.
	Networks(ctx context.Context) ([]Network, error)
	// LookupNetwork returns the network called name, or ErrNotFound.
	LookupNetwork(ctx context.Context, name string) (Network, error)
	// LookupNetworkByUUID returns the network with the given UUID (any
	// case), or ErrNotFound.
	LookupNetworkByUUID(ctx context.Context, uuid string) (Network, error)
	// DefineNetwork defines (persistently) or redefines a network from
	// network XML and reports whether it was new. Redefining an active
	// network changes its inactive definition only.
	DefineNetwork(ctx context.Context, xml string) (n Network, created bool, err error)
	// CreateNetwork creates a transient network from XML and starts it;
	// it disappears when destroyed.
	CreateNetwork(ctx context.Context, xml string) (Network, error)
	// UndefineNetwork removes a network's persistent definition; an
	// active network keeps running as a transient one.
	UndefineNetwork(ctx context.Context, name string) error
	// StartNetwork starts an inactive defined network.
	StartNetwork(ctx context.Context, name string) error
	// DestroyNetwork stops an active network.
	DestroyNetwork(ctx context.Context, name string) error
	// SetNetworkAutostart sets whether a defined network starts with the
	// daemon.
	SetNetworkAutostart(ctx context.Context, name string, autostart bool) error
	// NetworkXML returns the network's XML: the live definition of an
	// active network, or with inactive the persistent one.
	NetworkXML(ctx context.Context, name string, inactive bool) (string, error)
	// NetworkLeases returns the network's current DHCP leases, only
	// those of mac when it is not "".
	NetworkLeases(ctx context.Context, name, mac string) ([]Lease, error)

	// Ports returns the ports of a network, sorted by interface name.
	Ports(ctx context.Context, network string) ([]Port, error)
	// LookupPort returns the port with the given UUID on network, or
	// ErrNotFound.
	LookupPort(ctx context.Context, network, uuid string) (Port, error)
	// CreatePort creates a port on an active network from network-port
	// XML: the interface is made (or adopted) and plugged, and its
	// filter binding, if any, enforced, before it returns.
	CreatePort(ctx context.Context, network, xml string) (Port, error)
	// DeletePort removes a port and everything made for it.
	DeletePort(ctx context.Context, network, uuid string) error
}

// Network is what the API shows of one virtual network.
type Network struct {
	// Name and UUID identify the network.
	Name, UUID string
	// Active: the network is running.
	Active bool
	// Persistent: the network has a stored definition (not transient).
	Persistent bool
	// Autostart: the network starts with the daemon.
	Autostart bool
	// Bridge is the bridge interface name ("" when not known yet).
	Bridge string
	// Status says what is wrong with an active network (its dnsmasq
	// restarting, say), "" when nothing is.
	Status string
}

// Lease is one DHCP lease, with the fields of libvirt's
// virNetworkDHCPLease in libvirt-dbus's order.
type Lease struct {
	// Iface is the network's bridge.
	Iface string
	// ExpiryTime is when the lease ends, in seconds since the epoch.
	ExpiryTime int64
	// Type is 0 for IPv4, 1 for IPv6 (libvirt's
	// VIR_IP_ADDR_TYPE_IPV4/IPV6).
	Type int32
	// MAC is the client's MAC address ("" for some DHCPv6 clients).
	MAC string
	// IAID is the DHCPv6 identity association ID, "" for IPv4.
	IAID string
	// IPAddr is the leased address.
	IPAddr string
	// Prefix is the prefix length of the network's subnet.
	Prefix uint32
	// Hostname is the name the client gave, "" when none.
	Hostname string
	// ClientID is the DHCP client identifier (IPv4) or DUID (IPv6).
	ClientID string
}

// Port is what the API shows of one network port.
type Port struct {
	// UUID identifies the port.
	UUID string
	// Network is the name of its network.
	Network string
	// NetworkUUID is the UUID of its network.
	NetworkUUID string
	// Dev is the port's interface on the host (a TAP or veth).
	Dev string
	// MAC is the guest's MAC address.
	MAC string
	// FilterName is the bound filter, "" when none.
	FilterName string
	// XML is the port in libvirt's network-port XML.
	XML string
}
