// Package nfnotify follows the kernel's nftables notifications for a
// backend that must notice when someone else changes its rules. Both
// kernel backends use it: nftables for its own tables, xtables for the
// nf_tables tables the iptables-nft and ebtables-nft programs write. A
// backend supplies how to open a subscription and which notifications
// are foreign changes to its objects; this package runs the read loop:
// one signal per foreign transaction (at the NEWGEN message that ends
// it), a signal whenever notifications may have been lost, and a new
// subscription when the socket fails.
package nfnotify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Buffer is the receive buffer of a subscription: a backend's own large
// transactions produce bursts of notifications, and a smaller buffer
// would lose them (ENOBUFS, then a needless re-apply).
const Buffer = 32 << 20

// TxnWait is how long the loop waits for the end of a foreign
// transaction before signalling without it.
const TxnWait = 20 * time.Millisecond

// genType is the header type of the NEWGEN message that ends every
// transaction's notifications.
const genType = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN)

// Join raises c's receive buffer to Buffer (past the system-wide
// maximum when allowed) and joins the nftables notification group.
func Join(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, Buffer) == nil {
			return
		}
		if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, Buffer); e != nil {
			serr = fmt.Errorf("SO_RCVBUF: %w", e)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		return fmt.Errorf("join nftables group: %w", err)
	}
	return nil
}

// Signal sends on out without blocking: a pending signal absorbs this
// one.
func Signal(out chan struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}

// Follow subscribes with dial (which must return a socket that has
// Joined the group) and, in a goroutine, reads notifications until ctx
// ends, signalling on out as the package doc says. foreign reports
// whether a notification (not NEWGEN) is a change to the backend's
// objects made by someone else. done is called when the goroutine ends;
// out is not closed.
func Follow(ctx context.Context, dial func() (*netlink.Conn, error), foreign func(m netlink.Message, now time.Time) bool,
	out chan struct{}, done func()) error {
	c, err := dial()
	if err != nil {
		return err
	}
	s := &sub{dial: dial, c: c, out: out}
	stop := context.AfterFunc(ctx, s.close)
	go func() {
		defer done()
		defer stop()
		s.run(ctx, foreign)
		s.close()
	}()
	return nil
}

// sub is one Follow's subscription.
type sub struct {
	dial func() (*netlink.Conn, error)
	out  chan struct{}

	mu     sync.Mutex
	c      *netlink.Conn // the current socket
	closed bool
}

// close ends the subscription, which unblocks a Receive.
func (s *sub) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.c.Close()
	}
}

// conn returns the current socket, nil once closed.
func (s *sub) conn() *netlink.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.c
}

// run reads notifications until ctx ends. It signals once per foreign
// transaction, at its NEWGEN message, so that the daemon verifies the
// whole damage at once instead of reconciling in the middle of a flush.
// Should the NEWGEN not come (lost, or a change without a transaction),
// a short read deadline signals anyway.
func (s *sub) run(ctx context.Context, foreign func(netlink.Message, time.Time) bool) {
	backoff := 10 * time.Millisecond
	pending := false
	for {
		c := s.conn()
		if c == nil {
			return
		}
		msgs, err := c.Receive()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if pending && errors.Is(err, os.ErrDeadlineExceeded) {
				pending = false
				Signal(s.out)
				_ = c.SetReadDeadline(time.Time{})
				continue
			}
			// Whatever happened, notifications may have been lost.
			pending = false
			Signal(s.out)
			if errors.Is(err, unix.ENOBUFS) {
				// The kernel dropped notifications; the socket is still
				// subscribed and receives the next ones.
				continue
			}
			if !s.resubscribe(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		now := time.Now()
		for _, m := range msgs {
			if m.Header.Type == genType {
				if pending {
					pending = false
					Signal(s.out)
				}
				continue
			}
			if !pending && foreign(m, now) {
				pending = true
			}
		}
		if pending {
			_ = c.SetReadDeadline(time.Now().Add(TxnWait))
		} else {
			_ = c.SetReadDeadline(time.Time{})
		}
	}
}

// resubscribe replaces a failed socket after a pause, retrying until
// ctx ends; it reports false when ctx ended first.
func (s *sub) resubscribe(ctx context.Context, pause time.Duration) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		c, err := s.dial()
		if err != nil {
			pause = min(2*pause, 5*time.Second)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return false
		}
		s.c.Close()
		s.c = c
		s.mu.Unlock()
		Signal(s.out) // changes made while unsubscribed are unknown
		return true
	}
}

// EachAttr calls fn with the type (without the nested and byte-order
// flags) and value of each attribute of an nftables message (data after
// the netlink header: nfgenmsg, then attributes) until fn returns false
// or an attribute is malformed.
func EachAttr(data []byte, fn func(typ uint16, v []byte) bool) {
	if len(data) < 4 {
		return
	}
	EachNested(data[4:], fn)
}

// EachNested is EachAttr for a list of attributes (a nested attribute's
// value).
func EachNested(attrs []byte, fn func(typ uint16, v []byte) bool) {
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs[0:2]))
		typ := binary.NativeEndian.Uint16(attrs[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(attrs) {
			return
		}
		if !fn(typ, attrs[4:l]) {
			return
		}
		step := (l + 3) &^ 3
		if step >= len(attrs) {
			return
		}
		attrs = attrs[step:]
	}
}

// AttrString is a string attribute's value without its NUL padding.
func AttrString(v []byte) string {
	for len(v) > 0 && v[len(v)-1] == 0 {
		v = v[:len(v)-1]
	}
	return string(v)
}
