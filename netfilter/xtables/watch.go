package xtables

// Watch: telling the daemon at once when someone else flushes, deletes or
// changes the backend's chains (iptables -F, iptables -X, ebtables -t nat
// -F, a firewall service that rebuilds every table on reload), so that
// the daemon's one reconcile path restores them.
//
// With the nf_tables programs (iptables-nft, ebtables-nft: the default
// flavour) the rules live in the nf_tables tables ip/ip6 filter, nat,
// mangle and bridge nat, and every change to them is announced on the
// nftables notification group, as for the nftables backend. The watcher
// joins that group in the backend's namespace and signals once per
// foreign transaction (at its NEWGEN message) that touched, in one of
// those tables, the table itself, a chain of ours or a rule in it, or a
// built-in chain holding our hooks (INPUT, FORWARD, OUTPUT, PREROUTING,
// POSTROUTING). Other tools' chains and sets in the same tables are left
// alone: their churn costs no Verify.
//
// Own changes are told apart by the netlink port id, as with nftables,
// but our changes come from child processes (*-restore): a netlink
// socket that binds without a port id gets its process's id (the
// kernel's autobind takes the thread group id when it is free in the
// namespace, which iptables' libmnl does), so the notifications of our
// batch carry the child's process id. run() starts the child with its
// input on a pipe, records the child's id (ownChanges.child), and only
// then writes the input: the child cannot change anything before it has
// read its batch, so the id is known before any of its notifications
// exists — no timing window in which a foreign flush could hide, and a
// foreign change made while our batch runs is still foreign. A child
// whose id was taken in the namespace gets another port id from the
// kernel; its changes then look foreign and cost one needless Verify,
// which finds everything in place. Ids are forgotten after ownTTL; the
// kernel does not reuse process ids that soon.
//
// A canary chain was considered and not used: the notifications already
// name every chain and rule changed, so a flush of any of our chains (not
// only of a canary) is seen, with no object added to the kernel.
//
// With the legacy programs (iptables-legacy) there are no notifications.
// The watcher polls every legacyPollEvery the kernel's description of each
// legacy table we use (IPT_SO_GET_INFO / IP6T_SO_GET_INFO: the number of
// entries, their size and the hook offsets), one getsockopt per table and
// no process, and signals when it differs from the last one seen: any
// flush, deletion or insertion changes it. The backend's own batches do
// not count: while one runs the poll leaves its tables alone, and it
// reads them again after (restore). A foreign change made between the
// end of our batch and that reading, or before Watch, is left to the
// daemon's periodic Verify. Legacy ebtables (which this project's lab
// kernel does not have) is not polled either.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/internal/nfnotify"
)

var _ netfilter.Watcher = (*Backend)(nil)

const (
	// ownTTL is how long a child's process id counts as ours after the
	// child started: longer than any batch and the reading of its
	// notifications.
	ownTTL = 2 * time.Minute
	// legacyPoll is the period of the legacy tables' check.
	legacyPollEvery = time.Second
)

// ownChanges is what the backend tells its watchers about its own
// changes. The zero value is ready; it is safe for concurrent use.
type ownChanges struct {
	mu    sync.Mutex
	pids  map[uint32]time.Time // child process ids (their port ids) → start
	busy  [numTools]int        // batches of a tool running
	done  [numTools]bool       // a batch of the tool succeeded: its tables exist
	polls map[*legacyPoll]bool // the legacy polls of running watches
}

// child records the process id of a child about to change the kernel.
func (o *ownChanges) child(pid int) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pids == nil {
		o.pids = map[uint32]time.Time{}
	}
	if len(o.pids) >= 64 {
		for p, t := range o.pids {
			if now.Sub(t) > ownTTL {
				delete(o.pids, p)
			}
		}
	}
	o.pids[uint32(pid)] = now
}

// has reports whether a notification's port id is one of our children.
func (o *ownChanges) has(port uint32, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.pids[port]
	return ok && now.Sub(t) <= ownTTL
}

// begin marks a batch of tool t as running.
func (o *ownChanges) begin(t tool) {
	o.mu.Lock()
	o.busy[t]++
	o.mu.Unlock()
}

// end marks a batch of tool t as over; the legacy polls take the state
// of t's tables it left as the new reference.
func (o *ownChanges) end(t tool, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.busy[t]--
	if ok {
		o.done[t] = true
	}
	if o.done[t] {
		for p := range o.polls {
			p.rebase(t)
		}
	}
}

