package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/firewalld"
	"github.com/netwarden/netwarden/internal/uuid"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/store"
)

// Networks is the catalogue of virtual networks and the life of the
// active ones: for each, a bridge, a supervised dnsmasq, its firewall
// (through the Engine, the one path to the kernel) and its ports.
//
// Files:
//
//	CONFIG/networks/NAME.xml                 persistent definitions
//	CONFIG/networks/autostart/NAME.autostart  autostart markers
//	STATE/networks/NAME.xml                  live definitions of active networks
//	STATE/dnsmasq/UUID.{conf,hosts,addnhosts,pid,leases}
//
// Lock order: Networks.mu before Engine.mu, never the other way.
type Networks struct {
	log     *slog.Logger
	links   *network.Links
	defs    *store.Dir
	auto    *store.Dir
	live    *store.Dir
	ports   *store.Dir
	dnsDir  string
	dnsmasq string // the dnsmasq binary, "" for PATH
	// fw is the firewalld client (nil without a bus): bridges go into
	// firewalld zones while firewalld runs.
	fw *firewalld.Client

	mu     sync.Mutex
	engine *Engine
	nets   map[string]*netState
}

// netState is one network known to the daemon.
type netState struct {
	// def is the persistent definition; nil for a transient network.
	def *network.Network
	// live is the running definition; nil when inactive.
	live      *network.Network
	autostart bool
	dnsmasq   *network.Dnsmasq
	// zone is the firewalld zone the bridge was put in, "" for none.
	zone string
	// ports are the network's ports, by UUID.
	ports map[string]*portState
}

func (s *netState) name() string {
	if s.live != nil {
		return s.live.Name
	}
	return s.def.Name
}

func (s *netState) uuid() string {
	if s.live != nil {
		return s.live.UUID
	}
	return s.def.UUID
}

// NetworksConfig says where Networks keeps its files and what it runs.
type NetworksConfig struct {
	// ConfigDir and StateDir are the daemon's directories.
	ConfigDir, StateDir string
	// Dnsmasq is the dnsmasq program; "" looks it up in PATH.
	Dnsmasq string
	// Links manages the links of the daemon's network namespace.
	Links *network.Links
	// Logger receives the networks' log.
	Logger *slog.Logger
	// Firewalld is the firewalld client, nil for none.
	Firewalld *firewalld.Client
}

// OpenNetworks loads the stored definitions, autostart markers and the
// live definitions a previous daemon left for its active networks. It
// touches no kernel state: Attach does, once the engine enforces the
// active networks' firewalls (ActiveRules).
func OpenNetworks(cfg NetworksConfig) (*Networks, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Networks{log: log, links: cfg.Links, dnsmasq: cfg.Dnsmasq, fw: cfg.Firewalld, nets: map[string]*netState{},
		dnsDir: filepath.Join(cfg.StateDir, "dnsmasq")}
	var err error
	if m.defs, err = store.OpenDir(filepath.Join(cfg.ConfigDir, "networks"), ".xml"); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	if m.auto, err = store.OpenDir(filepath.Join(cfg.ConfigDir, "networks", "autostart"), ".autostart"); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	if m.live, err = store.OpenDir(filepath.Join(cfg.StateDir, "networks"), ".xml"); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	if m.ports, err = store.OpenDir(filepath.Join(cfg.StateDir, "ports"), ".xml"); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	// dnsmasq drops its privileges and must still read its hosts files
	// when told to re-read them.
	if err := os.MkdirAll(m.dnsDir, 0o755); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	if err := os.Chmod(m.dnsDir, 0o755); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}

	_, problems := m.defs.Load(func(name string, data []byte) error {
		n, err := network.Parse(data)
		if err != nil {
			return err
		}
		if n.Name != name {
			return fmt.Errorf("file is named %q but defines network %q", name, n.Name)
		}
		if n.UUID == "" {
			return errors.New("definition has no UUID")
		}
		m.nets[name] = &netState{def: n, ports: map[string]*portState{}}
		return nil
	})
	for _, p := range problems {
		log.Warn("skipping stored network", "file", p.Path, "error", p.Err)
	}
	_, problems = m.auto.Load(func(name string, _ []byte) error {
		s, ok := m.nets[name]
		if !ok {
			return errors.New("no such network is defined")
		}
		s.autostart = true
		return nil
	})
	for _, p := range problems {
		log.Warn("ignoring autostart marker", "file", p.Path, "error", p.Err)
	}
	_, problems = m.live.Load(func(name string, data []byte) error {
		n, err := network.Parse(data)
		if err != nil {
			return err
		}
		if n.Name != name {
			return fmt.Errorf("file is named %q but holds network %q", name, n.Name)
		}
		s, ok := m.nets[name]
		if !ok {
			s = &netState{ports: map[string]*portState{}}
			m.nets[name] = s
		}
		s.live = n
		return nil
	})
	for _, p := range problems {
		log.Warn("skipping live state of a network", "file", p.Path, "error", p.Err)
	}
	// A definition stored without a bridge name or MAC (written by hand)
	// gets them now, as one defined through the API does.
	for _, name := range m.sortedNames() {
		d := m.nets[name].def
		if d == nil || !d.ForwardMode().HasBridge() || (d.Bridge.Name != "" && d.MAC != "") {
			continue
		}
		// A running network keeps the bridge it has.
		var running *netState
		if live := m.nets[name].live; live != nil {
			running = &netState{live: live}
		}
		if err := m.assignBridgeLocked(d, running); err != nil {
			log.Warn("stored network has no bridge name or MAC, and none can be chosen", "network", name, "error", err)
			continue
		}
		if err := m.saveDefLocked(d); err != nil {
			log.Warn("cannot store the chosen bridge name and MAC", "network", name, "error", err)
		}
	}
	return m, nil
}

