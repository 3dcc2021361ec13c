package lab

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Lease6 is what a guest's DHCPv6 client was given by the server.
type Lease6 struct {
	// IP is the address of the IA_NA (configured as a /128, as DHCPv6
	// clients do: the on-link prefix comes from router advertisements).
	IP net.IP
	// Preferred and Valid are the address's lifetimes.
	Preferred, Valid time.Duration
	// ServerID is the server's DUID.
	ServerID []byte
	// DNS lists the name servers offered (option 23).
	DNS []net.IP
}

// DHCPv6 message types and options (RFC 8415) the client uses.
const (
	dhcp6Solicit   = 1
	dhcp6Advertise = 2
	dhcp6Request   = 3
	dhcp6Reply     = 7

	dhcp6OptClientID    = 1
	dhcp6OptServerID    = 2
	dhcp6OptIANA        = 3
	dhcp6OptIAAddr      = 5
	dhcp6OptORO         = 6
	dhcp6OptElapsedTime = 8
	dhcp6OptStatusCode  = 13
	dhcp6OptDNSServers  = 23
)

// dhcp6Options is a DHCPv6 option list: code → values in order.
type dhcp6Options map[uint16][][]byte

func parseDHCP6Options(b []byte) (dhcp6Options, error) {
	opts := dhcp6Options{}
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("truncated option header")
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return nil, fmt.Errorf("option %d truncated", code)
		}
		opts[code] = append(opts[code], b[4:4+n])
		b = b[4+n:]
	}
	return opts, nil
}

func (o dhcp6Options) first(code uint16) []byte {
	if v := o[code]; len(v) > 0 {
		return v[0]
	}
	return nil
}

func appendDHCP6Option(b []byte, code uint16, value []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

// statusError returns the error a Status Code option in opts carries, nil
// for none or Success.
func (o dhcp6Options) statusError(where string) error {
	s := o.first(dhcp6OptStatusCode)
	if len(s) < 2 || binary.BigEndian.Uint16(s) == 0 {
		return nil
	}
	return fmt.Errorf("%s: status %d %q", where, binary.BigEndian.Uint16(s), s[2:])
}

// dhcp6Message builds a client message.
func dhcp6Message(typ byte, xid [3]byte, clientID, serverID []byte, iaAddr []byte, start time.Time) []byte {
	b := []byte{typ, xid[0], xid[1], xid[2]}
	b = appendDHCP6Option(b, dhcp6OptClientID, clientID)
	if serverID != nil {
		b = appendDHCP6Option(b, dhcp6OptServerID, serverID)
	}
	ia := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0} // IAID 1, T1 and T2 0
	if iaAddr != nil {
		ia = appendDHCP6Option(ia, dhcp6OptIAAddr, iaAddr)
	}
	b = appendDHCP6Option(b, dhcp6OptIANA, ia)
	elapsed := min(time.Since(start).Milliseconds()/10, 0xffff)
	b = appendDHCP6Option(b, dhcp6OptElapsedTime, binary.BigEndian.AppendUint16(nil, uint16(elapsed)))
	return appendDHCP6Option(b, dhcp6OptORO, []byte{0, dhcp6OptDNSServers})
}

