package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// netlinkSocket opens a NETLINK_ROUTE socket bound to groups.
func netlinkSocket(t *testing.T, groups uint32) *os.File {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "netlink")
	t.Cleanup(func() { f.Close() })
	return f
}

func TestInspect(t *testing.T) {
	s, err := Inspect(netlinkSocket(t, unix.RTMGRP_LINK))
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsRouteNetlink() || s.Groups != unix.RTMGRP_LINK || s.String() != "netlink route (groups 0x1)" {
		t.Errorf("netlink socket: %+v (%s)", s, s)
	}

	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err = Inspect(f)
	if err != nil {
		t.Fatal(err)
	}
	if s.IsRouteNetlink() || s.String() != "unix stream" {
		t.Errorf("unix listener: %+v (%s)", s, s)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := Inspect(r); err == nil {
		t.Error("Inspect(pipe): no error")
	}
}

// Sockets are taken from descriptor 3 on only when LISTEN_PID names this
// process; the variables are gone afterwards.
func TestPassedSocketsNotForUs(t *testing.T) {
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()+1))
	t.Setenv("LISTEN_FDS", "1")
	socks, err := PassedSockets()
	if err != nil || len(socks) != 0 {
		t.Errorf("PassedSockets for another PID: %v, %v", socks, err)
	}
	if v, ok := os.LookupEnv("LISTEN_FDS"); ok {
		t.Errorf("LISTEN_FDS still set: %q", v)
	}
}
