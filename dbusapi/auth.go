package dbusapi

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
)

// AuthRequest is one question to an Authorizer.
type AuthRequest struct {
	// Sender is the caller's unique bus name.
	Sender string
	// Action is the polkit action (polkit.Action*).
	Action string
	// Details name the object the call is about, with libvirt's keys
	// (polkit.Detail*); nil when the call names none (List*).
	Details map[string]string
	// Interactive is true when the caller set the message flag
	// ALLOW_INTERACTIVE_AUTHORIZATION: it is prepared to wait while
	// someone authenticates.
	Interactive bool
}

// Authorizer decides whether the sender of a call may perform a polkit
// action. It returns nil to allow, a *DeniedError to refuse, and must
// return by the time ctx ends.
type Authorizer interface {
	Authorize(ctx context.Context, req AuthRequest) error
}

// DefaultAuthTimeout bounds one authorization when PolkitAuthorizer's
// Timeout is zero.
const DefaultAuthTimeout = 10 * time.Second

// DefaultInteractiveAuthTimeout bounds one interactive authorization
// (someone may be typing a password) when PolkitAuthorizer's
// InteractiveTimeout is zero; the Server gives such a call as long.
const DefaultInteractiveAuthTimeout = 5 * time.Minute

// PolkitAuthorizer asks polkitd: CheckAuthorization for the caller's
// system-bus-name subject, with the request's details, and with
// AllowUserInteraction when the request is interactive.
//
// When polkitd cannot answer — not installed, not activatable, hung past
// the timeout, or reporting an error — it falls back to root only, for
// reading as for managing: a caller whose connection belongs to uid 0 is
// allowed, everyone else refused. The first such fallback is logged as a
// warning (and polkitd's return as information), the others at debug
// level.
type PolkitAuthorizer struct {
	// Authority is polkitd's client.
	Authority *polkit.Authority
	// Bus is the bus daemon's object, asked for the caller's uid.
	Bus dbus.BusObject
	// Timeout bounds a polkit call; zero means DefaultAuthTimeout.
	Timeout time.Duration
	// InteractiveTimeout bounds an interactive polkit call; zero means
	// DefaultInteractiveAuthTimeout.
	InteractiveTimeout time.Duration
	// Logger receives the fallbacks; nil means slog.Default().
	Logger *slog.Logger

	// unreachable is set while polkitd does not answer.
	unreachable atomic.Bool
}

// NewPolkitAuthorizer returns the authorizer for a service on conn.
func NewPolkitAuthorizer(conn *dbus.Conn, log *slog.Logger) *PolkitAuthorizer {
	return &PolkitAuthorizer{Authority: polkit.NewAuthority(conn), Bus: conn.BusObject(), Logger: log}
}

// Authorize implements Authorizer.
func (a *PolkitAuthorizer) Authorize(ctx context.Context, req AuthRequest) error {
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultAuthTimeout
	}
	var flags polkit.CheckFlags
	ptimeout := timeout
	if req.Interactive {
		flags |= polkit.AllowUserInteraction
		ptimeout = a.InteractiveTimeout
		if ptimeout <= 0 {
			ptimeout = DefaultInteractiveAuthTimeout
		}
	}
	pctx, cancel := context.WithTimeout(ctx, ptimeout)
	res, err := a.Authority.CheckWithDetails(pctx, polkit.BusNameSubject(req.Sender), req.Action, maps.Clone(req.Details), flags)
	cancel()
	if err == nil {
		if a.unreachable.CompareAndSwap(true, false) {
			log.Info("polkit answers again", "action", req.Action)
		}
		if res.Authorized {
			return nil
		}
		reason := "polkit refused it"
		if res.Challenge {
			reason = "polkit requires authentication, and no agent can ask for it"
			if !req.Interactive {
				reason = "polkit requires authentication, and the caller did not allow interactive authorization"
			}
		}
		return &DeniedError{Action: req.Action, Reason: reason}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("authorize %s: %w", req.Action, ctx.Err())
	}
	// polkitd could not answer: root only.
	first := a.unreachable.CompareAndSwap(false, true)
	if first {
		log.Warn("polkit is unavailable: only root is allowed until it answers", "action", req.Action, "error", err)
	}
	uctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var uid uint32
	if uerr := a.Bus.CallWithContext(uctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, req.Sender).Store(&uid); uerr != nil {
		log.Warn("polkit unavailable and the caller's uid unknown: refused", "action", req.Action, "sender", req.Sender,
			"polkit_error", err, "error", uerr)
		return &DeniedError{Action: req.Action, Reason: fmt.Sprintf("polkit is unavailable (%v) and the caller's uid is unknown", err)}
	}
	if uid != 0 {
		log.Debug("polkit unavailable: refused a caller other than root", "action", req.Action, "sender", req.Sender,
			"uid", uid, "polkit_error", err)
		return &DeniedError{Action: req.Action, Reason: fmt.Sprintf("polkit is unavailable (%v); only root is allowed without it", err)}
	}
	log.Debug("polkit unavailable: allowed root", "action", req.Action, "sender", req.Sender, "polkit_error", err)
	return nil
}
