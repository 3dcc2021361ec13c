// The network-port XML: libvirt's <networkport>, a guest interface's
// connection to a network, plus netwarden's two additions (the host-side
// interface of a plug and a <filterref>).

package network

import (
	"fmt"
	"slices"
	"strings"
)

// MaxOwnerNameLength is the longest owner (domain) name accepted in a
// port, in bytes. libvirt has no limit.
const MaxOwnerNameLength = 255

// MaxFilterParameters is the most <parameter> elements a port's
// <filterref> may hold.
const MaxFilterParameters = 1024

// Port is a network port (libvirt's <networkport>): the connection of one
// guest interface to a network, kept by the daemon while the port exists.
//
// Compared with libvirt 9.0's schema (networkport.rng) netwarden accepts
// two additions, both optional, so every libvirt document is a netwarden
// document:
//   - a dev attribute on <plug type='network'> and <plug type='bridge'>,
//     naming the host-side interface (a TAP or a veth end) that is put
//     into the bridge (libvirt keeps that name in the domain's
//     <target dev>, which a port XML does not carry; the schema's only
//     dev attribute is the host link of type='direct');
//   - <filterref filter='…'><parameter name='…' value='…'/></filterref>,
//     the nwfilter the port is bound to, as in a domain's <interface>
//     (libvirt keeps it there and in the nwfilter binding, not in the
//     port).
type Port struct {
	// UUID is the port's UUID in canonical form; "" when the document has
	// none (the daemon assigns one; libvirt requires it).
	UUID string
	// OwnerName and OwnerUUID are <owner><name> and <owner><uuid>: the
	// guest the port belongs to. Both are required.
	OwnerName string
	OwnerUUID string
	// Group is <group>, the portgroup, "" when absent.
	Group string
	// MAC is <mac address>, the guest's MAC (canonical, unicast; required).
	MAC string
	// VirtualPort is <virtualport>, nil when absent.
	VirtualPort *VirtualPort
	// Bandwidth is <bandwidth>, nil when absent or empty.
	Bandwidth *PortBandwidth
	// VLAN is <vlan>, nil when absent.
	VLAN *VLAN
	// Isolated is <port isolated>.
	Isolated Tristate
	// TrustGuestRxFilters is <rxfilters trustGuest>.
	TrustGuestRxFilters Tristate
	// Plug is <plug>, nil when absent (the port is not plugged yet).
	Plug *PortPlug
	// FilterRef is <filterref> (a netwarden addition), nil when absent.
	FilterRef *PortFilterRef
}

// PortBandwidth is a port's <bandwidth>: a guest interface's traffic
// shaping, which unlike a network's may have an inbound floor and carries
// the class libvirt assigned for it.
type PortBandwidth struct {
	// ClassID is the classID attribute (the tc class of a port with a
	// floor), 0 when absent.
	ClassID  uint32
	Inbound  *PortRate // nil when absent
	Outbound *PortRate // nil when absent
}

// PortRate is a port's <inbound> or <outbound>, in kibibytes per second
// (Burst in kibibytes); 0 means absent. Average is required unless Floor is
// given; Floor is only allowed inbound; Peak and Burst need Average.
type PortRate struct {
	Average uint32
	Peak    uint32
	Floor   uint32
	Burst   uint32
}

// PlugType is the type attribute of a port's <plug>.
type PlugType string

// Plug types.
const (
	PlugNetwork    PlugType = "network"     // a TAP or veth on the network's own bridge
	PlugBridge     PlugType = "bridge"      // a TAP or veth on a host bridge (forward mode='bridge')
	PlugDirect     PlugType = "direct"      // a macvtap on a host link
	PlugHostdevPCI PlugType = "hostdev-pci" // a PCI device (an SR-IOV VF) passed to the guest
)