// WaitLinkLocal waits until the guest's interface has a link-local IPv6
// address that duplicate address detection has accepted, and returns it.
func (g *Guest) WaitLinkLocal(timeout time.Duration) (net.IP, error) {
	deadline := time.Now().Add(timeout)
	for {
		out, err := g.Run("ip", "-6", "-o", "addr", "show", "dev", g.Iface, "scope", "link")
		if err == nil && !strings.Contains(out, "tentative") {
			for _, f := range strings.Fields(out) {
				if ip, _, err := net.ParseCIDR(f); err == nil && ip.IsLinkLocalUnicast() {
					return ip, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("in %s: no usable link-local address on %s after %v: %s", g.Name, g.Iface, timeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SolicitRouter sends one ICMPv6 router solicitation (with the guest's
// MAC as source link-layer address) from the guest's interface to
// ff02::2, as the guest's kernel does when the link comes up, so a test
// need not wait for a router's periodic advertisement. The kernel, which
// accepts router advertisements in a guest namespace by default, handles
// the answer.
func (g *Guest) SolicitRouter() error {
	if _, err := g.WaitLinkLocal(5 * time.Second); err != nil {
		return err
	}
	return g.Do(func() error {
		ifi, err := net.InterfaceByName(g.Iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return fmt.Errorf("router solicitation: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
			return fmt.Errorf("router solicitation: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index); err != nil {
			return fmt.Errorf("router solicitation: %w", err)
		}
		// Type 133, code 0, checksum (the kernel fills it in), reserved,
		// then the source link-layer address option.
		msg := append([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 1}, g.MAC...)
		to := &unix.SockaddrInet6{ZoneId: uint32(ifi.Index)}
		copy(to.Addr[:], net.ParseIP("ff02::2"))
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return fmt.Errorf("router solicitation: %w", err)
		}
		return nil
	})
}

// DHCPv6 runs a stateful DHCPv6 exchange (Solicit, Advertise, Request,
// Reply; RFC 8415) for one IA_NA on the guest's interface, from its
// link-local address, with a DUID-LL made of the guest's MAC, until it
// has an address or timeout passes. Messages are retransmitted every
// second. The address is configured on the interface as a /128 without
// duplicate address detection; the default route and the on-link prefix
// are the kernel's business, from router advertisements. The client
// neither renews nor releases. busybox's udhcpc6 is not in Debian's
// busybox build, so the lab speaks the protocol itself.
func (g *Guest) DHCPv6(timeout time.Duration) (Lease6, error) {
	deadline := time.Now().Add(timeout)
	if _, err := g.WaitLinkLocal(timeout); err != nil {
		return Lease6{}, err
	}
	var c *net.UDPConn
	err := g.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: 546})
		return err
	})
	if err != nil {
		return Lease6{}, fmt.Errorf("in %s: dhcpv6: listen on port 546: %w", g.Name, err)
	}
	defer c.Close()
	server := &net.UDPAddr{IP: net.ParseIP("ff02::1:2"), Port: 547, Zone: g.Iface}
	clientID := append([]byte{0, 3, 0, 1}, g.MAC...)
	start := time.Now()

	// exchange sends msg() once a second until a reply of type want with
	// the same transaction ID and our client ID arrives.
	exchange := func(typ, want byte, serverID, iaAddr []byte) (dhcp6Options, error) {
		var xid [3]byte
		if _, err := rand.Read(xid[:]); err != nil {
			return nil, err
		}
		buf := make([]byte, 1500)
		var last error
		for time.Now().Before(deadline) {
			if _, err := c.WriteToUDP(dhcp6Message(typ, xid, clientID, serverID, iaAddr, start), server); err != nil {
				return nil, fmt.Errorf("send: %w", err)
			}
			resend := time.Now().Add(time.Second)
			_ = c.SetReadDeadline(resend)
			for time.Now().Before(resend) {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					break
				}
				if n < 4 || buf[0] != want || !bytes.Equal(buf[1:4], xid[:]) {
					continue
				}
				opts, err := parseDHCP6Options(buf[4:n])
				if err != nil {
					last = err
					continue
				}
				if !bytes.Equal(opts.first(dhcp6OptClientID), clientID) {
					continue
				}
				return opts, nil
			}
		}
		if last != nil {
			return nil, fmt.Errorf("no usable answer to message type %d within %v (last: %v)", typ, timeout, last)
		}
		return nil, fmt.Errorf("no answer to message type %d within %v", typ, timeout)
	}
	// iaAddr returns the first IA Address option of the IA_NA in opts.
	iaAddr := func(opts dhcp6Options, where string) ([]byte, error) {
		if err := opts.statusError(where); err != nil {
			return nil, err
		}
		ia := opts.first(dhcp6OptIANA)
		if len(ia) < 12 {
			return nil, fmt.Errorf("%s: no IA_NA", where)
		}
		sub, err := parseDHCP6Options(ia[12:])
		if err != nil {
			return nil, fmt.Errorf("%s: IA_NA: %w", where, err)
		}
		if err := sub.statusError(where + " IA_NA"); err != nil {
			return nil, err
		}
		a := sub.first(dhcp6OptIAAddr)
		if len(a) < 24 {
			return nil, fmt.Errorf("%s: IA_NA holds no address", where)
		}
		return a[:24], nil
	}

	adv, err := exchange(dhcp6Solicit, dhcp6Advertise, nil, nil)
	if err != nil {
		return Lease6{}, fmt.Errorf("in %s: dhcpv6 solicit on %s: %w", g.Name, g.Iface, err)
	}
	serverID := adv.first(dhcp6OptServerID)
	if serverID == nil {
		return Lease6{}, fmt.Errorf("in %s: dhcpv6: advertise without a server ID", g.Name)
	}
	offered, err := iaAddr(adv, "advertise")
	if err != nil {
		return Lease6{}, fmt.Errorf("in %s: dhcpv6: %w", g.Name, err)
	}
	reply, err := exchange(dhcp6Request, dhcp6Reply, serverID, offered)
	if err != nil {
		return Lease6{}, fmt.Errorf("in %s: dhcpv6 request on %s: %w", g.Name, g.Iface, err)
	}
	got, err := iaAddr(reply, "reply")
	if err != nil {
		return Lease6{}, fmt.Errorf("in %s: dhcpv6: %w", g.Name, err)
	}
	l := Lease6{
		IP:        net.IP(append([]byte(nil), got[:16]...)),
		Preferred: time.Duration(binary.BigEndian.Uint32(got[16:])) * time.Second,
		Valid:     time.Duration(binary.BigEndian.Uint32(got[20:])) * time.Second,
		ServerID:  append([]byte(nil), serverID...),
	}
	if d := reply.first(dhcp6OptDNSServers); len(d)%16 == 0 {
		for i := 0; i < len(d); i += 16 {
			l.DNS = append(l.DNS, net.IP(append([]byte(nil), d[i:i+16]...)))
		}
	}
	if _, err := g.Run("ip", "-6", "addr", "replace", l.IP.String()+"/128", "dev", g.Iface, "nodad"); err != nil {
		return Lease6{}, fmt.Errorf("in %s: dhcpv6: configure %s: %w", g.Name, l.IP, err)
	}
	return l, nil
}
