package nftables

// Watch: telling the daemon at once when someone else deletes, flushes or
// changes netwarden's tables (nft flush ruleset, nft delete table …, a
// firewall service that flushes everything).
//
// The watcher joins the nftables multicast group (NFNLGRP_NFTABLES) in the
// backend's namespace and reads every change notification the kernel
// sends: one message per table, chain, rule, set, set element, object or
// flowtable added or deleted, then a NEWGEN message closing the
// transaction. It signals when a message names one of netwarden's tables
// and was not caused by this backend.
//
// Own changes are told apart by the netlink port id. The kernel stamps
// every notification's header (nlmsg_pid) with the port id of the socket
// whose batch made the change (nf_tables uses the request's
// NETLINK_CB(skb).portid for the notifications of its transaction, and the
// NEWGEN message too). conn() records the port id of every socket the
// backend opens (ownPorts.note, run when the socket is created, before it
// sends anything), so a change is ours exactly when it comes from one of
// those sockets. This needs no timing (no "apply in flight" window that a
// foreign change could hide in), and it is exact for a change that another
// process makes while our Apply runs. The NEWGEN message's
// NFTA_GEN_PROC_PID is not used: it is the kernel thread id of the sender
// in the initial pid namespace, which for a Go program is any of its
// threads, and not comparable with our own ids inside a container.
//
// A port id is only freed when its socket closes, and the kernel chooses
// a new socket's id as its process id if free, else from a decreasing
// counter shared by all processes: another process cannot get one of our
// ids while it is recorded (ownTTL) except by having our process id.
//
// Lost events: when the socket's receive buffer overflows the kernel
// drops notifications and reports ENOBUFS once; the watcher then signals
// (the daemon's Verify finds what was missed) and keeps reading, since
// the socket stays in the group. Any other receive error makes it open a
// new subscription, with a signal, retrying until ctx ends.
//
// google/nftables' Monitor was not used: it drops the table and set of a
// set-element event (a deleted verdict-map element unfilters a port), it
// decodes every rule's expressions (our own Apply of 1000 ports sends
// thousands of notifications, all ours and all ignored), and it ends at
// the first receive error. The watcher reads the same group with the
// same netlink library and decodes only the family and table name.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/nfnotify"
)

var _ netfilter.Watcher = (*Backend)(nil)

// ownTTL is how long a socket's port id counts as the backend's after the
// socket was opened: longer than any Apply and the reading of its
// notifications.
const ownTTL = 2 * time.Minute

// ownPorts remembers the netlink port ids of the backend's sockets. The
// zero value is ready; it is safe for concurrent use (conn() writes, the
// watcher reads).
type ownPorts struct {
	mu    sync.Mutex
	ports map[uint32]time.Time // port id → when a socket with it was opened
}

// note is a google/nftables socket option: it records the port id the
// kernel bound the new socket to. It never fails the connection: a port
// id it cannot read only makes our own changes look foreign (a needless
// Verify).
func (o *ownPorts) note(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var port uint32
	_ = raw.Control(func(fd uintptr) {
		if sa, err := unix.Getsockname(int(fd)); err == nil {
			if nl, ok := sa.(*unix.SockaddrNetlink); ok {
				port = nl.Pid
			}
		}
	})
	if port != 0 {
		o.add(port, time.Now())
	}
	return nil
}

func (o *ownPorts) add(port uint32, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ports == nil {
		o.ports = map[uint32]time.Time{}
	}
	if len(o.ports) >= 64 {
		for p, t := range o.ports {
			if now.Sub(t) > ownTTL {
				delete(o.ports, p)
			}
		}
	}
	o.ports[port] = now
}

// has reports whether port is one of the backend's sockets.
func (o *ownPorts) has(port uint32, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.ports[port]
	return ok && now.Sub(t) <= ownTTL
}

// ourTables are the tables the backend owns, by family and name (the
// probe's throw-away table is not among them).
var ourTables = map[nftables.TableFamily]map[string]bool{
	nftables.TableFamilyBridge: {TableName: true},
	nftables.TableFamilyINet:   {TableName: true, NetTableName: true},
}

// Watch implements netfilter.Watcher: the channel receives a value when a
// table, chain, rule, set, element, object or flowtable of netwarden's
// tables (bridge netwarden, inet netwarden, inet netwarden-net) is added,
// changed or deleted by anyone but this backend, and when notifications
// were lost. It is safe to call while the backend applies.
func (b *Backend) Watch(ctx context.Context) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	if err := nfnotify.Follow(ctx, b.dialWatch, b.foreign, out, func() { close(out) }); err != nil {
		return nil, fmt.Errorf("nftables: watch: %w", err)
	}
	return out, nil
}

// dialWatch opens a netfilter socket in the backend's namespace, joined
// to the nftables notification group.
func (b *Backend) dialWatch() (*netlink.Conn, error) {
	c, err := b.dialNetfilter()
	if err != nil {
		return nil, err
	}
	if err := nfnotify.Join(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// foreign reports whether m is an nftables notification about one of our
// tables that another socket than the backend's caused.
func (b *Backend) foreign(m netlink.Message, now time.Time) bool {
	if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES {
		return false
	}
	switch m.Header.Type & 0xff {
	case unix.NFT_MSG_NEWGEN, unix.NFT_MSG_TRACE:
		return false
	}
	fam, table, ok := notifiedTable(m.Data)
	if !ok || !ourTables[nftables.TableFamily(fam)][table] {
		return false
	}
	return !b.own.has(m.Header.PID, now)
}

// notifiedTable decodes the family (nfgenmsg) and the table name of an
// object notification: the name of a table, and the table of a chain,
// rule, set, element list, object or flowtable, is attribute 1 in every
// one of them (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE,
// NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE,
// NFTA_FLOWTABLE_TABLE).
func notifiedTable(data []byte) (family uint8, table string, ok bool) {
	if len(data) < 4 {
		return 0, "", false
	}
	nfnotify.EachAttr(data, func(typ uint16, v []byte) bool {
		if typ == 1 {
			table, ok = nfnotify.AttrString(v), true
			return false
		}
		return true
	})
	if !ok {
		return 0, "", false
	}
	return data[0], table, true
}