// PortPlug is a port's <plug>: how the port reaches the network. Which
// fields are used depends on Type.
type PortPlug struct {
	Type PlugType
	// Bridge is the bridge (network, bridge; required).
	Bridge string
	// MACTableManager is "", "kernel" or "libvirt" (network, bridge).
	MACTableManager string
	// Dev is, for type direct, the host link (required, libvirt's); for
	// network and bridge the host-side interface put into the bridge
	// (netwarden's addition: an existing veth end to adopt, or the TAP
	// netwarden creates), "" when not chosen yet.
	Dev string
	// Mode is the macvtap mode of type direct: bridge, passthrough,
	// private or vepa (required).
	Mode string
	// Managed is managed (hostdev-pci).
	Managed Tristate
	// Driver is <driver name>: "", "kvm" or "vfio" (hostdev-pci).
	Driver string
	// Address is <address> (hostdev-pci; required).
	Address PCIAddress
}

// PortFilterRef is a port's <filterref>: the nwfilter applied to the port
// and its parameters, in document order (a name given more than once is a
// list, as in libvirt).
type PortFilterRef struct {
	Filter     string
	Parameters []PortFilterParameter
}

// PortFilterParameter is <filterref><parameter>.
type PortFilterParameter struct {
	Name  string // [A-Za-z0-9_]+
	Value string
}

var macvtapModes = []string{"bridge", "passthrough", "private", "vepa"}

// ParsePort parses and validates a network-port document. Every problem is
// reported as a *ValidationError naming the element, attribute and value.
// A document without <uuid> gives a Port without one: the daemon assigns
// it. Documents larger than MaxInputSize are refused.
func ParsePort(data []byte) (*Port, error) {
	root, err := readXMLTree(data)
	if err != nil {
		return nil, err
	}
	p := &parser{}
	return p.port(root)
}

// portSingles are the child elements of <networkport>, each allowed once.
var portSingles = []string{"uuid", "owner", "group", "mac", "rxfilters", "virtualport", "bandwidth", "vlan",
	"port", "plug", "filterref"}

func (p *parser) port(root *xmlNode) (*Port, error) {
	if root.name != "networkport" {
		return nil, p.fail(root, "", "", "root element must be <networkport>")
	}
	if err := p.attrs(root, false); err != nil {
		return nil, err
	}
	one := map[string]*xmlNode{}
	for _, c := range root.children {
		if !slices.Contains(portSingles, c.name) {
			return nil, p.fail(c, "", "", "unknown element inside <networkport> (it holds "+listElements(portSingles)+")")
		}
		if one[c.name] != nil {
			return nil, p.fail(c, "", "", fmt.Sprintf("more than one <%s>", c.name))
		}
		one[c.name] = c
	}
	pt := &Port{}
	var err error
	if n := one["uuid"]; n != nil {
		if pt.UUID, err = p.uuidText(n); err != nil {
			return nil, err
		}
	}
	if n := one["owner"]; n != nil {
		if err := p.portOwner(n, pt); err != nil {
			return nil, err
		}
	} else {
		return nil, p.fail(root, "", "", "missing <owner> (the guest's <name> and <uuid>)")
	}
	if n := one["group"]; n != nil {
		v, err := p.text(n)
		if err != nil {
			return nil, err
		}
		if v == "" || len(v) > MaxNameLength {
			return nil, p.fail(n, "", v, fmt.Sprintf("portgroup name must be 1..%d bytes", MaxNameLength))
		}
		if err := checkPlainText(v); err != nil {
			return nil, p.fail(n, "", v, err.Error())
		}
		pt.Group = v
	}
	n := one["mac"]
	if n == nil {
		return nil, p.fail(root, "", "", "missing <mac address='…'/> (the guest's MAC)")
	}
	if err := p.attrs(n, true, "address"); err != nil {
		return nil, err
	}
	v, err := p.required(n, "address")
	if err != nil {
		return nil, err
	}
	if pt.MAC, err = parseMAC(v); err != nil {
		return nil, p.fail(n, "address", v, err.Error())
	}
	if n := one["rxfilters"]; n != nil {
		if err := p.attrs(n, true, "trustGuest"); err != nil {
			return nil, err
		}
		if _, err := p.required(n, "trustGuest"); err != nil {
			return nil, err
		}
		if pt.TrustGuestRxFilters, err = p.tristate(n, "trustGuest"); err != nil {
			return nil, err
		}
	}
	if n := one["virtualport"]; n != nil {
		if pt.VirtualPort, err = p.virtualPort(n); err != nil {
			return nil, err
		}
	}
	if n := one["bandwidth"]; n != nil {
		if pt.Bandwidth, err = p.portBandwidth(n); err != nil {
			return nil, err
		}
	}
	if n := one["vlan"]; n != nil {
		if pt.VLAN, err = p.vlan(n); err != nil {
			return nil, err
		}
	}
	if n := one["port"]; n != nil {
		if err := p.attrs(n, true, "isolated"); err != nil {
			return nil, err
		}
		if pt.Isolated, err = p.tristate(n, "isolated"); err != nil {
			return nil, err
		}
	}
	if n := one["plug"]; n != nil {
		if pt.Plug, err = p.portPlug(n); err != nil {
			return nil, err
		}
	}
	if n := one["filterref"]; n != nil {
		if pt.FilterRef, err = p.portFilterRef(n); err != nil {
			return nil, err
		}
	}
	return pt, nil
}

