package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
)

// fakeAPI is a daemon in memory: filters by name with their XML, and
// the bindings' ports with their filters. A method not overridden by a
// field panics through the nil embedded api.
type fakeAPI struct {
	api
	filters  map[string]string // name → XML
	bindings map[string]string // port → filter
	defined  []string          // XML given to NWFilterDefineXML, in order
	refuse   func(xml string) error
	events   []dbusapi.Event
	nets     *fakeNets
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{
		filters:  map[string]string{"allow-arp": "<filter name='allow-arp'/>", "clean-traffic": "<filter name='clean-traffic'/>"},
		bindings: map[string]string{"vnet1": "clean-traffic", "vnet0": "allow-arp"},
	}
}

func fakeUUID(name string) string {
	return fmt.Sprintf("00000000-0000-0000-0000-%012x", len(name))
}

func notFound() error {
	return fmt.Errorf("call: %w", dbus.Error{Name: dbusapi.ErrorNotFound, Body: []any{"no such thing"}})
}

func (f *fakeAPI) Version(context.Context) (string, error) { return "9.9", nil }

func (f *fakeAPI) Status(context.Context) (dbusapi.Status, error) {
	return dbusapi.Status{Version: "9.9", Backend: "fake", StatefulFiltering: "br_netfilter", Restores: 2}, nil
}

func (f *fakeAPI) NWFilters(context.Context) ([]dbusapi.NWFilter, error) {
	var fs []dbusapi.NWFilter
	for _, n := range []string{"allow-arp", "clean-traffic", "web"} {
		if _, ok := f.filters[n]; ok {
			fs = append(fs, dbusapi.NWFilter{Path: dbusapi.NWFilterPath(fakeUUID(n)), Name: n, UUID: fakeUUID(n)})
		}
	}
	return fs, nil
}

func (f *fakeAPI) nameOf(path dbus.ObjectPath) string {
	for n := range f.filters {
		if dbusapi.NWFilterPath(fakeUUID(n)) == path {
			return n
		}
	}
	return ""
}

func (f *fakeAPI) NWFilter(_ context.Context, path dbus.ObjectPath) (dbusapi.NWFilter, error) {
	n := f.nameOf(path)
	if n == "" {
		return dbusapi.NWFilter{}, notFound()
	}
	return dbusapi.NWFilter{Path: path, Name: n, UUID: fakeUUID(n)}, nil
}

func (f *fakeAPI) LookupNWFilter(_ context.Context, s string) (dbus.ObjectPath, error) {
	if _, ok := f.filters[s]; !ok {
		return "", notFound()
	}
	return dbusapi.NWFilterPath(fakeUUID(s)), nil
}

func (f *fakeAPI) NWFilterDefineXML(_ context.Context, xml string) (dbus.ObjectPath, error) {
	f.defined = append(f.defined, xml)
	if f.refuse != nil {
		if err := f.refuse(xml); err != nil {
			return "", err
		}
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(xml, "<filter name='"), "'")
	f.filters[name] = xml
	return dbusapi.NWFilterPath(fakeUUID(name)), nil
}

func (f *fakeAPI) NWFilterGetXMLDesc(_ context.Context, path dbus.ObjectPath, _ uint32) (string, error) {
	return f.filters[f.nameOf(path)], nil
}

func (f *fakeAPI) NWFilterUndefine(_ context.Context, path dbus.ObjectPath) error {
	delete(f.filters, f.nameOf(path))
	return nil
}

func (f *fakeAPI) NWFilterBindings(context.Context) ([]dbusapi.NWFilterBinding, error) {
	var bs []dbusapi.NWFilterBinding
	for _, p := range []string{"vnet0", "vnet1"} {
		if flt, ok := f.bindings[p]; ok {
			bs = append(bs, dbusapi.NWFilterBinding{Path: dbusapi.NWFilterBindingPath(p), PortDev: p, FilterName: flt})
		}
	}
	return bs, nil
}

func (f *fakeAPI) NWFilterBindingLookupByPortDev(_ context.Context, port string) (dbus.ObjectPath, error) {
	if _, ok := f.bindings[port]; !ok {
		return "", notFound()
	}
	return dbusapi.NWFilterBindingPath(port), nil
}

