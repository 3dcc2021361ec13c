package network

import "net/netip"

// Network is a libvirt virtual network definition (the <network> document)
// in typed, validated, canonical form. Parse builds it; FormatXML writes it
// back the way libvirt formats it. Fields hold what the document says, with
// libvirt's parse-time defaults applied (a <forward> without mode is NAT,
// a forward dev becomes the first forward interface, STP is on unless
// stp='off', a lease without unit is in minutes, …).
//
// A Network built or changed in code is checked when it is formatted: FormatXML
// returns the *ValidationError that parsing its output reports.
type Network struct {
	// Name is the network's name (<name>): not empty, no '/', no control
	// characters, at most MaxNameLength bytes.
	Name string
	// UUID is the canonical lower-case 8-4-4-4-12 form of <uuid>, "" when
	// the document has none. Parse never generates one (libvirt does): the
	// caller that stores the network assigns it.
	UUID string
	// IPv6 is ipv6='yes' on <network>: IPv6 between guests even without an
	// IPv6 address on the bridge. ipv6='no' is the default and not kept.
	IPv6 bool
	// TrustGuestRxFilters is the trustGuestRxFilters attribute.
	TrustGuestRxFilters Tristate
	// Metadata is the content of <metadata> (between its tags), verbatim;
	// nil when there is none. Each element in it is in its own namespace,
	// declared inside it.
	Metadata []byte
	// Forward is <forward>; nil for an isolated network (no <forward>).
	Forward *Forward
	// Bridge is <bridge>. For isolated, NAT, routed and open networks the
	// element is always formatted (with stp and delay), as libvirt does;
	// for the other modes only when it names a bridge or a MAC table
	// manager.
	Bridge Bridge
	// MTU is <mtu size>, 0 when not given.
	MTU uint16
	// MAC is <mac address> in canonical form (lower case, zero-padded), ""
	// when not given. It is a unicast address.
	MAC string
	// Domain is <domain>, nil when absent.
	Domain *Domain
	// DNS is <dns>, nil when absent or empty.
	DNS *DNS
	// VLAN is <vlan>, nil when absent.
	VLAN *VLAN
	// Bandwidth is <bandwidth>, nil when absent or empty.
	Bandwidth *Bandwidth
	// PortIsolated is <port isolated>: whether guests' ports on the bridge
	// are isolated from each other.
	PortIsolated Tristate
	// IPs are the <ip> elements in document order.
	IPs []IP
	// Routes are the <route> elements in document order.
	Routes []Route
	// VirtualPort is <virtualport>, nil when absent.
	VirtualPort *VirtualPort
	// PortGroups are the <portgroup> elements in document order.
	PortGroups []PortGroup
	// DnsmasqOptions are the values of <dnsmasq:option value>, in order:
	// lines passed to dnsmasq as they are.
	DnsmasqOptions []string
}

// Tristate is a yes/no attribute that may also be absent.
type Tristate uint8

// The values of a Tristate.
const (
	Absent Tristate = iota // the attribute is not given
	Yes                    // 'yes'
	No                     // 'no'
)

// String returns "yes", "no" or "" (absent).
func (t Tristate) String() string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return ""
}

// ForwardMode is <forward mode>.
type ForwardMode string

// The forward modes of libvirt 9.0. ForwardNone is an isolated network
// (no <forward> element); it is never written as a mode.
const (
	ForwardNone        ForwardMode = ""
	ForwardNAT         ForwardMode = "nat"
	ForwardRoute       ForwardMode = "route"
	ForwardOpen        ForwardMode = "open"
	ForwardBridge      ForwardMode = "bridge"
	ForwardPrivate     ForwardMode = "private"
	ForwardVEPA        ForwardMode = "vepa"
	ForwardPassthrough ForwardMode = "passthrough"
	ForwardHostdev     ForwardMode = "hostdev"
)

// HasBridge reports whether networks of this mode own a bridge that
// netwarden creates and addresses (isolated, nat, route, open): the modes in
// which <ip>, <dns>, stp and delay have a meaning.
func (m ForwardMode) HasBridge() bool {
	return m == ForwardNone || m == ForwardNAT || m == ForwardRoute || m == ForwardOpen
}

// Forward is <forward>: how the network reaches the outside.
type Forward struct {
	// Mode is never ForwardNone; a <forward> without mode is ForwardNAT.
	Mode ForwardMode
	// Managed is managed='yes' (hostdev mode only).
	Managed bool
	// Driver is <driver name> (kvm or vfio; hostdev mode only), "" if absent.
	Driver string
	// Interfaces are the <interface dev> elements. A forward dev attribute
	// is its first entry (libvirt adds it when there are none).
	Interfaces []string
	// PCIAddresses are the <address type='pci'> elements (hostdev and
	// passthrough pools of virtual functions).
	PCIAddresses []PCIAddress
	// PF is <pf dev>, "" if absent.
	PF string
	// NAT is <nat> (nat mode only), nil when absent or empty.
	NAT *NAT
}