// ActiveRules returns the firewalls of the networks a previous daemon
// left running, for the engine's first Apply.
func (m *Networks) ActiveRules() []*netfilter.NetworkRules {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*netfilter.NetworkRules
	for _, name := range m.sortedNames() {
		s := m.nets[name]
		if s.live == nil {
			continue
		}
		r, err := network.FirewallRules(s.live)
		if err != nil {
			m.log.Warn("network's firewall cannot be rendered", "network", name, "error", err)
			continue
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// Attach starts managing the networks with engine: it adopts the active
// networks a previous daemon left (their bridge must still be there;
// their dnsmasq is restarted under this daemon's supervision), restores
// their ports, and starts the networks marked autostart.
func (m *Networks) Attach(ctx context.Context, engine *Engine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.engine = engine
	for _, name := range m.sortedNames() {
		s := m.nets[name]
		if s.live == nil {
			continue
		}
		if err := m.adoptLocked(ctx, s); err != nil {
			m.log.Warn("cannot adopt running network; marking it inactive", "network", name, "error", err)
			m.forgetLiveLocked(ctx, s)
			continue
		}
		m.log.Info("network adopted", "network", name, "bridge", s.live.Bridge.Name)
	}
	m.restorePortsLocked(ctx)
	for _, name := range m.sortedNames() {
		s := m.nets[name]
		if s.autostart && s.live == nil && s.def != nil {
			if err := m.startLocked(ctx, s, s.def); err != nil {
				m.log.Error("autostart failed", "network", name, "error", err)
			} else {
				m.log.Info("network autostarted", "network", name, "bridge", s.live.Bridge.Name)
			}
		}
	}
}

// adoptLocked takes over a network that was running when the daemon
// started: its bridge must still be there and be its own.
func (m *Networks) adoptLocked(ctx context.Context, s *netState) error {
	n := s.live
	if mode := n.ForwardMode(); mode.HasBridge() {
		owner, err := m.links.BridgeOwner(ctx, n.Bridge.Name)
		if err != nil {
			return err
		}
		if owner != n.Name {
			return fmt.Errorf("bridge %s belongs to network %q", n.Bridge.Name, owner)
		}
	}
	if err := m.placeLocked(ctx, s); err != nil {
		m.log.Error("cannot put an adopted network's bridge into its firewalld zone", "network", n.Name, "error", err)
	}
	return m.startDnsmasqLocked(ctx, s)
}

// forgetLiveLocked drops the live state of a network that is not
// running after all.
func (m *Networks) forgetLiveLocked(ctx context.Context, s *netState) {
	name := s.name()
	if m.engine != nil {
		if err := m.engine.SetNetworkRules(ctx, name, nil); err != nil {
			m.log.Warn("cannot remove the firewall of a network", "network", name, "error", err)
		}
	}
	if err := m.live.Delete(name); err != nil && !store.IsNotFound(err) {
		m.log.Warn("cannot remove the live state of a network", "network", name, "error", err)
	}
	s.live = nil
	if s.def == nil {
		delete(m.nets, name)
	}
}

func (m *Networks) sortedNames() []string {
	names := make([]string, 0, len(m.nets))
	for n := range m.nets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Shutdown stops the dnsmasq children. Bridges, firewalls and ports stay:
// guests keep their network while the daemon is down, and the next
// daemon adopts them.
func (m *Networks) Shutdown(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range m.sortedNames() {
		if d := m.nets[name].dnsmasq; d != nil {
			if err := d.Stop(ctx); err != nil {
				m.log.Warn("stopping dnsmasq", "network", name, "error", err)
			}
			m.nets[name].dnsmasq = nil
		}
	}
}

// info returns the API's view of a network.
func (m *Networks) info(s *netState) dbusapi.Network {
	n := dbusapi.Network{Name: s.name(), UUID: s.uuid(), Active: s.live != nil, Persistent: s.def != nil,
		Autostart: s.autostart}
	switch {
	case s.live != nil:
		n.Bridge = s.live.Bridge.Name
	case s.def != nil:
		n.Bridge = s.def.Bridge.Name
	}
	if s.live != nil && s.dnsmasq != nil && !s.dnsmasq.Running() {
		n.Status = "dnsmasq is not running (restarting)"
	}
	return n
}

// List returns every network, sorted by name.
func (m *Networks) List() []dbusapi.Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]dbusapi.Network, 0, len(m.nets))
	for _, name := range m.sortedNames() {
		out = append(out, m.info(m.nets[name]))
	}
	return out
}

// Lookup returns the network called name.
func (m *Networks) Lookup(name string) (dbusapi.Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return dbusapi.Network{}, err
	}
	return m.info(s), nil
}