func listElements(names []string) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = "<" + n + ">"
	}
	return strings.Join(s, ", ")
}

// uuidText reads an element holding a UUID.
func (p *parser) uuidText(n *xmlNode) (string, error) {
	v, err := p.text(n)
	if err != nil {
		return "", err
	}
	u, err := parseUUID(strings.TrimSpace(v))
	if err != nil {
		return "", p.fail(n, "", v, err.Error())
	}
	return u, nil
}

func (p *parser) portOwner(n *xmlNode, pt *Port) error {
	if err := p.attrs(n, false); err != nil {
		return err
	}
	var name, uuid *xmlNode
	for _, c := range n.children {
		var slot **xmlNode
		switch c.name {
		case "name":
			slot = &name
		case "uuid":
			slot = &uuid
		default:
			return p.fail(c, "", "", "unknown element inside <owner> (it holds <name> and <uuid>)")
		}
		if *slot != nil {
			return p.fail(c, "", "", fmt.Sprintf("more than one <%s> in <owner>", c.name))
		}
		*slot = c
	}
	if name == nil {
		return p.fail(n, "", "", "missing <name> (the owner's name)")
	}
	if uuid == nil {
		return p.fail(n, "", "", "missing <uuid> (the owner's UUID)")
	}
	v, err := p.text(name)
	if err != nil {
		return err
	}
	if v == "" || len(v) > MaxOwnerNameLength {
		return p.fail(name, "", v, fmt.Sprintf("owner name must be 1..%d bytes", MaxOwnerNameLength))
	}
	if err := checkPlainText(v); err != nil {
		return p.fail(name, "", v, err.Error())
	}
	if strings.TrimSpace(v) != v {
		return p.fail(name, "", v, "owner name must not start or end with white space")
	}
	pt.OwnerName = v
	pt.OwnerUUID, err = p.uuidText(uuid)
	return err
}