// Dev returns the forward dev libvirt formats: the first interface, unless
// the pool is a PF's virtual functions or PCI addresses.
func (f *Forward) Dev() string {
	if f == nil || f.PF != "" || len(f.Interfaces) == 0 {
		return ""
	}
	return f.Interfaces[0]
}

// PCIAddress is a PCI address domain:bus:slot.function.
type PCIAddress struct {
	Domain   uint32 // PCI domain (segment)
	Bus      uint8  // bus 0..255
	Slot     uint8  // slot 0..31
	Function uint8  // function 0..7
}

// NAT is <forward><nat>: the source addresses and ports of masquerading.
type NAT struct {
	// IPv6 is <nat ipv6>: masquerade IPv6 too.
	IPv6 Tristate
	// AddressStart and AddressEnd are <address start end> (IPv4), invalid
	// (zero) when absent.
	AddressStart, AddressEnd netip.Addr
	// PortStart and PortEnd are <port start end>, 0 when absent.
	PortStart, PortEnd uint16
}

// Bridge is <bridge>.
type Bridge struct {
	// Name is the bridge device's name, "" to let the daemon choose one.
	Name string
	// Zone is the firewalld zone of the bridge, "" for the default.
	Zone string
	// STP is stp (default on).
	STP bool
	// Delay is the forward delay in seconds.
	Delay uint64
	// MACTableManager is "kernel", "libvirt" or "" (absent).
	MACTableManager string
}

// Domain is <domain>: the DNS domain of the network.
type Domain struct {
	// Name is the domain, a DNS name.
	Name string
	// LocalOnly is localOnly='yes': queries for the domain are never
	// forwarded.
	LocalOnly Tristate
}

// DNS is <dns>.
type DNS struct {
	// Enable is enable: 'no' turns the DNS server off (and then no
	// records or forwarders are allowed).
	Enable Tristate
	// ForwardPlainNames is forwardPlainNames: whether names without a
	// domain are forwarded upstream.
	ForwardPlainNames Tristate
	// Forwarders are the <forwarder> elements, in order.
	Forwarders []DNSForwarder
	// TXTs are the <txt> records, in order.
	TXTs []DNSTXT
	// SRVs are the <srv> records, in order.
	SRVs []DNSSRV
	// Hosts are the <host> records, in order.
	Hosts []DNSHost
}

// DNSForwarder is <dns><forwarder>: queries (for Domain, or all) go to
// Addr; a Domain without Addr is resolved locally only.
type DNSForwarder struct {
	Addr   netip.Addr // invalid when absent
	Domain string
}

// DNSTXT is <dns><txt>.
type DNSTXT struct {
	Name  string // a DNS name
	Value string // free text without control characters
}

// DNSSRV is <dns><srv>. Port, Priority and Weight are 0 when absent
// (libvirt does not write a 0 priority or weight, dnsmasq's default).
type DNSSRV struct {
	Service  string // [A-Za-z0-9_+/*-]
	Protocol string // "tcp" or "udp"
	Domain   string // "" when absent
	Target   string // "" when absent; needed by Port, Priority and Weight
	Port     uint16 // 1..65535, 0 when absent
	Priority uint16
	Weight   uint16
}

// DNSHost is <dns><host>: names for an address.
type DNSHost struct {
	IP        netip.Addr // IPv4 or IPv6
	Hostnames []string   // at least one
}

// IP is an <ip> element: an address of the bridge, its subnet, and DHCP.
type IP struct {
	// Family is the family attribute as written: "", "ipv4" or "ipv6"
	// (an IPv6 address requires family='ipv6', as in libvirt).
	Family string
	// Address is the bridge's address.
	Address netip.Addr
	// Netmask is the IPv4 netmask, invalid (zero) when not given.
	Netmask netip.Addr
	// Prefix is the prefix attribute, 0 when not given.
	Prefix int
	// LocalPtr is localPtr.
	LocalPtr Tristate
	// TFTPRoot is <tftp root> (IPv4 only), "" when absent.
	TFTPRoot string
	// DHCP is <dhcp>, nil when absent or empty.
	DHCP *DHCP
}

// IsIPv6 reports whether the element is for IPv6.
func (ip *IP) IsIPv6() bool { return ip.Address.Is6() }

// PrefixLen returns the prefix length in effect: the prefix attribute, the
// netmask's length, or libvirt's default (64 for IPv6; for IPv4 the
// address's class: 8 for class A, 16 for B, 24 for C; 0 if none applies).
func (ip *IP) PrefixLen() int {
	switch {
	case ip.Prefix > 0:
		return ip.Prefix
	case ip.Netmask.IsValid():
		n, _ := maskLen(ip.Netmask)
		return n
	case ip.Address.Is6():
		return 64
	}
	b := ip.Address.As4()[0]
	switch {
	case b < 128:
		return 8
	case b < 192:
		return 16
	case b < 224:
		return 24
	}
	return 0
}

