package dbusapi

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
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
	// Cached are the actions whose positive answers are remembered per
	// caller and object for CacheTTL (the read actions: reads are the
	// API's most frequent calls, and asking polkitd costs about a
	// millisecond each). Refusals, interactive checks and root-only
	// fallbacks are never cached. nil caches nothing.
	Cached map[string]bool
	// CacheTTL is how long a cached answer holds; zero means
	// DefaultAuthCacheTTL. A rules.d change that takes a read right away
	// applies to a caller within that time.
	CacheTTL time.Duration

	// unreachable is set while polkitd does not answer.
	unreachable atomic.Bool

	mu    sync.Mutex
	cache map[string]time.Time // cache key → expiry
}

// DefaultAuthCacheTTL is how long a cached read authorization holds when
// PolkitAuthorizer's CacheTTL is zero.
const DefaultAuthCacheTTL = 5 * time.Second

// maxAuthCache bounds the cache; it is emptied when full.
const maxAuthCache = 4096

// cacheKey identifies an answer: caller, action and object.
func cacheKey(req AuthRequest) string {
	var b strings.Builder
	b.WriteString(req.Sender)
	b.WriteByte(0)
	b.WriteString(req.Action)
	for _, k := range slices.Sorted(maps.Keys(req.Details)) {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(req.Details[k])
	}
	return b.String()
}

// cached reports whether a positive answer to req is remembered.
func (a *PolkitAuthorizer) cached(req AuthRequest) bool {
	if !a.Cached[req.Action] || req.Interactive {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.cache[cacheKey(req)]
	return ok && time.Now().Before(exp)
}

// remember records a positive answer to req.
func (a *PolkitAuthorizer) remember(req AuthRequest) {
	if !a.Cached[req.Action] || req.Interactive {
		return
	}
	ttl := a.CacheTTL
	if ttl <= 0 {
		ttl = DefaultAuthCacheTTL
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache == nil || len(a.cache) >= maxAuthCache {
		a.cache = map[string]time.Time{}
	}
	a.cache[cacheKey(req)] = time.Now().Add(ttl)
}

// NewPolkitAuthorizer returns the authorizer for a service on conn,
// caching positive answers to the read actions.
func NewPolkitAuthorizer(conn *dbus.Conn, log *slog.Logger) *PolkitAuthorizer {
	return &PolkitAuthorizer{Authority: polkit.NewAuthority(conn), Bus: conn.BusObject(), Logger: log,
		Cached: map[string]bool{polkit.ActionNetworkRead: true, polkit.ActionNWFilterRead: true, polkit.ActionBindingRead: true}}
}

// Authorize implements Authorizer.
func (a *PolkitAuthorizer) Authorize(ctx context.Context, req AuthRequest) error {
	if a.cached(req) {
		return nil
	}
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
			a.remember(req)
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
