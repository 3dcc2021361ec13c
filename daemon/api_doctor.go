package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	gnft "github.com/google/nftables"

	"github.com/netwarden/netwarden/doctor"
	"github.com/netwarden/netwarden/network"
)

// Doctor implements dbusapi.Manager: the coexistence doctor's report on
// the active networks, as JSON. It reads the ruleset of the daemon's
// network namespace and changes nothing.
func (c *core) Doctor(ctx context.Context) (string, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return "", err
	}
	nets := m.doctorNetworks()
	rs, err := readFirewall(ctx)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(doctor.Analyze(rs, nets))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// doctorNetworks returns what the doctor needs of each active network
// that has a bridge of its own (isolated, nat, route, open), by name.
func (m *Networks) doctorNetworks() []doctor.Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []doctor.Network
	for _, name := range m.sortedNames() {
		n := m.nets[name].live
		if n == nil || !n.ForwardMode().HasBridge() {
			continue
		}
		d := doctor.Network{Name: n.Name, Bridge: n.Bridge.Name, Mode: modeName(n.ForwardMode())}
		d.IPv4, d.IPv6 = families(n)
		dns := network.DnsmasqNeeded(n)
		for i := range n.IPs {
			ip := &n.IPs[i]
			if ip.DHCP == nil || (len(ip.DHCP.Ranges) == 0 && len(ip.DHCP.Hosts) == 0) {
				continue
			}
			if ip.IsIPv6() {
				d.DHCPv6 = true
			} else {
				d.DHCPv4 = true
			}
		}
		d.DNS = dns && (n.DNS == nil || n.DNS.Enable != network.No)
		out = append(out, d)
	}
	return out
}

// readFirewall takes the doctor's snapshot of this namespace's
// firewall: every nftables table, and the iptables-legacy filter tables
// when the kernel has some.
func readFirewall(ctx context.Context) (doctor.Ruleset, error) {
	conn, err := gnft.New()
	if err != nil {
		return doctor.Ruleset{}, fmt.Errorf("doctor: %w", err)
	}
	defer conn.CloseLasting()
	rs, err := doctor.ReadNftables(conn)
	if err != nil {
		return rs, fmt.Errorf("doctor: %w", err)
	}
	for _, l := range []struct{ family, names, tool string }{
		{"ip", "/proc/net/ip_tables_names", "iptables-legacy-save"},
		{"ip6", "/proc/net/ip6_tables_names", "ip6tables-legacy-save"},
	} {
		// Only the listing of loaded tables is read first: running the
		// tool when there are none would load the legacy modules.
		names, err := os.ReadFile(l.names)
		if err != nil || !strings.Contains("\n"+string(names), "\nfilter\n") {
			continue
		}
		path, err := exec.LookPath(l.tool)
		if err != nil {
			rs.Notes = append(rs.Notes, fmt.Sprintf("the kernel has a legacy %s filter table, but %s is not installed: it was not inspected", l.family, l.tool))
			continue
		}
		var out, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, path, "-t", "filter")
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			rs.Notes = append(rs.Notes, fmt.Sprintf("%s failed (%v: %s): the legacy %s filter table was not inspected",
				l.tool, err, strings.TrimSpace(stderr.String()), l.family))
			continue
		}
		rs.Tables = append(rs.Tables, doctor.ParseIptablesSave(l.family, out.String())...)
	}
	return rs, nil
}
