// Package xtables is netwarden's second kernel backend: it enforces a
// netfilter.State with ebtables, iptables and ip6tables, in one
// *-restore --noflush batch per program and Apply.
//
//	b := xtables.New(xtables.Config{})
//	caps, _ := b.Probe(ctx)
//	err := b.Apply(ctx, &netfilter.State{Ports: ports})
//
// Layout (libvirt's nwfilter and network driver layouts, netwarden's own
// names; see render.go):
//
//	ebtables -t nat   PREROUTING  -j NW-PRE    NW-PRE:  -i PORT -j NI<g>-PORT   (libvirt-I-PORT)
//	                  POSTROUTING -j NW-POST   NW-POST: -o PORT -j NO<g>-PORT   (libvirt-O-PORT)
//	                  NI<g>.<k>-PORT, NO<g>.<k>-PORT: the filter's sub-chains (I-PORT-ipv4 …)
//	iptables/ip6tables -t filter
//	                  INPUT   -j NW-INPUT:   -j NW-HOST (libvirt-host-in: --physdev-in PORT -g HJ<g>-PORT)
//	                                         -j NW-NET-INP
//	                  FORWARD -j NW-FORWARD: -j NW-FROM (libvirt-in:  --physdev-in PORT -g FJ<g>-PORT)
//	                                         -j NW-TO   (libvirt-out: --physdev-is-bridged --physdev-out PORT -g FP<g>-PORT)
//	                                         -j NW-NET-FWX, NW-NET-FWI, NW-NET-FWO
//	                  OUTPUT  -j NW-OUTPUT:  -j NW-NET-OUT
//	                  -t nat, -t mangle: POSTROUTING -j NW-POSTROUTING (LIBVIRT_PRT; CHECKSUM --checksum-fill in mangle)
//
// <g> is the port's generation, 0 or 1: a port whose rules change gets
// new chains in the other generation, its dispatch rules are swapped to
// them and the old chains deleted, all in the same batch, so a port is
// never unfiltered during an update (each restore is one transaction with
// the nf_tables flavour, one table replacement with legacy).
//
// Differences from libvirt, all to agree with the nftables backend
// packet for packet: an accepted packet is not ACCEPTed in FORWARD by the
// port filter (libvirt's FP ACCEPT and libvirt-in-post): FP returns, and
// the networks' rules and the host's own chains still decide, as every
// nftables table must accept a packet. The hooks are inserted first in
// the built-in chains. ipset matches are unsupported (the port is
// drop-all), as with nftables.
package xtables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/netfilter"
)

// Flavour selects the iptables programs.
type Flavour string

// Flavours.
const (
	// FlavourDefault runs iptables-restore, ebtables-restore … as the
	// system's alternatives choose.
	FlavourDefault Flavour = ""
	// FlavourNFT runs the nf_tables programs (iptables-nft-restore …).
	FlavourNFT Flavour = "nft"
	// FlavourLegacy runs the legacy programs (iptables-legacy-restore …).
	FlavourLegacy Flavour = "legacy"
)

// Config configures a Backend.
type Config struct {
	// NetNS is a network namespace file descriptor to work in; 0 means
	// the process's own namespace. Tests use it.
	NetNS int
	// Flavour selects the iptables and ip6tables programs;
	// FlavourDefault the system's.
	Flavour Flavour
	// EbtablesFlavour selects the ebtables programs; empty means
	// Flavour. (Kernels without the legacy ebtables tables run legacy
	// iptables beside ebtables-nft.)
	EbtablesFlavour Flavour
	// Log receives what the backend changes outside its chains; nil
	// discards it.
	Log *slog.Logger
}

// Backend enforces port filters and networks' firewalls with ebtables,
// iptables and ip6tables. It is not safe for concurrent use.
type Backend struct {
	cfg Config
	// applied is what the last successful Apply installed; nil before
	// the first and after a failure, which makes the next Apply read the
	// kernel and rewrite all of ours.
	applied *ruleset
	// ports: each port's generation and rendering as applied.
	ports map[string]*appliedPort
	// failed are the ports installed drop-all for lack of a rendering.
	failed   map[string]error
	bridgeNF bool
	// own tells the watcher which kernel changes are the backend's
	// (watch.go); safe for concurrent use.
	own ownChanges
}

type appliedPort struct {
	gen    byte
	render *portRender
	state  *netfilter.PortState
}

