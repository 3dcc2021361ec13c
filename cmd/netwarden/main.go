// Command netwarden is the command-line client of netwardend. It speaks
// the org.netwarden1 D-Bus API on the system bus; its verbs follow
// virsh's (net-define, nwfilter-define, …) as they are added. For now it
// has one: version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/godbus/dbus/v5"

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

const help = `Usage: netwarden [OPTION]... COMMAND

netwarden manages the virtual networks and traffic filters of netwardend,
the netwarden system service, over the D-Bus system bus (org.netwarden1).

Commands:
  version
        Print the versions of this client and of the daemon. Fails with
        status 1 if the daemon cannot be reached.

Options:
  --version
        Print the client's version and exit.
  --help
        Print this help and exit.

Environment:
  DBUS_SYSTEM_BUS_ADDRESS
        Address of the system bus. Default:
        unix:path=/var/run/dbus/system_bus_socket.

Exit status:
  0     Success.
  1     The command failed.
  2     Usage error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("netwarden", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	showVersion := fs.Bool("version", false, "print the client's version and exit")
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "netwarden: "+format+"\nTry 'netwarden --help' for more information.\n", a...)
		return exitUsage
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		io.WriteString(stdout, help)
		return exitOK
	} else if err != nil {
		return usageErr("%v", err)
	}
	if *showVersion {
		fmt.Fprintln(stdout, "netwarden", version.String())
		return exitOK
	}
	if fs.NArg() == 0 {
		return usageErr("no command given")
	}
	switch cmd, rest := fs.Arg(0), fs.Args()[1:]; cmd {
	case "version":
		if len(rest) > 0 {
			return usageErr("version: unexpected argument %q", rest[0])
		}
		return versionCmd(stdout, stderr)
	default:
		return usageErr("unknown command %q", cmd)
	}
}

// versionCmd prints the client's version, then asks the daemon for its.
func versionCmd(stdout, stderr io.Writer) int {
	fmt.Fprintln(stdout, "Client version:", version.String())
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		fmt.Fprintf(stderr, "netwarden: connect to the system bus: %v\n", err)
		return exitFailure
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	v, err := dbusapi.NewClient(conn).Version(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "netwarden: daemon version: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, "Daemon version:", v)
	return exitOK
}
