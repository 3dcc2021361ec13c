// Package daemon is netwardend's core: it prepares the daemon's
// directories, serves the D-Bus API from its state, tells the service
// manager when it is ready, and runs until it is told to stop.
//
//	err := daemon.Run(ctx, daemon.Config{
//		ConfigDir: "/etc/netwarden",
//		StateDir:  "/run/netwarden",
//		Version:   version.String(),
//		Logger:    logger,
//	})
//
// Run blocks until ctx is cancelled (a clean stop, nil error) or the
// daemon cannot go on (the bus connection or the bus name is lost). It
// parses no flags and handles no signals: cmd/netwardend does that and
// cancels ctx.
//
// Start-up order matters to clients: the API objects are exported before
// the bus name is requested, and READY=1 is sent only once the name is
// owned, so whoever sees the name (or systemd's "started") can call the
// API at once. Shutdown sends STOPPING=1, releases the name, removes the
// objects and closes the connection.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/firewalld"
	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/systemd"
)

// shutdownTimeout bounds the bus calls made while stopping, when the
// caller's context is already cancelled.
const shutdownTimeout = 5 * time.Second

// Run runs the daemon with cfg until ctx is cancelled, then shuts it down
// and returns nil. It returns an error, wrapped with what it was doing, if
// the configuration is invalid, a directory is unusable, the bus cannot
// be reached, the bus name is owned by someone else (a
// *dbusapi.NameTakenError), or the bus connection or name is lost.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		if cfg.LinkEvents != nil {
			cfg.LinkEvents.Close()
		}
		return fmt.Errorf("invalid configuration: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Backend == "" {
		cfg.Backend = BackendAuto
	}
	connect := cfg.Connect
	if connect == nil {
		connect = connectSystemBus
	}
	notifier := cfg.Notifier
	if notifier == nil {
		notifier = systemd.Notifier{}
	}

	log.Info("starting", "version", cfg.Version, "config_dir", cfg.ConfigDir,
		"state_dir", cfg.StateDir, "backend", cfg.Backend)
	// Pings start at once: adopting a large state may take longer than
	// the watchdog's period.
	wd := startWatchdog(ctx, cfg.Watchdog, notifier, log)
	defer wd.stop()
	if cfg.LinkEvents != nil {
		links, err := openLinkEvents(cfg.LinkEvents, log)
		if err != nil {
			return err
		}
		go links.run(ctx, log)
		defer links.Close()
	}
	if err := prepareDirs(cfg); err != nil {
		return err
	}

	conn, err := connect(ctx)
	if err != nil {
		return startFailed(ctx, log, fmt.Errorf("connect to the system bus: %w", err))
	}
	defer conn.Close()
	// Registered before the name is requested, so that NameLost cannot
	// slip past.
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	defer conn.RemoveSignal(signals)

	// Before the name is ours: only a question to firewalld (its backend).
	backend, err := chooseBackend(ctx, cfg, firewalld.New(conn, firewalld.Options{}), log)
	if err != nil {
		return err
	}
	api := newCore(cfg.Version, backend)
	// Calls still waiting for the engine when Run returns fail.
	defer api.start(nil, nil, errors.New("netwardend stopped"))
	calls := newActivity()
	srv, err := dbusapi.Export(conn, api, dbusapi.Options{Logger: log, OnCall: calls.begin})
	if err != nil {
		return err
	}
	defer srv.Unexport()
	if err := dbusapi.RequestName(ctx, conn); err != nil {
		return startFailed(ctx, log, err)
	}
	// Only the owner of the bus name touches the kernel: a second
	// daemon has given up by now.
	var runErr error
	fw := firewalld.New(conn, firewalld.Options{})
	engine, nets, err := startEngine(ctx, cfg, backend, fw, log)
	api.start(engine, nets, err)
	switch {
	case err != nil && ctx.Err() == nil:
		runErr = err // the shutdown below releases the name
	case err != nil:
		log.Info("stop requested during start-up")
	default:
		wd.setProbe(func() { engine.Stats(); nets.List() })
		engine.AnnounceLearned(srv)
		defer engine.Close() // stops the learner; the kernel state stays
		// Adoption's garbage (parsed definitions, a large first
		// transaction) goes back to the system now rather than at the
		// runtime's leisure: a long-running service's resident size
		// should be what it holds.
		debug.FreeOSMemory()
		log.Info("ready", "bus_name", dbusapi.BusName, "unique_name", uniqueName(conn))
		if err := notifier.Notify(systemd.Ready); err != nil {
			log.Warn("cannot tell the service manager we are ready", "err", err)
		}
		loopCtx, stopLoops := context.WithCancel(ctx)
		var loops sync.WaitGroup
		rec := newReconciler(log, engine, nets, func() {
			if err := srv.PropertiesChanged(dbusapi.ManagerInterface, "LastFirewallReapply", "Restores"); err != nil {
				log.Warn("cannot emit signal", "signal", "PropertiesChanged", "error", err)
			}
		})
		api.setReconciler(rec)
		loops.Add(2)
		go func() {
			defer loops.Done()
			rec.run(loopCtx, cfg.VerifyInterval)
		}()
		go func() {
			defer loops.Done()
			reloads(loopCtx, cfg.Reload, rec, notifier, log)
		}()
		if running, err := fw.Running(ctx); err == nil {
			api.firewalld.Store(running)
		}
		if events, err := fw.Watch(loopCtx); err != nil {
			log.Warn("cannot watch firewalld; its reloads will be noticed by the periodic check only", "error", err)
		} else {
			loops.Add(1)
			go func() {
				defer loops.Done()
				watchFirewalld(loopCtx, events, api, srv, nets, rec, log)
			}()
		}
		if w, ok := backend.(interface {
			Watch(context.Context) (<-chan struct{}, error)
		}); ok { // netfilter.Watcher
			events, err := w.Watch(loopCtx)
			if err != nil {
				log.Warn("cannot watch netwarden's tables for changes by others; relying on the periodic check", "error", err)
			} else {
				loops.Add(1)
				go func() {
					defer loops.Done()
					rec.watch(loopCtx, events, "netwarden's tables changed by someone else")
				}()
			}
		}
		var idle <-chan struct{}
		if cfg.IdleTimeout > 0 {
			calls.touch() // idle time counts from now
			idle = watchIdle(loopCtx, cfg.IdleTimeout, calls, engine, nets)
		}
		runErr = serve(ctx, conn, signals, idle)
		if runErr == errIdle {
			log.Info("idle: no active network, no binding and no call", "idle_timeout", cfg.IdleTimeout)
			runErr = nil
		}
		// Nothing touches the kernel once the name is released.
		stopLoops()
		loops.Wait()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		nets.Shutdown(sctx)
		cancel()
	}

	log.Info("stopping", "reason", stopReason(runErr))
	wd.stop()
	if err := notifier.Notify(systemd.Stopping); err != nil {
		log.Warn("cannot tell the service manager we are stopping", "err", err)
	}
	if conn.Connected() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		if err := dbusapi.ReleaseName(sctx, conn); err != nil {
			log.Warn("cannot release the bus name", "err", err)
		} else {
			log.Debug("released bus name", "bus_name", dbusapi.BusName)
		}
		// Calls the bus delivered before the release are answered;
		// later ones go to the next owner (bus activation starts one).
		if !calls.drain(sctx) {
			log.Warn("calls still running at exit are cancelled")
		}
		cancel()
	}
	srv.Unexport()
	if err := conn.Close(); err != nil {
		log.Debug("closing the bus connection", "err", err)
	}
	if runErr != nil {
		return runErr
	}
	log.Info("stopped")
	return nil
}