// New returns a backend; it touches nothing until Probe or Apply.
func New(cfg Config) *Backend { return &Backend{cfg: cfg} }

// Name implements netfilter.Backend.
func (b *Backend) Name() string { return "xtables" }

func (b *Backend) log() *slog.Logger {
	if b.cfg.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return b.cfg.Log
}

// program names the binary of tool t: "restore" or "save".
func (b *Backend) program(t tool, what string) string {
	base := t.String()
	fl := b.cfg.Flavour
	if t == toolEB && b.cfg.EbtablesFlavour != "" {
		fl = b.cfg.EbtablesFlavour
	}
	switch fl {
	case FlavourNFT:
		return base + "-nft-" + what
	case FlavourLegacy:
		return base + "-legacy-" + what
	}
	return base + "-" + what
}

// inNetNS runs fn on a locked thread inside the configured namespace.
func (b *Backend) inNetNS(fn func() error) error {
	if b.cfg.NetNS == 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(orig)
	if err := unix.Setns(b.cfg.NetNS, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with its goroutine.
		return fmt.Errorf("leave network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// run runs a program in the namespace with stdin.
func (b *Backend) run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := b.inNetNS(func() error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		// The program changes nothing before it has read its input:
		// its netlink port id (its process id) is known to the watcher
		// before any notification of its changes can exist.
		b.own.child(cmd.Process.Pid)
		_, werr := io.WriteString(in, stdin)
		in.Close()
		if err := cmd.Wait(); err != nil {
			return err
		}
		return werr
	})
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Probe implements netfilter.Backend: which iptables (version, nf_tables
// or legacy) and whether br_netfilter is there.
func (b *Backend) Probe(ctx context.Context) (netfilter.Capabilities, error) {
	var caps netfilter.Capabilities
	var mode string
	var v1, v2, v3 int
	err := b.inNetNS(func() error {
		var ipt *iptables.IPTables
		var err error
		if b.cfg.Flavour != FlavourDefault {
			p, lerr := exec.LookPath("iptables-" + string(b.cfg.Flavour))
			if lerr != nil {
				return lerr
			}
			ipt, err = iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Path(p))
		} else {
			ipt, err = iptables.New(iptables.IPFamily(iptables.ProtocolIPv4))
		}
		if err != nil {
			return err
		}
		v1, v2, v3 = ipt.GetIptablesVersion()
		switch {
		case b.cfg.Flavour == FlavourNFT, b.cfg.Flavour == FlavourDefault && isNFT():
			mode = "nf_tables"
		default:
			mode = "legacy"
		}
		_, err = os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
		caps.BridgeNetfilter = err == nil
		return nil
	})
	if err != nil {
		return caps, fmt.Errorf("xtables probe: %w", err)
	}
	for _, t := range []tool{toolEB, toolIP4, toolIP6} {
		if _, err := exec.LookPath(b.program(t, "restore")); err != nil {
			return caps, fmt.Errorf("xtables probe: %w", err)
		}
	}
	caps.StatefulPath = netfilter.StatefulBrNetfilter
	b.log().Info("xtables backend", "iptables", fmt.Sprintf("%d.%d.%d", v1, v2, v3), "mode", mode, "flavour", string(b.cfg.Flavour))
	return caps, nil
}

// isNFT reports whether the default iptables is the nf_tables flavour.
func isNFT() bool {
	out, err := exec.Command("iptables", "--version").Output()
	return err == nil && strings.Contains(string(out), "nf_tables")
}

// Apply implements netfilter.Backend.
func (b *Backend) Apply(ctx context.Context, desired *netfilter.State) error {
	want := newRuleset()
	want.skeleton()
	ports := map[string]*appliedPort{}
	failed := map[string]error{}
	needBridgeNF := false
	for _, name := range desired.PortNames() {
		ps := desired.Ports[name]
		var gen byte = '0'
		old := b.ports[name]
		if old != nil {
			gen = old.gen
			if b.applied != nil && samePort(old.state, ps) {
				ports[name] = old
				want.addPort(old.render)
				needBridgeNF = needBridgeNF || len(old.render.chains[toolIP4])+len(old.render.chains[toolIP6]) > 0
				continue
			}
			if b.applied != nil {
				gen ^= 1 // '0' <-> '1'
			}
		}
		named := *ps // the map key names the port; the caller's value stays as it is
		named.Port = name
		pr, err := renderPort(&named, gen)
		if err != nil {
			failed[name] = err
			pr, _ = renderPort(&netfilter.PortState{Port: name, Mode: netfilter.DropAll}, gen)
		}
		ports[name] = &appliedPort{gen: gen, render: pr, state: ps}
		want.addPort(pr)
		needBridgeNF = needBridgeNF || len(pr.chains[toolIP4])+len(pr.chains[toolIP6]) > 0
	}
	if err := want.addNetworks(desired.Networks); err != nil {
		return err
	}
	if needBridgeNF && !b.bridgeNF {
		if err := b.ensureBridgeNF(); err != nil {
			// The IP layer cannot be reached: its ports fail closed.
			for name, p := range ports {
				if len(p.render.chains[toolIP4])+len(p.render.chains[toolIP6]) > 0 {
					failed[name] = err
					pr, _ := renderPort(&netfilter.PortState{Port: name, Mode: netfilter.DropAll}, p.gen)
					ports[name] = &appliedPort{gen: p.gen, render: pr, state: p.state}
				}
			}
			return b.Apply2(ctx, ports, failed, desired)
		}
		b.bridgeNF = true
	}
	return b.commit(ctx, want, ports, failed)
}

// Apply2 re-renders with some ports replaced (drop-all).
func (b *Backend) Apply2(ctx context.Context, ports map[string]*appliedPort, failed map[string]error, desired *netfilter.State) error {
	want := newRuleset()
	want.skeleton()
	for _, name := range sortedKeys(ports) {
		want.addPort(ports[name].render)
	}
	if err := want.addNetworks(desired.Networks); err != nil {
		return err
	}
	return b.commit(ctx, want, ports, failed)
}

func (b *Backend) commit(ctx context.Context, want *ruleset, ports map[string]*appliedPort, failed map[string]error) error {
	var existing [numTools]map[string]map[string]bool
	var hooks [numTools]map[string]map[hook]int
	if b.applied == nil {
		for t := tool(0); t < numTools; t++ {
			ex, hk, err := b.readOurs(ctx, t)
			if err != nil {
				return err
			}
			existing[t], hooks[t] = ex, hk
		}
	}
	for t := tool(0); t < numTools; t++ {
		var cur map[string]*tableRules
		if b.applied != nil {
			cur = b.applied[t]
		}
		in := restoreInput(t, cur, want[t], existing[t], hooks[t])
		if in == "" {
			continue
		}
		if err := b.restore(ctx, t, in); err != nil {
			b.applied, b.ports = nil, nil
			return fmt.Errorf("xtables apply: %w", err)
		}
	}
	b.applied, b.ports, b.failed = want, ports, failed
	if len(failed) > 0 {
		return &netfilter.PortErrors{Ports: failed}
	}
	return nil
}

// samePort reports whether a port's desired state is unchanged.
func samePort(a, b *netfilter.PortState) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.Mode != b.Mode {
		return false
	}
	if a.Mode == netfilter.DropAll {
		return true
	}
	if a.Rules == b.Rules {
		return true
	}
	if a.Rules == nil || b.Rules == nil {
		return false
	}
	return a.Rules.String() == b.Rules.String()
}

// ensureBridgeNF makes bridged IP traffic pass the IP hooks in the
// backend's namespace (bridge-nf-call-iptables, -ip6tables).
func (b *Backend) ensureBridgeNF() error {
	return b.inNetNS(func() error {
		for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
			p := "/proc/sys/net/bridge/" + f
			cur, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("br_netfilter: %w", err)
			}
			if strings.TrimSpace(string(cur)) == "1" {
				continue
			}
			if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("br_netfilter: %w", err)
			}
			b.log().Info("set for IP-layer port filters", "sysctl", "net.bridge."+f, "value", 1)
		}
		return nil
	})
}

