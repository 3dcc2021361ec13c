package systemd

import (
	"fmt"
	"os"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// Socket is one socket the service manager passed (LISTEN_FDS), with
// what the kernel says it is.
type Socket struct {
	// File is the socket; its owner closes it.
	File *os.File
	// Name is its LISTEN_FDNAMES entry (FileDescriptorName= or the
	// socket unit's name), or LISTEN_FD_<n> without one.
	Name string
	// Domain, Type and Protocol are SO_DOMAIN, SO_TYPE and SO_PROTOCOL:
	// unix.AF_NETLINK, unix.SOCK_RAW and unix.NETLINK_ROUTE for
	// netwardend.socket's ListenNetlink=route.
	Domain, Type, Protocol int
	// Groups are the netlink multicast groups it is bound to (a
	// RTMGRP_* mask); 0 for other domains.
	Groups uint32
}

// PassedSockets returns the sockets passed to this process by socket
// activation (sd_listen_fds(3)): none unless LISTEN_PID is this
// process. It unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, so that
// children (dnsmasq) do not take them for their own, and marks the
// descriptors close-on-exec. A descriptor that is not a socket is closed
// and reported in the error; the others are returned.
func PassedSockets() ([]Socket, error) {
	var socks []Socket
	var errs []error
	for _, f := range activation.Files(true) {
		s, err := Inspect(f)
		if err != nil {
			errs = append(errs, err)
			f.Close()
			continue
		}
		socks = append(socks, s)
	}
	if len(errs) > 0 {
		return socks, fmt.Errorf("passed descriptors: %v", errs)
	}
	return socks, nil
}

// Inspect asks the kernel what kind of socket f is.
func Inspect(f *os.File) (Socket, error) {
	s := Socket{File: f, Name: f.Name()}
	rc, err := f.SyscallConn()
	if err != nil {
		return s, fmt.Errorf("%s: %w", f.Name(), err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if s.Domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			return
		}
		if s.Type, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); serr != nil {
			return
		}
		if s.Protocol, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL); serr != nil {
			return
		}
		if s.Domain == unix.AF_NETLINK {
			var sa unix.Sockaddr
			if sa, serr = unix.Getsockname(int(fd)); serr == nil {
				if nl, ok := sa.(*unix.SockaddrNetlink); ok {
					s.Groups = nl.Groups
				}
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return s, fmt.Errorf("%s: not a socket: %w", f.Name(), err)
	}
	return s, nil
}

// IsRouteNetlink reports whether s is a NETLINK_ROUTE socket, as
// ListenNetlink=route makes.
func (s Socket) IsRouteNetlink() bool {
	return s.Domain == unix.AF_NETLINK && s.Protocol == unix.NETLINK_ROUTE
}

// String describes the socket for logs: "netlink route (groups 0x1)",
// "unix stream", "inet6 datagram".
func (s Socket) String() string {
	domain := map[int]string{unix.AF_UNIX: "unix", unix.AF_INET: "inet", unix.AF_INET6: "inet6",
		unix.AF_NETLINK: "netlink", unix.AF_PACKET: "packet"}[s.Domain]
	if domain == "" {
		domain = fmt.Sprintf("family %d", s.Domain)
	}
	if s.Domain == unix.AF_NETLINK {
		proto := map[int]string{unix.NETLINK_ROUTE: "route", unix.NETLINK_AUDIT: "audit",
			unix.NETLINK_KOBJECT_UEVENT: "kobject-uevent", unix.NETLINK_NETFILTER: "netfilter"}[s.Protocol]
		if proto == "" {
			proto = fmt.Sprintf("protocol %d", s.Protocol)
		}
		return fmt.Sprintf("netlink %s (groups %#x)", proto, s.Groups)
	}
	typ := map[int]string{unix.SOCK_STREAM: "stream", unix.SOCK_DGRAM: "datagram",
		unix.SOCK_SEQPACKET: "seqpacket", unix.SOCK_RAW: "raw"}[s.Type]
	if typ == "" {
		typ = fmt.Sprintf("type %d", s.Type)
	}
	return domain + " " + typ
}
