// Package network is netwarden's model of libvirt's virtual network XML
// (the <network> document of virsh net-define): a typed, validated model
// with a parser and a formatter faithful to libvirt 9.0.
//
// Parsing and formatting a network:
//
//	n, err := network.Parse(xmlBytes)
//	if err != nil {
//		// a *ValidationError (network.IsValidationError) naming the network,
//		// element, attribute, value and reason:
//		// network "default": <range start='10.0.0.2'> (line 9): not inside the network 192.168.122.0/24
//		return err
//	}
//	fmt.Println(n.ForwardMode(), n.Bridge.Name) // "nat virbr0"
//	for _, ip := range n.IPs {
//		fmt.Println(ip.Address, ip.Subnet()) // "192.168.122.1 192.168.122.0/24"
//	}
//	if n.UUID == "" {
//		n.UUID = newUUID() // Parse never invents one; the caller that stores the network does
//	}
//	out, err := n.FormatXML() // libvirt-style XML, defaults written out, values canonical
//
// # The XML layer
//
// libvirt's XML formats are the data model: a libvirt user brings their
// network definitions unchanged. Parse accepts the elements and attributes
// of libvirt 9.0's network.rng and networkcommon.rng — name, uuid, metadata,
// bridge, mtu, mac, domain, forward (with nat, interface, pf, address and
// driver), dns, ip (with tftp and dhcp), route, port, portgroup, bandwidth,
// vlan, virtualport and the dnsmasq:options namespace — and applies
// libvirt's parse-time rules and defaults (a <forward> without mode is NAT,
// a forward dev becomes the first <interface>, stp is on, a lease is in
// minutes, more than one VLAN tag is a trunk, …). FormatXML writes the
// network the way libvirt does (element order, defaults written out,
// canonical values), so libvirt's own test data round-trips; see
// conformance_test.go.
//
// The differences from libvirt are all in the direction of refusing. libvirt
// does not validate against its schema when a network is defined, silently
// ignores unknown elements and attributes, uses only the first of repeated
// elements, and drops or replaces some bad values (stp='maybe' means on,
// managed='x' means no, prefix='0' and metric='0' vanish, an IPv4 address
// such as '10.1' is read as 10.0.0.1, <tftp> in an IPv6 <ip> is ignored, a
// forward dev next to a <pf> is dropped, a floor on a network's bandwidth
// is dropped, …). Parse reports a *ValidationError for all of these, so what
// is stored is always what the user meant. It also checks what reaches the
// kernel and dnsmasq: interface names (bridge, forward dev, pf) are 1..15
// bytes of [A-Za-z0-9_.-]; a firewalld zone is at most 17 bytes; DNS names
// are [A-Za-z0-9.-]; values written into dnsmasq's configuration (TXT
// values, dnsmasq options, the TFTP root, boot file names) hold no control
// characters; DHCP ranges and static hosts lie inside their <ip>'s subnet
// and ranges exclude its network and broadcast address (as in libvirt),
// two static hosts never share an address; leases last 2 minutes to
// 2^32-1 seconds; only one <ip> per family has DHCP; NAT, routed and open
// networks have an <ip>, and route gateways lie inside one (as in libvirt). Run-time state that libvirt writes into the
// XML of active networks (connections, bandwidth classID) is refused, as
// a definition does not carry it.
//
// Parse and FormatXML do not assign UUIDs or bridge names, do not look at
// the host (whether devices exist, whether subnets overlap other networks)
// and know nothing about nftables, iptables or dnsmasq's configuration
// syntax; those are the daemon's.
//
// # Why a model of our own, not libvirt.org/go/libvirtxml
//
// The choice was made with the same test as for nwfilter XML: libvirt's
// networkxml2xml conformance data (46 cases) through libvirtxml v1.12008.0
// (Unmarshal, then Marshal), compared semantically with libvirt's expected
// output (symbolic-link stubs followed):
//
//   - Expected outputs re-marshalled (out → out): 40 of 42 equal. netboot-network
//     differs (<dhcp> written before <tftp>), openvswitch-net differs (an
//     empty <parameters/> added to <virtualport type='openvswitch'/>), and
//     dnsmasq-options only matches when namespace prefixes are ignored: it
//     is written as <options xmlns="…dnsmasq/1.0">, not dnsmasq:options.
//   - Inputs (in → out), what defining a network needs: 18 of 46. libvirtxml
//     is a mapping of elements onto structs of strings; it applies none of
//     libvirt's parse rules, so 24 round-trip cases keep the input's form
//     (no default forward mode, forward dev not made an <interface>, no stp
//     and delay defaults, MACs not lower-cased, ipv6='no' kept), and all 4
//     parse-error cases are accepted (duplicate forward interfaces and PCI
//     addresses, <dns enable='no'> with records, forward dev on an open
//     network).
//
// Validation would have to be written on top of its untyped strings anyway
// (addresses of the right family, subnets, ranges, names that reach the
// kernel), and the libvirt defaults and normalisations on top of that, so a
// typed model of our own costs little more and gives all 46 cases, plus
// the 34 network definitions of networkxml2confdata and
// networkxml2firewalldata, faithful round trips.
package network
