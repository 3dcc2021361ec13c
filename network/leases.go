// DHCP leases: reading dnsmasq's lease database (DnsmasqPaths.LeaseFile)
// for net-dhcp-leases, and releasing a lease with dnsmasq-utils'
// dhcp_release / dhcp_release6 when a port goes.

package network

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// MaxLeaseFileSize is the largest lease database ReadLeases reads.
const MaxLeaseFileSize = 64 << 20

// Lease types (DHCPLease.Type), libvirt's names.
const (
	LeaseIPv4 = "ipv4"
	LeaseIPv6 = "ipv6"
)

// DHCPLease is one lease of a network's dnsmasq, with the fields of
// libvirt's net-dhcp-leases (virNetworkDHCPLease).
type DHCPLease struct {
	// Expiry is when the lease ends; the zero time for an infinite lease.
	Expiry time.Time
	// Type is LeaseIPv4 or LeaseIPv6.
	Type string
	// MAC is the client's MAC as dnsmasq wrote it (lower case, ':'
	// separated; a hardware type other than Ethernet is prefixed as
	// "TT-"). For IPv6 leases dnsmasq records no MAC: it is derived from
	// the client's DUID when that is a link-layer DUID (type 1, LLT, or 3,
	// LL) of an Ethernet address, and is "" otherwise.
	MAC string
	// IAID is the identity association ID of an IPv6 lease (decimal,
	// prefixed with "T" for a temporary address), "" for IPv4.
	IAID string
	// IPAddr is the leased address.
	IPAddr netip.Addr
	// Prefix is the prefix length of the network's <ip> the address is
	// in. ReadLeases leaves it 0 (the file does not say); fill it in with
	// Network.LeasePrefix.
	Prefix int
	// Hostname is the name the client gave, "" for none.
	Hostname string
	// ClientID is the DHCP client identifier (IPv4) or the client's DUID
	// (IPv6), as ':'-separated hex bytes, "" for none.
	ClientID string
	// ServerDUID is the server's DUID (the file's "duid" line) for IPv6
	// leases, which dhcp_release6 needs; "" for IPv4.
	ServerDUID string
}

// ReadLeases reads dnsmasq's lease database at path (the file dnsmasq
// writes as --dhcp-leasefile, DnsmasqPaths.LeaseFile) and returns the
// leases that have not expired at now, in file order. Lines are
//
//	EXPIRY MAC IP HOSTNAME CLIENTID            (IPv4)
//	duid SERVER-DUID
//	EXPIRY IAID IP HOSTNAME CLIENT-DUID        (IPv6, after the duid line)
//
// where EXPIRY is seconds since the epoch (0: infinite) and '*' stands
// for no hostname or client ID. A missing file means no leases. dnsmasq
// rewrites the file in place, so a last line without its line break (a
// write in progress) is ignored; any other malformed line is an error
// naming it.
func ReadLeases(path string, now time.Time) ([]DHCPLease, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read DHCP leases: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxLeaseFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read DHCP leases: %w", err)
	}
	if len(data) > MaxLeaseFileSize {
		return nil, fmt.Errorf("read DHCP leases: %s is larger than %d bytes", path, MaxLeaseFileSize)
	}
	leases, err := parseLeases(data, now)
	if err != nil {
		return nil, fmt.Errorf("read DHCP leases from %s: %w", path, err)
	}
	return leases, nil
}

