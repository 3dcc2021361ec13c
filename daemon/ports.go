package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/internal/uuid"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/store"
)

// portState is one port of an active network.
type portState struct {
	def *network.Port
}

// savePortLocked records a port under STATE/ports as its XML. Whether
// netwarden made its interface need not be stored: a TAP it made carries
// its mark, which DeletePort checks.
func (m *Networks) savePortLocked(p *portState) error {
	data, err := p.def.FormatXML()
	if err != nil {
		return fmt.Errorf("port %s: %w", p.def.UUID, err)
	}
	if err := m.ports.Put(p.def.UUID, data); err != nil {
		return fmt.Errorf("port %s: %w", p.def.UUID, err)
	}
	return nil
}

// portInfo returns the API's view of a port.
func portInfo(s *netState, p *portState) (dbusapi.Port, error) {
	data, err := p.def.FormatXML()
	if err != nil {
		return dbusapi.Port{}, fmt.Errorf("port %s: %w", p.def.UUID, err)
	}
	info := dbusapi.Port{UUID: p.def.UUID, Network: s.name(), NetworkUUID: s.uuid(), MAC: p.def.MAC, XML: string(data)}
	if p.def.Plug != nil {
		info.Dev = p.def.Plug.Dev
	}
	if p.def.FilterRef != nil {
		info.FilterName = p.def.FilterRef.Filter
	}
	return info, nil
}

