package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Errors of the link layer (Links, CreateBridge, PlugPort, …). They come
// wrapped in a *LinkError naming the interface; test for them with
// errors.Is, never by the message text.
var (
	// ErrInvalidIfName: a name the kernel would refuse for an interface.
	ErrInvalidIfName = errors.New("invalid interface name")
	// ErrLinkExists: a link of the name already exists. The message says
	// whether netwarden created it (and for which network) or not.
	ErrLinkExists = errors.New("link already exists")
	// ErrNotOwned: the link exists but netwarden did not create it, so it
	// is neither changed nor deleted.
	ErrNotOwned = errors.New("link was not created by netwarden")
	// ErrNoLink: the link does not exist.
	ErrNoLink = errors.New("no such link")
	// ErrRouteCollision: a subnet of the network is already routed in the
	// namespace (see *RouteCollisionError for the route and its device).
	ErrRouteCollision = errors.New("subnet collides with an existing route")
	// ErrNoFreeBridgeName: virbr0 … virbr255 are all taken.
	ErrNoFreeBridgeName = errors.New("no free virbrN bridge name")
)

// LinkError is an error of one operation on one interface.
type LinkError struct {
	// Link is the interface's name.
	Link string
	// Op says what was being done ("create bridge", "set MTU 9000", …).
	Op string
	// Err is the cause: a kernel errno, or one of the Err… values above.
	Err error
}

// Error renders the error as `virbr0: set MTU 9000: invalid argument`.
func (e *LinkError) Error() string {
	return e.Link + ": " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *LinkError) Unwrap() error { return e.Err }

func linkErr(link, op string, err error) error {
	return &LinkError{Link: link, Op: op, Err: err}
}

