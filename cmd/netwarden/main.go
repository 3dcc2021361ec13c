// Command netwarden is the command-line client of netwardend. It speaks
// the org.netwarden1 D-Bus API on the system bus (honouring
// DBUS_SYSTEM_BUS_ADDRESS) with virsh's verbs, arguments, tables and
// messages, so that a libvirt user's habits work:
//
//	netwarden net-list --all
//	netwarden net-define net.xml; netwarden net-start NAME
//	netwarden net-info NAME; netwarden net-dhcp-leases NAME
//	netwarden net-port-create NAME port.xml
//	netwarden nwfilter-list
//	netwarden nwfilter-define web.xml        (- reads standard input)
//	netwarden nwfilter-dumpxml web
//	netwarden nwfilter-edit web
//	netwarden nwfilter-undefine web
//	netwarden nwfilter-binding-create vnet0.xml
//	netwarden nwfilter-binding-list
//	netwarden nwfilter-binding-dumpxml vnet0
//	netwarden nwfilter-binding-delete vnet0
//	netwarden event --loop
//	netwarden version
//
// Errors go to standard error as "error: …" with the daemon's error name
// in words. Exit status: 0 success, 1 failure, 2 usage error. See
// `netwarden --help` and `netwarden VERB --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/version"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed (e.g. the daemon is unreachable)
	exitUsage   = 2
)

// callTimeout bounds one call to the daemon, bus activation included.
const callTimeout = 30 * time.Second

// defaultSystemBus is the system bus's address when
// DBUS_SYSTEM_BUS_ADDRESS is not set.
const defaultSystemBus = "unix:path=/var/run/dbus/system_bus_socket"

// session is one run of the program: its streams, environment and the
// ways it reaches the daemon and the editor.
type session struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// quiet suppresses messages and table headers (-q).
	quiet bool
	// interactive: standard input is a terminal, questions may be asked.
	interactive bool
	// signals: the process's signals are ours to handle (not in tests).
	signals bool
	// dial connects to the daemon; the function it returns disconnects.
	dial func() (api, func(), error)
	// edit runs the editor on a file.
	edit func(s *session, path string) error
	// now is the clock of --timestamp.
	now func() time.Time
	// loc is the time zone of times printed (net-dhcp-leases); nil
	// means the local one.
	loc *time.Location
}

// callContext bounds one call to the daemon.
func (s *session) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, callTimeout)
}

// say prints a confirmation message, unless quiet.
func (s *session) say(format string, a ...any) {
	if !s.quiet {
		fmt.Fprintf(s.stdout, format, a...)
	}
}

func main() {
	s := &session{
		ctx:         context.Background(),
		stdin:       os.Stdin,
		stdout:      os.Stdout,
		stderr:      os.Stderr,
		getenv:      os.Getenv,
		interactive: isTerminal(os.Stdin),
		signals:     true,
		dial:        dialSystemBus(os.Getenv),
		edit:        runEditor,
		now:         time.Now,
	}
	os.Exit(s.run(os.Args[1:]))
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// dialSystemBus returns the function that connects to netwardend on
// the system bus.
func dialSystemBus(getenv func(string) string) func() (api, func(), error) {
	return func() (api, func(), error) {
		conn, err := dbus.ConnectSystemBus()
		if err != nil {
			addr := getenv("DBUS_SYSTEM_BUS_ADDRESS")
			if addr == "" {
				addr = defaultSystemBus
			}
			return nil, nil, &busError{addr: addr, err: err}
		}
		return dbusapi.NewClient(conn), func() { conn.Close() }, nil
	}
}

// run runs the command line args (without the program's name) and
// returns the exit status.
func (s *session) run(args []string) int {
	usage := func(err error) int {
		fmt.Fprintf(s.stderr, "error: %v\nTry 'netwarden --help' for more information.\n", err)
		return exitUsage
	}
options:
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		opt := args[0]
		args = args[1:]
		switch opt {
		case "-h", "--help":
			io.WriteString(s.stdout, programHelp())
			return exitOK
		case "-v", "--version":
			fmt.Fprintln(s.stdout, "netwarden", version.String())
			return exitOK
		case "-q", "--quiet":
			s.quiet = true
		case "--":
			break options
		default:
			return usage(fmt.Errorf("unknown option %s", opt))
		}
	}
	if len(args) == 0 {
		return usage(errors.New("no command given"))
	}
	v := lookupVerb(args[0])
	if v == nil {
		return usage(fmt.Errorf("unknown command '%s'", args[0]))
	}
	p, err := parseArgs(v, args[1:])
	if err != nil {
		fmt.Fprintf(s.stderr, "error: %v\nTry 'netwarden %s --help' for more information.\n", err, v.name)
		return exitUsage
	}
	if p.help {
		io.WriteString(s.stdout, verbHelp(v))
		return exitOK
	}
	var c api
	if !v.offline {
		var closeFn func()
		c, closeFn, err = s.dial()
		if err != nil {
			fmt.Fprintf(s.stderr, "error: %s\n", failure{}.describe(err))
			return exitFailure
		}
		defer closeFn()
	}
	return s.exitStatus(v.run(s, c, p))
}

// exitStatus prints err, if any, and returns the exit status it means.
func (s *session) exitStatus(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errSilent):
		return exitFailure
	case errors.As(err, &ue):
		fmt.Fprintf(s.stderr, "error: %v\nTry 'netwarden --help' for more information.\n", err)
		return exitUsage
	}
	fmt.Fprintf(s.stderr, "error: %v\n", err)
	return exitFailure
}