// errIdle is serve's report of the idle timeout.
var errIdle = errors.New("idle")

// reloads handles reload requests (SIGHUP) until ctx ends: each is
// reported as RELOADING=1, runs a verification of the kernel state (a
// restore where it differs), and ends with READY=1.
func reloads(ctx context.Context, reload <-chan struct{}, rec *reconciler, notifier Notifier, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
		}
		if err := notifier.Notify(systemd.Reloading()); err != nil {
			log.Warn("cannot tell the service manager we are reloading", "err", err)
		}
		log.Info("reload: verifying kernel state")
		if err := rec.request(ctx, "SIGHUP"); err != nil {
			log.Error("kernel state could not be restored", "error", err)
		} else {
			log.Info("reload done")
		}
		if err := notifier.Notify(systemd.Ready); err != nil {
			log.Warn("cannot tell the service manager the reload is done", "err", err)
		}
	}
}

// serve waits until ctx is cancelled (nil), idle is closed (errIdle),
// or the daemon loses its bus connection or its name (an error). Method
// calls are handled by the connection's own goroutines meanwhile.
func serve(ctx context.Context, conn *dbus.Conn, signals <-chan *dbus.Signal, idle <-chan struct{}) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-idle:
			return errIdle
		case <-conn.Context().Done():
			return errors.New("lost the connection to the system bus")
		case s, ok := <-signals:
			if !ok {
				return errors.New("lost the connection to the system bus")
			}
			if s.Name == "org.freedesktop.DBus.NameLost" && len(s.Body) == 1 && s.Body[0] == dbusapi.BusName {
				return fmt.Errorf("lost the bus name %s", dbusapi.BusName)
			}
		}
	}
}

