package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/netwarden/netwarden/learning"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/store"
)

// Engine owns the desired state — filters and bindings — and is the only
// writer of kernel state. Every change, whatever triggered it (an API
// call, start-up, a periodic check), goes the one way:
//
//	change → desired state → backend.Apply (one transaction) → commit
//
// An API call returns only once its change is in force in the kernel, or
// with the kernel's reason why not, in which case nothing changed. The
// engine serialises changes with one mutex: the state and the backend
// are touched by one change at a time.
type Engine struct {
	log     *slog.Logger
	backend netfilter.Backend
	filters *Filters
	dir     *store.Dir // STATE/bindings

	mu       sync.Mutex
	bindings map[string]*binding // by port
	// networks are the firewalls of the running networks, by name.
	networks map[string]*netfilter.NetworkRules
	state    *netfilter.State // last state applied successfully
	// renderFailures are the ports the backend could not render in the
	// last apply (enforced as drop-all).
	renderFailures map[string]error
	stats          Stats
	caps           netfilter.Capabilities // what the backend's probe found
	// learn learns the addresses of bindings whose filters need them
	// (daemon/learning.go).
	learn *learner
}

// binding is one filter binding and what it became.
type binding struct {
	def  *policy.Binding
	inst *policy.Instantiation // nil when instantiation failed
	port *netfilter.PortState  // immutable once made: a new value per change
	// learned are the addresses learned for the filter's missing IP
	// and IPV6 (learning mode any or dhcp).
	learned []learning.Address
	// learning: the port has the basic rules while its addresses are
	// being learned.
	learning bool
}

// Stats counts what the engine did, for status and benchmarks.
type Stats struct {
	// Applies is the number of successful backend applies.
	Applies int
	// Restores counts applies that repaired kernel state found damaged
	// by a verification.
	Restores int
	// LastApply is when the last apply completed.
	LastApply time.Time
}

// BindingStatus is what the API reports about one binding.
type BindingStatus struct {
	// PortDev is the port's interface name.
	PortDev string
	// Filter is the bound filter's name.
	Filter string
	// Mode is how the port is filtered now (enforce or drop-all).
	Mode string
	// Reason explains drop-all.
	Reason string
	// Rules is the number of instantiated rules.
	Rules int
	// LearnedAddresses are the addresses learned for $IP and $IPV6.
	LearnedAddresses []string
}

// NewEngine loads the stored bindings and makes the kernel enforce them
// with one Apply, replacing whatever a previous daemon left (the backend
// swaps its tables atomically, so bound ports are never unfiltered).
// Bindings whose filters cannot be instantiated are enforced as drop-all.
// networks are the firewalls of the networks already running (adopted
// from a previous daemon), enforced in the same first Apply so that
// their rules never lapse.
func NewEngine(ctx context.Context, log *slog.Logger, backend netfilter.Backend, filters *Filters, stateDir string, networks ...*netfilter.NetworkRules) (*Engine, error) {
	dir, err := store.OpenDir(filepath.Join(stateDir, "bindings"), ".xml")
	if err != nil {
		return nil, fmt.Errorf("bindings: %w", err)
	}
	e := &Engine{log: log, backend: backend, filters: filters, dir: dir, bindings: map[string]*binding{},
		networks: map[string]*netfilter.NetworkRules{}}
	for _, n := range networks {
		e.networks[n.Network] = n
	}
	if err := e.startLearning(stateDir); err != nil {
		return nil, err
	}
	loaded, problems := dir.Load(func(name string, data []byte) error {
		def, err := policy.ParseBinding(data)
		if err != nil {
			return err
		}
		if def.PortDev != name {
			return fmt.Errorf("file is named %q but binds port %q", name, def.PortDev)
		}
		b, err := e.instantiateLearned(def, e.loadLearned(name))
		if err != nil {
			log.Warn("binding enforced as drop-all", "port", name, "reason", err)
		}
		e.bindings[name] = b
		return nil
	})
	for _, p := range problems {
		log.Warn("skipping stored binding", "file", p.Path, "error", p.Err)
	}
	start := time.Now()
	if err := e.applyLocked(ctx, e.desired(e.bindings)); err != nil {
		e.Close()
		return nil, fmt.Errorf("enforce %d stored bindings: %w", loaded, err)
	}
	for port, b := range e.bindings {
		e.syncLearnerLocked(port, b)
	}
	log.Info("bindings enforced", "bindings", loaded, "skipped", len(problems), "networks", len(networks),
		"backend", backend.Name(), "duration", time.Since(start))
	return e, nil
}

