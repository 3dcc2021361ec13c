package policy

import (
	"strings"
	"testing"
)

// TestGoldenLearningRules: the basic rules of a learning port, for each
// mode and family, against golden files.
func TestGoldenLearningRules(t *testing.T) {
	cases := []struct {
		name string
		o    LearningOptions
	}{
		{"any-ipv4", LearningOptions{Mode: LearnAny, IPv4: true, DHCPServers: []string{"10.0.0.1"}}},
		{"dhcp-ipv4", LearningOptions{Mode: LearnDHCP, IPv4: true, DHCPServers: []string{"10.0.0.1", "10.0.0.2"}}},
		{"dhcp-ipv4-any-server", LearningOptions{Mode: LearnDHCP, IPv4: true}},
		{"any-ipv6", LearningOptions{Mode: LearnAny, IPv6: true}},
		{"dhcp-both", LearningOptions{Mode: LearnDHCP, IPv4: true, IPv6: true,
			DHCPServers: []string{"10.0.0.1"}, DHCPServersV6: []string{"fe80::1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pr, err := LearningRules("vnet0", goldenMAC, c.o)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "learning/"+c.name, pr.String())
			// Nothing but accepts and the final drop.
			root := pr.Chains[0]
			if last := root.Rules[len(root.Rules)-1]; last.Action.String() != "drop" || last.Protocol != "" {
				t.Errorf("last rule %+v, want drop all", last)
			}
		})
	}
}

func TestLearningRulesRejectBadServer(t *testing.T) {
	_, err := LearningRules("vnet0", goldenMAC, LearningOptions{Mode: LearnDHCP, IPv4: true, DHCPServers: []string{"not-an-ip"}})
	if err == nil || !strings.Contains(err.Error(), "DHCPSERVER") {
		t.Fatalf("err = %v", err)
	}
}

// bothFamilies is a user filter needing $IP and $IPV6, with an IP-layer
// rule that uses neither.
const bothFamilies = `<filter name='both' chain='root'>
  <filterref filter='no-mac-spoofing'/>
  <filterref filter='no-ip-spoofing'/>
  <filterref filter='no-ipv6-spoofing'/>
  <rule action='accept' direction='in' priority='500'><tcp dstportstart='22'/></rule>
</filter>`

// TestGoldenPendingFamily: a filter needing both families with one of
// them learned is enforced with it, the other family with the basic
// rules in front.
func TestGoldenPendingFamily(t *testing.T) {
	f, err := ParseFilter([]byte(bothFamilies))
	if err != nil {
		t.Fatal(err)
	}
	res := prefixResolver{f, builtinRegistry(t)}
	cases := []struct {
		name    string
		params  []Param
		pending []string
		o       LearningOptions
	}{
		{"pending-ipv6", []Param{{Name: VarIP, Value: "10.0.0.5"}}, []string{VarIPv6}, LearningOptions{Mode: LearnAny}},
		{"pending-ipv4-dhcp", []Param{{Name: VarIPv6, Value: "fd00::5"}, {Name: ParamIPLearning, Value: "dhcp"}}, []string{VarIP},
			LearningOptions{Mode: LearnDHCP, DHCPServers: []string{"10.0.0.1", "10.0.0.2"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pr, err := InstantiatePending(res, "vnet0", "both", goldenMAC, c.params, c.pending, c.o)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "learning/"+c.name, pr.String())
			for _, r := range pr.Chains[0].Rules[:1] {
				if r.Priority != MinPriority {
					t.Errorf("first root rule %+v: want the learning prefix", r)
				}
			}
		})
	}
}

// TestPendingFamilyRefusesForeignRules: a rule of another family (or of
// none) that uses the pending variable cannot wait for it.
func TestPendingFamilyRefusesForeignRules(t *testing.T) {
	f, err := ParseFilter([]byte(`<filter name='odd' chain='root'>
  <rule action='drop' direction='out'><tcp srcipaddr='$IPV6'/></rule>
</filter>`))
	if err != nil {
		t.Skipf("the parser refuses the rule already: %v", err)
	}
	_, err = InstantiatePending(prefixResolver{f, builtinRegistry(t)}, "vnet0", "odd", goldenMAC,
		[]Param{{Name: VarIP, Value: "10.0.0.5"}}, []string{VarIPv6}, LearningOptions{Mode: LearnAny})
	if err == nil || !strings.Contains(err.Error(), "IPV6") {
		t.Fatalf("err = %v", err)
	}
	// Nothing pending is a caller's error.
	if _, err := InstantiatePending(prefixResolver{f, builtinRegistry(t)}, "vnet0", "odd", goldenMAC, nil, nil, LearningOptions{}); err == nil {
		t.Fatal("no pending family accepted")
	}
}
