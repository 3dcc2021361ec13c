// Ports' host-side interfaces: the TAP devices netwarden creates for
// guests. Adopting an existing interface (a veth end) needs no creation:
// PlugPort puts it into the bridge.

package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoFreeTapName: vnet0 … vnet65535 are all taken.
var ErrNoFreeTapName = errors.New("no free vnetN interface name")

// tapAlias is the prefix of the alias (IFLA_IFALIAS) of a TAP netwarden
// created; the guest's MAC follows it. Like the bridges' "netwarden
// network " mark, it lets DeleteTap refuse interfaces netwarden did not
// create and lets a restarted daemon recognise its own.
const tapAlias = "netwarden port "

// maxTapID bounds the search for a free vnetN name.
const maxTapID = 1 << 16

// tapFlags are the TUNSETIFF flags libvirt uses for a guest's TAP
// (virNetDevTapCreate): IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, one queue.
// IFF_TUN_EXCL makes the kernel refuse a name that exists already instead
// of attaching to it.
const tapFlags = netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_TUN_EXCL

// TapMAC returns the host-side MAC of a guest's TAP: the guest's MAC with
// its first byte set to 0xfe, libvirt's rule. A bridge takes the lowest
// MAC of its ports as its own when it has none set; 0xfe is above any
// guest's first byte, so the bridge never takes a guest's address (and
// the host side never answers for the guest).
func TapMAC(guest net.HardwareAddr) (net.HardwareAddr, error) {
	if len(guest) != 6 {
		return nil, fmt.Errorf("guest MAC %q: not a 6-byte Ethernet address", guest)
	}
	if guest[0]&1 != 0 {
		return nil, fmt.Errorf("guest MAC %s: a multicast address", guest)
	}
	m := append(net.HardwareAddr(nil), guest...)
	m[0] = 0xfe
	return m, nil
}

// NextTapName returns the first name vnet0, vnet1, … that no link of the
// namespace has, as libvirt names guests' TAPs. The name may be taken by
// the time it is used: CreateTap then fails with ErrLinkExists and the
// caller asks again.
func (l *Links) NextTapName(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("find a free vnetN name: %w", err)
	}
	links, err := l.h.LinkList()
	if err != nil {
		return "", fmt.Errorf("find a free vnetN name: list links: %w", err)
	}
	taken := make(map[int]bool, len(links))
	for _, link := range links {
		name := link.Attrs().Name
		if !strings.HasPrefix(name, "vnet") {
			continue
		}
		if id, err := strconv.Atoi(name[len("vnet"):]); err == nil && id >= 0 && strconv.Itoa(id) == name[len("vnet"):] {
			taken[id] = true
		}
	}
	for id := range maxTapID {
		if !taken[id] {
			return "vnet" + strconv.Itoa(id), nil
		}
	}
	return "", ErrNoFreeTapName
}

// CreateTap creates a persistent TAP device called name (see NextTapName
// for a free one) for a guest whose interface has the MAC guest, with
// libvirt's settings: tap mode, no packet information header, the virtio
// net header on (IFF_VNET_HDR), one queue, owned by root. Its MAC is
// TapMAC(guest); its alias marks it as netwarden's ("netwarden port "
// and the guest's MAC). The TAP is left down and on no bridge, with the
// kernel's default MTU: PlugPort gives it the bridge's MTU, puts it in
// the bridge and sets it up. A name in use (by anything) is refused with
// ErrLinkExists; if a step after the creation fails, the TAP is deleted.
func (l *Links) CreateTap(ctx context.Context, name string, guest net.HardwareAddr) error {
	if err := CheckIfName(name); err != nil {
		return err
	}
	mac, err := TapMAC(guest)
	if err != nil {
		return linkErr(name, "create TAP", err)
	}
	if err := ctx.Err(); err != nil {
		return linkErr(name, "create TAP", err)
	}
	if link, err := l.h.LinkByName(name); err == nil {
		why := "netwarden did not create it"
		if a := link.Attrs().Alias; strings.HasPrefix(a, tapAlias) {
			why = "netwarden created it for guest MAC " + strings.TrimPrefix(a, tapAlias)
		} else if o := owner(link); o != "" {
			why = fmt.Sprintf("netwarden created it for network %q", o)
		}
		return linkErr(name, "create TAP", fmt.Errorf("%w: %s", ErrLinkExists, why))
	}
	// A TAP is created by TUNSETIFF on /dev/net/tun, in the namespace of
	// the thread that opens it, so this part runs inside the namespace.
	tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP, Flags: tapFlags}
	err = l.inNetns(func() error { return netlink.LinkAdd(tap) })
	if err != nil {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) || strings.Contains(err.Error(), "EBUSY") || strings.Contains(err.Error(), "device or resource busy") {
			err = fmt.Errorf("%w: %v", ErrLinkExists, err)
		}
		return linkErr(name, "create TAP", err)
	}
	link, err := l.h.LinkByName(name)
	if err != nil {
		return linkErr(name, "read back TAP", err)
	}
	steps := []struct {
		op string
		do func() error
	}{
		{"mark as netwarden's", func() error { return l.h.LinkSetAlias(link, tapAlias+guest.String()) }},
		{"set MAC " + mac.String(), func() error { return l.h.LinkSetHardwareAddr(link, mac) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			err = linkErr(name, s.op, err)
			if derr := l.h.LinkDel(link); derr != nil {
				err = errors.Join(err, linkErr(name, "delete after failure", derr))
			}
			return err
		}
	}
	return nil
}

// DeleteTap deletes the TAP called name if netwarden created it (its alias
// says so; see CreateTap). Any other link — a veth netwarden adopted, a
// TAP someone else made — is left alone and reported with ErrNotOwned. A
// TAP that no longer exists is not an error.
func (l *Links) DeleteTap(ctx context.Context, name string) error {
	if err := CheckIfName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return linkErr(name, "delete TAP", err)
	}
	link, err := l.h.LinkByName(name)
	if err != nil {
		if err = notFound(err); errors.Is(err, ErrNoLink) {
			return nil
		}
		return linkErr(name, "delete TAP", err)
	}
	if link.Type() != "tuntap" {
		return linkErr(name, "delete TAP", fmt.Errorf("%w: a %s link, not a TAP", ErrNotOwned, link.Type()))
	}
	if !strings.HasPrefix(link.Attrs().Alias, tapAlias) {
		return linkErr(name, "delete TAP", fmt.Errorf("%w: its alias %q lacks netwarden's mark %q", ErrNotOwned, link.Attrs().Alias, strings.TrimSpace(tapAlias)))
	}
	if err := l.h.LinkDel(link); err != nil {
		if errors.Is(notFound(err), ErrNoLink) {
			return nil
		}
		return linkErr(name, "delete TAP", err)
	}
	return nil
}