// Subnet returns the network the address is in, with PrefixLen.
func (ip *IP) Subnet() netip.Prefix {
	p, _ := ip.Address.Prefix(ip.PrefixLen())
	return p
}

// DHCP is <ip><dhcp>.
type DHCP struct {
	// Ranges are the address pools, in order.
	Ranges []DHCPRange
	// Hosts are the static leases, in order.
	Hosts []DHCPHost
	// Bootp is <bootp> (IPv4 only), nil when absent.
	Bootp *Bootp
}

// DHCPRange is <dhcp><range>: inside the subnet of its <ip>, Start ≤ End.
type DHCPRange struct {
	Start, End netip.Addr // of the <ip>'s family, inside its subnet
	Lease      *Lease     // nil for dnsmasq's default
}

// DHCPHost is <dhcp><host>: a static lease. IPv4 hosts have MAC or Name,
// IPv6 hosts ID (a DHCPv6 DUID) or Name.
type DHCPHost struct {
	MAC   string // canonical, "" when absent
	ID    string // DUID as written, "" when absent
	Name  string
	IP    netip.Addr // inside the <ip>'s subnet
	Lease *Lease     // nil for dnsmasq's default
}

// LeaseUnit is the unit of a Lease's expiry.
type LeaseUnit string

// Lease units.
const (
	Seconds LeaseUnit = "seconds"
	Minutes LeaseUnit = "minutes"
	Hours   LeaseUnit = "hours"
)

// Lease is <lease>: the lease time. Expiry 0 is infinite (Unit is then "");
// otherwise Unit is set (minutes when the document gives none).
type Lease struct {
	Expiry uint64    // in Unit
	Unit   LeaseUnit // "" when Expiry is 0
}

// Seconds returns the lease time in seconds, 0 for infinite.
func (l *Lease) Seconds() uint64 {
	switch l.Unit {
	case Minutes:
		return l.Expiry * 60
	case Hours:
		return l.Expiry * 3600
	}
	return l.Expiry
}

// Bootp is <dhcp><bootp>: the network boot file and server.
type Bootp struct {
	File   string     // the boot file name
	Server netip.Addr // the TFTP server (IPv4), invalid when absent (this host)
}

// Route is <route>: a static route via a gateway on the network.
type Route struct {
	Family  string     // as written: "", "ipv4" or "ipv6"
	Address netip.Addr // the destination network's address
	Netmask netip.Addr // invalid when absent
	// Prefix is the prefix attribute; HasPrefix tells whether it is given
	// (prefix='0', a default route, is kept).
	Prefix    int
	HasPrefix bool
	Gateway   netip.Addr // of the route's family
	Metric    uint32     // 0 when absent
}

// PrefixLen returns the destination's prefix length (0 when neither
// netmask nor prefix is given: a default route).
func (r *Route) PrefixLen() int {
	if r.Netmask.IsValid() {
		n, _ := maskLen(r.Netmask)
		return n
	}
	return r.Prefix
}

// VLAN is <vlan>.
type VLAN struct {
	// Trunk is trunk='yes' (implied by more than one tag).
	Trunk bool
	// Tags are the <tag> elements, at least one.
	Tags []VLANTag
}

// VLANTag is <vlan><tag>.
type VLANTag struct {
	ID uint16 // 0..4095
	// NativeMode is "tagged", "untagged" or "" (at most one tag has one).
	NativeMode string
}

// VirtualPort is <virtualport>: a port profile (802.1Qbg, 802.1Qbh,
// openvswitch, midonet, or untyped in a portgroup to be merged with the
// network's). An untyped one without parameters means nothing and parses
// to nil, as in libvirt. The parameters allowed depend on the type.
type VirtualPort struct {
	Type          string  // "" when untyped
	ManagerID     *uint8  // 802.1Qbg
	TypeID        *uint32 // 802.1Qbg, 24 bits
	TypeIDVersion *uint8  // 802.1Qbg
	InstanceID    string  // 802.1Qbg, canonical UUID
	ProfileID     string  // 802.1Qbh, openvswitch; at most 39 bytes
	InterfaceID   string  // openvswitch, midonet; canonical UUID
}

// Bandwidth is <bandwidth>: traffic shaping of the bridge (or of a
// portgroup's ports), rates in kibibytes per second, bursts in kibibytes.
type Bandwidth struct {
	Inbound  *Rate // traffic to the network's guests, nil when absent
	Outbound *Rate // traffic from them, nil when absent
}

// Rate is <inbound> or <outbound>. Peak and Burst are 0 when absent.
type Rate struct {
	Average uint32 // required, ≥ 1
	Peak    uint32
	Burst   uint32
}

// PortGroup is <portgroup>: settings a guest interface selects by name.
type PortGroup struct {
	Name                string       // unique in the network
	Default             bool         // default='yes' (at most one portgroup)
	TrustGuestRxFilters Tristate     // trustGuestRxFilters
	VirtualPort         *VirtualPort // nil when absent
	Bandwidth           *Bandwidth   // nil when absent
	VLAN                *VLAN        // nil when absent
}
