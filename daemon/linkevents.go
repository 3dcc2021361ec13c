package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/systemd"
)

// linkEvents reads a NETLINK_ROUTE socket of link events (Config.
// LinkEvents). Nothing acts on link events yet: each is logged at debug
// level, so that the socket's buffer, which the service manager keeps
// while no daemon runs, is emptied. The netlink monitor of the one path
// will take them from here.
type linkEvents struct {
	f    *os.File // non-blocking, in the runtime's poller
	done chan struct{}
}

// openLinkEvents checks that f is a NETLINK_ROUTE socket and takes it
// over: f is closed (also on error), and the returned linkEvents holds a
// non-blocking duplicate that Close ends.
func openLinkEvents(f *os.File, log *slog.Logger) (*linkEvents, error) {
	defer f.Close()
	sock, err := systemd.Inspect(f)
	if err != nil {
		return nil, fmt.Errorf("link event socket: %w", err)
	}
	if !sock.IsRouteNetlink() {
		return nil, fmt.Errorf("link event socket %s is a %s socket, not netlink route", sock.Name, sock)
	}
	if sock.Groups&unix.RTMGRP_LINK == 0 {
		log.Warn("link event socket is not bound to the link group; no link events will arrive",
			"name", sock.Name, "socket", sock.String())
	}
	// A duplicate in non-blocking mode, which os.NewFile puts into the
	// poller, so that reads wait without a thread and Close ends them.
	var dup int
	var derr error
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("link event socket: %w", err)
	}
	if err := rc.Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("link event socket: %w", err)
	}
	if derr != nil {
		return nil, fmt.Errorf("link event socket: dup: %w", derr)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("link event socket: %w", err)
	}
	log.Info("link event socket taken from the service manager", "name", sock.Name, "socket", sock.String())
	return &linkEvents{f: os.NewFile(uintptr(dup), sock.Name), done: make(chan struct{})}, nil
}

// run reads and logs link events until Close (or ctx) ends it.
func (l *linkEvents) run(ctx context.Context, log *slog.Logger) {
	defer close(l.done)
	stop := context.AfterFunc(ctx, func() { l.f.Close() })
	defer stop()
	rc, err := l.f.SyscallConn()
	if err != nil {
		log.Warn("cannot read link events", "err", err)
		return
	}
	buf := make([]byte, 1<<16)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		switch {
		case err != nil: // closed
			return
		case errors.Is(rerr, unix.ENOBUFS):
			// The buffer overflowed while nobody read it: some events
			// are gone. A consumer would resynchronise with a dump.
			log.Warn("link events were lost (socket buffer overrun)")
			continue
		case errors.Is(rerr, unix.EINTR):
			continue
		case rerr != nil:
			log.Warn("cannot read link events", "err", rerr)
			return
		}
		logLinkMessages(buf[:n], log)
	}
}

// logLinkMessages logs the RTM_NEWLINK and RTM_DELLINK messages in b.
func logLinkMessages(b []byte, log *slog.Logger) {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		log.Debug("unparsable link event", "err", err)
		return
	}
	for i := range msgs {
		m := &msgs[i]
		var what string
		switch m.Header.Type {
		case unix.RTM_NEWLINK:
			what = "new"
		case unix.RTM_DELLINK:
			what = "deleted"
		default:
			continue
		}
		name, index := "", int32(0)
		if len(m.Data) >= unix.SizeofIfInfomsg {
			index = int32(binary.NativeEndian.Uint32(m.Data[4:8]))
		}
		if attrs, err := syscall.ParseNetlinkRouteAttr(m); err == nil {
			for _, a := range attrs {
				if a.Attr.Type == unix.IFLA_IFNAME {
					name = unix.ByteSliceToString(a.Value)
				}
			}
		}
		log.Debug("link event", "event", what, "link", name, "index", index)
	}
}

// Close stops reading and closes the socket.
func (l *linkEvents) Close() {
	l.f.Close()
	<-l.done
}