func (p *parser) portBandwidth(n *xmlNode) (*PortBandwidth, error) {
	if err := p.attrs(n, false, "classID"); err != nil {
		return nil, err
	}
	b := &PortBandwidth{}
	if v, ok := n.attr("classID"); ok {
		x, err := parseDecimal(v, 32)
		if err != nil || x == 0 {
			return nil, p.fail(n, "classID", v, "must be a number in 1..4294967295")
		}
		b.ClassID = uint32(x)
	}
	for _, c := range n.children {
		var to **PortRate
		switch c.name {
		case "inbound":
			to = &b.Inbound
		case "outbound":
			to = &b.Outbound
		default:
			return nil, p.fail(c, "", "", "unknown element inside <bandwidth> (it holds <inbound> and <outbound>)")
		}
		if *to != nil {
			return nil, p.fail(c, "", "", fmt.Sprintf("more than one <%s>", c.name))
		}
		if err := p.attrs(c, true, "average", "peak", "floor", "burst"); err != nil {
			return nil, err
		}
		r := &PortRate{}
		for _, a := range []struct {
			attr string
			to   *uint32
		}{{"average", &r.Average}, {"peak", &r.Peak}, {"floor", &r.Floor}, {"burst", &r.Burst}} {
			v, ok := c.attr(a.attr)
			if !ok {
				continue
			}
			x, err := parseDecimal(v, 32)
			if err != nil || x == 0 {
				return nil, p.fail(c, a.attr, v, "must be a number in 1..4294967295")
			}
			*a.to = uint32(x)
		}
		switch {
		case r.Floor != 0 && c.name == "outbound":
			return nil, p.fail(c, "floor", fmt.Sprint(r.Floor), "floor is only allowed in <inbound>")
		case r.Average == 0 && r.Floor == 0:
			return nil, p.fail(c, "average", "", "missing required attribute (average or floor)")
		case r.Average == 0 && (r.Peak != 0 || r.Burst != 0):
			return nil, p.fail(c, "average", "", "missing required attribute (peak and burst need it)")
		}
		*to = r
	}
	if b.Inbound == nil && b.Outbound == nil {
		if b.ClassID != 0 {
			return nil, p.fail(n, "classID", fmt.Sprint(b.ClassID), "a classID needs <inbound> or <outbound>")
		}
		return nil, nil
	}
	return b, nil
}

func (p *parser) portPlug(n *xmlNode) (*PortPlug, error) {
	t, err := p.required(n, "type")
	if err != nil {
		return nil, err
	}
	pl := &PortPlug{Type: PlugType(t)}
	ifName := func(attr string, required bool) (string, error) {
		v, ok := n.attr(attr)
		if !ok {
			if required {
				return "", p.fail(n, attr, "", "missing required attribute")
			}
			return "", nil
		}
		if err := checkIfName(v); err != nil {
			return "", p.fail(n, attr, v, err.Error())
		}
		return v, nil
	}
	switch pl.Type {
	case PlugNetwork, PlugBridge:
		if err := p.attrs(n, true, "type", "bridge", "macTableManager", "dev"); err != nil {
			return nil, err
		}
		if pl.Bridge, err = ifName("bridge", true); err != nil {
			return nil, err
		}
		if pl.Dev, err = ifName("dev", false); err != nil {
			return nil, err
		}
		if v, ok := n.attr("macTableManager"); ok {
			if v != "kernel" && v != "libvirt" {
				return nil, p.fail(n, "macTableManager", v, "must be 'kernel' or 'libvirt'")
			}
			pl.MACTableManager = v
		}
		if pl.Dev != "" && pl.Dev == pl.Bridge {
			return nil, p.fail(n, "dev", pl.Dev, "the port's interface cannot be the bridge itself")
		}
	case PlugDirect:
		if err := p.attrs(n, true, "type", "dev", "mode"); err != nil {
			return nil, err
		}
		if pl.Dev, err = ifName("dev", true); err != nil {
			return nil, err
		}
		m, err := p.required(n, "mode")
		if err != nil {
			return nil, err
		}
		if !slices.Contains(macvtapModes, m) {
			return nil, p.fail(n, "mode", m, "must be 'bridge', 'passthrough', 'private' or 'vepa'")
		}
		pl.Mode = m
	case PlugHostdevPCI:
		if err := p.attrs(n, false, "type", "managed"); err != nil {
			return nil, err
		}
		if pl.Managed, err = p.tristate(n, "managed"); err != nil {
			return nil, err
		}
		var driver, addr *xmlNode
		for _, c := range n.children {
			var slot **xmlNode
			switch c.name {
			case "driver":
				slot = &driver
			case "address":
				slot = &addr
			default:
				return nil, p.fail(c, "", "", "unknown element inside <plug> (it holds <driver> and <address>)")
			}
			if *slot != nil {
				return nil, p.fail(c, "", "", fmt.Sprintf("more than one <%s> in <plug>", c.name))
			}
			*slot = c
		}
		if driver != nil {
			if err := p.attrs(driver, true, "name"); err != nil {
				return nil, err
			}
			v, err := p.required(driver, "name")
			if err != nil {
				return nil, err
			}
			if v != "kvm" && v != "vfio" {
				return nil, p.fail(driver, "name", v, "must be 'kvm' or 'vfio'")
			}
			pl.Driver = v
		}
		if addr == nil {
			return nil, p.fail(n, "", "", "missing <address domain='…' bus='…' slot='…' function='…'/> (the PCI device)")
		}
		if pl.Address, err = p.portPCIAddress(addr); err != nil {
			return nil, err
		}
	default:
		return nil, p.fail(n, "type", t, "must be 'network', 'bridge', 'direct' or 'hostdev-pci'")
	}
	return pl, nil
}

