package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/polkit"
	"github.com/netwarden/netwarden/version"
)

// api is what the commands need of the daemon; *dbusapi.Client has it,
// and the unit tests replace it.
type api interface {
	Version(ctx context.Context) (string, error)
	Status(ctx context.Context) (dbusapi.Status, error)
	NWFilters(ctx context.Context) ([]dbusapi.NWFilter, error)
	NWFilter(ctx context.Context, path dbus.ObjectPath) (dbusapi.NWFilter, error)
	LookupNWFilter(ctx context.Context, nameOrUUID string) (dbus.ObjectPath, error)
	NWFilterDefineXML(ctx context.Context, xml string) (dbus.ObjectPath, error)
	NWFilterGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error)
	NWFilterUndefine(ctx context.Context, path dbus.ObjectPath) error
	NWFilterBindings(ctx context.Context) ([]dbusapi.NWFilterBinding, error)
	NWFilterBindingCreateXML(ctx context.Context, xml string, flags uint32) (dbus.ObjectPath, error)
	NWFilterBindingLookupByPortDev(ctx context.Context, port string) (dbus.ObjectPath, error)
	NWFilterBindingGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error)
	NWFilterBindingDelete(ctx context.Context, path dbus.ObjectPath) error
	WatchEvents(ctx context.Context, ready func(), fn func(dbusapi.Event) bool) error

	Networks(ctx context.Context) ([]dbusapi.NetworkObject, error)
	Network(ctx context.Context, path dbus.ObjectPath) (dbusapi.NetworkObject, error)
	LookupNetwork(ctx context.Context, nameOrUUID string) (dbus.ObjectPath, error)
	NetworkDefineXML(ctx context.Context, xml string) (dbus.ObjectPath, error)
	NetworkCreateXML(ctx context.Context, xml string) (dbus.ObjectPath, error)
	NetworkCreate(ctx context.Context, path dbus.ObjectPath) error
	NetworkDestroy(ctx context.Context, path dbus.ObjectPath) error
	NetworkUndefine(ctx context.Context, path dbus.ObjectPath) error
	NetworkSetAutostart(ctx context.Context, path dbus.ObjectPath, autostart bool) error
	NetworkGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error)
	NetworkGetDHCPLeases(ctx context.Context, path dbus.ObjectPath, mac string, flags uint32) ([]dbusapi.Lease, error)
	NetworkListPorts(ctx context.Context, path dbus.ObjectPath, flags uint32) ([]dbus.ObjectPath, error)
	NetworkPortCreateXML(ctx context.Context, path dbus.ObjectPath, xml string, flags uint32) (dbus.ObjectPath, error)
	NetworkPortLookupByUUID(ctx context.Context, path dbus.ObjectPath, uuid string) (dbus.ObjectPath, error)
	NetworkPortGetXMLDesc(ctx context.Context, path dbus.ObjectPath, flags uint32) (string, error)
	NetworkPortDelete(ctx context.Context, path dbus.ObjectPath) error
}

// verb is one command of netwarden.
type verb struct {
	name    string
	summary string // one line, for the program's help
	desc    string // the verb's help, DESCRIPTION section
	opts    []option
	// run does the work; a nil api means the verb needs no daemon.
	run func(s *session, c api, p parsed) error
	// offline verbs are run without connecting to the bus.
	offline bool
}

// errSilent is a failure whose message was already printed.
var errSilent = errors.New("failed")

// cmdError is a failure told in words (printed as "error: …").
type cmdError struct{ msg string }

func (e *cmdError) Error() string { return e.msg }

// fail describes err in words for the failed operation f.
func fail(f failure, err error) error { return &cmdError{msg: f.describe(err)} }

const (
	fileHelp     = "file containing an XML network filter description, or - for standard input"
	bindFileHelp = "file containing an XML network filter binding description, or - for standard input"
	filterHelp   = "network filter name or uuid"
	bindingHelp  = "network filter binding port dev"
)

// verbs returns netwarden's commands, in the order of the help.
func verbs() []verb {
	return append(networkVerbs(), filterVerbs()...)
}