func (f *fakeAPI) WatchEvents(ctx context.Context, _ func(), fn func(dbusapi.Event) bool) error {
	for _, ev := range f.events {
		if !fn(ev) {
			return nil
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// testSession returns a session on the fake daemon (nil: no bus) with
// captured output.
func testSession(f *fakeAPI, stdin string) (*session, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	s := &session{
		ctx:    context.Background(),
		stdin:  strings.NewReader(stdin),
		stdout: &stdout, stderr: &stderr,
		getenv: func(string) string { return "" },
		dial: func() (api, func(), error) {
			if f == nil {
				return nil, nil, &busError{addr: "unix:path=/nowhere", err: errors.New("no such file or directory")}
			}
			return f, func() {}, nil
		},
		now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 5e6, time.UTC) },
	}
	return s, &stdout, &stderr
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	webXML := filepath.Join(dir, "web.xml")
	if err := os.WriteFile(webXML, []byte("<filter name='web'/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args           []string
		stdin          string
		noBus          bool
		want           int
		stdout, stderr string
	}{
		{args: []string{"--help"}, stdout: "ENVIRONMENT\n    DBUS_SYSTEM_BUS_ADDRESS"},
		{args: []string{"help"}, stdout: "EXIT STATUS"},
		{args: []string{"help", "nwfilter-define"}, stdout: "SYNOPSIS\n    netwarden nwfilter-define [--file] <string> [--validate]"},
		{args: []string{"help", "frob"}, want: exitUsage, stderr: "unknown command 'frob'"},
		{args: []string{"--version"}, stdout: "netwarden "},
		{args: nil, want: exitUsage, stderr: "no command given"},
		{args: []string{"net-frob"}, want: exitUsage, stderr: "unknown command 'net-frob'"},
		{args: []string{"--bogus"}, want: exitUsage, stderr: "unknown option --bogus"},
		{args: []string{"version", "x"}, want: exitUsage, stderr: "unexpected data 'x'"},
		{args: []string{"version"}, stdout: "Client version: ", noBus: true, want: exitFailure, stderr: "error: cannot connect to the system bus at unix:path=/nowhere"},
		{args: []string{"version"}, stdout: "Daemon version: 9.9"},
		{args: []string{"status"}, stdout: "Daemon version:     9.9\nFirewall backend:   fake\nStateful filtering: br_netfilter\nfirewalld:          not running\nLast re-apply:      never\nRestores:           2\n"},
		{args: []string{"nwfilter-list"}, noBus: true, want: exitFailure, stderr: "system bus"},
		{args: []string{"nwfilter-list"}, stdout: " UUID                                   Name\n" +
			"-------------------------------------------------------\n" +
			" 00000000-0000-0000-0000-000000000009   allow-arp\n" +
			" 00000000-0000-0000-0000-00000000000d   clean-traffic\n\n"},
		{args: []string{"-q", "nwfilter-list"}, stdout: " 00000000-0000-0000-0000-000000000009   allow-arp\n 00000000"},
		{args: []string{"nwfilter-binding-list"}, stdout: " Port Dev   Filter\n" +
			"---------------------------\n" +
			" vnet0      allow-arp\n" +
			" vnet1      clean-traffic\n\n"},
		{args: []string{"nwfilter-define", webXML}, stdout: "Network filter web defined from " + webXML + "\n"},
		{args: []string{"nwfilter-define", "--file=" + webXML, "--validate"}, stdout: "Network filter web defined from " + webXML},
		{args: []string{"-q", "nwfilter-define", webXML}, stdout: ""},
		{args: []string{"nwfilter-define", "-"}, stdin: "<filter name='web'/>", stdout: "Network filter web defined from standard input\n"},
		{args: []string{"nwfilter-define", filepath.Join(dir, "absent.xml")}, want: exitFailure, stderr: "error: failed to open file '" + filepath.Join(dir, "absent.xml") + "': no such file or directory\n"},
		{args: []string{"nwfilter-define"}, want: exitUsage, stderr: "command 'nwfilter-define' requires <file> option"},
		{args: []string{"nwfilter-define", "a", "b"}, want: exitUsage, stderr: "unexpected data 'b'"},
		{args: []string{"nwfilter-define", "--nope", "a"}, want: exitUsage, stderr: "doesn't support option --nope"},
		{args: []string{"nwfilter-define", "--help"}, stdout: "  NAME\n    nwfilter-define - define or update a network filter from an XML file"},
		{args: []string{"nwfilter-dumpxml", "allow-arp"}, stdout: "<filter name='allow-arp'/>\n"},
		{args: []string{"nwfilter-dumpxml", "nope"}, want: exitFailure, stderr: "error: failed to get network filter 'nope': no network filter with that name or UUID\n"},
		{args: []string{"nwfilter-undefine", "--nwfilter", "allow-arp"}, stdout: "Network filter allow-arp undefined\n"},
		{args: []string{"nwfilter-binding-delete", "vnet0"}, stdout: "Network filter binding on vnet0 deleted\n"},
		{args: []string{"nwfilter-binding-delete", "vnet7"}, want: exitFailure, stderr: "failed to get network filter binding 'vnet7': the port has no binding"},
		{args: []string{"event", "--timeout", "x"}, want: exitUsage, stderr: "numeric value 'x' for <timeout> option is malformed"},
		{args: []string{"event", "--timeout", "1"}, want: exitFailure, stdout: "event loop timed out\nevents received: 0\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAPI()
			f.bindings["vnet0"] = "allow-arp"
			if tc.noBus {
				f = nil
			}
			s, stdout, stderr := testSession(f, tc.stdin)
			if got := s.run(tc.args); got != tc.want {
				t.Errorf("exit status %d, want %d (stderr %q)", got, tc.want, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
			if tc.stdout == "" && tc.want == exitOK && stdout.Len() != 0 && len(tc.args) > 0 && tc.args[0] == "-q" {
				t.Errorf("quiet printed %q", stdout.String())
			}
		})
	}
}

func (f *fakeAPI) NWFilterBindingDelete(_ context.Context, path dbus.ObjectPath) error {
	if port, ok := dbusapi.NWFilterBindingPortOf(path); ok {
		delete(f.bindings, port)
	}
	return nil
}

func TestParseArgs(t *testing.T) {
	v := &verb{name: "x", opts: []option{
		{name: "file", kind: optData, required: true},
		{name: "other", kind: optData},
		{name: "loop", kind: optBool},
		{name: "timeout", kind: optNumber},
	}}
	for _, tc := range []struct {
		args    []string
		want    map[string]string
		flags   []string
		help    bool
		wantErr string
	}{
		{args: []string{"a.xml"}, want: map[string]string{"file": "a.xml"}},
		{args: []string{"-"}, want: map[string]string{"file": "-"}},
		{args: []string{"a", "b"}, want: map[string]string{"file": "a", "other": "b"}},
		{args: []string{"--other", "b", "a"}, want: map[string]string{"file": "a", "other": "b"}},
		{args: []string{"--file=a", "--loop", "--timeout", "5"}, want: map[string]string{"file": "a", "timeout": "5"}, flags: []string{"loop"}},
		{args: []string{"--", "--weird"}, want: map[string]string{"file": "--weird"}},
		{args: []string{"a", "--help"}, help: true},
		{args: []string{"-h"}, help: true},
		{args: []string{}, wantErr: "requires <file> option"},
		{args: []string{"a", "b", "c"}, wantErr: "unexpected data 'c'"},
		{args: []string{"--bogus", "a"}, wantErr: "doesn't support option --bogus"},
		{args: []string{"-x", "a"}, wantErr: "doesn't support option -x"},
		{args: []string{"a", "--timeout"}, wantErr: "expected syntax: --timeout <number>"},
		{args: []string{"a", "--timeout", "-1"}, wantErr: "malformed or out of range"},
		{args: []string{"a", "--loop=yes"}, wantErr: "takes no value"},
		{args: []string{"a", "--loop", "--loop"}, wantErr: "already seen"},
		{args: []string{"--file", "a", "--file", "b"}, wantErr: "already seen"},
		{args: []string{"--file="}, wantErr: "needs a non-empty value"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			p, err := parseArgs(v, tc.args)
			if tc.wantErr != "" {
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want a usage error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.help != tc.help {
				t.Errorf("help %v, want %v", p.help, tc.help)
			}
			if tc.help {
				return
			}
			if fmt.Sprint(p.values) != fmt.Sprint(tc.want) {
				t.Errorf("values %v, want %v", p.values, tc.want)
			}
			for _, fl := range tc.flags {
				if !p.has(fl) {
					t.Errorf("flag %s not set", fl)
				}
			}
		})
	}
}

func TestFormatTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
		rows   [][]string
		quiet  bool
		want   string
	}{
		{"empty", []string{"UUID", "Name"}, nil, false, " UUID   Name\n--------------\n\n"},
		{"virsh nwfilter-list", []string{"UUID", "Name"}, [][]string{
			{"c6ccbb66-65b7-4d7e-9e6a-a6e2d86c0f27", "allow-arp"},
			{"0a6a8ce0-c8f1-4d12-bdee-5f5cbf8d8aa1", "clean-traffic"},
		}, false, " UUID                                   Name\n" +
			"-------------------------------------------------------\n" +
			" c6ccbb66-65b7-4d7e-9e6a-a6e2d86c0f27   allow-arp\n" +
			" 0a6a8ce0-c8f1-4d12-bdee-5f5cbf8d8aa1   clean-traffic\n\n"},
		{"virsh nwfilter-binding-list", []string{"Port Dev", "Filter"}, [][]string{{"vnet0", "clean-traffic"}}, false,
			" Port Dev   Filter\n---------------------------\n vnet0      clean-traffic\n\n"},
		{"quiet", []string{"Port Dev", "Filter"}, [][]string{{"vnet0", "clean-traffic"}}, true, " vnet0      clean-traffic\n"},
		{"control characters", []string{"Port Dev", "Filter"}, [][]string{{"a\nb", "x\ty"}}, false,
			" Port Dev   Filter\n--------------------\n a\\x0ab     x\\x09y\n\n"},
		{"wide characters count once", []string{"A", "B"}, [][]string{{"ü", "x"}}, false, " A   B\n--------\n ü   x\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatTable(tc.header, tc.rows, tc.quiet); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestDescribeError(t *testing.T) {
	define := manageFailure("failed to define network filter from f.xml", "define network filters", "")
	get := readFailure("failed to get network filter 'x'", "no network filter with that name or UUID")
	derr := func(name, msg string) error {
		return fmt.Errorf("Method: %w", dbus.Error{Name: name, Body: []any{msg}})
	}
	for _, tc := range []struct {
		name string
		f    failure
		err  error
		want string
	}{
		{"access denied names the action", define, derr(dbusapi.ErrorAccessDenied, "not authorized for org.netwarden1.nwfilter.manage: not authorized"),
			"you are not allowed to define network filters: org.netwarden1.nwfilter.manage"},
		{"access denied by the bus policy", get, derr(dbusapi.ErrorAccessDenied, "Rejected send message"),
			"you are not allowed to read network filters: org.netwarden1.nwfilter.read"},
		{"not found", get, derr(dbusapi.ErrorNotFound, "no filter x"), "failed to get network filter 'x': no network filter with that name or UUID"},
		{"object gone", get, derr(dbusapi.ErrorUnknownObject, "no object at /x"), "failed to get network filter 'x': no network filter with that name or UUID"},
		{"not found without words", define, derr(dbusapi.ErrorNotFound, "no filter x"), "failed to define network filter from f.xml: not found: no filter x"},
		{"invalid argument keeps the daemon's message", define, derr(dbusapi.ErrorInvalidArgument, "rule 1: mac: srcmacaddr: bad MAC"),
			"failed to define network filter from f.xml: invalid: rule 1: mac: srcmacaddr: bad MAC"},
		{"in use", define, derr(dbusapi.ErrorInUse, "used by binding vnet0"), "failed to define network filter from f.xml: in use: used by binding vnet0"},
		{"exists", define, derr(dbusapi.ErrorExists, "UUID of clean-traffic"), "failed to define network filter from f.xml: already exists: UUID of clean-traffic"},
		{"failed", define, derr(dbusapi.ErrorFailed, "the kernel said no"), "failed to define network filter from f.xml: the kernel said no"},
		{"daemon not running", define, derr("org.freedesktop.DBus.Error.ServiceUnknown", "The name org.netwarden1 was not provided by any .service files"),
			"netwardend is not running: nothing owns org.netwarden1 on the system bus and it cannot be activated"},
		{"activation failed", define, derr("org.freedesktop.DBus.Error.Spawn.ChildExited", "exited with 1"), "netwardend could not be started by the bus: exited with 1"},
		{"no reply", define, derr("org.freedesktop.DBus.Error.NoReply", "timeout"), "failed to define network filter from f.xml: netwardend did not answer in time"},
		{"deadline", define, fmt.Errorf("x: %w", context.DeadlineExceeded), "failed to define network filter from f.xml: netwardend did not answer in time"},
		{"no bus", define, &busError{addr: "unix:path=/x", err: errors.New("dial unix /x: connect: no such file or directory")},
			"cannot connect to the system bus at unix:path=/x: dial unix /x: connect: no such file or directory"},
		{"other D-Bus error", define, derr("org.example.Weird", "odd"), "failed to define network filter from f.xml: odd (org.example.Weird)"},
		{"not a D-Bus error", define, errors.New("boom"), "failed to define network filter from f.xml: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.describe(tc.err); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestEventLines(t *testing.T) {
	f := newFakeAPI()
	f.events = []dbusapi.Event{
		{Kind: dbusapi.NWFilterEventKind, Event: dbusapi.NWFilterEventDefined, Name: "web"},
		{Kind: dbusapi.NWFilterBindingEventKind, Event: dbusapi.NWFilterBindingEventCreated, Name: "vnet0"},
		{Kind: dbusapi.NWFilterBindingEventKind, Event: dbusapi.NWFilterBindingEventDeleted, Name: "vnet0"},
		{Kind: dbusapi.NWFilterEventKind, Event: dbusapi.NWFilterEventUndefined, Name: "web"},
		{Kind: dbusapi.NWFilterEventKind, Event: 7, Name: "web"},
	}
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"event"}, "event 'lifecycle' for nwfilter web: Defined\nevents received: 1\n", exitOK},
		{[]string{"event", "--loop", "--timeout", "1"}, "event 'lifecycle' for nwfilter web: Defined\n" +
			"event 'lifecycle' for nwfilter-binding vnet0: Created\n" +
			"event 'lifecycle' for nwfilter-binding vnet0: Deleted\n" +
			"event 'lifecycle' for nwfilter web: Undefined\n" +
			"event 'lifecycle' for nwfilter web: Unknown (7)\n" +
			"event loop timed out\nevents received: 5\n", exitOK},
		{[]string{"event", "--timestamp"}, "2026-11-27 12:00:00.005+0000: event 'lifecycle' for nwfilter web: Defined\nevents received: 1\n", exitOK},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			s, stdout, stderr := testSession(f, "")
			if got := s.run(tc.args); got != tc.code {
				t.Errorf("exit status %d, want %d; stderr %q", got, tc.code, stderr.String())
			}
			if stdout.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", stdout.String(), tc.want)
			}
		})
	}
}