// portPCIAddress reads a plug's <address>: the schema's pciaddress, whose
// type attribute is optional (and must be 'pci' when given).
func (p *parser) portPCIAddress(n *xmlNode) (PCIAddress, error) {
	return p.pciAddressOf(n, pciPort)
}

func (p *parser) portFilterRef(n *xmlNode) (*PortFilterRef, error) {
	if err := p.attrs(n, false, "filter"); err != nil {
		return nil, err
	}
	f, err := p.required(n, "filter")
	if err != nil {
		return nil, err
	}
	if f == "" || len(f) > MaxNameLength {
		return nil, p.fail(n, "filter", f, fmt.Sprintf("filter name must be 1..%d bytes", MaxNameLength))
	}
	if err := checkPlainText(f); err != nil {
		return nil, p.fail(n, "filter", f, err.Error())
	}
	if strings.TrimSpace(f) != f {
		return nil, p.fail(n, "filter", f, "filter name must not start or end with white space")
	}
	ref := &PortFilterRef{Filter: f}
	if len(n.children) > MaxFilterParameters {
		return nil, p.fail(n, "", "", fmt.Sprintf("more than %d <parameter> elements", MaxFilterParameters))
	}
	for _, c := range n.children {
		if c.name != "parameter" {
			return nil, p.fail(c, "", "", "unknown element inside <filterref> (it holds <parameter>)")
		}
		if err := p.attrs(c, true, "name", "value"); err != nil {
			return nil, err
		}
		name, err := p.required(c, "name")
		if err != nil {
			return nil, err
		}
		if name == "" || len(name) > MaxNameLength || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			return nil, p.fail(c, "name", name, fmt.Sprintf("parameter name must be 1..%d ASCII letters, digits or '_'", MaxNameLength))
		}
		value, err := p.required(c, "value")
		if err != nil {
			return nil, err
		}
		if err := checkPlainText(value); err != nil {
			return nil, p.fail(c, "value", value, err.Error())
		}
		ref.Parameters = append(ref.Parameters, PortFilterParameter{Name: name, Value: value})
	}
	return ref, nil
}

// FormatXML returns the port as libvirt formats it: libvirt's element
// order (uuid, owner, group, mac, virtualport, bandwidth, vlan, port,
// rxfilters, plug), then netwarden's <filterref>; two-space indentation,
// single-quoted attributes, canonical values (lower-case zero-padded MAC,
// canonical UUIDs, PCI addresses in hex). A port without a UUID is
// written without <uuid>.
//
// The output is checked by parsing it again, so FormatXML never returns a
// document ParsePort refuses; a Port built in code with invalid values
// yields the *ValidationError that parsing reports.
func (pt *Port) FormatXML() ([]byte, error) {
	raw := pt.appendXML(nil)
	m, err := ParsePort(raw)
	if err != nil {
		return nil, fmt.Errorf("format port %s of %q: %w", pt.UUID, pt.OwnerName, err)
	}
	return m.appendXML(make([]byte, 0, len(raw))), nil
}

