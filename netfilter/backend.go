package netfilter

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Backend is what the daemon needs from a kernel backend: make the kernel
// enforce a desired state, check that it still does, take everything
// away, and say what the kernel can do. Features live in the rule model,
// never in this interface.
type Backend interface {
	// Name is the backend's name for logs and status ("nftables").
	Name() string
	// Probe inspects the kernel once and reports its capabilities.
	Probe(ctx context.Context) (Capabilities, error)
	// Apply makes the kernel enforce desired, replacing whatever the
	// backend installed before, in one atomic step: either all of it
	// takes effect or none, and no port is ever left unfiltered in
	// between. Applying the same state twice changes nothing.
	Apply(ctx context.Context, desired *State) error
	// Verify reads the kernel back and returns an error describing how
	// it differs from the last state applied (tables or chains missing
	// or changed by someone else); nil when it matches.
	Verify(ctx context.Context) error
	// Remove deletes every kernel object of the backend.
	Remove(ctx context.Context) error
}

// Watcher is a Backend that can tell when its kernel state may have been
// changed by someone else. The daemon treats a signal as a trigger of the
// one path: Verify, and Apply the desired state again if it differs.
type Watcher interface {
	// Watch returns a channel (capacity 1) that receives a value whenever
	// the kernel reports a change to the backend's objects that the
	// backend did not make itself, or when such reports may have been
	// lost. Sends never block: a pending signal absorbs later ones. The
	// channel is closed when ctx ends.
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// Capabilities are what a backend found the kernel able to do.
type Capabilities struct {
	// BridgeConntrack: connection tracking works in the bridge family
	// (nf_conntrack_bridge).
	BridgeConntrack bool
	// BridgeReject: the reject statement works in the bridge family.
	BridgeReject bool
	// BridgeNetfilter: bridged IP traffic passes the IP hooks
	// (br_netfilter), which the IP-layer fallback needs.
	BridgeNetfilter bool
	// StatefulPath says how the backend enforces rules that need
	// connection tracking (IP-layer rules): "br_netfilter" (in the inet
	// family, reached from the bridge through br_netfilter) or "bridge"
	// (nf_conntrack_bridge).
	StatefulPath string
}

// Values of Capabilities.StatefulPath.
const (
	// StatefulBrNetfilter: connection-tracking rules live in the inet
	// family, reached from the bridge through br_netfilter.
	StatefulBrNetfilter = "br_netfilter"
	// StatefulBridge: connection-tracking rules live in the bridge
	// family (nf_conntrack_bridge).
	StatefulBridge = "bridge"
)

// String describes the capabilities for logs and status.
func (c Capabilities) String() string {
	return fmt.Sprintf("bridge-conntrack=%v bridge-reject=%v br_netfilter=%v stateful=%s", c.BridgeConntrack, c.BridgeReject, c.BridgeNetfilter, c.StatefulPath)
}

// PortMode is how a port is filtered.
type PortMode int

// Port modes.
const (
	// Enforce: the port's instantiated filter (PortState.Rules) applies.
	Enforce PortMode = iota
	// DropAll: the port passes nothing, in either direction; used when
	// its filter cannot be instantiated or rendered (fail closed).
	DropAll
)

// String names the mode.
func (m PortMode) String() string {
	switch m {
	case Enforce:
		return "enforce"
	case DropAll:
		return "drop-all"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// PortState is the desired filtering of one port.
type PortState struct {
	// Port is the interface name.
	Port string
	// Mode says how the port is filtered.
	Mode PortMode
	// Rules is the port's filter when Mode is Enforce.
	Rules *PortRules
	// Reason explains a DropAll, for status.
	Reason string
}

// State is everything a backend must enforce.
type State struct {
	// Ports are the filtered ports, by interface name.
	Ports map[string]*PortState
	// Networks are the firewalls of the running virtual networks, by
	// network name.
	Networks map[string]*NetworkRules
}

// PortNames returns the names of the ports, sorted.
func (s *State) PortNames() []string {
	names := make([]string, 0, len(s.Ports))
	for n := range s.Ports {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PortErrors is returned by Backend.Apply when the filters of some ports
// could not be rendered for the kernel: those ports were installed as
// drop-all (fail closed), the others as asked.
type PortErrors struct {
	// Ports maps each such port to the reason.
	Ports map[string]error
}

// Error implements error.
func (e *PortErrors) Error() string {
	names := make([]string, 0, len(e.Ports))
	for n := range e.Ports {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("port %s: %v (dropping all its traffic)", n, e.Ports[n])
	}
	return strings.Join(parts, "; ")
}