// instantiate makes the port state of a binding: its instantiated
// filter, or, when that fails, drop-all with the reason (fail closed) and
// the error.
func (e *Engine) instantiate(def *policy.Binding) (*binding, error) {
	return e.instantiateLearned(def, nil)
}

// instantiateLearned is instantiate with the addresses learned so far:
// a filter that needs addresses not given by the binding is enforced
// with the learned ones, family by family: a family still being learned
// has the basic rules of learning (policy.LearningRules, or in front of
// the filter, policy.InstantiatePending, when the other family is
// enforced already).
func (e *Engine) instantiateLearned(def *policy.Binding, learnedAddrs []learning.Address) (*binding, error) {
	b := &binding{def: def}
	inst, err := policy.Instantiate(e.filters.Registry(), def.PortDev, def.Filter, def.MAC, def.Params)
	if err == nil && len(inst.Learn) > 0 {
		b.inst = inst
		for _, a := range learnedAddrs {
			if (a.Addr.Is4() && slices.Contains(inst.Learn, policy.VarIP)) || (a.Addr.Is6() && slices.Contains(inst.Learn, policy.VarIPv6)) {
				b.learned = append(b.learned, a)
			}
		}
		ps, lerr := learningPort(e.filters.Registry(), b)
		switch {
		case lerr != nil:
			b.port = &netfilter.PortState{Port: def.PortDev, Mode: netfilter.DropAll, Reason: lerr.Error()}
			return b, lerr
		case ps != nil:
			b.port, b.learning = ps, true
			return b, nil
		}
		full, ferr := policy.Instantiate(e.filters.Registry(), def.PortDev, def.Filter, def.MAC, learnedParams(b))
		if ferr != nil {
			b.port = &netfilter.PortState{Port: def.PortDev, Mode: netfilter.DropAll, Reason: ferr.Error()}
			return b, ferr
		}
		b.port = &netfilter.PortState{Port: def.PortDev, Mode: netfilter.Enforce, Rules: full.Rules}
		return b, nil
	}
	switch {
	case err != nil:
		b.port = &netfilter.PortState{Port: def.PortDev, Mode: netfilter.DropAll, Reason: err.Error()}
	default:
		b.inst = inst
		b.port = &netfilter.PortState{Port: def.PortDev, Mode: netfilter.Enforce, Rules: inst.Rules}
	}
	return b, err
}

// desired builds the backend state for a set of bindings and the
// engine's networks.
func (e *Engine) desired(bs map[string]*binding) *netfilter.State {
	return e.desiredWith(bs, e.networks)
}

// desiredWith builds the backend state for a set of bindings and
// networks.
func (e *Engine) desiredWith(bs map[string]*binding, nets map[string]*netfilter.NetworkRules) *netfilter.State {
	st := &netfilter.State{Ports: make(map[string]*netfilter.PortState, len(bs))}
	for port, b := range bs {
		st.Ports[port] = b.port
	}
	if len(nets) > 0 {
		st.Networks = nets
	}
	return st
}

// SetNetworkRules makes the kernel enforce rules as the firewall of the
// network called name, replacing its previous rules; nil rules remove
// them. Like every change it goes through one Apply: on error nothing
// changed.
func (e *Engine) SetNetworkRules(ctx context.Context, name string, rules *netfilter.NetworkRules) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, had := e.networks[name]
	if rules == nil && !had {
		return nil
	}
	next := make(map[string]*netfilter.NetworkRules, len(e.networks)+1)
	for k, v := range e.networks {
		next[k] = v
	}
	if rules == nil {
		delete(next, name)
	} else {
		next[name] = rules
	}
	if err := e.applyLocked(ctx, e.desiredWith(e.bindings, next)); err != nil {
		return fmt.Errorf("network %s: firewall: %w", name, err)
	}
	e.networks = next
	return nil
}

