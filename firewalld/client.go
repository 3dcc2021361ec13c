// Package firewalld is netwarden's client of firewalld's D-Bus API
// (org.fedoraproject.FirewallD1).
//
// It works on a connection the caller owns (the daemon's system bus
// connection; a lab bus in tests) and never starts firewalld: every call
// carries NO_AUTO_START, so a stopped firewalld stays stopped. It reads
// presence, version, backend and zones, moves interfaces between zones at
// run time, creates zones and policies in the permanent configuration,
// reloads, and watches firewalld's Reloaded signal and the owner of its
// bus name (Watch).
//
// Errors firewalld raises are *Error values carrying firewalld's error
// code (ZONE_ALREADY_SET, INVALID_ZONE, NAME_CONFLICT …), told apart by
// code (HasCode, IsZoneAlreadySet, …), never by message text. A call
// firewalld does not have (an older version) is IsUnknownMethod.
package firewalld

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/godbus/dbus/v5"
)

// firewalld's bus name, objects and interfaces.
const (
	BusName         = "org.fedoraproject.FirewallD1"
	Path            = dbus.ObjectPath("/org/fedoraproject/FirewallD1")
	ConfigPath      = dbus.ObjectPath("/org/fedoraproject/FirewallD1/config")
	Interface       = "org.fedoraproject.FirewallD1"
	ZoneInterface   = Interface + ".zone"
	PolicyInterface = Interface + ".policy"
	ConfigInterface = Interface + ".config"
)

// Options tune a Client.
type Options struct {
	// CallTimeout bounds each call whose context has no deadline; 0 means
	// 30 s (firewalld answers a reload only once it is done, which takes
	// seconds with many zones).
	CallTimeout time.Duration
}

// Client talks to firewalld over one D-Bus connection. It is safe for
// concurrent use; it holds no state of firewalld's.
type Client struct {
	conn    *dbus.Conn
	timeout time.Duration
}

// New returns a client on conn. The connection stays the caller's: Close
// it after the client's last use.
func New(conn *dbus.Conn, opts Options) *Client {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	return &Client{conn: conn, timeout: opts.CallTimeout}
}

func (c *Client) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// call calls firewalld's method (interface iface, "name" short for error
// messages) on path and stores the reply in out.
func (c *Client) call(ctx context.Context, path dbus.ObjectPath, iface, method string, out []any, args ...any) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	call := c.conn.Object(BusName, path).CallWithContext(ctx, iface+"."+method, dbus.FlagNoAutoStart, args...)
	short := method
	switch iface {
	case ZoneInterface:
		short = "zone." + method
	case PolicyInterface:
		short = "policy." + method
	case ConfigInterface:
		short = "config." + method
	}
	if call.Err != nil {
		return wrapError(short, call.Err)
	}
	if len(out) > 0 {
		if err := call.Store(out...); err != nil {
			return fmt.Errorf("firewalld %s: reply: %w", short, err)
		}
	}
	return nil
}

// Running reports whether firewalld's bus name has an owner.
func (c *Client) Running(ctx context.Context) (bool, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var has bool
	err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, BusName).Store(&has)
	if err != nil {
		return false, fmt.Errorf("firewalld: NameHasOwner: %w", err)
	}
	return has, nil
}

// Owner returns the unique bus name owning firewalld's name, "" when none.
func (c *Client) Owner(ctx context.Context) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var owner string
	err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, BusName).Store(&owner)
	if err != nil {
		if dbusErrorName(err) == errNameHasNoOwner {
			return "", nil
		}
		return "", fmt.Errorf("firewalld: GetNameOwner: %w", err)
	}
	return owner, nil
}

func (c *Client) property(ctx context.Context, path dbus.ObjectPath, iface, name string) (dbus.Variant, error) {
	var v dbus.Variant
	err := c.call(ctx, path, "org.freedesktop.DBus.Properties", "Get", []any{&v}, iface, name)
	if err != nil {
		return v, fmt.Errorf("property %s: %w", name, err)
	}
	return v, nil
}

func (c *Client) stringProperty(ctx context.Context, path dbus.ObjectPath, iface, name string) (string, error) {
	v, err := c.property(ctx, path, iface, name)
	if err != nil {
		return "", err
	}
	s, ok := v.Value().(string)
	if !ok {
		return "", fmt.Errorf("firewalld: property %s is %s, want a string", name, v.Signature())
	}
	return s, nil
}

