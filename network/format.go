package network

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/netwarden/netwarden/internal/xmltext"
)

// FormatXML returns the network as libvirt formats it: libvirt's element
// order (name, uuid, metadata, forward, bridge, mtu, mac, domain, dns,
// vlan, bandwidth, port, ip, route, virtualport, portgroup,
// dnsmasq:options), two-space indentation, single-quoted attributes,
// defaults written out (a bridge's stp and delay in the modes that have
// them, a forward dev as the first <interface>, a lease's unit) and values
// in canonical form (lower-case zero-padded MACs, canonical IPv6
// addresses and UUIDs, PCI addresses in hex). <metadata> is written
// verbatim.
//
// The output is checked by parsing it again, so FormatXML never returns a
// document Parse refuses; a Network built in code with invalid values
// yields the *ValidationError that parsing reports.
//
// (It is not called MarshalXML: go vet requires a method of that name to
// implement encoding/xml's Marshaler.)
func (n *Network) FormatXML() ([]byte, error) {
	raw := n.appendXML(nil)
	m, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("format network %q: %w", n.Name, err)
	}
	return m.appendXML(make([]byte, 0, len(raw))), nil
}

// xb is a small writer of libvirt-style XML.
type xb struct {
	b      []byte
	indent int
}

func (w *xb) open(name string) {
	w.pad()
	w.b = append(w.b, '<')
	w.b = append(w.b, name...)
}

func (w *xb) pad() {
	for i := 0; i < w.indent; i++ {
		w.b = append(w.b, "  "...)
	}
}

func (w *xb) attr(name, value string) {
	w.b = append(w.b, ' ')
	w.b = append(w.b, name...)
	w.b = append(w.b, "='"...)
	w.b = xmltext.AppendEscaped(w.b, value)
	w.b = append(w.b, '\'')
}

func (w *xb) attrIf(name, value string) {
	if value != "" {
		w.attr(name, value)
	}
}

func (w *xb) addr(name string, a netip.Addr) {
	if a.IsValid() {
		w.attr(name, a.String())
	}
}

func (w *xb) uint(name string, v uint64) {
	w.attr(name, strconv.FormatUint(v, 10))
}

// endEmpty closes the start tag of an empty element.
func (w *xb) endEmpty() { w.b = append(w.b, "/>\n"...) }

// endStart closes a start tag with children to follow.
func (w *xb) endStart() {
	w.b = append(w.b, ">\n"...)
	w.indent++
}

func (w *xb) close(name string) {
	w.indent--
	w.pad()
	w.b = append(w.b, "</"...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ">\n"...)
}

func (w *xb) textElem(name, text string) {
	w.open(name)
	w.b = append(w.b, '>')
	w.b = xmltext.AppendEscaped(w.b, text)
	w.b = append(w.b, "</"...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ">\n"...)
}

