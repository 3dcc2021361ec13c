package daemon

import (
	"context"
	"errors"

	"github.com/netwarden/netwarden/dbusapi"
)

var errNoNetworks = errors.New("virtual networks are not served yet")

func (c *core) Networks(ctx context.Context) ([]dbusapi.Network, error) { return nil, nil }
func (c *core) LookupNetwork(ctx context.Context, name string) (dbusapi.Network, error) {
	return dbusapi.Network{}, dbusapi.ErrNotFound
}
func (c *core) LookupNetworkByUUID(ctx context.Context, uuid string) (dbusapi.Network, error) {
	return dbusapi.Network{}, dbusapi.ErrNotFound
}
func (c *core) DefineNetwork(ctx context.Context, xml string) (dbusapi.Network, bool, error) {
	return dbusapi.Network{}, false, errNoNetworks
}
func (c *core) CreateNetwork(ctx context.Context, xml string) (dbusapi.Network, error) {
	return dbusapi.Network{}, errNoNetworks
}
func (c *core) UndefineNetwork(ctx context.Context, name string) error { return errNoNetworks }
func (c *core) StartNetwork(ctx context.Context, name string) error    { return errNoNetworks }
func (c *core) DestroyNetwork(ctx context.Context, name string) error  { return errNoNetworks }
func (c *core) SetNetworkAutostart(ctx context.Context, name string, autostart bool) error {
	return errNoNetworks
}
func (c *core) NetworkXML(ctx context.Context, name string, inactive bool) (string, error) {
	return "", errNoNetworks
}
func (c *core) NetworkLeases(ctx context.Context, name, mac string) ([]dbusapi.Lease, error) {
	return nil, errNoNetworks
}
func (c *core) Ports(ctx context.Context, network string) ([]dbusapi.Port, error) {
	return nil, errNoNetworks
}
func (c *core) LookupPort(ctx context.Context, network, uuid string) (dbusapi.Port, error) {
	return dbusapi.Port{}, errNoNetworks
}
func (c *core) CreatePort(ctx context.Context, network, xml string) (dbusapi.Port, error) {
	return dbusapi.Port{}, errNoNetworks
}
func (c *core) DeletePort(ctx context.Context, network, uuid string) error { return errNoNetworks }