// LookupUUID returns the network with the given UUID.
func (m *Networks) LookupUUID(id string) (dbusapi.Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want, err := canonicalUUID(id)
	if err != nil {
		return dbusapi.Network{}, err
	}
	for _, s := range m.nets {
		if s.uuid() == want {
			return m.info(s), nil
		}
	}
	return dbusapi.Network{}, dbusapi.Mark(fmt.Errorf("no network with UUID %s", id), dbusapi.ErrNotFound)
}

func (m *Networks) getLocked(name string) (*netState, error) {
	s, ok := m.nets[name]
	if !ok {
		return nil, dbusapi.Mark(fmt.Errorf("no network named %s", quoteName(name)), dbusapi.ErrNotFound)
	}
	return s, nil
}

// parseNew parses a definition and gives it the UUID of the network of
// the same name, or a new one; a UUID or name clash with another network
// is an error.
func (m *Networks) parseNew(xml []byte) (*network.Network, error) {
	n, err := network.Parse(xml)
	if err != nil {
		return nil, dbusapi.Mark(err, dbusapi.ErrInvalidArgument)
	}
	old, ok := m.nets[n.Name]
	switch {
	case ok && n.UUID == "":
		n.UUID = old.uuid()
	case ok && n.UUID != old.uuid():
		return nil, dbusapi.Mark(fmt.Errorf("network %s exists with UUID %s, not %s", quoteName(n.Name), old.uuid(), n.UUID), dbusapi.ErrExists)
	case ok:
	case n.UUID == "":
		if n.UUID, err = uuid.New(); err != nil {
			return nil, err
		}
	default:
		for _, s := range m.nets {
			if s.uuid() == n.UUID {
				return nil, dbusapi.Mark(fmt.Errorf("UUID %s belongs to network %s", n.UUID, quoteName(s.name())), dbusapi.ErrExists)
			}
		}
	}
	if err := m.assignBridgeLocked(n, old); err != nil {
		return nil, err
	}
	return n, nil
}

