package xtables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/netwarden/netwarden/netfilter"
)

// HostUsesXtables says whether this host is already driven through
// legacy iptables: the kernel has legacy ip_tables or ip6_tables tables
// (/proc/net/ip_tables_names is not empty), which only iptables-legacy
// or an old firewall creates. It returns the reason for the log, or "".
// The daemon's --backend auto picks this backend then, with the legacy
// programs for iptables and ip6tables.
func HostUsesXtables() string {
	for _, f := range []string{"/proc/net/ip_tables_names", "/proc/net/ip6_tables_names"} {
		data, err := os.ReadFile(f)
		if err != nil || strings.TrimSpace(string(data)) == "" {
			continue
		}
		return fmt.Sprintf("the kernel has legacy iptables tables (%s: %s)", f, strings.Join(strings.Fields(string(data)), ", "))
	}
	return ""
}

// LegacyAvailable reports whether the legacy iptables programs exist.
func LegacyAvailable() bool {
	_, err1 := exec.LookPath("iptables-legacy-restore")
	_, err2 := exec.LookPath("ip6tables-legacy-restore")
	return err1 == nil && err2 == nil
}

// Switch returns next, which after its first successful Apply (a
// PortErrors counts: the kernel state is in place) removes what the
// previous backend left in the kernel, so that a host switched from one
// backend to the other is never unfiltered in between and keeps no
// stale rules. A failing Remove is logged and tried again after the
// next Apply. A Watcher stays a Watcher.
func Switch(next, previous netfilter.Backend, log *slog.Logger) netfilter.Backend {
	s := &switcher{Backend: next, previous: previous, log: log}
	if w, ok := next.(netfilter.Watcher); ok {
		return &switchWatcher{switcher: s, w: w}
	}
	return s
}

type switcher struct {
	netfilter.Backend
	previous netfilter.Backend
	log      *slog.Logger
}

func (s *switcher) Apply(ctx context.Context, desired *netfilter.State) error {
	err := s.Backend.Apply(ctx, desired)
	var pe *netfilter.PortErrors
	if s.previous != nil && (err == nil || errors.As(err, &pe)) {
		if rerr := s.previous.Remove(ctx); rerr != nil {
			if s.log != nil {
				s.log.Warn("removing the other firewall backend's rules", "backend", s.previous.Name(), "err", rerr)
			}
		} else {
			if s.log != nil {
				s.log.Info("removed whatever the other firewall backend left", "backend", s.previous.Name())
			}
			s.previous = nil
		}
	}
	return err
}

type switchWatcher struct {
	*switcher
	w netfilter.Watcher
}

func (s *switchWatcher) Watch(ctx context.Context) (<-chan struct{}, error) { return s.w.Watch(ctx) }
