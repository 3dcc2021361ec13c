// Package nftables is netwarden's default kernel backend: it enforces a
// netfilter.State with nftables, over netlink, in one transaction per
// Apply.
//
//	b := nftables.New(nftables.Config{})
//	caps, _ := b.Probe(ctx)
//	err := b.Apply(ctx, &netfilter.State{Ports: ports})
//
// Layout (bridge family, table "netwarden"): two base chains, on the
// prerouting hook for frames from guests and on the postrouting hook for
// frames to guests, each holding one rule that looks the port name up in
// a verdict map. A port's map element jumps to the root chain of its
// filter's program; programs are shared by every port whose filter has
// the same shape, and per-port values ($MAC, $IP, …) are elements of
// sets keyed by port name. Adding a port therefore adds map and set
// elements, not rules. See program.go for how filters become programs.
//
// IP-layer rules (tcp, udp, icmp, all, …) need connection tracking,
// which this kernel's bridge family lacks: they live in chains of "table
// inet netwarden", shared by the ports with the same rules, reached
// through br_netfilter with the ports carried in the packet mark. See iplayer.go for libvirt's semantics and
// iplayer_kernel.go for the layout.
//
// The firewalls of virtual networks (State.Networks: nat, route,
// isolated) live in "table inet netwarden-net", one chain per network and
// hook reached from base chains on input, output, forward and nat
// postrouting; see network.go.
//
// The backend owns its three tables and nothing else; it never changes
// another table (it does set the bridge-nf-call sysctls while IP-layer
// rules need them). It is not safe for concurrent use: the daemon's
// reconciler is its only caller.
package nftables

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
)

// Config configures a Backend.
type Config struct {
	// NetNS is a network namespace file descriptor to work in; 0 means
	// the process's own namespace. Tests use it.
	NetNS int
	// Log receives what the backend changes outside its tables (the
	// br_netfilter sysctls); nil discards it.
	Log *slog.Logger
}

func (b *Backend) log() *slog.Logger {
	if b.cfg.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return b.cfg.Log
}

// Backend enforces port filters with nftables. Make one with New.
type Backend struct {
	cfg   Config
	table *nftables.Table
	// own remembers the netlink ports of this backend's sockets, so
	// that Watch can tell its own changes from others' (see watch.go).
	own ownPorts

	// What the last successful Apply installed; nil before the first
	// and after a failure of Verify, which makes the next Apply replace
	// the whole table.
	applied *installed
	// Compiled programs by signature, reused across Applies.
	programs map[string]*program
	// nets is the networks' rendering the last successful Apply
	// installed; meaningful only while applied is not nil.
	nets *netPlan
}

// installed is the kernel state the backend believes is in place.
type installed struct {
	ports    map[string]*portInstall
	programs map[string]int // program id → number of ports using it
	progByID map[string]*program
	setRefs  map[string]int            // shared set → number of programs using it
	setElems map[string]map[string]int // set → key → number of ports with that key
	failed   map[string]error          // ports installed as drop-all for lack of a rendering
	ipChains map[string]int            // shared IP-layer chain → number of ports using it
	// ipChainRules is the number of rules of each shared IP-layer chain
	// in ipChains, which Verify compares with the kernel's.
	ipChainRules map[string]int
}

func newInstalled() *installed {
	return &installed{
		ports:    map[string]*portInstall{},
		programs: map[string]int{},
		progByID: map[string]*program{},
		setRefs:  map[string]int{},
		setElems: map[string]map[string]int{},
		failed:   map[string]error{},
		ipChains: map[string]int{},

		ipChainRules: map[string]int{},
	}
}

// delta is a change of the installed state: what Apply sends to the
// kernel, and then records with commit.
type delta struct {
	set map[string]*portInstall // ports new or changed, with their new install
	del []string                // ports removed

	progDelta map[string]int            // program id → change in its port count
	elemDelta map[string]map[string]int // set → key → change in its port count
	setDelta  map[string]int            // shared set → change in its program count

	progAdd, progDel []*program
	setsAdd, setsDel []string
	elemAdd, elemDel map[string][][]byte

	ipChainDelta           map[string]int // IP-layer chain → change in its port count
	ipChainRules           map[string]int // IP-layer chain of a port in set → its number of rules
	ipChainAdd, ipChainDel []string       // IP-layer chains that appear, disappear
}

func (d *delta) empty() bool { return len(d.set) == 0 && len(d.del) == 0 }

