package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BridgeInfo is what CreateBridge chose for a network: values the network
// XML may leave out, for the caller to write back into the network's
// live (and, as libvirt does at define time, persistent) definition.
type BridgeInfo struct {
	// Name is the bridge's name: <bridge name>, or the first free virbrN.
	Name string
	// MAC is the bridge's address in canonical form: <mac address>, or a
	// generated 52:54:00:xx:xx:xx.
	MAC string
}

// maxBridgeID bounds the search for a free virbrN, as libvirt's
// MAX_BRIDGE_ID does.
const maxBridgeID = 256

// RouteCollisionError says which existing route a network's subnet (an
// <ip>'s network or a <route>'s destination) collides with. It wraps
// ErrRouteCollision.
type RouteCollisionError struct {
	// Subnet is the network's subnet that is already routed.
	Subnet netip.Prefix
	// Element is "ip" or "route": where the subnet comes from.
	Element string
	// Dev is the device of the existing route.
	Dev string
}

// Error renders the error as `subnet 192.168.122.0/24 (<ip>) is already
// routed: route 192.168.122.0/24 dev eth1`.
func (e *RouteCollisionError) Error() string {
	return fmt.Sprintf("subnet %s (<%s>) is already routed: route %s dev %s", e.Subnet, e.Element, e.Subnet, e.Dev)
}

// Unwrap returns ErrRouteCollision.
func (e *RouteCollisionError) Unwrap() error { return ErrRouteCollision }

// CreateBridge creates and brings up the bridge of a network of the isolated,
// nat, route or open mode, following libvirt's networkStartNetworkVirtual:
//
//  1. refuse to start when a subnet of the network (an <ip>'s network or a
//     <route>'s destination) is exactly an existing route of the
//     namespace's main table, naming the route and its device (libvirt's
//     networkCheckRouteCollision, here for IPv6 too);
//  2. create the bridge, named <bridge name> or the first virbrN (N from 0)
//     that no link has, with <mac address> or a generated
//     52:54:00:xx:xx:xx, marked as netwarden's (its alias is
//     "netwarden network NAME"); an existing link of that name is refused;
//  3. set <mtu>, the forward delay, and STP on or off;
//  4. IPv6 sysctls of the bridge: disable_ipv6 (1 without an IPv6 <ip>, 0
//     with one), accept_ra=0 and autoconf=0;
//  5. add every <ip>'s address with its prefix;
//  6. bring the bridge up and add the static <route>s via their gateways.
//
// On any failure it deletes the bridge it created (which removes its
// addresses and routes), so nothing is left half-made; the error names the
// interface and the step. It does not enable forwarding (EnableForwarding),
// install firewall rules, set a firewalld zone, start dnsmasq, or apply
// <bandwidth> or a libvirt-managed MAC table.
func (l *Links) CreateBridge(ctx context.Context, n *Network) (BridgeInfo, error) {
	if n == nil {
		return BridgeInfo{}, errors.New("create bridge: no network")
	}
	if !n.ForwardMode().HasBridge() {
		return BridgeInfo{}, fmt.Errorf("network %q: a %s network has no bridge of its own to create", n.Name, n.ForwardMode())
	}
	info := BridgeInfo{Name: n.Bridge.Name, MAC: n.MAC}
	if info.Name != "" {
		if err := CheckIfName(info.Name); err != nil {
			return info, err
		}
	}
	if err := ctx.Err(); err != nil {
		return info, fmt.Errorf("network %q: create bridge: %w", n.Name, err)
	}
	if err := l.checkRouteCollision(n); err != nil {
		return info, fmt.Errorf("network %q: %w", n.Name, err)
	}
	var mac net.HardwareAddr
	if info.MAC == "" {
		mac = newBridgeMAC()
		info.MAC = mac.String()
	} else {
		var err error
		if mac, err = net.ParseMAC(info.MAC); err != nil {
			return info, fmt.Errorf("network %q: <mac address=%q>: %w", n.Name, info.MAC, err)
		}
	}

	br, err := l.addBridge(n.Name, info.Name, mac)
	if err != nil {
		return info, err
	}
	info.Name = br.Attrs().Name
	if err := l.configureBridge(ctx, n, br); err != nil {
		if derr := l.h.LinkDel(br); derr != nil {
			err = errors.Join(err, linkErr(info.Name, "delete after failure", derr))
		}
		return info, err
	}
	return info, nil
}