// applyLocked applies st and records it. e.mu must be held.
func (e *Engine) applyLocked(ctx context.Context, st *netfilter.State) error {
	err := e.backend.Apply(ctx, st)
	var pe *netfilter.PortErrors
	if err != nil && !errors.As(err, &pe) {
		return err
	}
	e.renderFailures = nil
	if pe != nil {
		// Some ports could not be rendered; they are drop-all now.
		e.renderFailures = pe.Ports
		for port, perr := range pe.Ports {
			e.log.Warn("port enforced as drop-all", "port", port, "reason", perr)
		}
	}
	e.state = st
	e.stats.Applies++
	e.stats.LastApply = time.Now()
	return nil
}

// ErrBindingExists: the port already has a binding.
var ErrBindingExists = errors.New("port already has a filter binding")

// ErrNoBinding: the port has no binding.
var ErrNoBinding = errors.New("no filter binding for port")

// CreateBinding validates a binding, instantiates its filter, enforces it
// and records it, all before returning. An undefined filter or a missing
// variable is an error and nothing changes; so is a kernel failure.
func (e *Engine) CreateBinding(ctx context.Context, xml []byte) (*policy.Binding, error) {
	def, err := policy.ParseBinding(xml)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.bindings[def.PortDev]; ok {
		return nil, fmt.Errorf("port %s: %w", def.PortDev, ErrBindingExists)
	}
	b, err := e.instantiate(def)
	if err != nil {
		return nil, err
	}
	data, err := def.FormatXML()
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", def.PortDev, err)
	}
	if err := e.dir.Put(def.PortDev, data); err != nil {
		return nil, fmt.Errorf("binding %s: %w", def.PortDev, err)
	}
	next := e.withBinding(def.PortDev, b)
	if err := e.applyLocked(ctx, e.desired(next)); err != nil {
		if derr := e.dir.Delete(def.PortDev); derr != nil {
			e.log.Error("cannot remove the record of a binding that failed", "port", def.PortDev, "error", derr)
		}
		return nil, fmt.Errorf("binding %s: %w", def.PortDev, err)
	}
	e.bindings = next
	if e.learn != nil {
		if err := e.learn.dir.Delete(def.PortDev); err != nil && !store.IsNotFound(err) {
			e.log.Warn("cannot remove stale learned addresses", "port", def.PortDev, "error", err)
		}
	}
	e.syncLearnerLocked(def.PortDev, b)
	e.log.Info("binding created", "port", def.PortDev, "filter", def.Filter, "mode", statusOf(b).Mode)
	return def, nil
}

// withBinding returns a copy of the bindings with port set to b (or
// removed when b is nil).
func (e *Engine) withBinding(port string, b *binding) map[string]*binding {
	next := make(map[string]*binding, len(e.bindings)+1)
	for k, v := range e.bindings {
		next[k] = v
	}
	if b == nil {
		delete(next, port)
	} else {
		next[port] = b
	}
	return next
}

// DeleteBinding removes the binding of port from the kernel and from the
// record; the port is unfiltered afterwards.
func (e *Engine) DeleteBinding(ctx context.Context, port string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.bindings[port]; !ok {
		return fmt.Errorf("port %s: %w", port, ErrNoBinding)
	}
	next := e.withBinding(port, nil)
	if err := e.applyLocked(ctx, e.desired(next)); err != nil {
		return fmt.Errorf("binding %s: %w", port, err)
	}
	e.bindings = next
	e.syncLearnerLocked(port, nil)
	if e.learn != nil {
		if err := e.learn.dir.Delete(port); err != nil && !store.IsNotFound(err) {
			e.log.Warn("cannot remove learned addresses", "port", port, "error", err)
		}
	}
	if err := e.dir.Delete(port); err != nil && !store.IsNotFound(err) {
		return fmt.Errorf("binding %s: removed from the kernel but not from disk: %w", port, err)
	}
	e.log.Info("binding deleted", "port", port)
	return nil
}