// TestEdit drives nwfilter-edit's loop with an editor function: a
// change is defined; no change defines nothing; a refused change is
// re-edited on "y", thrown away on "n" and fails at once without a
// terminal.
func TestEdit(t *testing.T) {
	invalid := fmt.Errorf("x: %w", dbus.Error{Name: dbusapi.ErrorInvalidArgument, Body: []any{"XML syntax error on line 1"}})
	for _, tc := range []struct {
		name        string
		edits       []string // what the editor writes, one per run ("" leaves the file)
		interactive bool
		stdin       string
		want        int
		stdout      string
		stderr      string
		defined     int
		final       string
	}{
		{name: "changed", edits: []string{"<filter name='allow-arp' chain='arp'/>"},
			stdout: "Network filter allow-arp XML configuration edited.\n", defined: 1, final: "<filter name='allow-arp' chain='arp'/>"},
		{name: "unchanged", edits: []string{""}, stdout: "Network filter allow-arp XML configuration not changed.\n", final: "<filter name='allow-arp'/>"},
		{name: "invalid without a terminal", edits: []string{"<filter name='allow-arp'"}, want: exitFailure,
			stderr: "error: failed to define the edited network filter allow-arp: invalid: XML syntax error on line 1\n", defined: 1, final: "<filter name='allow-arp'/>"},
		{name: "invalid, try again", edits: []string{"<filter name='allow-arp'", "<filter name='allow-arp' chain='ipv4'/>"}, interactive: true, stdin: "?\ny\n",
			stdout: "Failed. Try again? [y,n,f,?]: y - yes, start editor again\n", stderr: "invalid: XML syntax error", defined: 2, final: "<filter name='allow-arp' chain='ipv4'/>"},
		{name: "invalid, give up", edits: []string{"<filter name='allow-arp'"}, interactive: true, stdin: "n\n", want: exitFailure,
			stdout: "Failed. Try again? [y,n,f,?]: ", defined: 1, final: "<filter name='allow-arp'/>"},
		{name: "invalid, force twice then end of input", edits: []string{"<filter name='allow-arp'"}, interactive: true, stdin: "f\n", want: exitFailure,
			defined: 2, final: "<filter name='allow-arp'/>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI()
			f.refuse = func(xml string) error {
				if !strings.HasSuffix(xml, "/>") {
					return invalid
				}
				return nil
			}
			s, stdout, stderr := testSession(f, tc.stdin)
			s.interactive = tc.interactive
			runs := 0
			s.edit = func(_ *session, path string) error {
				if runs >= len(tc.edits) {
					t.Fatalf("editor run %d times", runs+1)
				}
				e := tc.edits[runs]
				runs++
				if e == "" {
					return nil
				}
				return os.WriteFile(path, []byte(e), 0o600)
			}
			if got := s.run([]string{"nwfilter-edit", "allow-arp"}); got != tc.want {
				t.Errorf("exit status %d, want %d; stderr %q", got, tc.want, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
			if len(f.defined) != tc.defined || f.filters["allow-arp"] != tc.final {
				t.Errorf("defined %q, filter now %q; want %d definitions, %q", f.defined, f.filters["allow-arp"], tc.defined, tc.final)
			}
			if runs != len(tc.edits) {
				t.Errorf("editor ran %d times, want %d", runs, len(tc.edits))
			}
		})
	}
}

func TestEditorCommand(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "vi"},
		{map[string]string{"EDITOR": "nano"}, "nano"},
		{map[string]string{"EDITOR": "nano", "VISUAL": "emacs -nw"}, "emacs -nw"},
		{map[string]string{"VISUAL": "  "}, "vi"},
	} {
		if got := editorCommand(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.env, got, tc.want)
		}
	}
}

