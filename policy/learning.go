package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// ParamDHCPServerV6 lists the DHCPv6 servers trusted by dhcp learning.
const ParamDHCPServerV6 = "DHCPSERVERV6"

// LearningFilter is the name of the filter LearningRules instantiates; it
// is not in any registry and cannot be referenced.
const LearningFilter = "netwarden-learning"

// LearningOptions say what a port waiting for its addresses must still
// be able to do.
type LearningOptions struct {
	// Mode is the learning mode (LearnAny or LearnDHCP).
	Mode string
	// IPv4 and IPv6 say which families are being learned.
	IPv4, IPv6 bool
	// DHCPServers and DHCPServersV6 are the trusted servers of dhcp
	// learning; in that mode, replies from other sources are dropped.
	// Empty: any server (as libvirt).
	DHCPServers, DHCPServersV6 []string
}

// LearningRules are libvirt's "basic rules" of a port whose addresses
// are being learned: from the guest only ARP with its own MAC, the DHCP
// client's half of the exchange (UDP 68→67) and, for IPv6, router and
// neighbour solicitations and advertisements and DHCPv6 (546→547); to
// the guest ARP, DHCP replies (67→68, from the trusted servers in dhcp
// mode), router and neighbour messages and DHCPv6 replies; everything
// else is dropped. The learner sees the guest's other frames before the
// bridge drops them, so "any" learning still gets its first packet.
func LearningRules(port, mac string, o LearningOptions) (*netfilter.PortRules, error) {
	var params []Param
	if mac != "" {
		params = append(params, Param{Name: VarMAC, Value: mac})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<filter name='%s' chain='root'>\n", LearningFilter)
	rule := func(dir string, prio int, match string) {
		fmt.Fprintf(&b, "  <rule action='accept' direction='%s' priority='%d'>%s</rule>\n", dir, prio, match)
	}
	rule("out", 100, "<arp srcmacaddr='$MAC' arpsrcmacaddr='$MAC'/>")
	rule("in", 100, "<arp/>")
	trusted := func(servers []string, name string) string {
		if o.Mode != LearnDHCP || len(servers) == 0 {
			return ""
		}
		for _, s := range servers {
			params = append(params, Param{Name: name, Value: s})
		}
		return "srcipaddr='$" + name + "' "
	}
	if o.IPv4 {
		rule("out", 200, "<ip srcmacaddr='$MAC' protocol='udp' srcportstart='68' dstportstart='67'/>")
		rule("in", 200, "<ip "+trusted(o.DHCPServers, ParamDHCPServer)+"protocol='udp' srcportstart='67' dstportstart='68'/>")
	}
	if o.IPv6 {
		rule("out", 300, "<ipv6 srcmacaddr='$MAC' protocol='icmpv6' type='133'/>")
		rule("out", 300, "<ipv6 srcmacaddr='$MAC' protocol='icmpv6' type='135' typeend='136'/>")
		rule("out", 300, "<ipv6 srcmacaddr='$MAC' protocol='udp' srcportstart='546' dstportstart='547'/>")
		rule("in", 300, "<ipv6 protocol='icmpv6' type='134' typeend='136'/>")
		rule("in", 300, "<ipv6 "+trusted(o.DHCPServersV6, ParamDHCPServerV6)+"protocol='udp' srcportstart='547' dstportstart='546'/>")
	}
	b.WriteString("  <rule action='drop' direction='inout' priority='1000'/>\n</filter>\n")
	f, err := ParseFilter([]byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("port %s: learning rules: %w", port, err)
	}
	inst, err := Instantiate(oneFilter{f}, port, LearningFilter, mac, params)
	if err != nil {
		return nil, err
	}
	return inst.Rules, nil
}

// oneFilter resolves one filter.
type oneFilter struct{ f *Filter }

func (r oneFilter) Filter(name string) (*Filter, bool) {
	if name == r.f.Name {
		return r.f, true
	}
	return nil, false
}

// LearningParams returns the learning mode and the trusted DHCP servers
// of a binding's parameters.
func LearningParams(params []Param) (mode string, servers, servers6 []string) {
	mode = LearnAny
	ps := ParamsOf(params)
	if v := ps[ParamIPLearning]; len(v) > 0 {
		mode = strings.ToLower(v[0])
	}
	return mode, ps[ParamDHCPServer], ps[ParamDHCPServerV6]
}

// PendingFilter is the name of the filter InstantiatePending puts in
// front of the bound filter; like LearningFilter it is in no registry.
const PendingFilter = "netwarden-learning-pending"

// Protocols whose traffic belongs to one address family: the rules that
// use a family's address variable while it is still being learned must
// be of these, since the prefix of InstantiatePending decides that
// family's traffic before them.
var (
	familyV4 = map[Protocol]bool{ProtoIP: true, ProtoARP: true, ProtoRARP: true}
	familyV6 = map[Protocol]bool{ProtoIPv6: true}
)

// InstantiatePending instantiates the filter of a port that has learned
// the addresses of one family but still learns the other's (the names in
// pending, IP or IPV6; params carry the learned values). The learned
// family is enforced with the filter as bound; the pending family keeps
// the basic rules of learning, ahead of the filter:
//
//   - a prefix filter in the root chain, at priority MinPriority, accepts
//     what learning the pending family needs (IPv4: ARP with the guest's
//     own MAC, DHCP 68→67 out and 67→68 in, from the trusted servers in
//     dhcp mode; IPv6: RS, NS/NA, DHCPv6 546→547 out and RA, NS/NA,
//     DHCPv6 547→546 in) and drops the rest of that family (IPv4: ip, arp
//     and rarp frames; IPv6: ipv6 frames);
//   - then the bound filter, without the rules that use a pending
//     variable: those match only the pending family's frames (an error
//     otherwise), which the prefix has decided already.
//
// libvirt learns $IP only and refuses a filter that needs anything else
// it lacks; this is the same enforcement for the IPv4 half, and the same
// basic rules for the half still being learned.
func InstantiatePending(res Resolver, port, filter, mac string, params []Param, pending []string, o LearningOptions) (*netfilter.PortRules, error) {
	o.IPv4 = slices.Contains(pending, VarIP)
	o.IPv6 = slices.Contains(pending, VarIPv6)
	if !o.IPv4 && !o.IPv6 {
		return nil, fmt.Errorf("port %s: no pending address family", port)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<filter name='%s' chain='root'>\n", PendingFilter)
	rule := func(action, dir, match string) {
		fmt.Fprintf(&b, "  <rule action='%s' direction='%s' priority='%d'>%s</rule>\n", action, dir, MinPriority, match)
	}
	trusted := func(servers []string, name string) string {
		if o.Mode != LearnDHCP || len(servers) == 0 {
			return ""
		}
		return "srcipaddr='$" + name + "' "
	}
	if o.IPv4 {
		rule("accept", "out", "<arp srcmacaddr='$MAC' arpsrcmacaddr='$MAC'/>")
		rule("accept", "in", "<arp/>")
		rule("accept", "out", "<ip srcmacaddr='$MAC' protocol='udp' srcportstart='68' dstportstart='67'/>")
		rule("accept", "in", "<ip "+trusted(o.DHCPServers, ParamDHCPServer)+"protocol='udp' srcportstart='67' dstportstart='68'/>")
		rule("drop", "inout", "<arp/>")
		rule("drop", "inout", "<rarp/>")
		rule("drop", "inout", "<ip/>")
	}
	if o.IPv6 {
		rule("accept", "out", "<ipv6 srcmacaddr='$MAC' protocol='icmpv6' type='133'/>")
		rule("accept", "out", "<ipv6 srcmacaddr='$MAC' protocol='icmpv6' type='135' typeend='136'/>")
		rule("accept", "out", "<ipv6 srcmacaddr='$MAC' protocol='udp' srcportstart='546' dstportstart='547'/>")
		rule("accept", "in", "<ipv6 protocol='icmpv6' type='134' typeend='136'/>")
		rule("accept", "in", "<ipv6 "+trusted(o.DHCPServersV6, ParamDHCPServerV6)+"protocol='udp' srcportstart='547' dstportstart='546'/>")
		rule("drop", "inout", "<ipv6/>")
	}
	fmt.Fprintf(&b, "  <filterref filter='%s'/>\n</filter>\n", filter)
	prefix, err := ParseFilter([]byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("port %s: learning rules: %w", port, err)
	}

	top := ParamsOf(params)
	if _, ok := top[VarMAC]; !ok && mac != "" {
		top[VarMAC] = []string{mac}
	}
	// The trusted servers as lists for the prefix's iterations (the
	// binding's own parameters, as given).
	if len(o.DHCPServers) > 0 {
		top[ParamDHCPServer] = o.DHCPServers
	}
	if len(o.DHCPServersV6) > 0 {
		top[ParamDHCPServerV6] = o.DHCPServersV6
	}
	in := &instantiator{res: prefixResolver{prefix, res}, port: port, used: map[string]bool{}}
	if err := in.collect(PendingFilter, top, 0, nil); err != nil {
		return nil, err
	}
	kept := in.rules[:0:0]
	for _, ri := range in.rules {
		skip := false
		for _, name := range ri.rule.varNames() {
			if _, ok := ri.vars[name]; ok {
				continue
			}
			var family map[Protocol]bool
			switch {
			case name == VarIP && o.IPv4:
				family = familyV4
			case name == VarIPv6 && o.IPv6:
				family = familyV6
			default:
				return nil, &InstantiateError{Port: port, Filter: ri.filter.Name, Rule: ri.index, Variable: name,
					Reason: "has no value (set it as a parameter of the binding or of the filter reference)"}
			}
			proto := Protocol("")
			if ri.rule.Match != nil {
				proto = ri.rule.Match.Protocol
			}
			if !family[proto] && !(name == VarIP && ipv4Protocols[proto]) && !(name == VarIPv6 && ipv6Protocols[proto]) {
				return nil, &InstantiateError{Port: port, Filter: ri.filter.Name, Rule: ri.index, Variable: name,
					Reason: fmt.Sprintf("is being learned and a %q rule cannot wait for it (only rules of its address family can)", proto)}
			}
			skip = true
		}
		if !skip {
			kept = append(kept, ri)
		}
	}
	in.rules = kept
	return in.build()
}

// prefixResolver resolves one extra filter in front of a registry.
type prefixResolver struct {
	f   *Filter
	res Resolver
}

func (r prefixResolver) Filter(name string) (*Filter, bool) {
	if name == r.f.Name {
		return r.f, true
	}
	return r.res.Filter(name)
}