// restore runs one --noflush batch of tool t. While it runs, the
// watcher's legacy poll leaves t's tables alone, and it reads their
// state again after it: the batch's own changes are not reported.
func (b *Backend) restore(ctx context.Context, t tool, in string) error {
	b.own.begin(t)
	_, err := b.run(ctx, in, b.program(t, "restore"), "--noflush")
	b.own.end(t, err == nil)
	return err
}

// save reads one table of a tool.
func (b *Backend) save(ctx context.Context, t tool, table string) (string, error) {
	return b.run(ctx, "", b.program(t, "save"), "-t", table)
}

// parsed is a save listing: chains with their rules, and the jumps from
// built-in chains to ours.
type parsed struct {
	chains map[string][]string // every chain → its rules (args after -A NAME)
}

func parseSave(out string) *parsed {
	p := &parsed{chains: map[string][]string{}}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if _, ok := p.chains[name]; !ok {
				p.chains[name] = nil
			}
		case strings.HasPrefix(line, "-A "):
			name, rule, _ := strings.Cut(line[3:], " ")
			p.chains[name] = append(p.chains[name], rule)
		}
	}
	return p
}

// readOurs lists the chains of ours in each table of t, and counts the
// jumps from built-in chains to them.
func (b *Backend) readOurs(ctx context.Context, t tool) (map[string]map[string]bool, map[string]map[hook]int, error) {
	ex := map[string]map[string]bool{}
	hk := map[string]map[hook]int{}
	for _, table := range tables[t] {
		out, err := b.save(ctx, t, table)
		if err != nil {
			return nil, nil, err
		}
		p := parseSave(out)
		ex[table], hk[table] = map[string]bool{}, map[hook]int{}
		for name, rules := range p.chains {
			if isOurs(name) {
				ex[table][name] = true
				continue
			}
			for _, r := range rules {
				if target, ok := strings.CutPrefix(r, "-j "); ok && isOurs(target) {
					hk[table][hook{name, target}]++
				}
			}
		}
	}
	return ex, hk, nil
}