// parseLeases parses the content of a lease database.
func parseLeases(data []byte, now time.Time) ([]DHCPLease, error) {
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1] // an incomplete last line
	}
	var (
		leases     []DHCPLease
		serverDUID string
		v6         bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxLeaseFileSize)
	for lineNo := 1; sc.Scan(); lineNo++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("line %d: %s", lineNo, why) }
		if fields[0] == "duid" {
			if len(fields) != 2 || checkHexBytes(fields[1]) != nil {
				return nil, bad("malformed duid line")
			}
			serverDUID, v6 = fields[1], true
			continue
		}
		if len(fields) != 5 {
			return nil, bad(fmt.Sprintf("%d fields, want 5 (expiry, MAC or IAID, address, hostname, client ID)", len(fields)))
		}
		exp, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || exp < 0 {
			return nil, bad(fmt.Sprintf("expiry %q is not a time", fields[0]))
		}
		l := DHCPLease{Type: LeaseIPv4}
		if exp != 0 {
			l.Expiry = time.Unix(exp, 0)
			if l.Expiry.Before(now) {
				continue // expired (libvirt's test)
			}
		}
		if l.IPAddr, err = parseAddr(fields[2]); err != nil {
			return nil, bad(fmt.Sprintf("address %q: %v", fields[2], err))
		}
		if v6 != l.IPAddr.Is6() {
			return nil, bad(fmt.Sprintf("address %q of the wrong family (IPv6 leases follow the duid line)", fields[2]))
		}
		if fields[3] != "*" {
			if err := checkPlainText(fields[3]); err != nil {
				return nil, bad(fmt.Sprintf("hostname: %v", err))
			}
			l.Hostname = fields[3]
		}
		if fields[4] != "*" {
			if err := checkHexBytes(fields[4]); err != nil {
				return nil, bad(fmt.Sprintf("client ID %q: %v", fields[4], err))
			}
			l.ClientID = fields[4]
		}
		if v6 {
			l.Type = LeaseIPv6
			iaid := strings.TrimPrefix(fields[1], "T")
			if _, err := strconv.ParseUint(iaid, 10, 32); err != nil {
				return nil, bad(fmt.Sprintf("IAID %q is not a number", fields[1]))
			}
			l.IAID = fields[1]
			l.MAC = duidMAC(l.ClientID)
			l.ServerDUID = serverDUID
		} else {
			mac := fields[1]
			if i := strings.IndexByte(mac, '-'); i >= 0 {
				if checkHexBytes(mac[:i]) != nil {
					return nil, bad(fmt.Sprintf("MAC %q has a malformed hardware type", fields[1]))
				}
				mac = mac[i+1:]
			}
			if mac != "" && checkHexBytes(mac) != nil {
				return nil, bad(fmt.Sprintf("MAC %q is not hex bytes", fields[1]))
			}
			l.MAC = strings.ToLower(fields[1])
		}
		leases = append(leases, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return leases, nil
}

// checkHexBytes accepts ':'-separated bytes of one or two hex digits.
func checkHexBytes(s string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	for _, p := range strings.Split(s, ":") {
		if len(p) < 1 || len(p) > 2 || !isHexDigit(p[0]) || (len(p) == 2 && !isHexDigit(p[1])) {
			return fmt.Errorf("not ':'-separated hex bytes")
		}
	}
	return nil
}

// duidMAC returns the Ethernet address in a link-layer DUID (DUID-LLT:
// type 1, hardware type, time, address; DUID-LL: type 3, hardware type,
// address), "" for any other DUID.
func duidMAC(duid string) string {
	if duid == "" {
		return ""
	}
	parts := strings.Split(duid, ":")
	b := make([]byte, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return ""
		}
		b[i] = byte(v)
	}
	var addr []byte
	switch {
	case len(b) == 14 && b[0] == 0 && b[1] == 1 && b[2] == 0 && b[3] == 1: // LLT, Ethernet
		addr = b[8:]
	case len(b) == 10 && b[0] == 0 && b[1] == 3 && b[2] == 0 && b[3] == 1: // LL, Ethernet
		addr = b[4:]
	default:
		return ""
	}
	return net.HardwareAddr(addr).String()
}

// LeasePrefix returns the prefix length to show with a lease of addr: that
// of the network's first <ip> whose subnet holds addr, else of its first
// <ip> of addr's family (libvirt takes the first of the family), else 0.
func (n *Network) LeasePrefix(addr netip.Addr) int {
	first := 0
	for i := range n.IPs {
		ip := &n.IPs[i]
		if ip.Address.Is4() != addr.Is4() {
			continue
		}
		if ip.Subnet().Contains(addr) {
			return ip.PrefixLen()
		}
		if first == 0 {
			first = ip.PrefixLen()
		}
	}
	return first
}