// Version returns firewalld's version ("1.3.3"), its `version` property.
func (c *Client) Version(ctx context.Context) (string, error) {
	return c.stringProperty(ctx, Path, Interface, "version")
}

// Backend returns the FirewallBackend property of the configuration
// object: "nftables" or "iptables". firewalld before 0.6.0 has no such
// property (and only the iptables backend); the call then fails.
func (c *Client) Backend(ctx context.Context) (string, error) {
	return c.stringProperty(ctx, ConfigPath, ConfigInterface, "FirewallBackend")
}

// DefaultZone returns the zone of interfaces no zone claims.
func (c *Client) DefaultZone(ctx context.Context) (string, error) {
	var z string
	err := c.call(ctx, Path, Interface, "getDefaultZone", []any{&z})
	return z, err
}

// ZoneOfInterface returns the run-time zone iface is bound to, "" when it
// is bound to none (it then falls into the default zone).
func (c *Client) ZoneOfInterface(ctx context.Context, iface string) (string, error) {
	var z string
	err := c.call(ctx, Path, ZoneInterface, "getZoneOfInterface", []any{&z}, iface)
	return z, err
}

// ChangeZoneOfInterface binds iface to zone at run time, moving it out of
// any zone it was in (zone.changeZoneOfInterface; zone "" means the default
// zone). The binding does not survive a firewalld reload or restart.
// It is idempotent: firewalld 1.x answers success for the zone the
// interface is in already, older versions may say ZONE_ALREADY_SET,
// which is success here too. An unknown zone is INVALID_ZONE
// (IsInvalidZone).
func (c *Client) ChangeZoneOfInterface(ctx context.Context, zone, iface string) error {
	var z string
	err := c.call(ctx, Path, ZoneInterface, "changeZoneOfInterface", []any{&z}, zone, iface)
	if IsZoneAlreadySet(err) {
		return nil
	}
	return err
}

// RemoveInterface takes iface out of zone at run time (firewalld's
// zone.removeInterface). An interface that is not in that zone is not an
// error.
func (c *Client) RemoveInterface(ctx context.Context, zone, iface string) error {
	var z string
	err := c.call(ctx, Path, ZoneInterface, "removeInterface", []any{&z}, zone, iface)
	if IsNotEnabled(err) || HasCode(err, "UNKNOWN_INTERFACE") {
		return nil
	}
	return err
}

// Zones returns the run-time zones.
func (c *Client) Zones(ctx context.Context) ([]string, error) {
	var zs []string
	err := c.call(ctx, Path, ZoneInterface, "getZones", []any{&zs})
	return zs, err
}

// ZoneExists reports whether name is a run-time zone.
func (c *Client) ZoneExists(ctx context.Context, name string) (bool, error) {
	zs, err := c.Zones(ctx)
	return slices.Contains(zs, name), err
}

// Policies returns the run-time policies (without the ones firewalld
// derives from zones). ErrPoliciesUnsupported before firewalld 0.9.0.
func (c *Client) Policies(ctx context.Context) ([]string, error) {
	var ps []string
	err := c.call(ctx, Path, PolicyInterface, "getPolicies", []any{&ps})
	if IsUnknownMethod(err) {
		return nil, fmt.Errorf("%w: %v", ErrPoliciesUnsupported, err)
	}
	return ps, err
}

// PolicyExists reports whether name is a run-time policy.
func (c *Client) PolicyExists(ctx context.Context, name string) (bool, error) {
	ps, err := c.Policies(ctx)
	return slices.Contains(ps, name), err
}

// Settings are the settings of a zone or policy as config.addZone2 and
// config.addPolicy take them (a{sv}; keys as firewalld's
// IMPORT_EXPORT_STRUCTURE: "short", "description", "target", "services",
// "protocols", "rules_str" (zones) or "rich_rules" (policies),
// "priority", "ingress_zones", "egress_zones" …).
type Settings = map[string]dbus.Variant

// AddZone creates zone name in the permanent configuration
// (config.addZone2; config.addZone with the old settings tuple on a
// firewalld without addZone2). The zone is usable only after a Reload.
// An existing name is NAME_CONFLICT (IsNameConflict).
func (c *Client) AddZone(ctx context.Context, name string, settings Settings) error {
	var p dbus.ObjectPath
	err := c.call(ctx, ConfigPath, ConfigInterface, "addZone2", []any{&p}, name, settings)
	if !IsUnknownMethod(err) {
		return err
	}
	old, cerr := oldZoneSettings(settings)
	if cerr != nil {
		return fmt.Errorf("firewalld config.addZone %s: %w", name, cerr)
	}
	return c.call(ctx, ConfigPath, ConfigInterface, "addZone", []any{&p}, name, old)
}

