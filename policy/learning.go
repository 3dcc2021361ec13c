package policy

import (
	"fmt"
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