// filterVerbs are the nwfilter commands and the general ones.
func filterVerbs() []verb {
	return []verb{
		{name: "nwfilter-list", summary: "list network filters",
			desc: "Lists the network filters, built-in and defined, sorted by name, as a table of UUID and Name.",
			run:  nwfilterList},
		{name: "nwfilter-define", summary: "define or update a network filter from an XML file",
			desc: "Defines a new network filter or updates an existing one (of the same name or UUID) from libvirt nwfilter XML. A definition of a built-in filter's name overrides the built-in. Bindings using the filter are enforced with the new definition before the command returns.",
			opts: []option{{name: "file", kind: optData, required: true, help: fileHelp, arg: "FILE"},
				{name: "validate", kind: optBool, help: "accepted for virsh compatibility; every definition is validated"}},
			run: nwfilterDefine},
		{name: "nwfilter-undefine", summary: "undefine a network filter",
			desc: "Removes a network filter definition. A filter used by other filters or by bindings cannot be undefined; undefining the override of a built-in brings the built-in back; built-ins themselves cannot be undefined.",
			opts: []option{{name: "nwfilter", kind: optData, required: true, help: filterHelp, arg: "NAME|UUID"}},
			run:  nwfilterUndefine},
		{name: "nwfilter-dumpxml", summary: "network filter information in XML",
			desc: "Prints the network filter's XML to standard output. It can be given to nwfilter-define as it is.",
			opts: []option{{name: "nwfilter", kind: optData, required: true, help: filterHelp, arg: "NAME|UUID"}},
			run:  nwfilterDumpXML},
		{name: "nwfilter-edit", summary: "edit XML configuration for a network filter",
			desc: "Opens the network filter's XML in an editor ($VISUAL, else $EDITOR, else vi) on a temporary copy and defines the result when the editor exits. When the daemon refuses the edited XML, the error is shown and, if standard input is a terminal, the question \"Try again? [y,n,f,?]\": y opens the editor again on the edited copy, n throws the changes away, f tries to define the same copy again. Without a terminal the command fails and nothing changes.",
			opts: []option{{name: "nwfilter", kind: optData, required: true, help: filterHelp, arg: "NAME|UUID"}},
			run:  nwfilterEdit},
		{name: "nwfilter-binding-list", summary: "list network filter bindings",
			desc: "Lists the network filter bindings, sorted by port, as a table of Port Dev and Filter.",
			run:  bindingList},
		{name: "nwfilter-binding-create", summary: "create a network filter binding from an XML file",
			desc: "Creates a network filter binding from libvirt nwfilter-binding XML: the port's traffic is filtered before the command returns. A port has at most one binding.",
			opts: []option{{name: "file", kind: optData, required: true, help: bindFileHelp, arg: "FILE"},
				{name: "validate", kind: optBool, help: "validate the XML (libvirt's VALIDATE flag; every document is validated anyway)"}},
			run: bindingCreate},
		{name: "nwfilter-binding-delete", summary: "delete a network filter binding",
			desc: "Deletes the binding of a port; the port's traffic is no longer filtered.",
			opts: []option{{name: "binding", kind: optData, required: true, help: bindingHelp, arg: "PORTDEV"}},
			run:  bindingDelete},
		{name: "nwfilter-binding-dumpxml", summary: "network filter binding information in XML",
			desc: "Prints the binding's XML to standard output. It can be given to nwfilter-binding-create as it is.",
			opts: []option{{name: "binding", kind: optData, required: true, help: bindingHelp, arg: "PORTDEV"}},
			run:  bindingDumpXML},
		{name: "event", summary: "show network, network filter and binding events",
			desc: "Waits for events of networks (Defined, Undefined, Started, Stopped), network filters (Defined, Undefined) and bindings (Created, Deleted) and prints one line for each, as virsh's event commands do:\n\n" +
				"  event 'lifecycle' for network NAME: Started\n" +
				"  event 'lifecycle' for nwfilter NAME: Defined\n" +
				"  event 'lifecycle' for nwfilter-binding PORT: Created\n\n" +
				"Without --loop it exits after the first event. At the end it prints the number of events received; it fails (status 1) if none was.",
			opts: []option{{name: "loop", kind: optBool, help: "loop until interrupted (SIGINT or SIGTERM) or timed out, rather than quitting after one event"},
				{name: "timeout", kind: optNumber, help: "timeout seconds", arg: "SECONDS"},
				{name: "timestamp", kind: optBool, help: "show timestamp for each printed event"}},
			run: event},
		doctorVerb(),
		{name: "status", summary: "show the daemon's state",
			desc: "Prints the daemon's version and firewall backend, how rules that need connection tracking are enforced, whether firewalld runs, when netwardend last re-applied its rules (after a firewalld reload, a flush of its tables or SIGHUP) and how many times it found them damaged, how many networks, filters and bindings there are, and the addresses learned for ports whose filters learn them (CTRL_IP_LEARNING).",
			run:  statusVerb},
		{name: "version", summary: "show the versions of this client and of the daemon",
			desc: "Prints the client's version, then asks the daemon for its version.",
			run:  versionVerb, offline: true},
		{name: "help", summary: "print help",
			desc: "Prints the help of the program, or of a command.",
			opts: []option{{name: "command", kind: optData, help: "name of the command", arg: "COMMAND"}},
			run:  helpVerb, offline: true},
	}
}