// Watch implements netfilter.Watcher: the channel receives a value when
// someone else changes the backend's chains or the hooks to them (see
// the top of this file), and when notifications were lost. It is safe
// to call while the backend applies.
func (b *Backend) Watch(ctx context.Context) (<-chan struct{}, error) {
	var nft, legacy []tool
	for t := tool(0); t < numTools; t++ {
		if b.usesNFT(t) {
			nft = append(nft, t)
		} else if t != toolEB {
			legacy = append(legacy, t)
		}
	}
	out := make(chan struct{}, 1)
	var poll *legacyPoll
	if len(legacy) > 0 {
		p, err := b.newLegacyPoll(legacy)
		if err != nil {
			return nil, fmt.Errorf("xtables: watch: %w", err)
		}
		poll = p
	}
	var wg sync.WaitGroup
	if len(nft) > 0 {
		tables := watchedTables(nft)
		foreign := func(m netlink.Message, now time.Time) bool { return b.foreign(m, now, tables) }
		wg.Add(1)
		if err := nfnotify.Follow(ctx, b.dialWatch, foreign, out, wg.Done); err != nil {
			if poll != nil {
				poll.own.mu.Lock()
				delete(poll.own.polls, poll)
				poll.closeFDs()
				poll.own.mu.Unlock()
			}
			return nil, fmt.Errorf("xtables: watch: %w", err)
		}
	}
	if poll != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			poll.run(ctx, out)
		}()
	}
	go func() {
		wg.Wait()
		<-ctx.Done()
		close(out)
	}()
	return out, nil
}

// usesNFT reports whether tool t runs the nf_tables programs.
func (b *Backend) usesNFT(t tool) bool {
	fl := b.cfg.Flavour
	if t == toolEB && b.cfg.EbtablesFlavour != "" {
		fl = b.cfg.EbtablesFlavour
	}
	switch fl {
	case FlavourNFT:
		return true
	case FlavourLegacy:
		return false
	}
	out, err := exec.Command(t.String(), "--version").Output()
	return err != nil || strings.Contains(string(out), "nf_tables")
}

// Table families of nftables notifications (nfgenmsg.nfgen_family).
const (
	familyIPv4   = unix.NFPROTO_IPV4
	familyIPv6   = unix.NFPROTO_IPV6
	familyBridge = unix.NFPROTO_BRIDGE
)

// watchedTables are the nf_tables tables the tools write, by family.
func watchedTables(tools []tool) map[uint8]map[string]bool {
	m := map[uint8]map[string]bool{}
	for _, t := range tools {
		fam := map[tool]uint8{toolEB: familyBridge, toolIP4: familyIPv4, toolIP6: familyIPv6}[t]
		m[fam] = map[string]bool{}
		for _, table := range tables[t] {
			m[fam][table] = true
		}
	}
	return m
}

// hookChains are the built-in chains holding our hooks.
var hookChains = map[string]bool{"INPUT": true, "FORWARD": true, "OUTPUT": true, "PREROUTING": true, "POSTROUTING": true}