func (pt *Port) appendXML(b []byte) []byte {
	w := &xb{b: b}
	w.open("networkport")
	w.endStart()
	if pt.UUID != "" {
		w.textElem("uuid", pt.UUID)
	}
	w.open("owner")
	w.endStart()
	w.textElem("name", pt.OwnerName)
	w.textElem("uuid", pt.OwnerUUID)
	w.close("owner")
	if pt.Group != "" {
		w.textElem("group", pt.Group)
	}
	w.open("mac")
	w.attr("address", pt.MAC)
	w.endEmpty()
	pt.VirtualPort.appendXML(w)
	pt.Bandwidth.appendXML(w)
	pt.VLAN.appendXML(w)
	if pt.Isolated != Absent {
		w.open("port")
		w.attr("isolated", pt.Isolated.String())
		w.endEmpty()
	}
	if pt.TrustGuestRxFilters != Absent {
		w.open("rxfilters")
		w.attr("trustGuest", pt.TrustGuestRxFilters.String())
		w.endEmpty()
	}
	pt.Plug.appendXML(w)
	pt.FilterRef.appendXML(w)
	w.close("networkport")
	return w.b
}

func (b *PortBandwidth) appendXML(w *xb) {
	if b == nil {
		return
	}
	w.open("bandwidth")
	if b.ClassID != 0 {
		w.uint("classID", uint64(b.ClassID))
	}
	w.endStart()
	for _, r := range []struct {
		name string
		r    *PortRate
	}{{"inbound", b.Inbound}, {"outbound", b.Outbound}} {
		if r.r == nil {
			continue
		}
		w.open(r.name)
		for _, a := range []struct {
			name string
			v    uint32
		}{{"average", r.r.Average}, {"peak", r.r.Peak}, {"floor", r.r.Floor}, {"burst", r.r.Burst}} {
			if a.v != 0 {
				w.uint(a.name, uint64(a.v))
			}
		}
		w.endEmpty()
	}
	w.close("bandwidth")
}

func (pl *PortPlug) appendXML(w *xb) {
	if pl == nil {
		return
	}
	w.open("plug")
	w.attr("type", string(pl.Type))
	switch pl.Type {
	case PlugNetwork, PlugBridge:
		w.attr("bridge", pl.Bridge)
		w.attrIf("macTableManager", pl.MACTableManager)
		w.attrIf("dev", pl.Dev)
	case PlugDirect:
		w.attr("dev", pl.Dev)
		w.attr("mode", pl.Mode)
	case PlugHostdevPCI:
		w.attrIf("managed", pl.Managed.String())
		w.endStart()
		if pl.Driver != "" {
			w.open("driver")
			w.attr("name", pl.Driver)
			w.endEmpty()
		}
		a := pl.Address
		w.open("address")
		w.attr("domain", fmt.Sprintf("0x%04x", a.Domain))
		w.attr("bus", fmt.Sprintf("0x%02x", a.Bus))
		w.attr("slot", fmt.Sprintf("0x%02x", a.Slot))
		w.attr("function", fmt.Sprintf("0x%x", a.Function))
		w.endEmpty()
		w.close("plug")
		return
	}
	w.endEmpty()
}

func (f *PortFilterRef) appendXML(w *xb) {
	if f == nil {
		return
	}
	w.open("filterref")
	w.attr("filter", f.Filter)
	if len(f.Parameters) == 0 {
		w.endEmpty()
		return
	}
	w.endStart()
	for _, prm := range f.Parameters {
		w.open("parameter")
		w.attr("name", prm.Name)
		w.attr("value", prm.Value)
		w.endEmpty()
	}
	w.close("filterref")
}