// assignBridgeLocked gives a network that has a bridge of its own
// (isolated, nat, route, open) a bridge name and MAC when its definition
// has none, as libvirt does when a network is defined: those of its
// previous definition, or the first virbrN no other network and no link
// uses, and a random 52:54:00 MAC. A bridge name another network's
// definition has is refused.
func (m *Networks) assignBridgeLocked(n *network.Network, old *netState) error {
	if !n.ForwardMode().HasBridge() {
		return nil
	}
	var prev *network.Network
	if old != nil {
		prev = old.def
		if prev == nil {
			prev = old.live
		}
	}
	used := map[string]string{}
	for name, s := range m.nets {
		if name == n.Name {
			continue
		}
		for _, d := range []*network.Network{s.def, s.live} {
			if d != nil && d.Bridge.Name != "" && d.ForwardMode().HasBridge() {
				used[d.Bridge.Name] = name
			}
		}
	}
	if n.Bridge.Name == "" && prev != nil && prev.Bridge.Name != "" && used[prev.Bridge.Name] == "" {
		n.Bridge.Name = prev.Bridge.Name
	}
	if n.MAC == "" && prev != nil {
		n.MAC = prev.MAC
	}
	switch {
	case n.Bridge.Name != "":
		if other, ok := used[n.Bridge.Name]; ok {
			return dbusapi.Mark(fmt.Errorf("network %s: <bridge name=%q> is already used by network %s",
				quoteName(n.Name), n.Bridge.Name, quoteName(other)), dbusapi.ErrExists)
		}
	default:
		for i := 0; ; i++ {
			if i == maxBridgeID {
				return fmt.Errorf("network %s: no free virbrN bridge name", quoteName(n.Name))
			}
			name := fmt.Sprintf("virbr%d", i)
			if _, ok := used[name]; !ok && !linkExists(name) {
				n.Bridge.Name = name
				break
			}
		}
	}
	if n.MAC == "" {
		mac, err := newBridgeMAC()
		if err != nil {
			return err
		}
		n.MAC = mac
	}
	return nil
}

// maxBridgeID bounds the search for a free virbrN, as libvirt's does.
const maxBridgeID = 256

// newBridgeMAC returns a random address in QEMU's and libvirt's range
// 52:54:00:xx:xx:xx.
func newBridgeMAC() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate bridge MAC: %w", err)
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}

// Define defines or redefines a network persistently. An active network
// keeps running with its live definition; the new one applies at its
// next start.
func (m *Networks) Define(xml []byte) (dbusapi.Network, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.parseNew(xml)
	if err != nil {
		return dbusapi.Network{}, false, err
	}
	if err := m.saveDefLocked(n); err != nil {
		return dbusapi.Network{}, false, err
	}
	s, ok := m.nets[n.Name]
	if !ok {
		s = &netState{ports: map[string]*portState{}}
		m.nets[n.Name] = s
	}
	created := s.def == nil
	s.def = n
	m.log.Info("network defined", "network", n.Name, "uuid", n.UUID, "new", created)
	return m.info(s), created, nil
}

func (m *Networks) saveDefLocked(n *network.Network) error {
	data, err := n.FormatXML()
	if err != nil {
		return fmt.Errorf("network %s: %w", quoteName(n.Name), err)
	}
	if err := m.defs.Put(n.Name, data); err != nil {
		return fmt.Errorf("network %s: %w", quoteName(n.Name), err)
	}
	return nil
}

// Create creates a transient network and starts it.
func (m *Networks) Create(ctx context.Context, xml []byte) (dbusapi.Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.parseNew(xml)
	if err != nil {
		return dbusapi.Network{}, err
	}
	if _, ok := m.nets[n.Name]; ok {
		return dbusapi.Network{}, dbusapi.Mark(fmt.Errorf("network %s already exists", quoteName(n.Name)), dbusapi.ErrExists)
	}
	s := &netState{ports: map[string]*portState{}}
	if err := m.startLocked(ctx, s, n); err != nil {
		return dbusapi.Network{}, err
	}
	m.nets[n.Name] = s
	return m.info(s), nil
}

// Undefine removes a network's persistent definition; an active network
// goes on as a transient one.
func (m *Networks) Undefine(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return err
	}
	if s.def == nil {
		return errState(name, "transient (not persistent)")
	}
	if err := m.auto.Delete(name); err != nil && !store.IsNotFound(err) {
		return fmt.Errorf("network %s: %w", quoteName(name), err)
	}
	if err := m.defs.Delete(name); err != nil && !store.IsNotFound(err) {
		return fmt.Errorf("network %s: %w", quoteName(name), err)
	}
	s.def, s.autostart = nil, false
	if s.live == nil {
		delete(m.nets, name)
	}
	m.log.Info("network undefined", "network", name)
	return nil
}

