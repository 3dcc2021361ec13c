// Command netwardend is the netwarden system service: libvirt-style
// virtual networks and nwfilter firewalling for virtual machines, served
// on the D-Bus system bus as org.netwarden1. `netwardend --help` is its
// manual.
//
// This file only parses the command line, sets up logging and signal
// handling, and calls daemon.Run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/netwarden/netwarden/daemon"
	"github.com/netwarden/netwarden/systemd"
	"github.com/netwarden/netwarden/version"
)

// Exit statuses.
const (
	exitOK      = 0 // stopped cleanly, or --help / --version
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // bad command line
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its inputs and outputs explicit; it returns the exit
// status.
func run(args []string, stdout, stderr io.Writer) int {
	opts, fs, err := parseArgs(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout, fs)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "netwardend: %v\nTry 'netwardend --help' for more information.\n", err)
		return exitUsage
	case opts.version:
		fmt.Fprintln(stdout, "netwardend", version.String())
		return exitOK
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opts.logLevel}))

	// SIGTERM and SIGINT stop the daemon; once stopping, a second one
	// has its default effect, so a stuck shutdown can still be killed.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	context.AfterFunc(ctx, stop)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGHUP asks the engine to verify the kernel state and restore what
	// is missing: the same path as every other change.
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("reload requested", "signal", "SIGHUP")
				select {
				case reload <- struct{}{}:
				default: // one is pending already
				}
			}
		}
	}()

	cfg := opts.config
	cfg.Reload = reload
	cfg.Version = version.String()
	cfg.Logger = log
	takeServiceManagerSettings(&cfg, log)
	if err := daemon.Run(ctx, cfg); err != nil {
		log.Error("netwardend failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// takeServiceManagerSettings takes what systemd (or
// systemd-socket-activate) handed over: the sockets of netwardend.socket
// (LISTEN_FDS) and the watchdog period (WATCHDOG_USEC).
func takeServiceManagerSettings(cfg *daemon.Config, log *slog.Logger) {
	socks, err := systemd.PassedSockets()
	if err != nil {
		log.Warn("ignoring passed descriptors", "err", err)
	}
	for _, s := range socks {
		if s.IsRouteNetlink() && cfg.LinkEvents == nil {
			cfg.LinkEvents = s.File // daemon.Run checks, logs and closes it
			continue
		}
		// netwardend listens on nothing: a socket unit that passes one
		// (a unix listener, say) is tolerated and its socket closed.
		log.Info("ignoring a passed socket netwardend does not use", "name", s.Name, "socket", s.String())
		s.File.Close()
	}
	wd, err := systemd.WatchdogInterval()
	if err != nil {
		log.Warn("watchdog off", "err", err)
	}
	cfg.Watchdog = wd
}

// options is the parsed command line.
type options struct {
	config   daemon.Config // ConfigDir, StateDir, Backend and IdleTimeout
	logLevel slog.Level
	version  bool
}

// parseArgs parses the command line. It returns flag.ErrHelp for --help
// and -h; the flag set it returns describes the options for usage.
func parseArgs(args []string) (options, *flag.FlagSet, error) {
	opts := options{config: daemon.Config{Backend: daemon.BackendAuto}, logLevel: slog.LevelInfo}
	fs := flag.NewFlagSet("netwardend", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors and prints help itself
	fs.StringVar(&opts.config.ConfigDir, "config-dir", "/etc/netwarden",
		"Directory of persistent definitions: networks and filters. Created with mode 0755 if absent.")
	fs.StringVar(&opts.config.StateDir, "state-dir", "/run/netwarden",
		"Directory of runtime state (ports, bindings) that outlives one daemon process. "+
			"Created with mode 0700 if absent; the daemon does not start without it.")
	fs.Var(backendFlag{&opts.config.Backend}, "backend", "Firewall backend: nftables, iptables, or auto, "+
		"which picks nftables where the kernel supports it and iptables otherwise.")
	fs.DurationVar(&opts.config.IdleTimeout, "idle-timeout", 0,
		"Exit (status 0) after this long without an active network, a binding or an API call, "+
			"for example 120s; 0 never exits. D-Bus activation starts the daemon again on the next call.")
	fs.Var(levelFlag{&opts.logLevel}, "log-level", "Least severe messages logged: debug, info, warn or error.")
	fs.BoolVar(&opts.version, "version", false, "Print the version and exit.")
	if err := fs.Parse(args); err != nil {
		return opts, fs, err
	}
	if fs.NArg() > 0 {
		return opts, fs, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if opts.config.IdleTimeout < 0 {
		return opts, fs, fmt.Errorf("--idle-timeout %v: must not be negative", opts.config.IdleTimeout)
	}
	for _, d := range []struct{ flag, path string }{
		{"--config-dir", opts.config.ConfigDir},
		{"--state-dir", opts.config.StateDir},
	} {
		if !strings.HasPrefix(d.path, "/") {
			return opts, fs, fmt.Errorf("%s %q: must be an absolute path", d.flag, d.path)
		}
	}
	return opts, fs, nil
}

// backendFlag is --backend: a daemon.Backend checked by ParseBackend.
type backendFlag struct{ b *daemon.Backend }

func (f backendFlag) String() string {
	if f.b == nil {
		return ""
	}
	return string(*f.b)
}

func (f backendFlag) Set(s string) error {
	b, err := daemon.ParseBackend(s)
	if err != nil {
		return err
	}
	*f.b = b
	return nil
}

// levelFlag is --log-level: exactly the four level names of the manual
// (slog's own parser would also take offsets such as "info+2").
type levelFlag struct{ l *slog.Level }

var levelNames = []struct {
	name  string
	level slog.Level
}{
	{"debug", slog.LevelDebug},
	{"info", slog.LevelInfo},
	{"warn", slog.LevelWarn},
	{"error", slog.LevelError},
}

func (f levelFlag) String() string {
	if f.l == nil {
		return ""
	}
	for _, n := range levelNames {
		if n.level == *f.l {
			return n.name
		}
	}
	return f.l.String()
}

func (f levelFlag) Set(s string) error {
	for _, n := range levelNames {
		if n.name == s {
			*f.l = n.level
			return nil
		}
	}
	return fmt.Errorf("unknown log level %q: want debug, info, warn or error", s)
}
