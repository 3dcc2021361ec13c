package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/firewalld"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/zones"
)

// firewalld zone placement of the networks' bridges.
//
// Every nftables table must accept a packet for it to pass, so with
// firewalld running a bridge outside an accepting zone loses DHCP, DNS
// and forwarding however netwarden's own tables are written. As libvirt
// does, a network's bridge goes into the zone its <bridge zone='…'/>
// names, else libvirt-routed for a routed network where firewalld has
// policies, else libvirt; open and bridge networks only when a zone is
// named. firewalld forgets these run-time bindings when it reloads or
// restarts: the reconciler puts them back (Reconcile).

// fwView is what zone placement needs to know of firewalld, read once
// per placement or reconcile: its zones and policies.
type fwView struct {
	zones, policies map[string]bool
}

// view reads firewalld's run-time zones and policies.
func (m *Networks) view(ctx context.Context) (fwView, error) {
	v := fwView{zones: map[string]bool{}, policies: map[string]bool{}}
	zs, err := m.fw.Zones(ctx)
	if err != nil {
		return v, fmt.Errorf("firewalld: %w", err)
	}
	for _, z := range zs {
		v.zones[z] = true
	}
	ps, err := m.fw.Policies(ctx)
	if err != nil && !errors.Is(err, firewalld.ErrPoliciesUnsupported) {
		return v, fmt.Errorf("firewalld: %w", err)
	}
	for _, p := range ps {
		v.policies[p] = true
	}
	return v, nil
}

// zoneFor returns the zone the bridge of n belongs in, "" for none.
func zoneFor(v fwView, n *network.Network) (string, error) {
	if z := n.Bridge.Zone; z != "" {
		if !v.zones[z] {
			return "", dbusapi.Mark(fmt.Errorf("network %s: <bridge zone=%q>: firewalld has no such zone", quoteName(n.Name), z),
				dbusapi.ErrInvalidArgument)
		}
		return z, nil
	}
	switch n.ForwardMode() {
	case network.ForwardOpen, network.ForwardBridge:
		return "", nil
	case network.ForwardRoute:
		if v.policies[zones.LibvirtRoutedOut] && v.zones[zones.LibvirtRouted] {
			return zones.LibvirtRouted, nil
		}
	}
	if !v.zones[zones.Libvirt] {
		return "", fmt.Errorf("network %s: firewalld has no %q zone (netwardend creates it when firewalld runs at its start; "+
			"install it with `make install` or restart netwardend)", quoteName(n.Name), zones.Libvirt)
	}
	return zones.Libvirt, nil
}

// firewalldRunning reports whether firewalld is there to place bridges.
func (m *Networks) firewalldRunning(ctx context.Context) bool {
	if m.fw == nil {
		return false
	}
	ok, err := m.fw.Running(ctx)
	return err == nil && ok
}

// placeLocked puts the bridge of the active network s into its zone when
// firewalld runs, and records the zone.
func (m *Networks) placeLocked(ctx context.Context, s *netState) error {
	if s.live == nil || !m.firewalldRunning(ctx) {
		return nil
	}
	v, err := m.view(ctx)
	if err != nil {
		return fmt.Errorf("network %s: %w", quoteName(s.live.Name), err)
	}
	return m.placeIn(ctx, v, s)
}

// placeIn puts the bridge of s into its zone as v says.
func (m *Networks) placeIn(ctx context.Context, v fwView, s *netState) error {
	n := s.live
	zone, err := zoneFor(v, n)
	if err != nil || zone == "" {
		return err
	}
	if err := m.fw.ChangeZoneOfInterface(ctx, zone, n.Bridge.Name); err != nil {
		return fmt.Errorf("network %s: put bridge %s in firewalld zone %s: %w", quoteName(n.Name), n.Bridge.Name, zone, err)
	}
	s.zone = zone
	return nil
}

// unplaceLocked takes the bridge of s out of its zone.
func (m *Networks) unplaceLocked(ctx context.Context, s *netState) {
	if s.zone == "" || s.live == nil || !m.firewalldRunning(ctx) {
		s.zone = ""
		return
	}
	if err := m.fw.RemoveInterface(ctx, s.zone, s.live.Bridge.Name); err != nil {
		m.log.Warn("cannot take bridge out of its firewalld zone", "network", s.name(), "zone", s.zone, "error", err)
	}
	s.zone = ""
}

// Reconcile puts the bridges of the active networks back into their
// firewalld zones (after firewalld reloaded or restarted, which forgets
// them). firewalld is asked once for its zones and policies, then the
// bridges are placed with concurrent calls. Errors are logged per
// network and the first one returned.
func (m *Networks) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.firewalldRunning(ctx) {
		return nil
	}
	v, err := m.view(ctx)
	if err != nil {
		return err
	}
	names := m.sortedNames()
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		s := m.nets[name]
		if s.live == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.placeIn(ctx, v, s)
		}()
	}
	wg.Wait()
	var first error
	for i, err := range errs {
		if err != nil {
			m.log.Error("cannot put bridge back into its firewalld zone", "network", names[i], "error", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// firewalldStarted prepares a firewalld that has just appeared (at
// daemon start or when it starts later): netwarden's zones and policies
// are created if missing, and old versions are reported.
func firewalldStarted(ctx context.Context, m *Networks) {
	if m.fw == nil {
		return
	}
	version, err := m.fw.Version(ctx)
	if err != nil {
		m.log.Warn("firewalld: cannot read its version", "error", err)
		return
	}
	backend, _ := m.fw.Backend(ctx)
	m.log.Info("firewalld is running", "version", version, "backend", backend)
	if backend == "nftables" && !firewalld.SupportsZonesOnNftables(version) {
		m.log.Error("firewalld is too old for the libvirt zone with its nftables backend: networks' traffic may be dropped; "+
			"upgrade firewalld to 0.7.0 or later, or set FirewallBackend=iptables in /etc/firewalld/firewalld.conf", "version", version)
	}
	if !firewalld.SupportsPolicies(version) {
		m.log.Warn("firewalld has no policies (before 0.9.0): routed networks use the libvirt zone", "version", version)
	}
	if _, err := zones.Ensure(ctx, m.fw, m.log); err != nil {
		m.log.Error("firewalld: cannot create netwarden's zones and policies", "error", err)
	}
}
