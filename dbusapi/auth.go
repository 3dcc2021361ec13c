package dbusapi

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
)

// Authorizer decides whether the sender of a call may perform a polkit
// action. It returns nil to allow, a *DeniedError to refuse, and must
// return by the time ctx ends.
type Authorizer interface {
	Authorize(ctx context.Context, sender, action string) error
}

// DefaultAuthTimeout bounds one authorization when PolkitAuthorizer's
// Timeout is zero.
const DefaultAuthTimeout = 10 * time.Second

// PolkitAuthorizer asks polkitd (CheckAuthorization for the caller's
// system-bus-name subject, without user interaction). When polkitd
// cannot answer — not installed, not activatable, hung past Timeout, or
// reporting an error — it falls back to root only: a caller whose
// connection belongs to uid 0 is allowed, everyone else refused.
type PolkitAuthorizer struct {
	// Authority is polkitd's client.
	Authority *polkit.Authority
	// Bus is the bus daemon's object, asked for the caller's uid.
	Bus dbus.BusObject
	// Timeout bounds the polkit call; zero means DefaultAuthTimeout.
	Timeout time.Duration
	// Logger receives the fallbacks; nil means slog.Default().
	Logger *slog.Logger
}

// NewPolkitAuthorizer returns the authorizer for a service on conn.
func NewPolkitAuthorizer(conn *dbus.Conn, log *slog.Logger) *PolkitAuthorizer {
	return &PolkitAuthorizer{Authority: polkit.NewAuthority(conn), Bus: conn.BusObject(), Logger: log}
}

// Authorize implements Authorizer.
func (a *PolkitAuthorizer) Authorize(ctx context.Context, sender, action string) error {
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultAuthTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	res, err := a.Authority.Check(pctx, polkit.BusNameSubject(sender), action, 0)
	cancel()
	if err == nil {
		if res.Authorized {
			return nil
		}
		reason := "polkit refused it"
		if res.Challenge {
			reason = "polkit requires authentication, and no agent can ask for it"
		}
		return &DeniedError{Action: action, Reason: reason}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("authorize %s: %w", action, ctx.Err())
	}
	// polkitd could not answer: root only.
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}
	uctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var uid uint32
	if uerr := a.Bus.CallWithContext(uctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, sender).Store(&uid); uerr != nil {
		log.Warn("polkit unavailable and the caller's uid unknown: refused", "action", action, "sender", sender,
			"polkit_error", err, "error", uerr)
		return &DeniedError{Action: action, Reason: fmt.Sprintf("polkit is unavailable (%v) and the caller's uid is unknown", err)}
	}
	if uid != 0 {
		log.Info("polkit unavailable: refused a caller other than root", "action", action, "sender", sender,
			"uid", uid, "polkit_error", err)
		return &DeniedError{Action: action, Reason: fmt.Sprintf("polkit is unavailable (%v); only root is allowed without it", err)}
	}
	log.Debug("polkit unavailable: allowed root", "action", action, "sender", sender, "polkit_error", err)
	return nil
}
