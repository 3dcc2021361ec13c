package dbusapi

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// Client calls netwardend's API over a bus connection; the netwarden
// command is built on it. A call to a daemon that is not running starts
// it through D-Bus activation, where the activation file is installed.
type Client struct {
	obj dbus.BusObject
}

// NewClient returns a client of the daemon reached over conn.
func NewClient(conn *dbus.Conn) *Client {
	return &Client{obj: conn.Object(BusName, ObjectPath)}
}

// Version returns the daemon's version (the Manager's Version property).
func (c *Client) Version(ctx context.Context) (string, error) {
	var v dbus.Variant
	err := c.obj.CallWithContext(ctx, propertiesInterface+".Get", 0, ManagerInterface, "Version").Store(&v)
	if err != nil {
		return "", fmt.Errorf("get %s.Version: %w", ManagerInterface, err)
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("get %s.Version: got %s, want a string", ManagerInterface, v.Signature())
	}
	return s, nil
}
