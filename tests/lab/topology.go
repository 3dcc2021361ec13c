package lab

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Guest is a namespace standing for a virtual machine: its interface
// eth0 is one end of a veth pair whose other end, HostIface, lives in the
// hypervisor namespace and is named like a TAP device (vnetN).
type Guest struct {
	*Netns
	// Index is N in vnetN.
	Index int
	// Iface is the guest's interface name (eth0).
	Iface string
	// HostIface is the hypervisor end of the pair (vnetN).
	HostIface string
	// MAC is the guest interface's address, 52:54:00:… like QEMU's.
	MAC net.HardwareAddr
}

// Upstream is a namespace standing for the LAN beyond the hypervisor.
// It is joined to the hypervisor by a veth pair: HostIface (uplink0) in
// the hypervisor, Iface (eth0) in the upstream namespace, on the subnet
// 203.0.113.0/24 (TEST-NET-3, never routed anywhere real).
type Upstream struct {
	*Netns
	// Iface is the upstream side of the pair (eth0).
	Iface string
	// HostIface is the hypervisor side of the pair (uplink0).
	HostIface string
	// Addr is the upstream's address (203.0.113.1).
	Addr net.IP
	// HostAddr is the hypervisor's address on the link (203.0.113.2).
	HostAddr net.IP
	// Prefix is the link's prefix length (24).
	Prefix int
}

// Env returns the environment for the lab's child processes: the test's
// own, with DBUS_SYSTEM_BUS_ADDRESS pointing at the lab's private bus. A
// lab without a bus points it at a socket that does not exist, so no
// child ever reaches the machine's own system bus.
func (l *Lab) Env() []string {
	addr := "unix:path=" + filepath.Join(l.Dir, "no-bus")
	if l.bus != nil {
		addr = l.bus.Address
	}
	env := []string{"DBUS_SYSTEM_BUS_ADDRESS=" + addr}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DBUS_SYSTEM_BUS_ADDRESS=") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			env = append(env, kv)
		}
	}
	return env
}

// Hypervisor returns the namespace where netwardend, firewalld and the
// bridges live, creating it on first use.
func (l *Lab) Hypervisor() *Netns {
	l.t.Helper()
	if l.hv == nil {
		l.hv = l.NewNetns("hv")
	}
	return l.hv
}

// AddGuest creates a guest namespace joined to the hypervisor by a veth
// pair vnetN (hypervisor) ↔ eth0 (guest), both up, with a QEMU-style MAC
// on eth0. The host end is not attached to any bridge.
func (l *Lab) AddGuest() *Guest {
	l.t.Helper()
	hv := l.Hypervisor()
	l.mu.Lock()
	idx := l.guests
	l.guests++
	l.mu.Unlock()
	g := &Guest{
		Netns:     l.NewNetns(fmt.Sprintf("g%d", idx)),
		Index:     idx,
		Iface:     "eth0",
		HostIface: fmt.Sprintf("vnet%d", idx),
		MAC:       l.mac(idx),
	}
	hv.MustRun("ip", "link", "add", g.HostIface, "type", "veth", "peer", "name", g.Iface, "netns", g.Name)
	g.MustRun("ip", "link", "set", g.Iface, "address", g.MAC.String(), "up")
	hv.MustRun("ip", "link", "set", g.HostIface, "up")
	return g
}

// mac returns a guest MAC that is unique within the lab and unlikely to
// collide with another lab's: 52:54:00:<lab id byte>:<index>.
func (l *Lab) mac(idx int) net.HardwareAddr {
	var b byte
	fmt.Sscanf(l.ID[:2], "%02x", &b)
	return net.HardwareAddr{0x52, 0x54, 0x00, b, byte(idx >> 8), byte(idx)}
}

// Upstream returns the LAN namespace, creating it and its link on first
// use. The hypervisor end gets HostAddr; the upstream's default route
// points back at it so replies to NATed or routed traffic find their way.
func (l *Lab) Upstream() *Upstream {
	l.t.Helper()
	if l.upstream != nil {
		return l.upstream
	}
	hv := l.Hypervisor()
	u := &Upstream{
		Netns:     l.NewNetns("up"),
		Iface:     "eth0",
		HostIface: "uplink0",
		Addr:      net.IPv4(203, 0, 113, 1).To4(),
		HostAddr:  net.IPv4(203, 0, 113, 2).To4(),
		Prefix:    24,
	}
	hv.MustRun("ip", "link", "add", u.HostIface, "type", "veth", "peer", "name", u.Iface, "netns", u.Name)
	hv.MustRun("ip", "addr", "add", fmt.Sprintf("%s/%d", u.HostAddr, u.Prefix), "dev", u.HostIface)
	hv.MustRun("ip", "link", "set", u.HostIface, "up")
	u.MustRun("ip", "addr", "add", fmt.Sprintf("%s/%d", u.Addr, u.Prefix), "dev", u.Iface)
	u.MustRun("ip", "link", "set", u.Iface, "up")
	l.upstream = u
	return u
}

// AddBridge creates a Linux bridge in ns with the given address (CIDR, or
// "" for none), brings it up and enslaves the named interfaces. Networks
// made by netwardend create their own bridges; this one is for tests of
// the lab and of things below the network layer.
func (n *Netns) AddBridge(name, cidr string, ifaces ...string) {
	n.lab.t.Helper()
	n.MustRun("ip", "link", "add", name, "type", "bridge")
	if cidr != "" {
		n.MustRun("ip", "addr", "add", cidr, "dev", name)
	}
	n.MustRun("ip", "link", "set", name, "up")
	for _, i := range ifaces {
		n.MustRun("ip", "link", "set", i, "master", name)
	}
}

// SetAddr adds an address (CIDR) to the guest's interface.
func (g *Guest) SetAddr(cidr string) {
	g.lab.t.Helper()
	g.MustRun("ip", "addr", "add", cidr, "dev", g.Iface)
}
