package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/netfilter/nftables"
	"github.com/netwarden/netwarden/netfilter/xtables"
)

// firewalldAsker is what the choice of a backend asks firewalld;
// *firewalld.Client is one.
type firewalldAsker interface {
	Running(ctx context.Context) (bool, error)
	Backend(ctx context.Context) (string, error)
}

// askFirewalldTimeout bounds the questions to firewalld at start-up.
const askFirewalldTimeout = 3 * time.Second

// chooseBackend returns the kernel backend the configuration asks for,
// without touching the kernel. For BackendAuto it looks at the kernel's
// legacy iptables tables and asks fw (which may be nil) whether firewalld
// runs and with which backend; see decideAuto.
func chooseBackend(ctx context.Context, cfg Config, fw firewalldAsker, log *slog.Logger) (netfilter.Backend, error) {
	if cfg.Firewall != nil {
		return cfg.Firewall, nil
	}
	// The chosen backend removes what the other left behind after its
	// first Apply (a switch of backends leaves no stale rules).
	nft := nftables.New(nftables.Config{Log: log})
	switch cfg.Backend {
	case BackendIPTables, BackendXTables:
		return xtables.Switch(xtables.New(xtables.Config{Log: log}), nft, log), nil
	case BackendAuto, "":
		in := autoInputs{LegacyTables: xtables.HostUsesXtables(), LegacyPrograms: xtables.LegacyAvailable()}
		in.FirewalldRunning, in.FirewalldBackend, in.FirewalldErr = askFirewalld(ctx, fw)
		d := decideAuto(in)
		if d.XTables {
			log.Info("firewall backend auto: xtables", "reason", d.Reason, "iptables", string(d.Flavour))
			return xtables.Switch(xtables.New(xtables.Config{Log: log, Flavour: d.Flavour}), nft, log), nil
		}
		log.Info("firewall backend auto: nftables", "reason", d.Reason)
		fallthrough
	case BackendNFTables:
		return xtables.Switch(nft, xtables.New(xtables.Config{Log: log}), log), nil
	}
	return nil, fmt.Errorf("firewall backend %s: unknown", cfg.Backend)
}

// askFirewalld reports whether firewalld runs and, if so, its
// FirewallBackend ("nftables", "iptables") or why that is unknown.
func askFirewalld(ctx context.Context, fw firewalldAsker) (running bool, backend string, err error) {
	if fw == nil {
		return false, "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, askFirewalldTimeout)
	defer cancel()
	running, err = fw.Running(ctx)
	if err != nil || !running {
		return false, "", err
	}
	backend, err = fw.Backend(ctx)
	return true, backend, err
}

// autoInputs are what --backend auto decides by.
type autoInputs struct {
	// LegacyTables is why the kernel has legacy iptables tables
	// (xtables.HostUsesXtables), or "".
	LegacyTables string
	// LegacyPrograms: iptables-legacy-restore and ip6tables-legacy-restore
	// exist.
	LegacyPrograms bool
	// FirewalldRunning: firewalld owns its bus name.
	FirewalldRunning bool
	// FirewalldBackend is firewalld's FirewallBackend property when it
	// runs and could be read.
	FirewalldBackend string
	// FirewalldErr is why firewalld could not be asked, if it could not.
	FirewalldErr error
}

// autoDecision is the backend --backend auto picks, and why.
type autoDecision struct {
	// XTables: the xtables backend, with Flavour's programs; nftables
	// otherwise.
	XTables bool
	Flavour xtables.Flavour
	// Reason is the explanation for the log.
	Reason string
}

// decideAuto picks the backend for --backend auto: xtables when the host
// is already driven through iptables — the kernel has legacy iptables
// tables (then with the legacy programs, where they exist), or firewalld
// runs with its iptables backend (whose reload flushes every iptables
// table; then with the system's iptables, the programs firewalld uses) —
// and nftables otherwise.
func decideAuto(in autoInputs) autoDecision {
	fwIPTables := in.FirewalldRunning && in.FirewalldErr == nil && in.FirewalldBackend == "iptables"
	if in.LegacyTables != "" {
		d := autoDecision{XTables: true, Reason: in.LegacyTables}
		if in.LegacyPrograms {
			d.Flavour = xtables.FlavourLegacy
		} else {
			d.Reason += "; the legacy iptables programs are missing: the system's iptables"
		}
		if fwIPTables {
			d.Reason += "; firewalld runs with FirewallBackend=iptables"
		}
		return d
	}
	if fwIPTables {
		return autoDecision{XTables: true, Reason: "firewalld runs with FirewallBackend=iptables (its reloads flush every iptables table)"}
	}
	switch {
	case in.FirewalldErr != nil:
		return autoDecision{Reason: fmt.Sprintf("the host has no legacy iptables tables; firewalld's backend unknown (%v)", in.FirewalldErr)}
	case in.FirewalldRunning:
		return autoDecision{Reason: fmt.Sprintf("the host has no legacy iptables tables; firewalld runs with FirewallBackend=%s", in.FirewalldBackend)}
	}
	return autoDecision{Reason: "the host has no legacy iptables tables and firewalld does not run"}
}
