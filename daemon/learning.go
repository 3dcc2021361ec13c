package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/learning"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/policy"
	"github.com/netwarden/netwarden/store"
)

// ModeLearning is the status mode of a binding waiting for its
// addresses: the port passes only what learning needs.
const ModeLearning = "learning"

// learned is the runtime state of a learning binding, kept in
// STATE/learned/<port>.json.
type learned struct {
	Mode      string             `json:"mode"`
	Addresses []learning.Address `json:"addresses"`
}

// learner couples the engine with a learning.Learner: changes the
// learner reports are collected and enforced together, one Apply per
// burst, by one goroutine.
type learner struct {
	l   *learning.Learner
	dir *store.Dir

	mu      sync.Mutex
	pending map[string]learning.Change
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	// onChange announces a binding whose addresses changed (the API's
	// PropertiesChanged); set by announceLearned.
	onChange func(port string)
	// lastLatency is the last time from a learning frame to its
	// enforcement.
	lastLatency time.Duration
}

// startLearning opens STATE/learned and starts the learner; the engine
// works without one (no AF_PACKET, say), its learning ports then stay
// with the basic rules.
func (e *Engine) startLearning(stateDir string) error {
	dir, err := store.OpenDir(filepath.Join(stateDir, "learned"), ".json")
	if err != nil {
		return fmt.Errorf("learned addresses: %w", err)
	}
	lr := &learner{dir: dir, pending: map[string]learning.Change{}, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	lr.l, err = learning.New(learning.Config{Log: e.log, Changed: func(c learning.Change) {
		lr.mu.Lock()
		lr.pending[c.Port] = c
		lr.mu.Unlock()
		select {
		case lr.kick <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		e.log.Warn("IP address learning unavailable", "error", err)
		lr.l = nil
	}
	e.learn = lr
	go e.learnLoop()
	return nil
}

// loadLearned reads the stored addresses of port, dropping expired
// leases.
func (e *Engine) loadLearned(port string) []learning.Address {
	data, err := e.learn.dir.Read(port)
	if err != nil {
		if !store.IsNotFound(err) {
			e.log.Warn("cannot read learned addresses", "port", port, "error", err)
		}
		return nil
	}
	var st learned
	if err := json.Unmarshal(data, &st); err != nil {
		e.log.Warn("ignoring corrupt learned addresses", "port", port, "error", err)
		return nil
	}
	now := time.Now()
	var out []learning.Address
	for _, a := range st.Addresses {
		if a.Addr.IsValid() && a.Valid(now) {
			out = append(out, a)
		} else {
			e.log.Info("learned address expired while no daemon ran", "port", port, "addr", a.Addr)
		}
	}
	return out
}

func (e *Engine) storeLearned(port, mode string, addrs []learning.Address) error {
	data, err := json.MarshalIndent(learned{Mode: mode, Addresses: addrs}, "", "  ")
	if err != nil {
		return err
	}
	return e.learn.dir.Put(port, append(data, '\n'))
}

// learningSpec is what the learner must learn for b; ok false when b
// learns nothing.
func learningSpec(b *binding) (learning.Spec, bool) {
	if b.inst == nil || len(b.inst.Learn) == 0 || b.inst.Learning == policy.LearnNone {
		return learning.Spec{}, false
	}
	mac, err := net.ParseMAC(b.def.MAC)
	if err != nil {
		return learning.Spec{}, false
	}
	mode, servers, servers6 := policy.LearningParams(b.def.Params)
	s := learning.Spec{Port: b.def.PortDev, MAC: mac, Mode: mode,
		IPv4: slices.Contains(b.inst.Learn, policy.VarIP), IPv6: slices.Contains(b.inst.Learn, policy.VarIPv6)}
	for _, v := range servers {
		if a, err := netip.ParseAddr(v); err == nil {
			s.Servers = append(s.Servers, a)
		}
	}
	for _, v := range servers6 {
		if a, err := netip.ParseAddr(v); err == nil {
			s.Servers6 = append(s.Servers6, a)
		}
	}
	return s, true
}

// learningPort is the port state of binding b whose filter needs the
// addresses in inst.Learn: nil when every family has one (the caller
// instantiates the filter with them); the basic rules of learning while
// none has; and once some but not all have (a filter using both $IP and
// $IPV6, a guest that has only IPv4 so far), the filter enforced with the
// learned family and the basic rules for the family still being learned
// (policy.InstantiatePending).
func learningPort(res policy.Resolver, b *binding) (*netfilter.PortState, error) {
	def, inst := b.def, b.inst
	var v4, v6 []string
	for _, a := range b.learned {
		if a.Addr.Is4() {
			v4 = append(v4, a.Addr.String())
		} else {
			v6 = append(v6, a.Addr.String())
		}
	}
	needV4, needV6 := slices.Contains(inst.Learn, policy.VarIP), slices.Contains(inst.Learn, policy.VarIPv6)
	var pending []string
	if needV4 && len(v4) == 0 {
		pending = append(pending, policy.VarIP)
	}
	if needV6 && len(v6) == 0 {
		pending = append(pending, policy.VarIPv6)
	}
	if len(pending) == 0 {
		return nil, nil // complete: the caller instantiates with them
	}
	mode, servers, servers6 := policy.LearningParams(def.Params)
	o := policy.LearningOptions{Mode: mode, IPv4: needV4, IPv6: needV6, DHCPServers: servers, DHCPServersV6: servers6}
	reason := fmt.Sprintf("learning %s (CTRL_IP_LEARNING=%s)", strings.Join(pending, ", "), inst.Learning)
	if len(pending) < len(inst.Learn) {
		rules, err := policy.InstantiatePending(res, def.PortDev, def.Filter, def.MAC, learnedParams(b), pending, o)
		if err == nil {
			return &netfilter.PortState{Port: def.PortDev, Mode: netfilter.Enforce, Rules: rules,
				Reason: reason + "; " + strings.Join(append(v4, v6...), ", ") + " enforced"}, nil
		}
		// A filter whose rules cannot wait for the pending family (a
		// rule of another family using its variable) keeps the basic
		// rules of both until it is complete.
		reason += "; the filter waits for every family: " + err.Error()
	}
	rules, err := policy.LearningRules(def.PortDev, def.MAC, o)
	if err != nil {
		return nil, err
	}
	return &netfilter.PortState{Port: def.PortDev, Mode: netfilter.Enforce, Rules: rules, Reason: reason}, nil
}

// learnedParams are the binding's parameters with the learned addresses
// as IP and IPV6.
func learnedParams(b *binding) []policy.Param {
	ps := append([]policy.Param(nil), b.def.Params...)
	for _, a := range b.learned {
		name := policy.VarIP
		if a.Addr.Is6() {
			name = policy.VarIPv6
		}
		ps = append(ps, policy.Param{Name: name, Value: a.Addr.String()})
	}
	return ps
}

// syncLearnerLocked makes the learner learn what the bindings need.
// e.mu must be held.
func (e *Engine) syncLearnerLocked(port string, b *binding) {
	if e.learn == nil || e.learn.l == nil {
		return
	}
	if b == nil {
		e.learn.l.Remove(port)
		return
	}
	spec, ok := learningSpec(b)
	if !ok {
		e.learn.l.Remove(port)
		return
	}
	if err := e.learn.l.Add(spec, b.learned); err != nil {
		e.log.Warn("cannot learn addresses", "port", port, "error", err)
	}
}

// learnLoop enforces what the learner reports.
func (e *Engine) learnLoop() {
	defer close(e.learn.done)
	for {
		select {
		case <-e.learn.stop:
			return
		case <-e.learn.kick:
		}
		e.learn.mu.Lock()
		changes := e.learn.pending
		e.learn.pending = map[string]learning.Change{}
		e.learn.mu.Unlock()
		e.applyLearned(context.Background(), changes)
	}
}

// applyLearned records the changes, re-instantiates the bindings
// concerned and enforces them in one Apply.
func (e *Engine) applyLearned(ctx context.Context, changes map[string]learning.Change) {
	var tm learnTiming
	t0 := time.Now()
	e.mu.Lock()
	t1 := time.Now()
	tm.lock = t1.Sub(t0)
	next := e.withBinding("", nil)
	var ports []string
	for port, c := range changes {
		old, ok := e.bindings[port]
		if !ok || old.inst == nil || len(old.inst.Learn) == 0 {
			continue
		}
		ts := time.Now()
		if err := e.storeLearned(port, old.inst.Learning, c.Addresses); err != nil {
			e.log.Error("cannot store learned addresses", "port", port, "error", err)
		}
		tm.store += time.Since(ts)
		nb, err := e.instantiateLearned(old.def, c.Addresses)
		if err != nil {
			e.log.Warn("binding enforced as drop-all", "port", port, "reason", err)
		}
		next[port] = nb
		ports = append(ports, port)
	}
	if len(ports) == 0 {
		e.mu.Unlock()
		return
	}
	tm.instantiate = time.Since(t1) - tm.store
	ta := time.Now()
	err := e.applyLocked(ctx, e.desired(next))
	if err == nil {
		e.bindings = next
	}
	now := time.Now()
	tm.apply = now.Sub(ta)
	for _, port := range ports {
		c := changes[port]
		lat := now.Sub(c.Seen)
		if err != nil {
			e.log.Error("cannot enforce learned addresses", "port", port, "error", err)
			continue
		}
		var addrs []string
		for _, a := range c.Addresses {
			addrs = append(addrs, a.Addr.String())
		}
		e.learn.lastLatency = lat
		e.log.Info("learned addresses enforced", "port", port, "addresses", strings.Join(addrs, ","),
			"mode", statusOf(next[port]).Mode, "latency", lat, "queued", t0.Sub(c.Seen), "lock", tm.lock,
			"store", tm.store, "instantiate", tm.instantiate, "apply", tm.apply)
	}
	announce := e.learn.onChange
	e.mu.Unlock()
	if announce != nil && err == nil {
		for _, port := range ports {
			announce(port)
		}
	}
}

// learnTiming is where the time of one burst of learned changes went
// (logged with each port's latency).
type learnTiming struct {
	lock, store, instantiate, apply time.Duration
}

// Close stops the learner (the kernel state stays).
func (e *Engine) Close() {
	if e == nil || e.learn == nil {
		return
	}
	select {
	case <-e.learn.stop:
		return
	default:
	}
	close(e.learn.stop)
	<-e.learn.done
	if e.learn.l != nil {
		e.learn.l.Close()
	}
}

// LearnedAddresses returns the addresses learned for port, sorted.
func (e *Engine) LearnedAddresses(port string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.bindings[port]
	if !ok {
		return nil
	}
	return addrStrings(b.learned)
}

func addrStrings(as []learning.Address) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Addr.String())
	}
	return out
}

// AnnounceLearned makes every change of learned addresses emit
// PropertiesChanged (LearnedAddresses) on the binding's object.
func (e *Engine) AnnounceLearned(srv *dbusapi.Server) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.learn == nil {
		return
	}
	e.learn.onChange = func(port string) {
		if b, err := bindingInfo(e, port); err == nil {
			srv.BindingChanged(b)
		}
	}
}