// Ports returns the ports of a network, sorted by interface name.
func (m *Networks) Ports(name string) ([]dbusapi.Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return nil, err
	}
	out := make([]dbusapi.Port, 0, len(s.ports))
	for _, id := range sortedKeys(s.ports) {
		info, err := portInfo(s, s.ports[id])
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// LookupPort returns the port with the given UUID on a network.
func (m *Networks) LookupPort(name, id string) (dbusapi.Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, p, err := m.portLocked(name, id)
	if err != nil {
		return dbusapi.Port{}, err
	}
	return portInfo(s, p)
}

func (m *Networks) portLocked(name, id string) (*netState, *portState, error) {
	s, err := m.getLocked(name)
	if err != nil {
		return nil, nil, err
	}
	want, err := canonicalUUID(id)
	if err != nil {
		return nil, nil, err
	}
	p, ok := s.ports[want]
	if !ok {
		return nil, nil, dbusapi.Mark(fmt.Errorf("network %s has no port %s", quoteName(name), id), dbusapi.ErrNotFound)
	}
	return s, p, nil
}

// CreatePort creates a port on an active network: its interface is
// created (a persistent TAP, named by <plug dev> or the first free
// vnetN) or adopted (an existing interface named by <plug dev>), plugged
// into the network's bridge with port isolation as asked, and its
// <filterref>, if any, bound and enforced, all before it returns. A
// failure undoes every step.
func (m *Networks) CreatePort(ctx context.Context, name string, xml []byte) (info dbusapi.Port, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return dbusapi.Port{}, err
	}
	if s.live == nil {
		return dbusapi.Port{}, errState(name, "not active")
	}
	def, err := network.ParsePort(xml)
	if err != nil {
		return dbusapi.Port{}, dbusapi.Mark(err, dbusapi.ErrInvalidArgument)
	}
	if err := m.checkNewPortLocked(s, def); err != nil {
		return dbusapi.Port{}, err
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	cleanupCtx := context.WithoutCancel(ctx)
	p := &portState{def: def}
	bridge := s.live.Bridge.Name
	made := false
	if def.Plug.Dev == "" || !linkExists(def.Plug.Dev) {
		dev, err := m.createTapLocked(ctx, def)
		if err != nil {
			return dbusapi.Port{}, fmt.Errorf("network %s: port %s: %w", quoteName(name), def.UUID, err)
		}
		made = true
		undo = append(undo, func() {
			if err := m.links.DeleteTap(cleanupCtx, dev); err != nil {
				m.log.Error("rollback: cannot delete TAP", "port", def.UUID, "dev", dev, "error", err)
			}
		})
	}
	dev := def.Plug.Dev
	isolated := def.Isolated == network.Yes || s.live.PortIsolated == network.Yes
	if err := m.links.PlugPort(ctx, bridge, dev, isolated); err != nil {
		return dbusapi.Port{}, fmt.Errorf("network %s: port %s: %w", quoteName(name), def.UUID, err)
	}
	if !made {
		undo = append(undo, func() {
			if err := m.links.UnplugPort(cleanupCtx, bridge, dev); err != nil {
				m.log.Error("rollback: cannot unplug port", "port", def.UUID, "dev", dev, "error", err)
			}
		})
	}
	if def.FilterRef != nil {
		if err := m.bindLocked(ctx, def); err != nil {
			return dbusapi.Port{}, err
		}
		undo = append(undo, func() {
			if err := m.engine.DeleteBinding(cleanupCtx, dev); err != nil {
				m.log.Error("rollback: cannot delete binding", "port", def.UUID, "dev", dev, "error", err)
			}
		})
	}
	if err := m.savePortLocked(p); err != nil {
		return dbusapi.Port{}, err
	}
	s.ports[def.UUID] = p
	m.log.Info("port created", "network", name, "port", def.UUID, "dev", dev, "mac", def.MAC,
		"made", made, "filter", filterName(def))
	return portInfo(s, p)
}

// createTapLocked creates the TAP of a port: named by <plug dev>, or the
// first free vnetN (asking again if another process takes the name
// first), and records the name in the port.
func (m *Networks) createTapLocked(ctx context.Context, def *network.Port) (string, error) {
	mac, err := net.ParseMAC(def.MAC)
	if err != nil {
		return "", err
	}
	if def.Plug.Dev != "" {
		return def.Plug.Dev, m.links.CreateTap(ctx, def.Plug.Dev, mac)
	}
	for try := 0; ; try++ {
		name, err := m.links.NextTapName(ctx)
		if err != nil {
			return "", err
		}
		err = m.links.CreateTap(ctx, name, mac)
		if err == nil {
			def.Plug.Dev = name
			return name, nil
		}
		if !errors.Is(err, network.ErrLinkExists) || try == 10 {
			return "", err
		}
	}
}

// linkExists reports whether the daemon's namespace has a link called
// name.
func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func filterName(p *network.Port) string {
	if p.FilterRef == nil {
		return ""
	}
	return p.FilterRef.Filter
}

// checkNewPortLocked completes and checks a port about to be created on
// s: a UUID (given or new, unused), a MAC unused on the network, a plug
// into the network's own bridge.
func (m *Networks) checkNewPortLocked(s *netState, def *network.Port) error {
	bad := func(format string, args ...any) error {
		return dbusapi.Mark(fmt.Errorf("network %s: port: "+format, append([]any{quoteName(s.name())}, args...)...), dbusapi.ErrInvalidArgument)
	}
	if def.UUID == "" {
		id, err := uuid.New()
		if err != nil {
			return err
		}
		def.UUID = id
	}
	for _, o := range m.nets {
		if _, ok := o.ports[def.UUID]; ok {
			return dbusapi.Mark(fmt.Errorf("port <uuid>%s</uuid> exists already on network %s", def.UUID, quoteName(o.name())), dbusapi.ErrExists)
		}
	}
	for _, id := range sortedKeys(s.ports) {
		if o := s.ports[id]; o.def.MAC == def.MAC {
			return dbusapi.Mark(fmt.Errorf("network %s: port <mac address=%q> is already used by port %s (%s)",
				quoteName(s.name()), def.MAC, id, o.def.Plug.Dev), dbusapi.ErrExists)
		}
	}
	want := network.PlugNetwork
	if s.live.ForwardMode() == network.ForwardBridge {
		want = network.PlugBridge
	}
	switch {
	case def.Plug == nil:
		def.Plug = &network.PortPlug{Type: want, Bridge: s.live.Bridge.Name}
	case def.Plug.Type != network.PlugNetwork && def.Plug.Type != network.PlugBridge:
		return dbusapi.Mark(fmt.Errorf("network %s: port <plug type=%q> is not supported (network and bridge are)",
			quoteName(s.name()), def.Plug.Type), dbusapi.ErrNotSupported)
	case def.Plug.Bridge == "":
		def.Plug.Bridge = s.live.Bridge.Name
	case def.Plug.Bridge != s.live.Bridge.Name:
		return bad("<plug bridge=%q> is not the network's bridge %s", def.Plug.Bridge, s.live.Bridge.Name)
	}
	if dev := def.Plug.Dev; dev != "" {
		if dev == s.live.Bridge.Name {
			return bad("<plug dev=%q> is the network's bridge", dev)
		}
		for _, o := range m.nets {
			for id, op := range o.ports {
				if op.def.Plug != nil && op.def.Plug.Dev == dev {
					return dbusapi.Mark(fmt.Errorf("network %s: port <plug dev=%q> is already port %s of network %s",
						quoteName(s.name()), dev, id, quoteName(o.name())), dbusapi.ErrExists)
				}
			}
		}
	}
	return nil
}

// bindLocked creates the filter binding of a port through the engine.
func (m *Networks) bindLocked(ctx context.Context, def *network.Port) error {
	b := &policy.Binding{OwnerName: def.OwnerName, OwnerUUID: def.OwnerUUID, PortDev: def.Plug.Dev,
		MAC: def.MAC, Filter: def.FilterRef.Filter}
	for _, prm := range def.FilterRef.Parameters {
		b.Params = append(b.Params, policy.Param{Name: prm.Name, Value: prm.Value})
	}
	data, err := b.FormatXML()
	if err != nil {
		return fmt.Errorf("port %s: filter binding: %w", def.UUID, err)
	}
	if _, err := m.engine.CreateBinding(ctx, data); err != nil {
		return fmt.Errorf("port %s: filter binding: %w", def.UUID, err)
	}
	return nil
}

// DeletePort removes a port: its binding, its DHCP lease, and its
// interface (a TAP netwarden made is deleted; an adopted interface is
// taken out of the bridge).
func (m *Networks) DeletePort(ctx context.Context, name, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, p, err := m.portLocked(name, id)
	if err != nil {
		return err
	}
	return m.deletePortLocked(ctx, s, p.def.UUID)
}

func (m *Networks) deletePortLocked(ctx context.Context, s *netState, id string) error {
	p := s.ports[id]
	dev := p.def.Plug.Dev
	var errs []error
	if p.def.FilterRef != nil {
		if err := m.engine.DeleteBinding(ctx, dev); err != nil && !errors.Is(err, ErrNoBinding) {
			errs = append(errs, err)
		}
	}
	m.releaseLeasesLocked(ctx, s, p)
	// A TAP netwarden made is deleted; anything else was adopted and is
	// only taken out of the bridge.
	if err := m.links.DeleteTap(ctx, dev); errors.Is(err, network.ErrNotOwned) {
		if s.live != nil {
			if err := m.links.UnplugPort(ctx, s.live.Bridge.Name, dev); err != nil {
				errs = append(errs, err)
			}
		}
	} else if err != nil {
		errs = append(errs, err)
	}
	if err := m.ports.Delete(id); err != nil && !store.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("port %s: %w", id, err))
	}
	delete(s.ports, id)
	m.log.Info("port deleted", "network", s.name(), "port", id, "dev", dev)
	return errors.Join(errs...)
}

