package daemon

import (
	"context"

	"github.com/netwarden/netwarden/dbusapi"
)

// The network part of dbusapi.Manager: each call waits for start-up,
// then goes to Networks.

// Networks implements dbusapi.Manager.
func (c *core) Networks(ctx context.Context) ([]dbusapi.Network, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return nil, err
	}
	return m.List(), nil
}

// LookupNetwork implements dbusapi.Manager.
func (c *core) LookupNetwork(ctx context.Context, name string) (dbusapi.Network, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return dbusapi.Network{}, err
	}
	return m.Lookup(name)
}

// LookupNetworkByUUID implements dbusapi.Manager.
func (c *core) LookupNetworkByUUID(ctx context.Context, uuid string) (dbusapi.Network, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return dbusapi.Network{}, err
	}
	return m.LookupUUID(uuid)
}

// DefineNetwork implements dbusapi.Manager.
func (c *core) DefineNetwork(ctx context.Context, xml string) (dbusapi.Network, bool, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return dbusapi.Network{}, false, err
	}
	return m.Define([]byte(xml))
}

// CreateNetwork implements dbusapi.Manager.
func (c *core) CreateNetwork(ctx context.Context, xml string) (dbusapi.Network, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return dbusapi.Network{}, err
	}
	return m.Create(ctx, []byte(xml))
}

// UndefineNetwork implements dbusapi.Manager.
func (c *core) UndefineNetwork(ctx context.Context, name string) error {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return err
	}
	return m.Undefine(name)
}

// StartNetwork implements dbusapi.Manager.
func (c *core) StartNetwork(ctx context.Context, name string) error {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return err
	}
	return m.Start(ctx, name)
}

// DestroyNetwork implements dbusapi.Manager.
func (c *core) DestroyNetwork(ctx context.Context, name string) error {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return err
	}
	return m.Destroy(ctx, name)
}

// SetNetworkAutostart implements dbusapi.Manager.
func (c *core) SetNetworkAutostart(ctx context.Context, name string, autostart bool) error {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return err
	}
	return m.SetAutostart(name, autostart)
}

// NetworkXML implements dbusapi.Manager.
func (c *core) NetworkXML(ctx context.Context, name string, inactive bool) (string, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return "", err
	}
	return m.XML(name, inactive)
}

// NetworkLeases implements dbusapi.Manager.
func (c *core) NetworkLeases(ctx context.Context, name, mac string) ([]dbusapi.Lease, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return nil, err
	}
	return m.Leases(name, mac)
}

// Ports implements dbusapi.Manager.
func (c *core) Ports(ctx context.Context, network string) ([]dbusapi.Port, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return nil, err
	}
	return m.Ports(network)
}

// LookupPort implements dbusapi.Manager.
func (c *core) LookupPort(ctx context.Context, network, uuid string) (dbusapi.Port, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return dbusapi.Port{}, err
	}
	return m.LookupPort(network, uuid)
}

// CreatePort implements dbusapi.Manager.
func (c *core) CreatePort(ctx context.Context, network, xml string) (dbusapi.Port, error) {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return dbusapi.Port{}, err
	}
	return m.CreatePort(ctx, network, []byte(xml))
}

// DeletePort implements dbusapi.Manager.
func (c *core) DeletePort(ctx context.Context, network, uuid string) error {
	m, err := c.waitNetworks(ctx)
	if err != nil {
		return err
	}
	return m.DeletePort(ctx, network, uuid)
}