// errState says that a network is not in the state a call needs, e.g.
// `network "default" is not active`.
func errState(name, state string) error {
	return dbusapi.Mark(fmt.Errorf("network %s is %s", quoteName(name), state), dbusapi.ErrInvalidArgument)
}

// Start starts a defined, inactive network.
func (m *Networks) Start(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return err
	}
	if s.live != nil {
		return errState(name, "already active")
	}
	return m.startLocked(ctx, s, s.def)
}

// SetAutostart sets whether a defined network starts with the daemon.
func (m *Networks) SetAutostart(name string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return err
	}
	if s.def == nil {
		return errState(name, "transient; only a persistent network can autostart")
	}
	if on {
		err = m.auto.Put(name, nil)
	} else if err = m.auto.Delete(name); store.IsNotFound(err) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("network %s: autostart: %w", quoteName(name), err)
	}
	s.autostart = on
	return nil
}

// XML returns the live definition of an active network, or the
// persistent one when inactive is set or the network is not running.
func (m *Networks) XML(name string, inactive bool) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return "", err
	}
	n := s.live
	if n == nil || (inactive && s.def != nil) {
		n = s.def
	}
	data, err := n.FormatXML()
	if err != nil {
		return "", fmt.Errorf("network %s: %w", quoteName(name), err)
	}
	return string(data), nil
}

// clone returns a deep copy of a network through its XML.
func clone(n *network.Network) (*network.Network, error) {
	data, err := n.FormatXML()
	if err != nil {
		return nil, err
	}
	c, err := network.Parse(data)
	if err != nil {
		return nil, err
	}
	c.UUID = n.UUID
	return c, nil
}

// startable says whether netwarden can run networks of n's forward mode.
func startable(n *network.Network) error {
	switch mode := n.ForwardMode(); mode {
	case network.ForwardNone, network.ForwardNAT, network.ForwardRoute, network.ForwardOpen, network.ForwardBridge:
		if mode == network.ForwardBridge && n.Bridge.Name == "" {
			return dbusapi.Mark(fmt.Errorf("network %s: forward mode bridge needs <bridge name>", quoteName(n.Name)), dbusapi.ErrNotSupported)
		}
		return nil
	default:
		return dbusapi.Mark(fmt.Errorf("network %s: forward mode %s is not supported by netwarden (supported: nat, route, open, bridge, and isolated networks)",
			quoteName(n.Name), mode), dbusapi.ErrNotSupported)
	}
}

// conflictLocked checks that n, about to start, shares neither its bridge
// nor a subnet with another active network.
func (m *Networks) conflictLocked(n *network.Network) error {
	for _, name := range m.sortedNames() {
		o := m.nets[name].live
		if o == nil || name == n.Name {
			continue
		}
		if n.Bridge.Name != "" && n.Bridge.Name == o.Bridge.Name {
			return dbusapi.Mark(fmt.Errorf("network %s: <bridge name=%q> is used by active network %s",
				quoteName(n.Name), n.Bridge.Name, quoteName(name)), dbusapi.ErrExists)
		}
		for _, a := range n.IPs {
			for _, b := range o.IPs {
				if a.Subnet().Overlaps(b.Subnet()) {
					return dbusapi.Mark(fmt.Errorf("network %s: <ip address=%q> subnet %s overlaps subnet %s of active network %s",
						quoteName(n.Name), a.Address, a.Subnet(), b.Subnet(), quoteName(name)), dbusapi.ErrInvalidArgument)
				}
			}
		}
	}
	return nil
}

