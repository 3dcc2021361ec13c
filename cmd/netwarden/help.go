package main

import (
	"fmt"
	"strings"
)

// synopsis is a verb's command line with its options, virsh's way:
// [--file] <string> for data options, [--loop] for flags.
func synopsis(v *verb) string {
	parts := []string{"netwarden", v.name}
	for _, o := range v.opts {
		var s string
		switch o.kind {
		case optData:
			s = fmt.Sprintf("[--%s] <%s>", o.name, o.metavar())
		case optBool:
			s = "--" + o.name
		default:
			s = fmt.Sprintf("--%s <%s>", o.name, o.metavar())
		}
		if !o.required {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// shortSynopsis is a verb's command line in the program's help:
// nwfilter-define FILE [--validate].
func shortSynopsis(v *verb) string {
	parts := []string{v.name}
	for _, o := range v.opts {
		var s string
		switch o.kind {
		case optData:
			s = o.arg
		case optBool:
			s = "--" + o.name
		default:
			s = "--" + o.name + " " + o.arg
		}
		if !o.required {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// wrap breaks text into lines of at most width characters, each
// indented by indent; blank lines and lines starting with spaces (the
// examples) are kept as they are.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	for _, para := range strings.Split(text, "\n") {
		if para == "" || strings.HasPrefix(para, " ") {
			b.WriteString(strings.TrimRight(indent+para, " ") + "\n")
			continue
		}
		line := indent
		for _, w := range strings.Fields(para) {
			if len(line) > len(indent) && len(line)+1+len(w) > width {
				b.WriteString(line + "\n")
				line = indent
			}
			if len(line) > len(indent) {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// verbHelp is `netwarden VERB --help`, laid out like virsh's help of a
// command.
func verbHelp(v *verb) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  NAME\n    %s - %s\n\n", v.name, v.summary)
	fmt.Fprintf(&b, "  SYNOPSIS\n    %s\n\n", synopsis(v))
	fmt.Fprintf(&b, "  DESCRIPTION\n%s\n", wrap(v.desc, "    ", 78))
	if len(v.opts) > 0 {
		b.WriteString("  OPTIONS\n")
		width := 0
		heads := make([]string, len(v.opts))
		for i, o := range v.opts {
			switch o.kind {
			case optData:
				heads[i] = fmt.Sprintf("[--%s] <%s>", o.name, o.metavar())
			case optBool:
				heads[i] = "--" + o.name
			default:
				heads[i] = fmt.Sprintf("--%s <%s>", o.name, o.metavar())
			}
			width = max(width, len(heads[i]))
		}
		for i, o := range v.opts {
			fmt.Fprintf(&b, "    %-*s  %s\n", width, heads[i], o.help)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// programHelp is `netwarden --help`: a manual page in short.
func programHelp() string {
	var b strings.Builder
	b.WriteString(`NAME
    netwarden - manage netwardend's networks, network filters and bindings

SYNOPSIS
    netwarden [-q|--quiet] COMMAND [ARGUMENT]...
    netwarden COMMAND --help
    netwarden help [COMMAND]
    netwarden --help | --version

DESCRIPTION
    netwarden is the command-line client of netwardend, the system service
    that implements libvirt's network filters (nwfilter) and virtual
    networks without libvirt. It talks to the daemon over the D-Bus system
    bus (org.netwarden1); every call is authorised by polkit: reading needs
    org.netwarden1.network.read, org.netwarden1.nwfilter.read or
    org.netwarden1.binding.read, changes org.netwarden1.network.manage
    (networks and their ports), org.netwarden1.nwfilter.manage (filters)
    or org.netwarden1.binding.manage (bindings).

    The commands are virsh's, with virsh's arguments and output, so that
    what works with "virsh nwfilter-define f.xml" works with
    "netwarden nwfilter-define f.xml". The XML is libvirt's.

COMMANDS
`)
	for _, v := range verbs() {
		fmt.Fprintf(&b, "    %s\n", shortSynopsis(&v))
		b.WriteString(wrap(strings.ToUpper(v.summary[:1])+v.summary[1:]+".", "        ", 78))
	}
	b.WriteString(`
    FILE is an XML file, - for standard input; NAME|UUID a network's or a
    filter's name or UUID; PORTUUID a network port's UUID; PORTDEV a port (tap) device such as vnet0. Every argument may also
    be given as an option (nwfilter-define --file FILE); "netwarden COMMAND
    --help" shows each command's options.

OPTIONS
    -q, --quiet
        Print only what was asked for: no confirmation messages, no table
        headers.
    --version
        Print the client's version and exit.
    -h, --help
        Print this help and exit.

OUTPUT
    net-list, net-dhcp-leases, net-port-list, nwfilter-list and
    nwfilter-binding-list print virsh's tables:

`)
	example := formatTable([]string{"UUID", "Name"}, [][]string{
		{"15b1ab2b-b1ac-1be2-ed49-2042caba4abb", "allow-arp"},
		{"db0b1767-d62b-269b-ea96-0cc8b451144e", "clean-traffic"},
	}, false)
	for _, line := range strings.Split(strings.TrimSuffix(example, "\n\n"), "\n") {
		b.WriteString("       " + line + "\n")
	}
	b.WriteString(`
    Changes are confirmed as virsh confirms them ("Network filter web
    defined from web.xml", "Network filter binding on vnet0 deleted").
    Errors go to standard error as "error: …", the daemon's error said
    in words: not allowed (naming the polkit action), not found, invalid
    (with the daemon's reason), in use, already exists, netwardend not
    running, no system bus.

ENVIRONMENT
    DBUS_SYSTEM_BUS_ADDRESS
        Address of the system bus. Default:
        unix:path=/var/run/dbus/system_bus_socket.
    VISUAL, EDITOR
        The editor of net-edit and nwfilter-edit (VISUAL first; default vi).
    TMPDIR
        Where net-edit and nwfilter-edit put their temporary copy (default
        /tmp).

EXIT STATUS
    0   Success.
    1   The command failed: the daemon refused it or could not be reached,
        a file could not be read, or event received no event.
    2   Usage error: unknown command or option, missing argument.

SEE ALSO
    netwardend(8), virsh(1)
`)
	return b.String()
}
