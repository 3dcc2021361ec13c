package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/policy"
)

// core is the daemon state the API serves: it implements dbusapi.Manager
// on top of the Engine. The API is exported before the engine exists
// (the bus name must be owned before the kernel is touched), so every
// call first waits for the engine; a call whose context ends first fails
// with "still starting", and one made after the engine failed to start
// fails with that.
type core struct {
	version string
	backend string // the kernel backend's name

	// filterXML caches the formatted XML of filter definitions, which
	// are immutable once stored: name → filterXML. Reads (the API's
	// most frequent calls) then format nothing.
	filterXML sync.Map

	ready  chan struct{} // closed once engine or startErr is set
	once   sync.Once
	engine *Engine
	nets   *Networks
	// rec is the reconciler, set once the daemon is ready.
	rec atomic.Pointer[reconciler]
	// firewalld says whether firewalld owns its bus name.
	firewalld atomic.Bool
	// startErr is why there is no engine (start-up failed or stopped).
	startErr error
}

func newCore(version string, backend netfilter.Backend) *core {
	c := &core{version: version, ready: make(chan struct{})}
	if backend != nil {
		c.backend = backend.Name()
	}
	return c
}

// start hands the core its engine, or the reason there is none. Only
// the first call counts.
func (c *core) start(e *Engine, nets *Networks, err error) {
	c.once.Do(func() {
		if (e == nil || nets == nil) && err == nil {
			err = errors.New("netwardend stopped during start-up")
		}
		if err != nil {
			e, nets = nil, nil
		}
		c.engine, c.nets, c.startErr = e, nets, err
		close(c.ready)
	})
}

// setReconciler hands the core the reconciler whose re-applies it
// reports.
func (c *core) setReconciler(r *reconciler) { c.rec.Store(r) }

// FirewalldRunning implements dbusapi.Manager.
func (c *core) FirewalldRunning() bool { return c.firewalld.Load() }

// LastFirewallReapply implements dbusapi.Manager.
func (c *core) LastFirewallReapply() time.Time {
	if r := c.rec.Load(); r != nil {
		t, _ := r.lastReapply()
		return t
	}
	return time.Time{}
}

// Restores implements dbusapi.Manager: the engine's count of restores.
func (c *core) Restores() uint64 {
	select {
	case <-c.ready:
		if c.engine != nil {
			return uint64(c.engine.Stats().Restores)
		}
	default:
	}
	return 0
}

// waitNetworks returns the networks once they are there.
func (c *core) waitNetworks(ctx context.Context) (*Networks, error) {
	if _, err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.nets, nil
}

// wait returns the engine once it is there.
func (c *core) wait(ctx context.Context) (*Engine, error) {
	select {
	case <-c.ready:
		if c.engine == nil {
			return nil, fmt.Errorf("netwardend failed to start: %w", c.startErr)
		}
		return c.engine, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("netwardend is still starting: %w", ctx.Err())
	}
}

// Version implements dbusapi.Manager.
func (c *core) Version() string { return c.version }

// Backend implements dbusapi.Manager.
func (c *core) Backend() string { return c.backend }

// StatefulFiltering implements dbusapi.Manager: the path connection-
// tracking rules take, known once the engine has probed the kernel.
func (c *core) StatefulFiltering() string {
	select {
	case <-c.ready:
		if c.engine != nil {
			return c.engine.caps.StatefulPath
		}
	default:
	}
	return ""
}

// filterInfo describes f for the API.
func (c *core) filterInfo(reg *policy.Registry, f *policy.Filter) (dbusapi.Filter, error) {
	var xml string
	if v, ok := c.filterXML.Load(f.Name); ok && v.(filterXML).def == f {
		xml = v.(filterXML).xml
	} else {
		data, err := f.FormatXML()
		if err != nil {
			return dbusapi.Filter{}, fmt.Errorf("filter %q: format: %w", f.Name, err)
		}
		xml = string(data)
		c.filterXML.Store(f.Name, filterXML{def: f, xml: xml})
	}
	return dbusapi.Filter{Name: f.Name, UUID: f.UUID, BuiltIn: reg.Origin(f.Name) == policy.BuiltIn, XML: xml}, nil
}

// filterXML is a definition and its formatted XML.
type filterXML struct {
	def *policy.Filter
	xml string
}