// startLocked starts network def for s: bridge, forwarding, firewall,
// dnsmasq, in that order, undoing what was done if a step fails.
func (m *Networks) startLocked(ctx context.Context, s *netState, def *network.Network) (err error) {
	start := time.Now()
	if err := startable(def); err != nil {
		return err
	}
	n, err := clone(def)
	if err != nil {
		return fmt.Errorf("network %s: %w", quoteName(def.Name), err)
	}
	if err := m.conflictLocked(n); err != nil {
		return err
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	// A cleanup must run even when ctx has ended.
	cleanupCtx := context.WithoutCancel(ctx)

	mode := n.ForwardMode()
	if mode == network.ForwardBridge {
		if _, err := m.links.BridgeOwner(ctx, n.Bridge.Name); err != nil && !errors.Is(err, network.ErrNotOwned) {
			return fmt.Errorf("network %s: host bridge %s: %w", quoteName(n.Name), n.Bridge.Name, err)
		}
	} else {
		info, err := m.links.CreateBridge(ctx, n)
		if errors.Is(err, network.ErrLinkExists) {
			return dbusapi.Mark(fmt.Errorf("network %s: <bridge name=%q>: %w", quoteName(n.Name), n.Bridge.Name, err), dbusapi.ErrExists)
		}
		if err != nil {
			return dbusapi.Mark(err, dbusapi.ErrInvalidArgument)
		}
		undo = append(undo, func() {
			if err := m.links.DestroyBridge(cleanupCtx, info.Name); err != nil {
				m.log.Error("rollback: cannot delete bridge", "network", n.Name, "bridge", info.Name, "error", err)
			}
		})
		n.Bridge.Name, n.MAC = info.Name, info.MAC
		if mode == network.ForwardNAT || mode == network.ForwardRoute {
			v4, v6 := families(n)
			if err := m.links.EnableForwarding(ctx, v4, v6); err != nil {
				return fmt.Errorf("network %s: %w", quoteName(n.Name), err)
			}
		}
		rules, err := network.FirewallRules(n)
		if err != nil {
			return fmt.Errorf("network %s: firewall: %w", quoteName(n.Name), err)
		}
		if rules != nil {
			if err := m.engine.SetNetworkRules(ctx, n.Name, rules); err != nil {
				return err
			}
			undo = append(undo, func() {
				if err := m.engine.SetNetworkRules(cleanupCtx, n.Name, nil); err != nil {
					m.log.Error("rollback: cannot remove firewall", "network", n.Name, "error", err)
				}
			})
		}
	}
	s.live = n
	undo = append(undo, func() { s.live = nil })
	if err := m.placeLocked(ctx, s); err != nil {
		return err
	}
	undo = append(undo, func() { m.unplaceLocked(cleanupCtx, s) })
	if err := m.startDnsmasqLocked(ctx, s); err != nil {
		return err
	}
	undo = append(undo, func() { m.stopDnsmasqLocked(cleanupCtx, s) })
	data, err := n.FormatXML()
	if err == nil {
		err = m.live.Put(n.Name, data)
	}
	if err != nil {
		return fmt.Errorf("network %s: record live state: %w", quoteName(n.Name), err)
	}
	m.log.Info("network started", "network", n.Name, "mode", modeName(mode), "bridge", n.Bridge.Name,
		"duration", time.Since(start))
	return nil
}

func modeName(m network.ForwardMode) string {
	if m == network.ForwardNone {
		return "isolated"
	}
	return string(m)
}

// families reports whether n has IPv4 and IPv6 addresses.
func families(n *network.Network) (v4, v6 bool) {
	for i := range n.IPs {
		if n.IPs[i].IsIPv6() {
			v6 = true
		} else {
			v4 = true
		}
	}
	return v4, v6
}

// dnsmasqPaths are the files of a network's dnsmasq, named by the
// network's UUID (a network name may hold characters a dnsmasq
// configuration cannot).
func (m *Networks) dnsmasqPaths(n *network.Network) (conf string, p network.DnsmasqPaths) {
	base := filepath.Join(m.dnsDir, n.UUID)
	return base + ".conf", network.DnsmasqPaths{
		HostsFile:     base + ".hosts",
		AddnHostsFile: base + ".addnhosts",
		PIDFile:       base + ".pid",
		LeaseFile:     base + ".leases",
	}
}

// startDnsmasqLocked writes the network's dnsmasq files and starts it
// supervised, after removing one a previous daemon left running. A
// network that needs no dnsmasq gets none.
func (m *Networks) startDnsmasqLocked(ctx context.Context, s *netState) error {
	n := s.live
	if !n.ForwardMode().HasBridge() || !network.DnsmasqNeeded(n) {
		return nil
	}
	conf, paths := m.dnsmasqPaths(n)
	files, err := network.DnsmasqConfig(n, paths, network.DnsmasqOptions{})
	if err != nil {
		return dbusapi.Mark(err, dbusapi.ErrInvalidArgument)
	}
	for _, f := range []struct{ path, text string }{
		{conf, files.Config}, {paths.HostsFile, files.HostsFile}, {paths.AddnHostsFile, files.AddnHosts},
	} {
		if err := store.WriteFileAtomic(f.path, []byte(f.text), 0o644); err != nil {
			return fmt.Errorf("network %s: dnsmasq: %w", quoteName(n.Name), err)
		}
	}
	if err := network.KillStale(paths.PIDFile, conf); err != nil {
		return fmt.Errorf("network %s: %w", quoteName(n.Name), err)
	}
	d := &network.Dnsmasq{Binary: m.dnsmasq, ConfFile: conf, PIDFile: paths.PIDFile,
		Logger: m.log.With("network", n.Name, "component", "dnsmasq")}
	if err := d.Start(ctx); err != nil {
		return fmt.Errorf("network %s: %w", quoteName(n.Name), err)
	}
	s.dnsmasq = d
	return nil
}

func (m *Networks) stopDnsmasqLocked(ctx context.Context, s *netState) {
	if s.dnsmasq == nil {
		return
	}
	if err := s.dnsmasq.Stop(ctx); err != nil {
		m.log.Warn("stopping dnsmasq", "network", s.name(), "error", err)
	}
	s.dnsmasq = nil
}

// Destroy stops an active network: its ports are removed, then dnsmasq,
// the firewall and the bridge. A transient network is forgotten.
func (m *Networks) Destroy(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return err
	}
	if s.live == nil {
		return errState(name, "not active")
	}
	start := time.Now()
	var errs []error
	for _, id := range sortedKeys(s.ports) {
		if err := m.deletePortLocked(ctx, s, id); err != nil {
			errs = append(errs, err)
		}
	}
	// dnsmasq, the firewall and the bridge are independent: they go in
	// parallel. The kernel takes tens of milliseconds to unregister a
	// bridge (it waits for RCU grace periods), and about ten to delete
	// chains; doing them one after the other would add the two up.
	m.unplaceLocked(ctx, s)
	var wg sync.WaitGroup
	var bridgeErr, rulesErr error
	if s.live.ForwardMode().HasBridge() {
		bridge := s.live.Bridge.Name
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := m.links.DestroyBridge(ctx, bridge); err != nil {
				bridgeErr = fmt.Errorf("network %s: %w", quoteName(name), err)
			}
		}()
		go func() {
			defer wg.Done()
			rulesErr = m.engine.SetNetworkRules(ctx, name, nil)
		}()
	}
	m.stopDnsmasqLocked(ctx, s)
	wg.Wait()
	errs = append(errs, rulesErr, bridgeErr)
	if err := m.live.Delete(name); err != nil && !store.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("network %s: %w", quoteName(name), err))
	}
	if s.live != nil {
		conf, paths := m.dnsmasqPaths(s.live)
		for _, p := range []string{conf, paths.HostsFile, paths.AddnHostsFile, paths.LeaseFile, paths.PIDFile} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("cannot remove dnsmasq file", "path", p, "error", err)
			}
		}
	}
	s.live = nil
	if s.def == nil {
		delete(m.nets, name)
	}
	m.log.Info("network destroyed", "network", name, "duration", time.Since(start))
	return errors.Join(errs...)
}

// Leases returns the DHCP leases of an active network, only those of mac
// when it is not "".
func (m *Networks) Leases(name, mac string) ([]dbusapi.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.getLocked(name)
	if err != nil {
		return nil, err
	}
	if s.live == nil {
		return nil, nil // no leases, as libvirt answers
	}
	if !s.live.ForwardMode().HasBridge() || !network.DnsmasqNeeded(s.live) {
		return nil, nil
	}
	_, paths := m.dnsmasqPaths(s.live)
	return networkLeases(s.live, paths.LeaseFile, mac)
}

// canonicalUUID checks a UUID and returns it in lower case.
func canonicalUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", dbusapi.Mark(fmt.Errorf("%q is not a UUID", s), dbusapi.ErrInvalidArgument)
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", dbusapi.Mark(fmt.Errorf("%q is not a UUID", s), dbusapi.ErrInvalidArgument)
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + 'a' - 'A'
		default:
			return "", dbusapi.Mark(fmt.Errorf("%q is not a UUID", s), dbusapi.ErrInvalidArgument)
		}
	}
	return string(b), nil
}

// quoteName quotes a user-given name for a message.
func quoteName(s string) string { return fmt.Sprintf("%q", s) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