// CheckIfName reports, as a *LinkError wrapping ErrInvalidIfName, a name
// the kernel would refuse for a network interface (dev_valid_name): empty,
// longer than MaxIfNameLength bytes, "." or "..", or holding '/', ':' or
// white space. Every name is checked with it before it reaches the kernel.
// It does not check that the name is free.
func CheckIfName(name string) error {
	var why string
	switch {
	case name == "":
		why = "empty"
	case len(name) > MaxIfNameLength:
		why = fmt.Sprintf("longer than %d bytes", MaxIfNameLength)
	case name == "." || name == "..":
		why = "'.' and '..' are not names"
	case strings.ContainsAny(name, "/:"):
		why = "must not contain '/' or ':'"
	default:
		for i := 0; i < len(name); i++ {
			// The kernel's isspace(): \t \n \v \f \r and space; NUL ends
			// the name, so it cannot be in one either.
			if c := name[i]; c == ' ' || (c >= '\t' && c <= '\r') || c == 0 {
				why = "must not contain white space or NUL"
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return linkErr(name, "check name", fmt.Errorf("%w: %s", ErrInvalidIfName, why))
}

// ownerAlias is the prefix of the interface alias (IFLA_IFALIAS, `ip link`
// shows it as "alias …") that marks a link netwarden created; the network's
// name follows it. The mark lets netwarden refuse links it did not create,
// and lets a restarted daemon recognise its own.
const ownerAlias = "netwarden network "

// netlinkTimeout bounds every netlink request, so a wedged kernel call
// cannot hold a caller for ever whatever its context says.
const netlinkTimeout = 10 * time.Second

// Links creates, configures and removes the links of one network
// namespace: network bridges (CreateBridge, DestroyBridge), the ports on
// them (PlugPort, UnplugPort) and the namespace's forwarding switches
// (EnableForwarding). It talks netlink to the kernel and writes the
// namespace's /proc/sys/net sysctls from a thread inside the namespace; it
// never touches another namespace.
//
// A Links is safe for concurrent use. It holds no state about the bridges
// beyond what the kernel holds: what netwarden created is marked on the
// link itself (its alias), so a new Links (or a restarted daemon) knows it.
//
// Links knows nothing about firewalls, dnsmasq or firewalld zones: those are
// the caller's, around CreateBridge and DestroyBridge.
type Links struct {
	ns  netns.NsHandle // a duplicate owned by Links, or netns.None() for the current one
	h   *netlink.Handle
	raw *nl.SocketHandle // for the bridge attributes package netlink does not cover

	// failAt, when set (by tests only), makes CreateBridge fail at the
	// named step, to check that a failure leaves nothing behind.
	failAt func(step string) error
}

// NewLinks returns a Links for the namespace ns; netns.None() (or any
// closed handle) means the namespace the calling process is in. ns is
// duplicated, so the caller may close its handle. Close releases the
// netlink sockets.
func NewLinks(ns netns.NsHandle) (*Links, error) {
	l := &Links{ns: netns.None()}
	if ns.IsOpen() {
		fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("links: duplicate namespace handle: %w", err)
		}
		l.ns = netns.NsHandle(fd)
	}
	var err error
	if l.h, err = netlink.NewHandleAt(l.ns, unix.NETLINK_ROUTE); err != nil {
		l.Close()
		return nil, fmt.Errorf("links: netlink socket: %w", err)
	}
	if err := l.h.SetSocketTimeout(netlinkTimeout); err != nil {
		l.Close()
		return nil, fmt.Errorf("links: netlink socket timeout: %w", err)
	}
	s, err := nl.GetNetlinkSocketAt(l.ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("links: netlink socket: %w", err)
	}
	l.raw = &nl.SocketHandle{Socket: s}
	tv := unix.NsecToTimeval(netlinkTimeout.Nanoseconds())
	if err = s.SetSendTimeout(&tv); err == nil {
		err = s.SetReceiveTimeout(&tv)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("links: netlink socket timeout: %w", err)
	}
	return l, nil
}

// Close releases the netlink sockets and the namespace handle. The links
// themselves stay as they are.
func (l *Links) Close() error {
	if l.h != nil {
		l.h.Close()
		l.h = nil
	}
	if l.raw != nil {
		l.raw.Close()
		l.raw = nil
	}
	if l.ns.IsOpen() {
		return l.ns.Close()
	}
	return nil
}

// PlugPort attaches the existing interface port (a guest's TAP or veth) to
// bridge, as libvirt does when a guest interface starts: the port takes
// the bridge's MTU, joins it, is isolated from the other isolated ports
// when isolated is true (<port isolated='yes'/>, IFLA_BRPORT_ISOLATED:
// isolated ports reach only non-isolated ports and the host), and is set
// up. A port already on bridge is reconfigured; a port on another master is
// refused. PlugPort neither creates the port nor filters its traffic.
func (l *Links) PlugPort(ctx context.Context, bridge, port string, isolated bool) error {
	if err := CheckIfName(bridge); err != nil {
		return err
	}
	if err := CheckIfName(port); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return linkErr(port, "plug into "+bridge, err)
	}
	br, err := l.bridgeLink(bridge)
	if err != nil {
		return err
	}
	p, err := l.h.LinkByName(port)
	if err != nil {
		return linkErr(port, "plug into "+bridge, notFound(err))
	}
	if m := p.Attrs().MasterIndex; m != 0 && m != br.Attrs().Index {
		return linkErr(port, "plug into "+bridge, fmt.Errorf("%w: it is already attached to another master (index %d)", ErrLinkExists, m))
	}
	if mtu := br.Attrs().MTU; p.Attrs().MTU != mtu {
		if err := l.h.LinkSetMTU(p, mtu); err != nil {
			return linkErr(port, fmt.Sprintf("set MTU %d (the bridge's)", mtu), err)
		}
	}
	if err := l.h.LinkSetMaster(p, br); err != nil {
		return linkErr(port, "attach to bridge "+bridge, err)
	}
	if err := l.h.LinkSetIsolated(p, isolated); err != nil {
		return linkErr(port, fmt.Sprintf("set isolated %v", isolated), err)
	}
	if err := l.h.LinkSetUp(p); err != nil {
		return linkErr(port, "set up", err)
	}
	return nil
}

// UnplugPort detaches port from bridge. A port that no longer exists, or is
// attached to nothing, is not an error (a guest's TAP goes when the guest
// stops); one attached to another master is.
func (l *Links) UnplugPort(ctx context.Context, bridge, port string) error {
	if err := CheckIfName(bridge); err != nil {
		return err
	}
	if err := CheckIfName(port); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return linkErr(port, "unplug from "+bridge, err)
	}
	p, err := l.h.LinkByName(port)
	if err != nil {
		if errors.Is(notFound(err), ErrNoLink) {
			return nil
		}
		return linkErr(port, "unplug from "+bridge, err)
	}
	if p.Attrs().MasterIndex == 0 {
		return nil
	}
	br, err := l.h.LinkByName(bridge)
	if err != nil || br.Attrs().Index != p.Attrs().MasterIndex {
		return linkErr(port, "unplug from "+bridge, errors.New("attached to another master"))
	}
	if err := l.h.LinkSetNoMaster(p); err != nil {
		return linkErr(port, "detach from bridge "+bridge, err)
	}
	return nil
}