// dialWatch opens a netfilter socket in the backend's namespace, joined
// to the nftables notification group.
func (b *Backend) dialWatch() (*netlink.Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: b.cfg.NetNS})
	if err != nil {
		return nil, err
	}
	if err := nfnotify.Join(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// nftables message types of object notifications (linux/netfilter/nf_tables.h);
// the DESTROY ones exist since Linux 6.3.
const (
	msgNewTable     = unix.NFT_MSG_NEWTABLE
	msgDelTable     = unix.NFT_MSG_DELTABLE
	msgNewChain     = unix.NFT_MSG_NEWCHAIN
	msgDelChain     = unix.NFT_MSG_DELCHAIN
	msgNewRule      = unix.NFT_MSG_NEWRULE
	msgDelRule      = unix.NFT_MSG_DELRULE
	msgDestroyTable = 26
	msgDestroyChain = 27
	msgDestroyRule  = 28
)

// foreign reports whether m is a notification about the backend's
// objects (see relevant) that another socket than our children's made.
func (b *Backend) foreign(m netlink.Message, now time.Time, tables map[uint8]map[string]bool) bool {
	if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES {
		return false
	}
	if !relevant(uint16(m.Header.Type&0xff), m.Data, tables) {
		return false
	}
	return !b.own.has(m.Header.PID, now)
}

// relevant reports whether an nftables notification of type msg with
// body data (nfgenmsg, attributes) concerns one of tables: the table
// itself, a chain of ours or a hook chain, or a rule in one.
func relevant(msg uint16, data []byte, tables map[uint8]map[string]bool) bool {
	if len(data) < 4 {
		return false
	}
	var table, a2, a3 string
	nfnotify.EachAttr(data, func(typ uint16, v []byte) bool {
		switch typ {
		case 1:
			table = nfnotify.AttrString(v)
		case 2:
			a2 = nfnotify.AttrString(v)
		case 3:
			a3 = nfnotify.AttrString(v)
		}
		return true
	})
	if !tables[data[0]][table] {
		return false
	}
	ourChain := func(name string) bool { return isOurs(name) || hookChains[name] }
	switch msg {
	case msgNewTable, msgDelTable, msgDestroyTable:
		return true
	case msgNewChain, msgDelChain, msgDestroyChain:
		return ourChain(a3) // NFTA_CHAIN_NAME
	case msgNewRule, msgDelRule, msgDestroyRule:
		return ourChain(a2) // NFTA_RULE_CHAIN
	}
	return false
}

// legacyPoll watches the legacy tables of some tools by their kernel
// description.
type legacyPoll struct {
	own   *ownChanges
	tools []tool
	fd    [numTools]int // a raw socket per family, in the backend's namespace
	base  map[string]string
}

// newLegacyPoll opens the sockets and registers the poll with the
// backend, taking the current state of the tables it has written as the
// reference.
func (b *Backend) newLegacyPoll(tools []tool) (*legacyPoll, error) {
	p := &legacyPoll{own: &b.own, tools: tools, base: map[string]string{}}
	for i := range p.fd {
		p.fd[i] = -1
	}
	err := b.inNetNS(func() error {
		for _, t := range tools {
			af := unix.AF_INET
			if t == toolIP6 {
				af = unix.AF_INET6
			}
			fd, err := unix.Socket(af, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
			if err != nil {
				return fmt.Errorf("%s socket: %w", t, err)
			}
			p.fd[t] = fd
		}
		return nil
	})
	if err != nil {
		p.closeFDs()
		return nil, err
	}
	b.own.mu.Lock()
	defer b.own.mu.Unlock()
	if b.own.polls == nil {
		b.own.polls = map[*legacyPoll]bool{}
	}
	b.own.polls[p] = true
	for _, t := range tools {
		if b.own.done[t] {
			p.rebase(t)
		}
	}
	return p, nil
}

func (p *legacyPoll) closeFDs() {
	for i, fd := range p.fd {
		if fd >= 0 {
			unix.Close(fd)
			p.fd[i] = -1
		}
	}
}

// rebase takes the current state of t's tables as the reference; the
// caller holds own.mu.
func (p *legacyPoll) rebase(t tool) {
	if p.fd[t] < 0 {
		return
	}
	for _, table := range tables[t] {
		p.base[t.String()+" "+table] = p.info(t, table)
	}
}

// check compares the tables with their reference and reports a change.
func (p *legacyPoll) check() bool {
	p.own.mu.Lock()
	defer p.own.mu.Unlock()
	changed := false
	for _, t := range p.tools {
		if p.own.busy[t] > 0 || !p.own.done[t] {
			continue // our own batch runs, or nothing of ours is there
		}
		for _, table := range tables[t] {
			k := t.String() + " " + table
			cur := p.info(t, table)
			if old, ok := p.base[k]; ok && old != cur {
				changed = true
			}
			p.base[k] = cur
		}
	}
	return changed
}

func (p *legacyPoll) run(ctx context.Context, out chan struct{}) {
	defer func() {
		p.own.mu.Lock()
		delete(p.own.polls, p)
		p.closeFDs()
		p.own.mu.Unlock()
	}()
	tick := time.NewTicker(legacyPollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if p.check() {
			nfnotify.Signal(out)
		}
	}
}

// getinfoSize is the size of struct ipt_getinfo (and ip6t_getinfo): the
// table's name, valid hooks, hook entry and underflow offsets, number of
// entries and their size.
const getinfoSize = 32 + 4 + 5*4 + 5*4 + 4 + 4

// soGetInfo is IPT_SO_GET_INFO and IP6T_SO_GET_INFO.
const soGetInfo = 64

// info describes a legacy table as the kernel does (IPT_SO_GET_INFO),
// or says why it cannot.
func (p *legacyPoll) info(t tool, table string) string {
	level := unix.IPPROTO_IP
	if t == toolIP6 {
		level = unix.IPPROTO_IPV6
	}
	buf := make([]byte, getinfoSize)
	copy(buf, table)
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(p.fd[t]), uintptr(level), soGetInfo,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return "error: " + e.Error()
	}
	return string(buf[32:l])
}