// Every verb has a help with its synopsis, and the program's help lists
// every verb.
func TestHelp(t *testing.T) {
	prog := programHelp()
	for _, v := range verbs() {
		if !strings.Contains(prog, "\n    "+v.name) {
			t.Errorf("program help lacks %s", v.name)
		}
		s, stdout, _ := testSession(nil, "")
		if got := s.run([]string{v.name, "--help"}); got != exitOK || !strings.Contains(stdout.String(), "SYNOPSIS\n    netwarden "+v.name) {
			t.Errorf("%s --help: %d\n%s", v.name, got, stdout.String())
		}
		for _, o := range v.opts {
			if o.help == "" || !strings.Contains(stdout.String(), "--"+o.name) {
				t.Errorf("%s --help lacks option %s", v.name, o.name)
			}
		}
	}
}

func TestRootName(t *testing.T) {
	for doc, want := range map[string]string{
		"<filter name='web' chain='root'><uuid>x</uuid></filter>":   "web",
		"<?xml version='1.0'?>\n<!-- c -->\n<filter name=\"a b\"/>": "a b",
		"<filter chain='root'/>":                                    "",
		"<filter":                                                   "",
		"":                                                          "",
	} {
		if got := rootName(doc); got != want {
			t.Errorf("rootName(%q) = %q, want %q", doc, got, want)
		}
	}
}
