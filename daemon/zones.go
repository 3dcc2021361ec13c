package daemon

import (
	"context"
	"errors"
	"fmt"

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

// zoneFor returns the zone the bridge of n belongs in, "" for none.
func (m *Networks) zoneFor(ctx context.Context, n *network.Network) (string, error) {
	mode := n.ForwardMode()
	if z := n.Bridge.Zone; z != "" {
		ok, err := m.fw.ZoneExists(ctx, z)
		if err != nil {
			return "", fmt.Errorf("network %s: firewalld: %w", quoteName(n.Name), err)
		}
		if !ok {
			return "", dbusapi.Mark(fmt.Errorf("network %s: <bridge zone=%q>: firewalld has no such zone", quoteName(n.Name), z),
				dbusapi.ErrInvalidArgument)
		}
		return z, nil
	}
	switch mode {
	case network.ForwardOpen, network.ForwardBridge:
		return "", nil
	case network.ForwardRoute:
		ok, err := m.fw.PolicyExists(ctx, zones.LibvirtRoutedOut)
		if err != nil && !errors.Is(err, firewalld.ErrPoliciesUnsupported) {
			return "", fmt.Errorf("network %s: firewalld: %w", quoteName(n.Name), err)
		}
		if ok {
			if zok, err := m.fw.ZoneExists(ctx, zones.LibvirtRouted); err == nil && zok {
				return zones.LibvirtRouted, nil
			}
		}
	}
	ok, err := m.fw.ZoneExists(ctx, zones.Libvirt)
	if err != nil {
		return "", fmt.Errorf("network %s: firewalld: %w", quoteName(n.Name), err)
	}
	if !ok {
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
	n := s.live
	if n == nil || !m.firewalldRunning(ctx) {
		return nil
	}
	zone, err := m.zoneFor(ctx, n)
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
// them). Errors are logged per network and the first one returned.
func (m *Networks) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.firewalldRunning(ctx) {
		return nil
	}
	var first error
	for _, name := range m.sortedNames() {
		s := m.nets[name]
		if s.live == nil {
			continue
		}
		if err := m.placeLocked(ctx, s); err != nil {
			m.log.Error("cannot put bridge back into its firewalld zone", "network", name, "error", err)
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