func (n *Network) appendXML(b []byte) []byte {
	w := &xb{b: b}
	w.open("network")
	if n.IPv6 {
		w.attr("ipv6", "yes")
	}
	w.attrIf("trustGuestRxFilters", n.TrustGuestRxFilters.String())
	if len(n.DnsmasqOptions) > 0 {
		w.attr("xmlns:dnsmasq", DnsmasqNamespace)
	}
	w.endStart()
	w.textElem("name", n.Name)
	if n.UUID != "" {
		w.textElem("uuid", n.UUID)
	}
	if n.Metadata != nil {
		w.open("metadata")
		w.b = append(w.b, '>')
		w.b = append(w.b, n.Metadata...)
		w.b = append(w.b, "</metadata>\n"...)
	}
	mode := n.ForwardMode()
	if f := n.Forward; f != nil {
		f.appendXML(w)
	}
	br := n.Bridge
	if mode.HasBridge() || br.Name != "" || br.MACTableManager != "" {
		w.open("bridge")
		w.attrIf("name", br.Name)
		w.attrIf("zone", br.Zone)
		if mode.HasBridge() {
			w.attr("stp", map[bool]string{true: "on", false: "off"}[br.STP])
			w.uint("delay", br.Delay)
		}
		w.attrIf("macTableManager", br.MACTableManager)
		w.endEmpty()
	}
	if n.MTU != 0 {
		w.open("mtu")
		w.uint("size", uint64(n.MTU))
		w.endEmpty()
	}
	if n.MAC != "" {
		w.open("mac")
		w.attr("address", n.MAC)
		w.endEmpty()
	}
	if d := n.Domain; d != nil {
		w.open("domain")
		w.attr("name", d.Name)
		w.attrIf("localOnly", d.LocalOnly.String())
		w.endEmpty()
	}
	if n.DNS != nil {
		n.DNS.appendXML(w)
	}
	n.VLAN.appendXML(w)
	n.Bandwidth.appendXML(w)
	if n.PortIsolated != Absent {
		w.open("port")
		w.attr("isolated", n.PortIsolated.String())
		w.endEmpty()
	}
	for i := range n.IPs {
		n.IPs[i].appendXML(w)
	}
	for _, r := range n.Routes {
		w.open("route")
		w.attrIf("family", r.Family)
		w.addr("address", r.Address)
		w.addr("netmask", r.Netmask)
		if r.HasPrefix {
			w.uint("prefix", uint64(r.Prefix))
		}
		w.addr("gateway", r.Gateway)
		if r.Metric > 0 {
			w.uint("metric", uint64(r.Metric))
		}
		w.endEmpty()
	}
	n.VirtualPort.appendXML(w)
	for _, g := range n.PortGroups {
		w.open("portgroup")
		w.attr("name", g.Name)
		if g.Default {
			w.attr("default", "yes")
		}
		w.attrIf("trustGuestRxFilters", g.TrustGuestRxFilters.String())
		w.endStart()
		g.VLAN.appendXML(w)
		g.VirtualPort.appendXML(w)
		g.Bandwidth.appendXML(w)
		w.close("portgroup")
	}
	if len(n.DnsmasqOptions) > 0 {
		w.open("dnsmasq:options")
		w.endStart()
		for _, o := range n.DnsmasqOptions {
			w.open("dnsmasq:option")
			w.attr("value", o)
			w.endEmpty()
		}
		w.close("dnsmasq:options")
	}
	w.close("network")
	return w.b
}

func (f *Forward) appendXML(w *xb) {
	w.open("forward")
	w.attrIf("dev", f.Dev())
	w.attr("mode", string(f.Mode))
	if f.Mode == ForwardHostdev {
		w.attr("managed", map[bool]string{true: "yes", false: "no"}[f.Managed])
	}
	if len(f.Interfaces) == 0 && len(f.PCIAddresses) == 0 && f.PF == "" && f.Driver == "" && f.NAT == nil {
		w.endEmpty()
		return
	}
	w.endStart()
	if f.Driver != "" {
		w.open("driver")
		w.attr("name", f.Driver)
		w.endEmpty()
	}
	if nat := f.NAT; nat != nil {
		w.open("nat")
		w.attrIf("ipv6", nat.IPv6.String())
		if !nat.AddressStart.IsValid() && nat.PortStart == 0 {
			w.endEmpty()
		} else {
			w.endStart()
			if nat.AddressStart.IsValid() {
				w.open("address")
				w.addr("start", nat.AddressStart)
				w.addr("end", nat.AddressEnd)
				w.endEmpty()
			}
			if nat.PortStart != 0 {
				w.open("port")
				w.uint("start", uint64(nat.PortStart))
				w.uint("end", uint64(nat.PortEnd))
				w.endEmpty()
			}
			w.close("nat")
		}
	}
	if f.PF != "" {
		w.open("pf")
		w.attr("dev", f.PF)
		w.endEmpty()
	}
	for _, i := range f.Interfaces {
		w.open("interface")
		w.attr("dev", i)
		w.endEmpty()
	}
	for _, a := range f.PCIAddresses {
		w.open("address")
		w.attr("type", "pci")
		w.attr("domain", fmt.Sprintf("0x%04x", a.Domain))
		w.attr("bus", fmt.Sprintf("0x%02x", a.Bus))
		w.attr("slot", fmt.Sprintf("0x%02x", a.Slot))
		w.attr("function", fmt.Sprintf("0x%x", a.Function))
		w.endEmpty()
	}
	w.close("forward")
}