// lookupVerb returns the verb called name.
func lookupVerb(name string) *verb {
	for _, v := range verbs() {
		if v.name == name {
			return &v
		}
	}
	return nil
}

// readInput reads a command's input file, "-" being standard input, and
// returns it with the words that name it in messages.
func (s *session) readInput(file string) (data, from string, err error) {
	if file == "-" {
		b, err := io.ReadAll(s.stdin)
		if err != nil {
			return "", "", &cmdError{msg: fmt.Sprintf("failed to read standard input: %v", err)}
		}
		return string(b), "standard input", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", "", &cmdError{msg: fmt.Sprintf("failed to open file '%s': %v", file, err)}
	}
	return string(b), file, nil
}

// rootName returns the name attribute of a document's root element, ""
// if it has none.
func rootName(doc string) string {
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "name" {
					return a.Value
				}
			}
			return ""
		}
	}
}

// printXML prints a document, ending it with a newline.
func (s *session) printXML(doc string) {
	io.WriteString(s.stdout, doc)
	if !strings.HasSuffix(doc, "\n") {
		io.WriteString(s.stdout, "\n")
	}
}

// readFailure and manageFailure describe failed reading and changing
// calls on filters, bindingReadFailure and bindingManageFailure on
// bindings.
func readFailure(doing, missing string) failure {
	return failure{doing: doing, denied: "read network filters", action: polkit.ActionNWFilterRead, missing: missing}
}

func manageFailure(doing, denied, missing string) failure {
	return failure{doing: doing, denied: denied, action: polkit.ActionNWFilterManage, missing: missing}
}

func bindingReadFailure(doing, missing string) failure {
	return failure{doing: doing, denied: "read network filter bindings", action: polkit.ActionBindingRead, missing: missing}
}

func bindingManageFailure(doing, denied, missing string) failure {
	return failure{doing: doing, denied: denied, action: polkit.ActionBindingManage, missing: missing}
}

// lookupFilter finds a filter by name or UUID.
func (s *session) lookupFilter(c api, arg string) (dbus.ObjectPath, error) {
	ctx, cancel := s.callContext()
	defer cancel()
	p, err := c.LookupNWFilter(ctx, arg)
	if err != nil {
		return "", fail(readFailure(fmt.Sprintf("failed to get network filter '%s'", arg), "no network filter with that name or UUID"), err)
	}
	return p, nil
}

// lookupBinding finds the binding of a port.
func (s *session) lookupBinding(c api, port string) (dbus.ObjectPath, error) {
	ctx, cancel := s.callContext()
	defer cancel()
	p, err := c.NWFilterBindingLookupByPortDev(ctx, port)
	if err != nil {
		return "", fail(bindingReadFailure(fmt.Sprintf("failed to get network filter binding '%s'", port), "the port has no binding"), err)
	}
	return p, nil
}

