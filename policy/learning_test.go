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