func (d *DNS) appendXML(w *xb) {
	w.open("dns")
	w.attrIf("enable", d.Enable.String())
	w.attrIf("forwardPlainNames", d.ForwardPlainNames.String())
	if len(d.Forwarders)+len(d.TXTs)+len(d.SRVs)+len(d.Hosts) == 0 {
		w.endEmpty()
		return
	}
	w.endStart()
	for _, f := range d.Forwarders {
		w.open("forwarder")
		w.attrIf("domain", f.Domain)
		w.addr("addr", f.Addr)
		w.endEmpty()
	}
	for _, t := range d.TXTs {
		w.open("txt")
		w.attr("name", t.Name)
		w.attr("value", t.Value)
		w.endEmpty()
	}
	for _, s := range d.SRVs {
		w.open("srv")
		w.attr("service", s.Service)
		w.attr("protocol", s.Protocol)
		w.attrIf("domain", s.Domain)
		w.attrIf("target", s.Target)
		for _, a := range []struct {
			name string
			v    uint16
		}{{"port", s.Port}, {"priority", s.Priority}, {"weight", s.Weight}} {
			if a.v != 0 {
				w.uint(a.name, uint64(a.v))
			}
		}
		w.endEmpty()
	}
	for _, h := range d.Hosts {
		w.open("host")
		w.addr("ip", h.IP)
		w.endStart()
		for _, name := range h.Hostnames {
			w.textElem("hostname", name)
		}
		w.close("host")
	}
	w.close("dns")
}

func (v *VLAN) appendXML(w *xb) {
	if v == nil {
		return
	}
	w.open("vlan")
	if v.Trunk {
		w.attr("trunk", "yes")
	}
	w.endStart()
	for _, t := range v.Tags {
		w.open("tag")
		w.uint("id", uint64(t.ID))
		w.attrIf("nativeMode", t.NativeMode)
		w.endEmpty()
	}
	w.close("vlan")
}

func (b *Bandwidth) appendXML(w *xb) {
	if b == nil {
		return
	}
	w.open("bandwidth")
	w.endStart()
	for _, r := range []struct {
		name string
		r    *Rate
	}{{"inbound", b.Inbound}, {"outbound", b.Outbound}} {
		if r.r == nil {
			continue
		}
		w.open(r.name)
		w.uint("average", uint64(r.r.Average))
		if r.r.Peak != 0 {
			w.uint("peak", uint64(r.r.Peak))
		}
		if r.r.Burst != 0 {
			w.uint("burst", uint64(r.r.Burst))
		}
		w.endEmpty()
	}
	w.close("bandwidth")
}

func (v *VirtualPort) appendXML(w *xb) {
	if v == nil {
		return
	}
	w.open("virtualport")
	w.attrIf("type", v.Type)
	if !v.hasParameters() {
		w.endEmpty()
		return
	}
	w.endStart()
	w.open("parameters")
	if v.ManagerID != nil {
		w.uint("managerid", uint64(*v.ManagerID))
	}
	if v.TypeID != nil {
		w.uint("typeid", uint64(*v.TypeID))
	}
	if v.TypeIDVersion != nil {
		w.uint("typeidversion", uint64(*v.TypeIDVersion))
	}
	w.attrIf("instanceid", v.InstanceID)
	w.attrIf("interfaceid", v.InterfaceID)
	w.attrIf("profileid", v.ProfileID)
	w.endEmpty()
	w.close("virtualport")
}

func (ip *IP) appendXML(w *xb) {
	w.open("ip")
	w.attrIf("family", ip.Family)
	w.addr("address", ip.Address)
	w.addr("netmask", ip.Netmask)
	if ip.Prefix > 0 {
		w.uint("prefix", uint64(ip.Prefix))
	}
	w.attrIf("localPtr", ip.LocalPtr.String())
	w.endStart()
	if ip.TFTPRoot != "" {
		w.open("tftp")
		w.attr("root", ip.TFTPRoot)
		w.endEmpty()
	}
	if d := ip.DHCP; d != nil {
		w.open("dhcp")
		w.endStart()
		for _, r := range d.Ranges {
			w.open("range")
			w.addr("start", r.Start)
			w.addr("end", r.End)
			appendLease(w, "range", r.Lease)
		}
		for _, h := range d.Hosts {
			w.open("host")
			w.attrIf("mac", h.MAC)
			w.attrIf("id", h.ID)
			w.attrIf("name", h.Name)
			w.addr("ip", h.IP)
			appendLease(w, "host", h.Lease)
		}
		if b := d.Bootp; b != nil {
			w.open("bootp")
			w.attr("file", b.File)
			w.addr("server", b.Server)
			w.endEmpty()
		}
		w.close("dhcp")
	}
	w.close("ip")
}

// appendLease ends the start tag of a range or host, with its lease.
func appendLease(w *xb, elem string, l *Lease) {
	if l == nil {
		w.endEmpty()
		return
	}
	w.endStart()
	w.open("lease")
	w.uint("expiry", l.Expiry)
	if l.Expiry != 0 {
		w.attr("unit", string(l.Unit))
	}
	w.endEmpty()
	w.close(elem)
}