// releaseArgv returns dhcp_release's command line for an IPv4 lease:
// dhcp_release IFACE ADDR MAC [CLIENT-ID].
func releaseArgv(bridge string, ip netip.Addr, mac, clientID string) ([]string, error) {
	if err := checkIfName(bridge); err != nil {
		return nil, fmt.Errorf("release DHCP lease: bridge %q: %w", bridge, err)
	}
	if !ip.Is4() || ip.Zone() != "" {
		return nil, fmt.Errorf("release DHCP lease: %v is not an IPv4 address (use ReleaseLease6 for IPv6)", ip)
	}
	m, err := parseMAC(mac)
	if err != nil {
		return nil, fmt.Errorf("release DHCP lease of %s: MAC %q: %w", ip, mac, err)
	}
	argv := []string{"dhcp_release", bridge, ip.String(), m}
	if clientID != "" && clientID != "*" {
		if err := checkHexBytes(clientID); err != nil {
			return nil, fmt.Errorf("release DHCP lease of %s: client ID %q: %w", ip, clientID, err)
		}
		argv = append(argv, clientID)
	}
	return argv, nil
}

// release6Argv returns dhcp_release6's command line for an IPv6 lease.
func release6Argv(bridge string, ip netip.Addr, iaid, clientDUID, serverDUID string) ([]string, error) {
	if err := checkIfName(bridge); err != nil {
		return nil, fmt.Errorf("release DHCPv6 lease: bridge %q: %w", bridge, err)
	}
	if !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
		return nil, fmt.Errorf("release DHCPv6 lease: %v is not an IPv6 address", ip)
	}
	if _, err := strconv.ParseUint(iaid, 10, 32); err != nil {
		return nil, fmt.Errorf("release DHCPv6 lease of %s: IAID %q is not a number (temporary addresses cannot be released)", ip, iaid)
	}
	for _, d := range []struct{ what, v string }{{"client DUID", clientDUID}, {"server DUID", serverDUID}} {
		if err := checkHexBytes(d.v); err != nil {
			return nil, fmt.Errorf("release DHCPv6 lease of %s: %s %q: %w", ip, d.what, d.v, err)
		}
	}
	return []string{"dhcp_release6", "--iface", bridge, "--ip", ip.String(), "--server-id", serverDUID,
		"--client-id", clientDUID, "--iaid", iaid}, nil
}

// ReleaseLease makes the network's dnsmasq forget the IPv4 lease of ip held
// by the client with MAC mac (and client ID clientID, "" or "*" for none, as
// in the lease), as libvirt-less setups do when a guest goes: it runs
// dnsmasq-utils' dhcp_release in the Links' namespace, which sends a
// DHCPRELEASE on bridge to the dnsmasq serving it. dnsmasq then removes
// the lease from its database; it does not answer, so success means the
// release was sent, not that dnsmasq had such a lease.
func (l *Links) ReleaseLease(ctx context.Context, bridge string, ip netip.Addr, mac string, clientID string) error {
	argv, err := releaseArgv(bridge, ip, mac, clientID)
	if err != nil {
		return err
	}
	return l.runInNetns(ctx, argv)
}

// ReleaseLease6 is ReleaseLease for an IPv6 lease: it runs dhcp_release6
// with the lease's IAID and client DUID and the server's DUID, as
// ReadLeases returns them (DHCPLease.IAID, ClientID, ServerDUID).
func (l *Links) ReleaseLease6(ctx context.Context, bridge string, ip netip.Addr, iaid, clientDUID, serverDUID string) error {
	argv, err := release6Argv(bridge, ip, iaid, clientDUID, serverDUID)
	if err != nil {
		return err
	}
	return l.runInNetns(ctx, argv)
}

// runInNetns runs argv (no shell) in the Links' namespace and waits for
// it: the child is forked from a thread inside the namespace and so starts
// there. Its output goes into the error when it fails.
func (l *Links) runInNetns(ctx context.Context, argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("%s (from dnsmasq-utils): %w", argv[0], err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.WaitDelay = 5 * time.Second
	if err := l.inNetns(cmd.Run); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		if msg != "" {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
		}
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}
