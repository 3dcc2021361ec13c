package zones

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/netwarden/netwarden/firewalld"
)

// Result says what Ensure found and did.
type Result struct {
	// Running: firewalld was running (nothing else is set otherwise).
	Running bool
	// Version of the running firewalld.
	Version string
	// Created are the zones and policies Ensure added to firewalld's
	// permanent configuration ("zone libvirt", "policy libvirt-to-host").
	Created []string
	// Loaded are those that were in the permanent configuration already
	// (added earlier, never reloaded) and that the reload brought in.
	Loaded []string
	// Reloaded: Ensure reloaded firewalld (once at most).
	Reloaded bool
	// PoliciesUnsupported: firewalld has no policies (before 0.9.0), so
	// none was created; routed networks cannot use libvirt-routed.
	PoliciesUnsupported bool
}

// Ensure makes sure a running firewalld has netwarden's zones and (where
// firewalld has policies) policies: each one missing from firewalld's
// run-time configuration is added to the permanent configuration, then
// firewalld is reloaded once so they take effect, and everything is
// logged. Without firewalld it does nothing. A second call finds
// everything present and does nothing.
//
// The reload drops run-time zone bindings of interfaces: the caller
// re-binds its bridges after Ensure (as after any Reloaded).
func Ensure(ctx context.Context, c *firewalld.Client, log *slog.Logger) (Result, error) {
	return EnsureDefinitions(ctx, c, log, All())
}

// EnsureDefinitions is Ensure for the given definitions (zones before
// the policies that name them).
func EnsureDefinitions(ctx context.Context, c *firewalld.Client, log *slog.Logger, defs []*Definition) (Result, error) {
	var res Result
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	running, err := c.Running(ctx)
	if err != nil || !running {
		return res, err
	}
	res.Running = true
	if res.Version, err = c.Version(ctx); err != nil {
		return res, err
	}
	zones, err := c.Zones(ctx)
	if err != nil {
		return res, err
	}
	var policies []string
	if firewalld.SupportsPolicies(res.Version) {
		policies, err = c.Policies(ctx)
		if errors.Is(err, firewalld.ErrPoliciesUnsupported) {
			res.PoliciesUnsupported = true
		} else if err != nil {
			return res, err
		}
	} else {
		res.PoliciesUnsupported = true
	}
	if res.PoliciesUnsupported && slices.ContainsFunc(defs, func(d *Definition) bool { return d.Kind == Policy }) {
		log.Warn("firewalld has no policies: routed networks cannot use the libvirt-routed zone and go into the libvirt zone, whose rules reject traffic from the LAN to the guests; upgrade firewalld to 0.9.0 or later",
			"firewalld_version", res.Version)
	}
	var missing []*Definition
	for _, d := range defs {
		switch {
		case d.Kind == Zone && !slices.Contains(zones, d.Name):
			missing = append(missing, d)
		case d.Kind == Policy && !res.PoliciesUnsupported && !slices.Contains(policies, d.Name):
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return res, nil
	}
	for _, d := range missing {
		what := d.Kind.String() + " " + d.Name
		if d.Kind == Zone {
			err = c.AddZone(ctx, d.Name, d.Settings())
		} else {
			err = c.AddPolicy(ctx, d.Name, d.Settings())
		}
		switch {
		case firewalld.IsNameConflict(err):
			// In the permanent configuration but not loaded yet.
			log.Info("firewalld: "+what+" is in the permanent configuration but not loaded; reloading", "name", d.Name)
			res.Loaded = append(res.Loaded, what)
		case err != nil:
			return res, fmt.Errorf("adding firewalld %s: %w", what, err)
		default:
			log.Info("firewalld: added "+what+" to firewalld's permanent configuration", "name", d.Name)
			res.Created = append(res.Created, what)
		}
	}
	if err := c.Reload(ctx); err != nil {
		return res, fmt.Errorf("reloading firewalld after adding %d zones and policies: %w", len(missing), err)
	}
	res.Reloaded = true
	log.Info("firewalld: reloaded to load netwarden's zones and policies", "created", res.Created, "loaded", res.Loaded)
	// Check that the reload brought them in.
	if zones, err = c.Zones(ctx); err != nil {
		return res, err
	}
	if !res.PoliciesUnsupported {
		if policies, err = c.Policies(ctx); err != nil {
			return res, err
		}
	}
	for _, d := range missing {
		if d.Kind == Zone && !slices.Contains(zones, d.Name) || d.Kind == Policy && !slices.Contains(policies, d.Name) {
			return res, fmt.Errorf("firewalld %s %s still missing after the reload (see firewalld's log)", d.Kind, d.Name)
		}
	}
	return res, nil
}
