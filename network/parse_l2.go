// Parsing of the layer-2 side of a network: <forward> and its pools,
// <virtualport>, <portgroup>, <vlan> and <bandwidth>.

package network

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

var forwardModes = []ForwardMode{ForwardNAT, ForwardRoute, ForwardOpen, ForwardBridge, ForwardPrivate,
	ForwardVEPA, ForwardPassthrough, ForwardHostdev}

func (p *parser) forward(n *xmlNode) (*Forward, error) {
	if err := p.attrs(n, false, "mode", "dev", "managed"); err != nil {
		return nil, err
	}
	f := &Forward{Mode: ForwardNAT}
	if v, ok := n.attr("mode"); ok {
		if !slices.Contains(forwardModes, ForwardMode(v)) {
			return nil, p.fail(n, "mode", v, "unknown forward mode (nat, route, open, bridge, private, vepa, passthrough or hostdev)")
		}
		f.Mode = ForwardMode(v)
	}
	if v, ok := n.attr("managed"); ok {
		if f.Mode != ForwardHostdev {
			return nil, p.fail(n, "managed", v, "managed is only used with forward mode='hostdev'")
		}
		t, err := p.tristate(n, "managed")
		if err != nil {
			return nil, err
		}
		f.Managed = t == Yes
	}
	dev, hasDev := n.attr("dev")
	if hasDev {
		if err := checkIfName(dev); err != nil {
			return nil, p.fail(n, "dev", dev, "forward dev: "+err.Error())
		}
	}
	var pf, driver, nat *xmlNode
	for _, c := range n.children {
		switch c.name {
		case "interface":
			if err := p.attrs(c, true, "dev"); err != nil {
				return nil, err
			}
			v, err := p.required(c, "dev")
			if err != nil {
				return nil, err
			}
			if err := checkIfName(v); err != nil {
				return nil, p.fail(c, "dev", v, err.Error())
			}
			if slices.Contains(f.Interfaces, v) {
				return nil, p.fail(c, "dev", v, "forward interface listed more than once")
			}
			if len(f.Interfaces) == 0 && hasDev && v != dev {
				return nil, p.fail(c, "dev", v, fmt.Sprintf("the first forward interface must be the forward dev '%s'", dev))
			}
			f.Interfaces = append(f.Interfaces, v)
		case "address":
			a, err := p.pciAddress(c)
			if err != nil {
				return nil, err
			}
			if slices.Contains(f.PCIAddresses, a) {
				return nil, p.fail(c, "", "", fmt.Sprintf("PCI device %04x:%02x:%02x.%x listed more than once", a.Domain, a.Bus, a.Slot, a.Function))
			}
			f.PCIAddresses = append(f.PCIAddresses, a)
		case "pf", "driver", "nat":
			slot := map[string]**xmlNode{"pf": &pf, "driver": &driver, "nat": &nat}[c.name]
			if *slot != nil {
				return nil, p.fail(c, "", "", fmt.Sprintf("more than one <%s>", c.name))
			}
			*slot = c
		default:
			return nil, p.fail(c, "", "", "unknown element inside <forward> (it holds <interface>, <address>, <pf>, <driver> and <nat>)")
		}
	}
	kinds := 0
	for _, k := range []bool{len(f.Interfaces) > 0, len(f.PCIAddresses) > 0, pf != nil} {
		if k {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, p.fail(n, "", "", "<interface>, <address> and <pf> in <forward> are mutually exclusive")
	}
	if pf != nil {
		if err := p.attrs(pf, true, "dev"); err != nil {
			return nil, err
		}
		v, err := p.required(pf, "dev")
		if err != nil {
			return nil, err
		}
		if err := checkIfName(v); err != nil {
			return nil, p.fail(pf, "dev", v, err.Error())
		}
		f.PF = v
	}
	if hasDev {
		if pf != nil || len(f.PCIAddresses) > 0 {
			return nil, p.fail(n, "dev", dev, "a forward dev cannot be combined with <pf> or <address> (libvirt ignores it)")
		}
		if len(f.Interfaces) == 0 {
			f.Interfaces = []string{dev}
		}
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
		if f.Mode != ForwardHostdev {
			return nil, p.fail(driver, "name", v, "<driver> is only used with forward mode='hostdev'")
		}
		f.Driver = v
	}
	if nat != nil {
		if f.Mode != ForwardNAT {
			return nil, p.fail(nat, "", "", "<nat> is only allowed with forward mode='nat'")
		}
		var err error
		if f.NAT, err = p.nat(nat); err != nil {
			return nil, err
		}
	}
	switch f.Mode {
	case ForwardNAT, ForwardRoute:
		if len(f.Interfaces) > 1 {
			return nil, p.fail(n, "", "", "more than one forward interface is only supported in bridge, private, vepa, passthrough and hostdev mode")
		}
		if len(f.PCIAddresses) > 0 || f.PF != "" {
			return nil, p.fail(n, "", "", fmt.Sprintf("<pf> and <address> are not supported in %s mode", f.Mode))
		}
	case ForwardOpen:
		if len(f.Interfaces) > 0 || len(f.PCIAddresses) > 0 || f.PF != "" {
			return nil, p.fail(n, "", "", "an open network places no restriction on the interface used: no forward dev, <interface>, <address> or <pf>")
		}
	case ForwardBridge, ForwardPrivate, ForwardVEPA:
		if len(f.PCIAddresses) > 0 {
			return nil, p.fail(n, "", "", fmt.Sprintf("<address> is only supported in passthrough and hostdev mode, not %s", f.Mode))
		}
	}
	return f, nil
}

func (p *parser) pciAddress(n *xmlNode) (PCIAddress, error) {
	return p.pciAddressOf(n, pciNetwork)
}

// pciForm is the variant of PCI <address> an element takes: a network's
// <forward><address> (type required, parts optional, 32-bit domain) or a
// port's <plug><address> (the schema's pciaddress: type optional, parts
// required, 16-bit domain).
type pciForm struct {
	typeRequired, partsRequired bool
	domainMax                   uint64
}

var (
	pciNetwork = pciForm{typeRequired: true, domainMax: 0xffffffff}
	pciPort    = pciForm{partsRequired: true, domainMax: 0xffff}
)

func (p *parser) pciAddressOf(n *xmlNode, form pciForm) (PCIAddress, error) {
	var a PCIAddress
	if err := p.attrs(n, true, "type", "domain", "bus", "slot", "function"); err != nil {
		return a, err
	}
	t, ok := n.attr("type")
	if !ok && form.typeRequired {
		if _, err := p.required(n, "type"); err != nil {
			return a, err
		}
	}
	if ok && t != "pci" {
		return a, p.fail(n, "type", t, "only type='pci' addresses are supported")
	}
	fields := []struct {
		attr string
		max  uint64
		set  func(uint64)
	}{
		{"domain", form.domainMax, func(v uint64) { a.Domain = uint32(v) }},
		{"bus", 0xff, func(v uint64) { a.Bus = uint8(v) }},
		{"slot", 0x1f, func(v uint64) { a.Slot = uint8(v) }},
		{"function", 7, func(v uint64) { a.Function = uint8(v) }},
	}
	for _, fl := range fields {
		v, ok := n.attr(fl.attr)
		if !ok {
			if !form.partsRequired {
				continue
			}
			if _, err := p.required(n, fl.attr); err != nil {
				return a, err
			}
		}
		x, err := parseCNumber(v, fl.max)
		if err != nil {
			return a, p.fail(n, fl.attr, v, "PCI "+fl.attr+": "+err.Error())
		}
		fl.set(x)
	}
	return a, nil
}

func (p *parser) nat(n *xmlNode) (*NAT, error) {
	if err := p.attrs(n, false, "ipv6"); err != nil {
		return nil, err
	}
	nat := &NAT{}
	var err error
	if nat.IPv6, err = p.tristate(n, "ipv6"); err != nil {
		return nil, err
	}
	var addr, port bool
	for _, c := range n.children {
		switch c.name {
		case "address":
			if addr {
				return nil, p.fail(c, "", "", "more than one <address> in <nat>")
			}
			addr = true
			if err := p.attrs(c, true, "start", "end"); err != nil {
				return nil, err
			}
			for _, a := range []struct {
				attr string
				to   *netip.Addr
			}{{"start", &nat.AddressStart}, {"end", &nat.AddressEnd}} {
				v, err := p.addr(c, a.attr, true)
				if err != nil {
					return nil, err
				}
				if !v.Is4() {
					return nil, p.fail(c, a.attr, v.String(), "NAT addresses must be IPv4")
				}
				*a.to = v
			}
			if nat.AddressEnd.Less(nat.AddressStart) {
				return nil, p.fail(c, "end", nat.AddressEnd.String(), fmt.Sprintf("end is before start %s", nat.AddressStart))
			}
			if tooLarge(nat.AddressStart, nat.AddressEnd) {
				return nil, p.fail(c, "end", nat.AddressEnd.String(), fmt.Sprintf("the range from %s is larger than libvirt allows: start and end may differ only in their last 16 bits", nat.AddressStart))
			}
		case "port":
			if port {
				return nil, p.fail(c, "", "", "more than one <port> in <nat>")
			}
			port = true
			if err := p.attrs(c, true, "start", "end"); err != nil {
				return nil, err
			}
			for _, a := range []struct {
				attr string
				to   *uint16
			}{{"start", &nat.PortStart}, {"end", &nat.PortEnd}} {
				v, err := p.required(c, a.attr)
				if err != nil {
					return nil, err
				}
				x, err := parseDecimal(v, 16)
				if err != nil || x == 0 {
					return nil, p.fail(c, a.attr, v, "port must be a number in 1..65535")
				}
				*a.to = uint16(x)
			}
			if nat.PortEnd < nat.PortStart {
				return nil, p.fail(c, "end", fmt.Sprint(nat.PortEnd), fmt.Sprintf("end is below start %d", nat.PortStart))
			}
		default:
			return nil, p.fail(c, "", "", "unknown element inside <nat> (it holds <address> and <port>)")
		}
	}
	if *nat == (NAT{}) {
		return nil, nil
	}
	return nat, nil
}

func (p *parser) vlan(n *xmlNode) (*VLAN, error) {
	if err := p.attrs(n, false, "trunk"); err != nil {
		return nil, err
	}
	v := &VLAN{}
	native := false
	for _, c := range n.children {
		if c.name != "tag" {
			return nil, p.fail(c, "", "", "unknown element inside <vlan> (it holds <tag>)")
		}
		if err := p.attrs(c, true, "id", "nativeMode"); err != nil {
			return nil, err
		}
		s, err := p.required(c, "id")
		if err != nil {
			return nil, err
		}
		id, err := parseDecimal(s, 16)
		if err != nil || id > 4095 {
			return nil, p.fail(c, "id", s, "VLAN id must be a number in 0..4095")
		}
		t := VLANTag{ID: uint16(id)}
		if m, ok := c.attr("nativeMode"); ok {
			if m != "tagged" && m != "untagged" {
				return nil, p.fail(c, "nativeMode", m, "must be 'tagged' or 'untagged'")
			}
			if native {
				return nil, p.fail(c, "nativeMode", m, "only one tag may be the native VLAN")
			}
			native = true
			t.NativeMode = m
		}
		v.Tags = append(v.Tags, t)
	}
	if len(v.Tags) == 0 {
		return nil, p.fail(n, "", "", "<vlan> needs at least one <tag id='N'/>")
	}
	v.Trunk = len(v.Tags) > 1
	if t, ok := n.attr("trunk"); ok {
		switch strings.ToLower(t) {
		case "yes":
			v.Trunk = true
		case "no":
			if len(v.Tags) > 1 {
				return nil, p.fail(n, "trunk", t, "more than one tag needs trunk='yes'")
			}
			if native {
				return nil, p.fail(n, "trunk", t, "a native VLAN needs a trunk")
			}
		default:
			return nil, p.fail(n, "trunk", t, "must be 'yes' or 'no'")
		}
	}
	return v, nil
}

func (p *parser) bandwidth(n *xmlNode) (*Bandwidth, error) {
	if err := p.attrs(n, false); err != nil {
		if v, ok := n.attr("classID"); ok {
			return nil, p.fail(n, "classID", v, "classID is run-time state written by libvirt, not part of a definition")
		}
		return nil, err
	}
	b := &Bandwidth{}
	for _, c := range n.children {
		var to **Rate
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
		if v, ok := c.attr("floor"); ok {
			return nil, p.fail(c, "floor", v, "floor is only supported on a guest's interface, not on a network or portgroup")
		}
		if err := p.attrs(c, true, "average", "peak", "burst"); err != nil {
			return nil, err
		}
		r := &Rate{}
		for _, a := range []struct {
			attr string
			to   *uint32
		}{{"average", &r.Average}, {"peak", &r.Peak}, {"burst", &r.Burst}} {
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
		if r.Average == 0 {
			return nil, p.fail(c, "average", "", "missing required attribute (peak and burst need it)")
		}
		*to = r
	}
	if b.Inbound == nil && b.Outbound == nil {
		return nil, nil
	}
	return b, nil
}

var virtualPortParams = map[string][]string{
	"":            {"managerid", "typeid", "typeidversion", "instanceid", "profileid", "interfaceid"},
	"802.1Qbg":    {"managerid", "typeid", "typeidversion", "instanceid"},
	"802.1Qbh":    {"profileid"},
	"openvswitch": {"profileid", "interfaceid"},
	"midonet":     {"interfaceid"},
}

func (p *parser) virtualPort(n *xmlNode) (*VirtualPort, error) {
	if err := p.attrs(n, false, "type"); err != nil {
		return nil, err
	}
	vp := &VirtualPort{}
	if t, ok := n.attr("type"); ok {
		if _, known := virtualPortParams[t]; !known || t == "" {
			return nil, p.fail(n, "type", t, "must be '802.1Qbg', '802.1Qbh', 'openvswitch' or 'midonet'")
		}
		vp.Type = t
	}
	var params *xmlNode
	for _, c := range n.children {
		if c.name != "parameters" {
			return nil, p.fail(c, "", "", "unknown element inside <virtualport> (it holds <parameters>)")
		}
		if params != nil {
			return nil, p.fail(c, "", "", "more than one <parameters>")
		}
		params = c
	}
	if params == nil {
		if vp.Type == "" {
			return nil, nil // libvirt drops an untyped <virtualport> without parameters
		}
		return vp, nil
	}
	allowed := virtualPortParams[vp.Type]
	if params.dup != nil {
		return nil, p.fail(params, params.dup.Name.Local, params.dup.Value, "attribute given more than once")
	}
	for _, a := range params.attrs {
		if !slices.Contains(allowed, a.Name.Local) {
			if slices.Contains(virtualPortParams[""], a.Name.Local) {
				return nil, p.fail(params, a.Name.Local, a.Value, fmt.Sprintf("not a parameter of type '%s' (it has %s)", vp.Type, strings.Join(allowed, ", ")))
			}
		}
	}
	if err := p.attrs(params, true, allowed...); err != nil {
		return nil, err
	}
	for _, a := range []struct {
		attr string
		max  uint64
	}{{"managerid", 0xff}, {"typeid", 0xffffff}, {"typeidversion", 0xff}} {
		v, ok := params.attr(a.attr)
		if !ok {
			continue
		}
		x, err := parseCNumber(v, a.max)
		if err != nil {
			return nil, p.fail(params, a.attr, v, err.Error())
		}
		switch a.attr {
		case "managerid":
			b := uint8(x)
			vp.ManagerID = &b
		case "typeid":
			w := uint32(x)
			vp.TypeID = &w
		case "typeidversion":
			b := uint8(x)
			vp.TypeIDVersion = &b
		}
	}
	for _, a := range []struct {
		attr string
		to   *string
	}{{"instanceid", &vp.InstanceID}, {"interfaceid", &vp.InterfaceID}} {
		if v, ok := params.attr(a.attr); ok {
			u, err := parseUUID(v)
			if err != nil {
				return nil, p.fail(params, a.attr, v, err.Error())
			}
			*a.to = u
		}
	}
	if v, ok := params.attr("profileid"); ok {
		if v == "" || len(v) > MaxProfileIDLength {
			return nil, p.fail(params, "profileid", v, fmt.Sprintf("profileid must be 1..%d bytes", MaxProfileIDLength))
		}
		if err := checkPlainText(v); err != nil {
			return nil, p.fail(params, "profileid", v, err.Error())
		}
		vp.ProfileID = v
	}
	if vp.Type == "" && !vp.hasParameters() {
		return nil, nil
	}
	return vp, nil
}

// hasParameters reports whether any <parameters> attribute is set.
func (v *VirtualPort) hasParameters() bool {
	return v.ManagerID != nil || v.TypeID != nil || v.TypeIDVersion != nil || v.InstanceID != "" || v.ProfileID != "" || v.InterfaceID != ""
}

func (p *parser) portGroup(n *xmlNode) (*PortGroup, error) {
	if err := p.attrs(n, false, "name", "default", "trustGuestRxFilters"); err != nil {
		return nil, err
	}
	g := &PortGroup{}
	var err error
	if g.Name, err = p.required(n, "name"); err != nil {
		return nil, err
	}
	if g.Name == "" || len(g.Name) > MaxNameLength {
		return nil, p.fail(n, "name", g.Name, fmt.Sprintf("portgroup name must be 1..%d bytes", MaxNameLength))
	}
	if err := checkPlainText(g.Name); err != nil {
		return nil, p.fail(n, "name", g.Name, err.Error())
	}
	def, err := p.tristate(n, "default")
	if err != nil {
		return nil, err
	}
	g.Default = def == Yes
	if g.TrustGuestRxFilters, err = p.tristate(n, "trustGuestRxFilters"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range n.children {
		if seen[c.name] {
			return nil, p.fail(c, "", "", fmt.Sprintf("more than one <%s> in <portgroup>", c.name))
		}
		seen[c.name] = true
		switch c.name {
		case "virtualport":
			g.VirtualPort, err = p.virtualPort(c)
		case "bandwidth":
			g.Bandwidth, err = p.bandwidth(c)
		case "vlan":
			g.VLAN, err = p.vlan(c)
		default:
			err = p.fail(c, "", "", "unknown element inside <portgroup> (it holds <virtualport>, <bandwidth> and <vlan>)")
		}
		if err != nil {
			return nil, err
		}
	}
	return g, nil
}