// filterName returns the name of the filter at path, fallback if it
// cannot be read.
func (s *session) filterName(c api, path dbus.ObjectPath, fallback string) string {
	ctx, cancel := s.callContext()
	defer cancel()
	if f, err := c.NWFilter(ctx, path); err == nil && f.Name != "" {
		return f.Name
	}
	return fallback
}

func nwfilterList(s *session, c api, _ parsed) error {
	ctx, cancel := s.callContext()
	defer cancel()
	fs, err := c.NWFilters(ctx)
	if err != nil {
		return fail(readFailure("failed to list network filters", ""), err)
	}
	rows := make([][]string, len(fs))
	for i, f := range fs {
		rows[i] = []string{f.UUID, f.Name}
	}
	io.WriteString(s.stdout, formatTable([]string{"UUID", "Name"}, rows, s.quiet))
	return nil
}

func nwfilterDefine(s *session, c api, p parsed) error {
	doc, from, err := s.readInput(p.str("file"))
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	path, err := c.NWFilterDefineXML(ctx, doc)
	if err != nil {
		return fail(manageFailure("failed to define network filter from "+from, "define network filters", ""), err)
	}
	s.say("Network filter %s defined from %s\n", s.filterName(c, path, rootName(doc)), from)
	return nil
}

func nwfilterUndefine(s *session, c api, p parsed) error {
	arg := p.str("nwfilter")
	path, err := s.lookupFilter(c, arg)
	if err != nil {
		return err
	}
	name := s.filterName(c, path, arg)
	ctx, cancel := s.callContext()
	defer cancel()
	if err := c.NWFilterUndefine(ctx, path); err != nil {
		return fail(manageFailure("failed to undefine network filter "+name, "undefine network filters", "no network filter with that name or UUID"), err)
	}
	s.say("Network filter %s undefined\n", name)
	return nil
}

func nwfilterDumpXML(s *session, c api, p parsed) error {
	arg := p.str("nwfilter")
	path, err := s.lookupFilter(c, arg)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	doc, err := c.NWFilterGetXMLDesc(ctx, path, 0)
	if err != nil {
		return fail(readFailure(fmt.Sprintf("failed to get the XML of network filter '%s'", arg), "no network filter with that name or UUID"), err)
	}
	s.printXML(doc)
	return nil
}

func bindingList(s *session, c api, _ parsed) error {
	ctx, cancel := s.callContext()
	defer cancel()
	bs, err := c.NWFilterBindings(ctx)
	if err != nil {
		return fail(bindingReadFailure("failed to list network filter bindings", ""), err)
	}
	rows := make([][]string, len(bs))
	for i, b := range bs {
		rows[i] = []string{b.PortDev, b.FilterName}
	}
	io.WriteString(s.stdout, formatTable([]string{"Port Dev", "Filter"}, rows, s.quiet))
	return nil
}

func bindingCreate(s *session, c api, p parsed) error {
	doc, from, err := s.readInput(p.str("file"))
	if err != nil {
		return err
	}
	var flags uint32
	if p.has("validate") {
		flags |= dbusapi.BindingCreateValidate
	}
	ctx, cancel := s.callContext()
	defer cancel()
	path, err := c.NWFilterBindingCreateXML(ctx, doc, flags)
	if err != nil {
		return fail(bindingManageFailure("failed to create network filter binding from "+from, "create network filter bindings", ""), err)
	}
	port, ok := dbusapi.NWFilterBindingPortOf(path)
	if !ok {
		port = string(path)
	}
	s.say("Network filter binding on %s created from %s\n", port, from)
	return nil
}

func bindingDelete(s *session, c api, p parsed) error {
	port := p.str("binding")
	path, err := s.lookupBinding(c, port)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	if err := c.NWFilterBindingDelete(ctx, path); err != nil {
		return fail(bindingManageFailure("failed to delete network filter binding on "+port, "delete network filter bindings", "the port has no binding"), err)
	}
	s.say("Network filter binding on %s deleted\n", port)
	return nil
}