// EnableForwarding turns on IPv4 forwarding (net.ipv4.ip_forward) and/or
// IPv6 forwarding (net.ipv6.conf.all.forwarding) in the namespace, as
// libvirt does when it starts a NAT or routed network with addresses of
// that family. It never turns forwarding off (other networks, or the
// administrator, may rely on it).
//
// Like libvirt (virNetDevIPCheckIPv6Forwarding), it refuses to turn on IPv6
// forwarding while the namespace has routes learnt from router
// advertisements on an interface whose accept_ra is not 2: a forwarding
// host ignores advertisements there, so those routes would expire. The
// error names the interfaces.
func (l *Links) EnableForwarding(ctx context.Context, ipv4, ipv6 bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	var files []string
	if ipv4 {
		files = append(files, "/proc/sys/net/ipv4/ip_forward")
	}
	if ipv6 {
		if err := l.checkRARoutes(); err != nil {
			return err
		}
		files = append(files, "/proc/sys/net/ipv6/conf/all/forwarding")
	}
	return l.inNetns(func() error {
		for _, f := range files {
			if err := os.WriteFile(f, []byte("1\n"), 0); err != nil {
				return fmt.Errorf("enable forwarding: %w", err)
			}
		}
		return nil
	})
}

// ErrRARoutes: IPv6 forwarding would make the namespace lose routes it
// learnt from router advertisements.
var ErrRARoutes = errors.New("routes learnt from router advertisements on interfaces without accept_ra=2")

// checkRARoutes refuses IPv6 forwarding while RA-learnt routes sit on
// interfaces whose accept_ra is not 2, unless forwarding is on already.
func (l *Links) checkRARoutes() error {
	if v, err := l.readSysctl("net/ipv6/conf/all/forwarding"); err == nil && v == "1" {
		return nil
	}
	routes, err := l.h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Protocol: unix.RTPROT_RA}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("enable IPv6 forwarding: list routes: %w", err)
	}
	var bad []string
	for _, r := range routes {
		link, err := l.h.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		name := link.Attrs().Name
		if slices.Contains(bad, name) {
			continue
		}
		if v, err := l.readSysctl("net/ipv6/conf/" + name + "/accept_ra"); err != nil || v != "2" {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("enable IPv6 forwarding: %w: %s (set their accept_ra to 2 first)", ErrRARoutes, strings.Join(bad, ", "))
	}
	return nil
}

// sysctl is one value written under /proc/sys.
type sysctl struct {
	path  string // below /proc/sys, e.g. net/ipv6/conf/virbr0/accept_ra
	value string
	// ifMissing: a missing file is not an error (IPv6 already disabled).
	ifMissing bool
}

// writeSysctls writes the values in order in the namespace and stops at the
// first error, which names the file.
func (l *Links) writeSysctls(values []sysctl) error {
	return l.inNetns(func() error {
		for _, s := range values {
			p := filepath.Join("/proc/sys", s.path)
			err := os.WriteFile(p, []byte(s.value+"\n"), 0)
			if err != nil && !(s.ifMissing && errors.Is(err, os.ErrNotExist)) {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
		return nil
	})
}

// readSysctl reads one value below /proc/sys in the namespace.
func (l *Links) readSysctl(path string) (string, error) {
	var v string
	err := l.inNetns(func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", path))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// inNetns runs f on an OS thread inside the Links' namespace (directly for
// the current namespace). /proc/sys/net follows the namespace of the
// thread that opens a file, so this is how sysctls reach the right one.
// The thread is discarded, not reused, if it cannot get back.
func (l *Links) inNetns(f func() error) error {
	if !l.ns.IsOpen() {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(l.ns); err != nil {
			errc <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// bridgeLink returns the bridge called name, refusing other kinds of link.
func (l *Links) bridgeLink(name string) (netlink.Link, error) {
	br, err := l.h.LinkByName(name)
	if err != nil {
		return nil, linkErr(name, "find bridge", notFound(err))
	}
	if br.Type() != "bridge" {
		return nil, linkErr(name, "find bridge", fmt.Errorf("a %s link, not a bridge", br.Type()))
	}
	return br, nil
}

// notFound maps netlink's "link not found" to ErrNoLink.
func notFound(err error) error {
	var lnf netlink.LinkNotFoundError
	if errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%w: %v", ErrNoLink, err)
	}
	return err
}

// owner returns the network a link was created for by netwarden, or "" if
// netwarden did not create it.
func owner(link netlink.Link) string {
	a := link.Attrs().Alias
	if !strings.HasPrefix(a, ownerAlias) {
		return ""
	}
	return strings.TrimPrefix(a, ownerAlias)
}

// setBridgeSTP sets a bridge's forward delay (in centiseconds, the
// kernel's unit) and then its STP state in one RTM_NEWLINK request
// (IFLA_BR_FORWARD_DELAY, IFLA_BR_STP_STATE): package netlink does not
// cover these attributes. The kernel applies the delay first, while STP
// is still off, so any delay is accepted, as with libvirt's order.
func (l *Links) setBridgeSTP(index int, stp bool, delayCentis uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: l.raw}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_BR_FORWARD_DELAY, nl.Uint32Attr(delayCentis))
	var state uint32
	if stp {
		state = 1
	}
	data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(state))
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