// Filters implements dbusapi.Manager.
func (c *core) Filters(ctx context.Context) ([]dbusapi.Filter, error) {
	e, err := c.wait(ctx)
	if err != nil {
		return nil, err
	}
	reg := e.Registry()
	var out []dbusapi.Filter
	for _, name := range reg.Names() {
		f, ok := reg.Filter(name)
		if !ok {
			continue // undefined meanwhile
		}
		info, err := c.filterInfo(reg, f)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// LookupFilter implements dbusapi.Manager.
func (c *core) LookupFilter(ctx context.Context, name string) (dbusapi.Filter, error) {
	e, err := c.wait(ctx)
	if err != nil {
		return dbusapi.Filter{}, err
	}
	f, ok := e.Registry().Filter(name)
	if !ok {
		return dbusapi.Filter{}, fmt.Errorf("no filter named %q: %w", name, dbusapi.ErrNotFound)
	}
	return c.filterInfo(e.Registry(), f)
}

// LookupFilterByUUID implements dbusapi.Manager.
func (c *core) LookupFilterByUUID(ctx context.Context, uuid string) (dbusapi.Filter, error) {
	e, err := c.wait(ctx)
	if err != nil {
		return dbusapi.Filter{}, err
	}
	f, ok := e.Registry().LookupUUID(uuid)
	if !ok {
		return dbusapi.Filter{}, fmt.Errorf("no filter with UUID %q: %w", uuid, dbusapi.ErrNotFound)
	}
	return c.filterInfo(e.Registry(), f)
}

// DefineFilter implements dbusapi.Manager.
func (c *core) DefineFilter(ctx context.Context, xml string) (dbusapi.Filter, bool, error) {
	e, err := c.wait(ctx)
	if err != nil {
		return dbusapi.Filter{}, false, err
	}
	def, created, err := e.DefineFilter(ctx, []byte(xml))
	if def == nil {
		return dbusapi.Filter{}, false, err
	}
	info, ferr := c.filterInfo(e.Registry(), def)
	if ferr != nil {
		return dbusapi.Filter{}, false, errors.Join(err, ferr)
	}
	return info, created, err
}

// UndefineFilter implements dbusapi.Manager.
func (c *core) UndefineFilter(ctx context.Context, name string) error {
	e, err := c.wait(ctx)
	if err != nil {
		return err
	}
	return e.UndefineFilter(ctx, name)
}

// bindingInfo describes the binding of port for the API.
func bindingInfo(e *Engine, port string) (dbusapi.Binding, error) {
	def, st, ok := e.Binding(port)
	if !ok {
		return dbusapi.Binding{}, fmt.Errorf("port %q: %w", port, dbusapi.Mark(ErrNoBinding, dbusapi.ErrNotFound))
	}
	data, err := def.FormatXML()
	if err != nil {
		return dbusapi.Binding{}, fmt.Errorf("binding %s: format: %w", port, err)
	}
	return dbusapi.Binding{PortDev: st.PortDev, FilterName: st.Filter, Mode: st.Mode, Reason: st.Reason,
		LearnedAddresses: st.LearnedAddresses, XML: string(data)}, nil
}

// Bindings implements dbusapi.Manager.
func (c *core) Bindings(ctx context.Context) ([]dbusapi.Binding, error) {
	e, err := c.wait(ctx)
	if err != nil {
		return nil, err
	}
	var out []dbusapi.Binding
	for _, port := range e.Bindings() {
		b, err := bindingInfo(e, port)
		if errors.Is(err, ErrNoBinding) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// LookupBinding implements dbusapi.Manager.
func (c *core) LookupBinding(ctx context.Context, port string) (dbusapi.Binding, error) {
	e, err := c.wait(ctx)
	if err != nil {
		return dbusapi.Binding{}, err
	}
	return bindingInfo(e, port)
}

// CreateBinding implements dbusapi.Manager.
func (c *core) CreateBinding(ctx context.Context, xml string) (dbusapi.Binding, error) {
	e, err := c.wait(ctx)
	if err != nil {
		return dbusapi.Binding{}, err
	}
	def, err := e.CreateBinding(ctx, []byte(xml))
	if errors.Is(err, ErrBindingExists) {
		return dbusapi.Binding{}, dbusapi.Mark(err, dbusapi.ErrExists)
	}
	if err != nil {
		return dbusapi.Binding{}, err
	}
	return bindingInfo(e, def.PortDev)
}

// DeleteBinding implements dbusapi.Manager.
func (c *core) DeleteBinding(ctx context.Context, port string) error {
	e, err := c.wait(ctx)
	if err != nil {
		return err
	}
	err = e.DeleteBinding(ctx, port)
	if errors.Is(err, ErrNoBinding) {
		return dbusapi.Mark(err, dbusapi.ErrNotFound)
	}
	return err
}