// Verify implements netfilter.Backend: every chain of ours is there with
// as many rules as applied, and every hook jumps to it once.
func (b *Backend) Verify(ctx context.Context) error {
	if b.applied == nil {
		return errors.New("xtables: nothing applied")
	}
	var problems []string
	for t := tool(0); t < numTools; t++ {
		for _, table := range tables[t] {
			w := b.applied[t][table]
			out, err := b.save(ctx, t, table)
			if err != nil {
				return err
			}
			p := parseSave(out)
			for _, n := range sortedKeys(w.chains) {
				got, ok := p.chains[n]
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("%s %s: chain %s missing", t, table, n))
				case len(got) != len(w.chains[n].rules):
					problems = append(problems, fmt.Sprintf("%s %s: chain %s has %d rules, want %d", t, table, n, len(got), len(w.chains[n].rules)))
				}
			}
			for _, h := range w.hooks {
				rules := p.chains[h.builtin]
				if len(rules) == 0 || rules[0] != "-j "+h.chain {
					problems = append(problems, fmt.Sprintf("%s %s: %s does not jump to %s first", t, table, h.builtin, h.chain))
				}
			}
			for n := range p.chains {
				if isOurs(n) && w.chains[n] == nil {
					problems = append(problems, fmt.Sprintf("%s %s: unexpected chain %s", t, table, n))
				}
			}
		}
	}
	if len(problems) > 0 {
		b.applied, b.ports = nil, nil
		return fmt.Errorf("xtables: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Remove implements netfilter.Backend: every hook and chain of ours goes.
func (b *Backend) Remove(ctx context.Context) error {
	b.applied, b.ports, b.failed = nil, nil, nil
	for t := tool(0); t < numTools; t++ {
		if _, err := exec.LookPath(b.program(t, "restore")); err != nil {
			continue // nothing of ours can be there
		}
		ex, hk, err := b.readOurs(ctx, t)
		if err != nil {
			return err
		}
		var in strings.Builder
		for _, table := range tables[t] {
			if len(ex[table]) == 0 && len(hk[table]) == 0 {
				continue
			}
			fmt.Fprintf(&in, "*%s\n", table)
			for h, n := range hk[table] {
				for i := 0; i < n; i++ {
					fmt.Fprintf(&in, "-D %s -j %s\n", h.builtin, h.chain)
				}
			}
			for _, n := range sortedKeys(ex[table]) {
				fmt.Fprintf(&in, "-F %s\n", n)
			}
			for _, n := range sortedKeys(ex[table]) {
				fmt.Fprintf(&in, "-X %s\n", n)
			}
			if t != toolEB {
				in.WriteString("COMMIT\n")
			}
		}
		if in.Len() == 0 {
			continue
		}
		if err := b.restore(ctx, t, in.String()); err != nil {
			return fmt.Errorf("xtables remove: %w", err)
		}
	}
	return nil
}