// DefineFilter defines a filter and, before returning, re-instantiates
// and enforces every binding that uses it (directly or through
// references), in one transaction. If the kernel refuses, the definition
// is still stored and the error says so.
func (e *Engine) DefineFilter(ctx context.Context, xml []byte) (*policy.Filter, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	def, created, err := e.filters.Define(xml)
	if err != nil {
		return nil, false, err
	}
	if err := e.refreshLocked(ctx, def.Name); err != nil {
		return def, created, err
	}
	return def, created, nil
}

// UndefineFilter undefines a filter unless bindings or filters use it.
func (e *Engine) UndefineFilter(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var users []string
	for port, b := range e.bindings {
		if b.def.Filter == name {
			users = append(users, port)
		}
	}
	if err := e.filters.Undefine(name, users); err != nil {
		return err
	}
	// A restored built-in changes what its users enforce.
	return e.refreshLocked(ctx, name)
}

// refreshLocked re-instantiates the bindings whose filter trees include
// filter (or one of its dependents) and applies the result.
func (e *Engine) refreshLocked(ctx context.Context, filter string) error {
	affected := map[string]bool{}
	for _, f := range e.filters.Registry().Dependents(filter) {
		affected[f] = true
	}
	next := e.withBinding("", nil)
	n := 0
	for port, b := range e.bindings {
		uses := affected[b.def.Filter]
		if b.inst != nil {
			for _, f := range b.inst.Filters {
				uses = uses || affected[f]
			}
		} else {
			uses = true // it failed before; it may work now
		}
		if uses {
			nb, err := e.instantiateLearned(b.def, b.learned)
			if err != nil {
				e.log.Warn("binding enforced as drop-all", "port", port, "reason", err)
			}
			next[port] = nb
			n++
		}
	}
	if n == 0 {
		return nil
	}
	start := time.Now()
	if err := e.applyLocked(ctx, e.desired(next)); err != nil {
		return fmt.Errorf("re-enforce %d bindings using filter %s: %w", n, filter, err)
	}
	for port, b := range next {
		if e.bindings[port] != b {
			e.syncLearnerLocked(port, b)
		}
	}
	e.bindings = next
	e.log.Info("bindings re-enforced", "filter", filter, "bindings", n, "duration", time.Since(start))
	return nil
}

// Registry returns the filter registry the engine instantiates from; it
// is safe for concurrent use. Changes go through DefineFilter and
// UndefineFilter, never through the registry directly.
func (e *Engine) Registry() *policy.Registry { return e.filters.Registry() }

// Binding returns a binding's definition and status.
func (e *Engine) Binding(port string) (*policy.Binding, BindingStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.bindings[port]
	if !ok {
		return nil, BindingStatus{}, false
	}
	st := statusOf(b)
	if err := e.renderFailures[port]; err != nil {
		st.Mode, st.Reason = netfilter.DropAll.String(), err.Error()
	}
	return b.def, st, true
}

// Bindings lists the bound ports, sorted.
func (e *Engine) Bindings() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ports := make([]string, 0, len(e.bindings))
	for p := range e.bindings {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	return ports
}

func statusOf(b *binding) BindingStatus {
	s := BindingStatus{PortDev: b.def.PortDev, Filter: b.def.Filter, Mode: b.port.Mode.String(), Reason: b.port.Reason,
		LearnedAddresses: addrStrings(b.learned)}
	if b.learning {
		s.Mode = ModeLearning
	}
	if b.port.Rules != nil {
		s.Rules = b.port.Rules.RuleCount()
	}
	return s
}

// Verify checks that the kernel still enforces the desired state and, if
// not, applies it again (a restore). It is the periodic and on-demand
// (SIGHUP) trigger of the one path.
func (e *Engine) Verify(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.backend.Verify(ctx); err == nil {
		return nil
	} else {
		e.log.Warn("kernel state differs from the desired state; restoring", "reason", err)
	}
	if err := e.applyLocked(ctx, e.state); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	e.stats.Restores++
	return nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}