// addBridge creates the bridge, trying virbr0, virbr1, … when name is "".
func (l *Links) addBridge(network, name string, mac net.HardwareAddr) (netlink.Link, error) {
	candidates := []string{name}
	if name == "" {
		candidates = candidates[:0]
		for id := range maxBridgeID {
			candidates = append(candidates, fmt.Sprintf("virbr%d", id))
		}
	}
	for _, c := range candidates {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: c, HardwareAddr: mac}}
		err := l.h.LinkAdd(br)
		if err == nil {
			if err := l.h.LinkSetAlias(br, ownerAlias+network); err != nil {
				_ = l.h.LinkDel(br)
				return nil, linkErr(c, "mark as netwarden's", err)
			}
			created, err := l.h.LinkByName(c)
			if err != nil {
				_ = l.h.LinkDel(br)
				return nil, linkErr(c, "read back", err)
			}
			return created, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, linkErr(c, "create bridge", err)
		}
		if name == "" {
			continue // taken: try the next virbrN, as libvirt does
		}
		return nil, linkErr(c, "create bridge", l.existsError(c))
	}
	return nil, fmt.Errorf("network %q: %w", network, ErrNoFreeBridgeName)
}

// existsError explains who owns the existing link name.
func (l *Links) existsError(name string) error {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return ErrLinkExists
	}
	if o := owner(link); o != "" {
		return fmt.Errorf("%w: netwarden created it for network %q", ErrLinkExists, o)
	}
	return fmt.Errorf("%w (a %s link netwarden did not create; it is left alone): %w", ErrLinkExists, link.Type(), ErrNotOwned)
}

// configureBridge runs steps 3 to 6 of CreateBridge on the new bridge.
func (l *Links) configureBridge(ctx context.Context, n *Network, br netlink.Link) error {
	name := br.Attrs().Name
	step := func(op string, f func() error) error {
		if err := ctx.Err(); err != nil {
			return linkErr(name, op, err)
		}
		if l.failAt != nil {
			if err := l.failAt(op); err != nil {
				return linkErr(name, op, err)
			}
		}
		if err := f(); err != nil {
			return linkErr(name, op, err)
		}
		return nil
	}

	if n.MTU != 0 {
		if err := step(fmt.Sprintf("set MTU %d", n.MTU), func() error {
			return l.h.LinkSetMTU(br, int(n.MTU))
		}); err != nil {
			return err
		}
	}
	// The XML's delay is in seconds, the kernel's in centiseconds (USER_HZ).
	if err := step(fmt.Sprintf("set STP %v, forward delay %ds", n.Bridge.STP, n.Bridge.Delay), func() error {
		return l.setBridgeSTP(br.Attrs().Index, n.Bridge.STP, uint32(n.Bridge.Delay*100))
	}); err != nil {
		return err
	}

	hasIPv6 := false
	for i := range n.IPs {
		hasIPv6 = hasIPv6 || n.IPs[i].IsIPv6()
	}
	disable := "1"
	if hasIPv6 {
		disable = "0"
	}
	conf := "net/ipv6/conf/" + name + "/"
	if err := step("set IPv6 sysctls", func() error {
		// Without IPv6 at all in the kernel the directory is missing:
		// nothing to disable, nothing to set (libvirt does the same).
		if _, err := l.readSysctl(conf + "disable_ipv6"); errors.Is(err, unix.ENOENT) {
			if hasIPv6 {
				return fmt.Errorf("the network has IPv6 addresses but IPv6 is not available on the bridge: %w", err)
			}
			return nil
		}
		return l.writeSysctls([]sysctl{
			{path: conf + "disable_ipv6", value: disable},
			// Guests must not hijack the host's routing with their own
			// router advertisements.
			{path: conf + "accept_ra", value: "0"},
			// A gateway never autoconfigures its addresses.
			{path: conf + "autoconf", value: "0"},
		})
	}); err != nil {
		return err
	}

	for i := range n.IPs {
		ip := &n.IPs[i]
		pfx := netip.PrefixFrom(ip.Address, ip.PrefixLen())
		if err := step("add address "+pfx.String(), func() error {
			return l.h.AddrAdd(br, &netlink.Addr{IPNet: prefixToIPNet(pfx)})
		}); err != nil {
			return err
		}
	}

	if err := step("set up", func() error { return l.h.LinkSetUp(br) }); err != nil {
		return err
	}

	for i := range n.Routes {
		r := &n.Routes[i]
		dst, err := r.Address.Prefix(r.PrefixLen())
		if err != nil {
			return linkErr(name, "add route", err)
		}
		if err := step(fmt.Sprintf("add route %s via %s", dst, r.Gateway), func() error {
			return l.h.RouteAdd(&netlink.Route{
				LinkIndex: br.Attrs().Index,
				Dst:       prefixToIPNet(dst),
				Gw:        net.IP(r.Gateway.AsSlice()),
				Priority:  int(r.Metric),
			})
		}); err != nil {
			return err
		}
	}
	return nil
}