// releaseLeasesLocked releases the IPv4 DHCP leases of a port's MAC, so
// its address is free at once for the next guest.
func (m *Networks) releaseLeasesLocked(ctx context.Context, s *netState, p *portState) {
	if s.live == nil || s.dnsmasq == nil {
		return
	}
	_, paths := m.dnsmasqPaths(s.live)
	leases, err := network.ReadLeases(paths.LeaseFile, time.Now())
	if err != nil {
		m.log.Warn("cannot read leases", "network", s.name(), "error", err)
		return
	}
	for _, l := range leases {
		if !strings.EqualFold(l.MAC, p.def.MAC) {
			continue
		}
		var err error
		if l.Type == network.LeaseIPv6 {
			err = m.links.ReleaseLease6(ctx, s.live.Bridge.Name, l.IPAddr, l.IAID, l.ClientID, l.ServerDUID)
		} else {
			err = m.links.ReleaseLease(ctx, s.live.Bridge.Name, l.IPAddr, l.MAC, l.ClientID)
		}
		if err != nil {
			m.log.Warn("cannot release lease", "network", s.name(), "address", l.IPAddr, "error", err)
		}
	}
}

// restorePortsLocked puts the stored ports back into their active
// networks after a restart; a port whose network is gone is forgotten.
func (m *Networks) restorePortsLocked(ctx context.Context) {
	byBridge := map[string]*netState{}
	for _, s := range m.nets {
		if s.live != nil {
			byBridge[s.live.Bridge.Name] = s
		}
	}
	var stale []string
	_, problems := m.ports.Load(func(id string, data []byte) error {
		def, err := network.ParsePort(data)
		if err != nil {
			return err
		}
		if def.UUID != id || def.Plug == nil || def.Plug.Dev == "" {
			return errors.New("not a port record of this daemon")
		}
		s, ok := byBridge[def.Plug.Bridge]
		if !ok {
			stale = append(stale, id)
			return nil
		}
		s.ports[id] = &portState{def: def}
		return nil
	})
	for _, p := range problems {
		m.log.Warn("skipping stored port", "file", p.Path, "error", p.Err)
	}
	for _, id := range stale {
		m.log.Info("forgetting port of a network that is not running", "port", id)
		if err := m.ports.Delete(id); err != nil && !store.IsNotFound(err) {
			m.log.Warn("cannot remove port record", "port", id, "error", err)
		}
	}
}

// networkLeases reads a network's lease database for the API.
func networkLeases(n *network.Network, path, mac string) ([]dbusapi.Lease, error) {
	leases, err := network.ReadLeases(path, time.Now())
	if err != nil {
		return nil, fmt.Errorf("network %s: leases: %w", quoteName(n.Name), err)
	}
	out := make([]dbusapi.Lease, 0, len(leases))
	for _, l := range leases {
		if mac != "" && !strings.EqualFold(l.MAC, mac) {
			continue
		}
		dl := dbusapi.Lease{Iface: n.Bridge.Name, MAC: l.MAC, IAID: l.IAID, IPAddr: l.IPAddr.String(),
			Hostname: l.Hostname, ClientID: l.ClientID}
		if !l.Expiry.IsZero() {
			dl.ExpiryTime = l.Expiry.Unix()
		}
		if l.Type == network.LeaseIPv6 {
			dl.Type = 1
		}
		dl.Prefix = uint32(max(n.LeasePrefix(l.IPAddr), 0))
		out = append(out, dl)
	}
	return out, nil
}