// AddPolicy creates policy name in the permanent configuration
// (config.addPolicy). The policy is usable only after a Reload.
// ErrPoliciesUnsupported before firewalld 0.9.0; an existing name is
// NAME_CONFLICT.
func (c *Client) AddPolicy(ctx context.Context, name string, settings Settings) error {
	var p dbus.ObjectPath
	err := c.call(ctx, ConfigPath, ConfigInterface, "addPolicy", []any{&p}, name, settings)
	if IsUnknownMethod(err) {
		return fmt.Errorf("%w: %v", ErrPoliciesUnsupported, err)
	}
	return err
}

// Reload makes firewalld reload its permanent configuration (the reload
// method, `firewall-cmd --reload`). Run-time changes are lost, interface
// bindings made with ChangeZoneOfInterface included. firewalld answers
// when the reload is done and emits Reloaded.
func (c *Client) Reload(ctx context.Context) error {
	return c.call(ctx, Path, Interface, "reload", nil)
}

// zoneTuple is the zone settings structure of config.addZone
// (sssbsasa(ss)asba(ssss)asasasasa(ss)b), firewalld before 0.9.
type zoneTuple struct {
	Version            string
	Short              string
	Description        string
	Unused             bool
	Target             string
	Services           []string
	Ports              []portTuple
	ICMPBlocks         []string
	Masquerade         bool
	ForwardPorts       []forwardPortTuple
	Interfaces         []string
	Sources            []string
	RichRules          []string
	Protocols          []string
	SourcePorts        []portTuple
	ICMPBlockInversion bool
}

type portTuple struct{ Port, Protocol string }

type forwardPortTuple struct{ Port, Protocol, ToPort, ToAddr string }

// oldZoneSettings converts addZone2's dictionary to addZone's tuple. Keys
// the tuple has no place for are an error, except "forward" (intra-zone
// forwarding, firewalld ≥ 0.9), which older firewalld lacks anyway.
func oldZoneSettings(s Settings) (zoneTuple, error) {
	t := zoneTuple{Target: "default"}
	var errs []error
	str := func(key string, dst *string) {
		if v, ok := s[key]; ok {
			x, ok := v.Value().(string)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s, want s", key, v.Signature()))
			}
			*dst = x
		}
	}
	strs := func(key string, dst *[]string) {
		if v, ok := s[key]; ok {
			x, ok := v.Value().([]string)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s, want as", key, v.Signature()))
			}
			*dst = x
		}
	}
	boolean := func(key string, dst *bool) {
		if v, ok := s[key]; ok {
			x, ok := v.Value().(bool)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s, want b", key, v.Signature()))
			}
			*dst = x
		}
	}
	str("version", &t.Version)
	str("short", &t.Short)
	str("description", &t.Description)
	str("target", &t.Target)
	strs("services", &t.Services)
	strs("icmp_blocks", &t.ICMPBlocks)
	boolean("masquerade", &t.Masquerade)
	strs("interfaces", &t.Interfaces)
	strs("sources", &t.Sources)
	strs("rules_str", &t.RichRules)
	strs("protocols", &t.Protocols)
	boolean("icmp_block_inversion", &t.ICMPBlockInversion)
	known := []string{"version", "short", "description", "target", "services", "icmp_blocks",
		"masquerade", "interfaces", "sources", "rules_str", "protocols", "icmp_block_inversion", "forward"}
	for k := range s {
		if !slices.Contains(known, k) {
			errs = append(errs, fmt.Errorf("setting %q is not converted to the settings of config.addZone", k))
		}
	}
	// Make the slices non-nil: an empty array, not a missing value.
	for _, p := range []*[]string{&t.Services, &t.ICMPBlocks, &t.Interfaces, &t.Sources, &t.RichRules, &t.Protocols} {
		if *p == nil {
			*p = []string{}
		}
	}
	t.Ports, t.SourcePorts, t.ForwardPorts = []portTuple{}, []portTuple{}, []forwardPortTuple{}
	return t, errors.Join(errs...)
}