// commit records d as installed.
func (s *installed) commit(d *delta) {
	for _, name := range d.del {
		delete(s.ports, name)
		delete(s.failed, name)
	}
	for name, pi := range d.set {
		s.ports[name] = pi
		if pi.err != nil {
			s.failed[name] = pi.err
		} else {
			delete(s.failed, name)
		}
	}
	for _, p := range d.progAdd {
		s.progByID[p.id] = p
	}
	for id, n := range d.progDelta {
		if s.programs[id] += n; s.programs[id] <= 0 {
			delete(s.programs, id)
			delete(s.progByID, id)
		}
	}
	for set, n := range d.setDelta {
		if s.setRefs[set] += n; s.setRefs[set] <= 0 {
			delete(s.setRefs, set)
		}
	}
	for ch, n := range d.ipChainDelta {
		if s.ipChains[ch] += n; s.ipChains[ch] <= 0 {
			delete(s.ipChains, ch)
			delete(s.ipChainRules, ch)
		} else if r, ok := d.ipChainRules[ch]; ok {
			s.ipChainRules[ch] = r
		}
	}
	for set, m := range d.elemDelta {
		cur := s.setElems[set]
		if cur == nil {
			cur = map[string]int{}
			s.setElems[set] = cur
		}
		for k, n := range m {
			if cur[k] += n; cur[k] <= 0 {
				delete(cur, k)
			}
		}
		if len(cur) == 0 {
			delete(s.setElems, set)
		}
	}
}

// portErrors reports the ports installed as drop-all, or nil.
func (s *installed) portErrors() error {
	if len(s.failed) == 0 {
		return nil
	}
	errs := make(map[string]error, len(s.failed))
	for k, v := range s.failed {
		errs[k] = v
	}
	return &netfilter.PortErrors{Ports: errs}
}

// portInstall is what one port has in the kernel.
type portInstall struct {
	state *netfilter.PortState
	prog  *program
	data  *portData
	from  string // verdict in the from-guest map: chain name, "drop" or ""
	to    string
	ip    *ipPort // IP-layer rules, nil without
	err   error   // why the port could not be rendered (it is drop-all)
}

// New returns a backend; it does not touch the kernel until used.
func New(cfg Config) *Backend {
	return &Backend{
		cfg:      cfg,
		table:    &nftables.Table{Name: TableName, Family: nftables.TableFamilyBridge},
		programs: map[string]*program{},
	}
}

// Name implements netfilter.Backend.
func (b *Backend) Name() string { return "nftables" }

// socketBuffer is the netlink socket buffer size: one transaction goes
// out in one sendmsg, and a full replacement for thousands of ports is
// megabytes; the kernel acknowledges every message of it.
const socketBuffer = 64 << 20

func (b *Backend) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(bigBuffers, b.own.note)}
	if b.cfg.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(b.cfg.NetNS))
	}
	return nftables.New(opts...)
}