// checkRouteCollision refuses a network one of whose subnets (the network
// of an <ip>, the destination of a <route>) is exactly the destination of a
// route already in the namespace's main table, as libvirt's
// networkCheckRouteCollision does for IPv4 (from /proc/net/route). Routes of
// other tables, and routes that merely overlap, are not collisions.
func (l *Links) checkRouteCollision(n *Network) error {
	type subnet struct {
		p    netip.Prefix
		elem string
	}
	var subnets []subnet
	for i := range n.IPs {
		subnets = append(subnets, subnet{n.IPs[i].Subnet(), "ip"})
	}
	for i := range n.Routes {
		r := &n.Routes[i]
		if p, err := r.Address.Prefix(r.PrefixLen()); err == nil {
			subnets = append(subnets, subnet{p, "route"})
		}
	}
	if len(subnets) == 0 {
		return nil
	}
	routes, err := l.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("check route collisions: list routes: %w", err)
	}
	for _, rt := range routes {
		if rt.Dst == nil {
			continue // a default route collides with nothing
		}
		dst, ok := ipNetToPrefix(rt.Dst)
		if !ok {
			continue
		}
		for _, s := range subnets {
			if s.p != dst {
				continue
			}
			dev := fmt.Sprintf("index %d", rt.LinkIndex)
			if link, err := l.h.LinkByIndex(rt.LinkIndex); err == nil {
				dev = link.Attrs().Name
			}
			return &RouteCollisionError{Subnet: s.p, Element: s.elem, Dev: dev}
		}
	}
	return nil
}

// DestroyBridge takes a network's bridge down and deletes it, with its
// addresses and routes; its ports stay, detached (libvirt's
// networkShutdownNetworkVirtual does the same). A bridge that does not
// exist is not an error (the network is down already); a link netwarden did
// not create is refused with ErrNotOwned and left alone.
func (l *Links) DestroyBridge(ctx context.Context, name string) error {
	if err := CheckIfName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return linkErr(name, "destroy bridge", err)
	}
	br, err := l.h.LinkByName(name)
	if err != nil {
		if errors.Is(notFound(err), ErrNoLink) {
			return nil
		}
		return linkErr(name, "destroy bridge", err)
	}
	if owner(br) == "" {
		return linkErr(name, "destroy bridge", ErrNotOwned)
	}
	if err := l.h.LinkSetDown(br); err != nil {
		return linkErr(name, "set down", err)
	}
	if err := l.h.LinkDel(br); err != nil {
		return linkErr(name, "delete bridge", err)
	}
	return nil
}

// BridgeOwner returns the name of the network netwarden created the bridge
// called name for (the mark CreateBridge leaves on it), so a restarted
// daemon can tell its running networks' bridges from strangers (libvirt's
// networkUpdateState checks that an active network's bridge exists). The
// error wraps ErrNoLink when there is no such link and ErrNotOwned when
// netwarden did not create it. It changes nothing.
func (l *Links) BridgeOwner(ctx context.Context, name string) (string, error) {
	if err := CheckIfName(name); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", linkErr(name, "find owner", err)
	}
	br, err := l.bridgeLink(name)
	if err != nil {
		return "", err
	}
	o := owner(br)
	if o == "" {
		return "", linkErr(name, "find owner", ErrNotOwned)
	}
	return o, nil
}

// newBridgeMAC returns a random address in QEMU's/libvirt's range
// 52:54:00:xx:xx:xx (locally administered, unicast).
func newBridgeMAC() net.HardwareAddr {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0, 0, 0}
	_, _ = rand.Read(mac[3:]) // crypto/rand.Read never fails
	return mac
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 32 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}