// startFailed turns a start-up error caused by ctx being cancelled (a
// stop requested while starting) into a clean stop.
func startFailed(ctx context.Context, log *slog.Logger, err error) error {
	if ctx.Err() != nil {
		log.Info("stopped", "during", "start-up")
		return nil
	}
	return err
}

func stopReason(err error) string {
	if err != nil {
		return err.Error()
	}
	return "requested"
}

// uniqueName returns the connection's unique bus name (":1.42").
func uniqueName(conn *dbus.Conn) string {
	if names := conn.Names(); len(names) > 0 {
		return names[0]
	}
	return ""
}

// connectSystemBus connects to the system bus named by
// DBUS_SYSTEM_BUS_ADDRESS (or the standard socket), giving up when ctx
// is cancelled.
func connectSystemBus(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.SystemBusPrivate()
	if err != nil {
		return nil, err
	}
	// Auth and Hello take no context: closing the connection is what
	// unblocks them.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate: %w", errors.Join(ctx.Err(), err))
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("hello: %w", errors.Join(ctx.Err(), err))
	}
	if !stop() {
		return nil, ctx.Err()
	}
	return conn, nil
}

// startEngine opens the filter catalogue, the bindings and the networks,
// and makes the kernel enforce them with backend: the bindings and the
// firewalls of the networks a previous daemon left running in one first
// Apply, then the networks are adopted and autostarted.
func startEngine(ctx context.Context, cfg Config, backend netfilter.Backend, fw *firewalld.Client, log *slog.Logger) (*Engine, *Networks, error) {
	filters, err := OpenFilters(cfg.ConfigDir, log)
	if err != nil {
		return nil, nil, err
	}
	caps, err := backend.Probe(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("probe the %s backend: %w", backend.Name(), err)
	}
	log.Info("firewall backend", "name", backend.Name(), "capabilities", caps.String(),
		"stateful_filtering", caps.StatefulPath)
	links, err := network.NewLinks(netns.None())
	if err != nil {
		return nil, nil, err
	}
	nets, err := OpenNetworks(NetworksConfig{ConfigDir: cfg.ConfigDir, StateDir: cfg.StateDir,
		Dnsmasq: cfg.Dnsmasq, Links: links, Logger: log, Firewalld: fw})
	if err != nil {
		return nil, nil, err
	}
	e, err := NewEngine(ctx, log, backend, filters, cfg.StateDir, nets.ActiveRules()...)
	if err != nil {
		return nil, nil, err
	}
	e.caps = caps
	if nets.firewalldRunning(ctx) {
		firewalldStarted(ctx, nets)
	}
	nets.Attach(ctx, e)
	return e, nets, nil
}

// watchFirewalld follows firewalld: a reload or a (re)start triggers a
// re-apply (which puts the bridges back into their zones), a start also
// makes sure netwarden's zones exist, and FirewalldRunning follows its
// presence on the bus.
func watchFirewalld(ctx context.Context, events <-chan firewalld.Event, api *core, srv *dbusapi.Server, nets *Networks, rec *reconciler, log *slog.Logger) {
	announce := func(running bool) {
		if api.firewalld.Swap(running) != running {
			if err := srv.PropertiesChanged(dbusapi.ManagerInterface, "FirewalldRunning"); err != nil {
				log.Warn("cannot emit signal", "signal", "PropertiesChanged", "error", err)
			}
		}
	}
	for ev := range events {
		switch ev.Kind {
		case firewalld.Reloaded:
			announce(true)
			rec.trigger("firewalld reloaded")
		case firewalld.Started:
			log.Info("firewalld started", "owner", ev.Owner)
			announce(true)
			firewalldStarted(ctx, nets)
			rec.trigger("firewalld started")
		case firewalld.Stopped:
			log.Info("firewalld stopped; netwarden's own rules stay in force")
			announce(false)
		}
	}
}