func bindingDumpXML(s *session, c api, p parsed) error {
	port := p.str("binding")
	path, err := s.lookupBinding(c, port)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext()
	defer cancel()
	doc, err := c.NWFilterBindingGetXMLDesc(ctx, path, 0)
	if err != nil {
		return fail(bindingReadFailure(fmt.Sprintf("failed to get the XML of the binding on '%s'", port), "the port has no binding"), err)
	}
	s.printXML(doc)
	return nil
}

// versionVerb prints the client's version, then asks the daemon for its.
func versionVerb(s *session, _ api, _ parsed) error {
	fmt.Fprintln(s.stdout, "Client version:", version.String())
	c, closeFn, err := s.dial()
	if err != nil {
		return fail(failure{doing: "failed to get the daemon's version"}, err)
	}
	defer closeFn()
	ctx, cancel := s.callContext()
	defer cancel()
	v, err := c.Version(ctx)
	if err != nil {
		return fail(failure{doing: "failed to get the daemon's version"}, err)
	}
	fmt.Fprintln(s.stdout, "Daemon version:", v)
	return nil
}

func statusVerb(s *session, c api, _ parsed) error {
	ctx, cancel := s.callContext()
	defer cancel()
	doing := failure{doing: "failed to get the daemon's status", denied: "read the daemon's state", action: polkit.ActionNWFilterRead}
	st, err := c.Status(ctx)
	if err != nil {
		return fail(doing, err)
	}
	nets, err := c.Networks(ctx)
	if err != nil {
		return fail(netReadFailure("failed to list networks", ""), err)
	}
	filters, err := c.NWFilters(ctx)
	if err != nil {
		return fail(readFailure("failed to list network filters", ""), err)
	}
	bindings, err := c.NWFilterBindings(ctx)
	if err != nil {
		return fail(bindingReadFailure("failed to list network filter bindings", ""), err)
	}
	active := 0
	for _, n := range nets {
		if n.Active {
			active++
		}
	}
	yesNo := map[bool]string{true: "running", false: "not running"}
	last := "never"
	if !st.LastFirewallReapply.IsZero() {
		last = st.LastFirewallReapply.Local().Format("2006-01-02 15:04:05.000 MST")
	}
	w := tabwriter.NewWriter(s.stdout, 0, 8, 1, ' ', 0)
	fmt.Fprintf(w, "Daemon version:\t%s\n", st.Version)
	fmt.Fprintf(w, "Firewall backend:\t%s\n", st.Backend)
	fmt.Fprintf(w, "Stateful filtering:\t%s\n", st.StatefulFiltering)
	fmt.Fprintf(w, "firewalld:\t%s\n", yesNo[st.FirewalldRunning])
	fmt.Fprintf(w, "Last re-apply:\t%s\n", last)
	fmt.Fprintf(w, "Restores:\t%d\n", st.Restores)
	fmt.Fprintf(w, "Networks:\t%d (%d active)\n", len(nets), active)
	fmt.Fprintf(w, "Filters:\t%d\n", len(filters))
	learning, learned := 0, 0
	for _, b := range bindings {
		if b.Mode == "learning" {
			learning++
		}
		learned += len(b.LearnedAddresses)
	}
	fmt.Fprintf(w, "Bindings:\t%d (%d learning, %d addresses learned)\n", len(bindings), learning, learned)
	if err := w.Flush(); err != nil {
		return err
	}
	for _, b := range bindings {
		if len(b.LearnedAddresses) > 0 {
			fmt.Fprintf(s.stdout, "  %s learned %s\n", b.PortDev, strings.Join(b.LearnedAddresses, ", "))
		}
	}
	return nil
}

func helpVerb(s *session, _ api, p parsed) error {
	name := p.str("command")
	if name == "" {
		io.WriteString(s.stdout, programHelp())
		return nil
	}
	v := lookupVerb(name)
	if v == nil {
		return usagef("unknown command '%s'", name)
	}
	io.WriteString(s.stdout, verbHelp(v))
	return nil
}