// bigBuffers raises the socket's buffers past the system-wide maximum
// (SO_SNDBUFFORCE needs CAP_NET_ADMIN, which the daemon has anyway).
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer); e != nil {
			serr = fmt.Errorf("SO_SNDBUFFORCE: %w", e)
			return
		}
		if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer); e != nil {
			serr = fmt.Errorf("SO_RCVBUFFORCE: %w", e)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// Probe implements netfilter.Backend: it tries, in a throw-away table,
// what this kernel can do.
func (b *Backend) Probe(ctx context.Context) (netfilter.Capabilities, error) {
	var caps netfilter.Capabilities
	c, err := b.conn()
	if err != nil {
		return caps, fmt.Errorf("nftables: %w", err)
	}
	try := func(exprs []expr.Any) bool {
		t := &nftables.Table{Name: TableName + "-probe", Family: nftables.TableFamilyBridge}
		c.AddTable(t)
		ch := c.AddChain(&nftables.Chain{Name: "probe", Table: t})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		c.DelTable(t)
		return c.Flush() == nil
	}
	caps.BridgeConntrack = try([]expr.Any{&expr.Ct{Key: expr.CtKeySTATE, Register: 1}})
	caps.BridgeReject = try([]expr.Any{&expr.Reject{Type: 0, Code: 0}})
	// A missing table makes the batch fail; the probe needs none left.
	caps.BridgeNetfilter = fileExists("/proc/sys/net/bridge/bridge-nf-call-iptables")
	// One path on every kernel, the one tested here: even where the
	// bridge family has conntrack, IP-layer rules go through br_netfilter
	// to the inet table.
	caps.StatefulPath = netfilter.StatefulBrNetfilter
	return caps, nil
}

// Apply implements netfilter.Backend. A port whose filter cannot be
// rendered is installed as drop-all and reported in a
// *netfilter.PortErrors while the other ports are applied as asked.
func (b *Backend) Apply(ctx context.Context, desired *netfilter.State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var (
		next      *installed
		d         *delta
		renderErr error
	)
	nets, err := planNetworks(desired.Networks)
	if err != nil {
		// Nothing is applied: what is in force stays.
		return fmt.Errorf("nftables: %w", err)
	}
	// The networks table changes as a whole, and only when the networks
	// do (or when everything is replaced).
	netsChanged := b.applied == nil || b.nets == nil || b.nets.sig != nets.sig
	if b.applied == nil {
		next, renderErr = b.planAll(desired)
	} else {
		d, renderErr = b.planDelta(desired)
	}
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	tx := &txn{c: c, table: b.table}
	if b.applied == nil {
		tx.replaceAll(next)
	} else {
		if d.empty() && !netsChanged {
			return renderErr
		}
		if !d.empty() {
			tx.update(b.applied, d)
		}
	}
	if netsChanged {
		absent := b.applied != nil && b.nets != nil && b.nets.empty()
		tx.replaceNetworks(nets, absent)
	}
	if err := c.Flush(); err != nil {
		// The kernel applied nothing; what was in force stays.
		return fmt.Errorf("nftables: apply %d ports, %d networks: %w", len(desired.Ports), len(nets.networks), err)
	}
	if b.applied == nil {
		b.applied = next
	} else {
		b.applied.commit(d)
	}
	b.nets = nets
	b.forgetPrograms()
	// Ports that could not be rendered are installed as drop-all; say so.
	if renderErr != nil {
		return renderErr
	}
	return nil
}

// planAll computes the installed state for desired from scratch.
func (b *Backend) planAll(desired *netfilter.State) (*installed, error) {
	next := newInstalled()
	d := &delta{set: map[string]*portInstall{}}
	for name, ps := range desired.Ports {
		d.set[name] = b.planPortFailClosed(name, ps)
	}
	b.finishIP(next, d)
	b.count(next, d)
	next.commit(d)
	return next, next.portErrors()
}

// planDelta computes what changes from the installed state to desired:
// the ports whose state is new, different or gone, and what that does to
// programs, shared sets and their elements. Unchanged ports cost a map
// lookup and a pointer comparison.
func (b *Backend) planDelta(desired *netfilter.State) (*delta, error) {
	d := &delta{set: map[string]*portInstall{}}
	for name, ps := range desired.Ports {
		if old := b.applied.ports[name]; old == nil || old.state != ps {
			d.set[name] = b.planPortFailClosed(name, ps)
		}
	}
	for name := range b.applied.ports {
		if _, ok := desired.Ports[name]; !ok {
			d.del = append(d.del, name)
		}
	}
	sort.Strings(d.del)
	b.finishIP(b.applied, d)
	b.count(b.applied, d)
	var errs map[string]error
	for name, pi := range b.applied.failed {
		if _, gone := desired.Ports[name]; gone && d.set[name] == nil {
			if errs == nil {
				errs = map[string]error{}
			}
			errs[name] = pi
		}
	}
	for name, pi := range d.set {
		if pi.err != nil {
			if errs == nil {
				errs = map[string]error{}
			}
			errs[name] = pi.err
		}
	}
	if errs != nil {
		return d, &netfilter.PortErrors{Ports: errs}
	}
	return d, nil
}

// planPortFailClosed plans a port; a port that cannot be rendered drops
// everything (fail closed) and keeps the reason.
func (b *Backend) planPortFailClosed(name string, ps *netfilter.PortState) *portInstall {
	pi, err := b.planPort(name, ps)
	if err != nil {
		return &portInstall{state: ps, from: "drop", to: "drop", err: err}
	}
	return pi
}

// count fills in d's consequences relative to the installed state cur:
// programs, shared sets and elements, shared IP-layer chains that appear
// or disappear.
func (b *Backend) count(cur *installed, d *delta) {
	progDelta := map[string]int{}
	progs := map[string]*program{}
	elemDelta := map[string]map[string]int{}
	ipDelta := map[string]int{}
	ipRules := map[string]int{}
	touch := func(pi *portInstall, by int) {
		if pi != nil && pi.ip != nil {
			for c, ch := range pi.ip.chains {
				ipDelta[ch] += by
				if by > 0 {
					// One kernel rule per planned rule (addIPRules).
					ipRules[ch] = len(pi.ip.plan.chains[c])
				}
			}
		}
		if pi == nil || pi.prog == nil {
			return
		}
		progDelta[pi.prog.id] += by
		progs[pi.prog.id] = pi.prog
		for set, keys := range pi.data.elems {
			m := elemDelta[set]
			if m == nil {
				m = map[string]int{}
				elemDelta[set] = m
			}
			for _, k := range keys {
				m[string(k)] += by
			}
		}
	}
	for name, pi := range d.set {
		touch(cur.ports[name], -1)
		touch(pi, +1)
	}
	for _, name := range d.del {
		touch(cur.ports[name], -1)
	}
	d.progDelta, d.elemDelta, d.ipChainDelta, d.ipChainRules = progDelta, elemDelta, ipDelta, ipRules
	for ch, n := range ipDelta {
		before := cur.ipChains[ch]
		switch after := before + n; {
		case before == 0 && after > 0:
			d.ipChainAdd = append(d.ipChainAdd, ch)
		case before > 0 && after == 0:
			d.ipChainDel = append(d.ipChainDel, ch)
		}
	}
	sort.Strings(d.ipChainAdd)
	sort.Strings(d.ipChainDel)
	setDelta := map[string]int{}
	for id, n := range progDelta {
		before := cur.programs[id]
		after := before + n
		switch {
		case before == 0 && after > 0:
			d.progAdd = append(d.progAdd, progs[id])
			for set := range progs[id].sets {
				setDelta[set]++
			}
		case before > 0 && after == 0:
			d.progDel = append(d.progDel, cur.progByID[id])
			for set := range cur.progByID[id].sets {
				setDelta[set]--
			}
		}
	}
	sort.Slice(d.progAdd, func(i, j int) bool { return d.progAdd[i].id < d.progAdd[j].id })
	sort.Slice(d.progDel, func(i, j int) bool { return d.progDel[i].id < d.progDel[j].id })
	for set, n := range setDelta {
		before := cur.setRefs[set]
		switch after := before + n; {
		case before == 0 && after > 0:
			d.setsAdd = append(d.setsAdd, set)
		case before > 0 && after == 0:
			d.setsDel = append(d.setsDel, set)
		}
	}
	sort.Strings(d.setsAdd)
	sort.Strings(d.setsDel)
	d.setDelta = setDelta
	for set, m := range elemDelta {
		for k, n := range m {
			before := cur.setElems[set][k]
			switch after := before + n; {
			case before == 0 && after > 0:
				d.elemAdd = appendKey(d.elemAdd, set, k)
			case before > 0 && after == 0:
				d.elemDel = appendKey(d.elemDel, set, k)
			}
		}
	}
}

func appendKey(m map[string][][]byte, set, key string) map[string][][]byte {
	if m == nil {
		m = map[string][][]byte{}
	}
	m[set] = append(m[set], []byte(key))
	return m
}

// forgetPrograms drops compiled programs no installed port uses.
func (b *Backend) forgetPrograms() {
	if b.applied == nil {
		return
	}
	for sig, p := range b.programs {
		if b.applied.programs[p.id] == 0 {
			delete(b.programs, sig)
		}
	}
}

func (b *Backend) planPort(name string, ps *netfilter.PortState) (*portInstall, error) {
	if err := checkName("port", name); err != nil {
		return nil, err
	}
	pi := &portInstall{state: ps}
	if ps.Mode == netfilter.DropAll {
		pi.from, pi.to = "drop", "drop"
		return pi, nil
	}
	if ps.Rules == nil {
		return pi, nil
	}
	if len(ps.Rules.IPv4)+len(ps.Rules.IPv6) > 0 {
		plan, err := planIPLayer(ps.Rules)
		if err != nil {
			return nil, fmt.Errorf("port %s: IP-layer rules: %w", name, err)
		}
		if !plan.empty() {
			if pi.ip, err = newIPPort(plan); err != nil {
				return nil, fmt.Errorf("port %s: IP-layer rules: %w", name, err)
			}
		}
	}
	if len(ps.Rules.Chains) == 0 {
		return pi, nil // nothing to enforce
	}
	sig := signature(ps.Rules)
	prog := b.programs[sig]
	if prog == nil {
		var err error
		prog, err = compileProgram(ps.Rules, sig, b.table)
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", name, err)
		}
		b.programs[sig] = prog
	}
	data, err := prog.portDataFor(name, ps.Rules)
	if err != nil {
		return nil, err
	}
	pi.prog, pi.data = prog, data
	pi.from, pi.to = prog.outRoot, prog.inRoot
	return pi, nil
}

// Remove implements netfilter.Backend.
func (b *Backend) Remove(ctx context.Context) error {
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, t := range []*nftables.Table{b.table, ipTable(), netTable()} {
		c.AddTable(t)
		c.DelTable(t)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: remove tables: %w", err)
	}
	b.applied = nil
	b.nets = nil
	b.programs = map[string]*program{}
	return nil
}
