package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/polkit"
	"github.com/netwarden/netwarden/tests/lab"
)

// cliResult is what one run of netwarden did.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit status %d\nstdout:\n%sstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs the netwarden binary on the lab bus, as the test user
// when as is not nil, with stdin and extra environment.
func runCLI(t *testing.T, l *lab.Lab, as *lab.TestUser, stdin string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, netwarden, args...)
	cmd.Env = append(l.Env(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if as != nil {
		as.As(cmd)
	}
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("netwarden %v: %v", args, err)
	}
	return r
}

// cli runs netwarden as root and fails the test unless it exits with
// want.
func (a *apiLab) cli(t *testing.T, want int, stdin string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, a.l, nil, stdin, nil, args...)
	if r.code != want {
		t.Fatalf("netwarden %s: want exit status %d, got %v", strings.Join(args, " "), want, r)
	}
	return r
}

// writeFile writes a file into the lab directory and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tableRow matches a row of virsh's tables: the cells, each after a
// space, separated by at least three spaces.
func tableRow(cells ...string) *regexp.Regexp {
	for i, c := range cells {
		cells[i] = regexp.QuoteMeta(c)
	}
	return regexp.MustCompile(`(?m)^ ` + strings.Join(cells, ` {3,}`) + `$`)
}

// TestCLIVerbs drives every filter and binding verb of the netwarden
// command against the daemon, as root.
func TestCLIVerbs(t *testing.T) {
	a := newAPILab(t, true)
	lab.Require(t, "nft")
	dir := a.l.Dir
	port := a.guest.HostIface

	// The built-ins are listed in virsh's table.
	r := a.cli(t, 0, "", "nwfilter-list")
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 4 || !regexp.MustCompile(`^ UUID {35}Name$`).MatchString(lines[0]) || strings.Trim(lines[1], "-") != "" || len(lines[1]) < 55 {
		t.Errorf("nwfilter-list header:\n%s", r.stdout)
	}
	ctUUID := builtinUUID(t, a, "clean-traffic")
	if !tableRow(ctUUID, "clean-traffic").MatchString(r.stdout) {
		t.Errorf("nwfilter-list lacks clean-traffic %s:\n%s", ctUUID, r.stdout)
	}

	// Define from a file and from standard input.
	webFile := writeFile(t, dir, "cli-web.xml", testFilterXML("cli-web"))
	r = a.cli(t, 0, "", "nwfilter-define", webFile)
	if r.stdout != "Network filter cli-web defined from "+webFile+"\n" {
		t.Errorf("nwfilter-define printed %q", r.stdout)
	}
	r = a.cli(t, 0, testFilterXML("cli-stdin"), "nwfilter-define", "-")
	if r.stdout != "Network filter cli-stdin defined from standard input\n" {
		t.Errorf("nwfilter-define - printed %q", r.stdout)
	}
	r = a.cli(t, 0, "", "nwfilter-list")
	webUUID := builtinUUID(t, a, "cli-web")
	for _, row := range [][]string{{webUUID, "cli-web"}, {builtinUUID(t, a, "cli-stdin"), "cli-stdin"}} {
		if !tableRow(row...).MatchString(r.stdout) {
			t.Errorf("nwfilter-list lacks %v:\n%s", row, r.stdout)
		}
	}
	if i, j := strings.Index(r.stdout, " cli-stdin\n"), strings.Index(r.stdout, " cli-web\n"); i < 0 || j < i {
		t.Errorf("nwfilter-list not sorted by name:\n%s", r.stdout)
	}

	// dumpxml by name and by UUID; its output defines the same filter.
	dump := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-web").stdout
	if !strings.Contains(dump, "<filter name='cli-web'") || !strings.Contains(dump, webUUID) || !strings.Contains(dump, "52:54:00:de:ad:00") {
		t.Errorf("nwfilter-dumpxml cli-web:\n%s", dump)
	}
	if byUUID := a.cli(t, 0, "", "nwfilter-dumpxml", "--nwfilter", strings.ToUpper(webUUID)).stdout; byUUID != dump {
		t.Errorf("nwfilter-dumpxml by UUID:\n%s\nwant\n%s", byUUID, dump)
	}
	a.cli(t, 0, dump, "nwfilter-define", "-")
	if again := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-web").stdout; again != dump {
		t.Errorf("dumpxml after defining its output:\n%s\nwant\n%s", again, dump)
	}

	// Refusals, in words.
	for _, c := range []struct {
		stdin  string
		args   []string
		stderr string
	}{
		{"<filter name='x'><rule", []string{"nwfilter-define", "-"}, "error: failed to define network filter from standard input: invalid: "},
		{"<filter name='thief'><uuid>" + ctUUID + "</uuid></filter>", []string{"nwfilter-define", "-"}, "already exists: "},
		{"", []string{"nwfilter-dumpxml", "no-such-filter"}, "error: failed to get network filter 'no-such-filter': no network filter with that name or UUID\n"},
		{"", []string{"nwfilter-undefine", "clean-traffic"}, "error: failed to undefine network filter clean-traffic: invalid: "},
		{"", []string{"nwfilter-binding-dumpxml", "vnet99"}, "error: failed to get network filter binding 'vnet99': the port has no binding\n"},
		{"", []string{"nwfilter-define", filepath.Join(dir, "absent.xml")}, "error: failed to open file '" + filepath.Join(dir, "absent.xml") + "': no such file or directory\n"},
	} {
		r := a.cli(t, 1, c.stdin, c.args...)
		if !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, c.stderr) || r.stdout != "" {
			t.Errorf("netwarden %v: %v\nwant stderr with %q", c.args, r, c.stderr)
		}
	}
	a.cli(t, 2, "", "nwfilter-define")

	// Bindings: create on the guest's port, list, dump, delete.
	bindFile := writeFile(t, dir, "cli-binding.xml", testBindingXML(port, a.guest.MAC, "clean-traffic", [2]string{"IP", "10.77.0.10"}))
	r = a.cli(t, 0, "", "nwfilter-binding-create", bindFile)
	if r.stdout != "Network filter binding on "+port+" created from "+bindFile+"\n" {
		t.Errorf("nwfilter-binding-create printed %q", r.stdout)
	}
	if ruleset := a.l.Hypervisor().MustRun("nft", "list", "table", "bridge", "netwarden"); !strings.Contains(ruleset, `"`+port+`"`) {
		t.Errorf("the kernel does not filter %s:\n%s", port, ruleset)
	}
	a.cli(t, 0, testBindingXML("vnet8", a.guest.MAC, "cli-web"), "nwfilter-binding-create", "--validate", "-")
	r = a.cli(t, 0, "", "nwfilter-binding-list")
	if !strings.HasPrefix(r.stdout, " Port Dev   Filter\n---") || !tableRow(port, "clean-traffic").MatchString(r.stdout) || !tableRow("vnet8", "cli-web").MatchString(r.stdout) {
		t.Errorf("nwfilter-binding-list:\n%s", r.stdout)
	}
	bdump := a.cli(t, 0, "", "nwfilter-binding-dumpxml", port).stdout
	if !strings.Contains(bdump, "<portdev name='"+port+"'/>") || !strings.Contains(bdump, "10.77.0.10") || !strings.HasSuffix(bdump, "\n") {
		t.Errorf("nwfilter-binding-dumpxml:\n%s", bdump)
	}
	if r := a.cli(t, 1, bdump, "nwfilter-binding-create", "-"); !strings.Contains(r.stderr, "already exists: ") {
		t.Errorf("second binding: %v", r)
	}
	if r := a.cli(t, 1, "", "nwfilter-undefine", "cli-web"); !strings.Contains(r.stderr, "error: failed to undefine network filter cli-web: in use: ") || !strings.Contains(r.stderr, "vnet8") {
		t.Errorf("undefine of a used filter: %v", r)
	}
	for _, p := range []string{"vnet8", port} {
		if r := a.cli(t, 0, "", "nwfilter-binding-delete", p); r.stdout != "Network filter binding on "+p+" deleted\n" {
			t.Errorf("nwfilter-binding-delete printed %q", r.stdout)
		}
	}
	if r := a.cli(t, 0, "", "nwfilter-binding-list"); r.stdout != " Port Dev   Filter\n--------------------\n\n" {
		t.Errorf("nwfilter-binding-list after delete: %q", r.stdout)
	}
	if ruleset := a.l.Hypervisor().MustRun("nft", "list", "table", "bridge", "netwarden"); strings.Contains(ruleset, `"`+port+`"`) {
		t.Errorf("the kernel still filters %s:\n%s", port, ruleset)
	}
	a.cli(t, 1, "", "nwfilter-binding-delete", port)

	// Undefine, by name and by UUID.
	if r := a.cli(t, 0, "", "nwfilter-undefine", "cli-web"); r.stdout != "Network filter cli-web undefined\n" {
		t.Errorf("nwfilter-undefine printed %q", r.stdout)
	}
	if r := a.cli(t, 0, "", "-q", "nwfilter-undefine", builtinUUID(t, a, "cli-stdin")); r.stdout != "" {
		t.Errorf("quiet nwfilter-undefine printed %q", r.stdout)
	}
	r = a.cli(t, 0, "", "nwfilter-list")
	if strings.Contains(r.stdout, "cli-web") || strings.Contains(r.stdout, "cli-stdin") {
		t.Errorf("undefined filters still listed:\n%s", r.stdout)
	}
	a.cli(t, 1, "", "nwfilter-dumpxml", "cli-web")
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startCLI starts netwarden as root on the lab bus.
func startCLI(t *testing.T, l *lab.Lab, args ...string) (*exec.Cmd, *syncBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(netwarden, args...)
	cmd.Env = l.Env()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd, out, done
}

// TestCLIEvent: `netwarden event` prints a define as virsh prints a
// lifecycle event and exits; with --loop it goes on until interrupted.
func TestCLIEvent(t *testing.T) {
	a := newAPILab(t, true)

	// The command subscribes after it starts: define until it reports.
	_, out, done := startCLI(t, a.l, "event", "--timeout", "60")
	deadline := time.Now().Add(timeout)
	var err error
wait:
	for {
		a.cli(t, 0, testFilterXML("cli-ev"), "nwfilter-define", "-")
		select {
		case err = <-done:
			break wait
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event reported:\n%s", out.String())
		}
	}
	if err != nil || out.String() != "event 'lifecycle' for nwfilter cli-ev: Defined\nevents received: 1\n" {
		t.Errorf("netwarden event: %v\n%s", err, out.String())
	}

	// --loop: a define, an undefine (named although the filter is gone),
	// a binding created and deleted, then SIGINT.
	cmd, out, done := startCLI(t, a.l, "event", "--loop", "--timestamp")
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("netwarden event --loop did not print %q:\n%s", want, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	deadline = time.Now().Add(timeout)
	for !strings.Contains(out.String(), "cli-ev: Defined") {
		a.cli(t, 0, testFilterXML("cli-ev"), "nwfilter-define", "-")
		time.Sleep(100 * time.Millisecond)
		if time.Now().After(deadline) {
			t.Fatalf("no event reported:\n%s", out.String())
		}
	}
	a.cli(t, 0, "", "nwfilter-undefine", "cli-ev")
	waitOutput("event 'lifecycle' for nwfilter cli-ev: Undefined\n")
	a.cli(t, 0, testBindingXML("vnet7", a.guest.MAC, "allow-arp"), "nwfilter-binding-create", "-")
	waitOutput("event 'lifecycle' for nwfilter-binding vnet7: Created\n")
	a.cli(t, 0, "", "nwfilter-binding-delete", "vnet7")
	waitOutput("event 'lifecycle' for nwfilter-binding vnet7: Deleted\n")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("netwarden event --loop after SIGINT: %v\n%s", err, out.String())
		}
	case <-time.After(timeout):
		t.Fatalf("netwarden event --loop ignores SIGINT:\n%s", out.String())
	}
	stamped := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+0000: event 'lifecycle' for nwfilter cli-ev: Defined$`)
	if s := out.String(); !stamped.MatchString(s) || !strings.Contains(s, "event loop interrupted\nevents received: ") {
		t.Errorf("netwarden event --loop --timestamp:\n%s", s)
	}

	// A timeout without events fails, as in virsh.
	r := a.cli(t, 1, "", "event", "--timeout", "1")
	if r.stdout != "event loop timed out\nevents received: 0\n" {
		t.Errorf("event --timeout 1: %v", r)
	}
}

// TestCLIEdit: nwfilter-edit with EDITOR set to scripts: a change is
// defined; invalid XML fails with the daemon's message and changes
// nothing; no change is reported as such.
func TestCLIEdit(t *testing.T) {
	a := newAPILab(t, true)
	a.cli(t, 0, testFilterXML("cli-edit"), "nwfilter-define", "-")
	before := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-edit").stdout
	script := func(name, body string) string {
		p := filepath.Join(a.l.Dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edit := func(editor string, want int) cliResult {
		t.Helper()
		r := runCLI(t, a.l, nil, "", []string{"VISUAL=", "EDITOR=" + editor}, "nwfilter-edit", "cli-edit")
		if r.code != want {
			t.Fatalf("nwfilter-edit with %s: want exit status %d, got %v", editor, want, r)
		}
		return r
	}

	// Invalid XML: refused with the daemon's reason, nothing changes.
	r := edit(script("break.sh", `printf '%s' "<filter name='cli-edit'><rule" > "$1"`), 1)
	if !strings.HasPrefix(r.stderr, "error: failed to define the edited network filter cli-edit: invalid: ") || r.stdout != "" {
		t.Errorf("invalid edit: %v", r)
	}
	if now := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-edit").stdout; now != before {
		t.Errorf("filter changed by a refused edit:\n%s", now)
	}

	// No change.
	r = edit(script("keep.sh", `test -s "$1"`), 0)
	if r.stdout != "Network filter cli-edit XML configuration not changed.\n" {
		t.Errorf("unchanged edit: %v", r)
	}

	// A change: the editor gets the filter's XML in a file and edits it.
	r = edit(script("change.sh", `grep -q "<filter name='cli-edit'" "$1" && sed -i 's/52:54:00:de:ad:00/52:54:00:de:ad:01/' "$1"`), 0)
	if r.stdout != "Network filter cli-edit XML configuration edited.\n" {
		t.Errorf("edit: %v", r)
	}
	after := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-edit").stdout
	if after != strings.ReplaceAll(before, "52:54:00:de:ad:00", "52:54:00:de:ad:01") {
		t.Errorf("after edit:\n%s\nbefore:\n%s", after, before)
	}

	// A failing editor aborts.
	if r := edit("false", 1); !strings.Contains(r.stderr, "error: editor 'false' failed") {
		t.Errorf("failing editor: %v", r)
	}
	if now := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-edit").stdout; now != after {
		t.Errorf("filter changed by an aborted edit:\n%s", now)
	}
	if matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "netwarden-nwfilter-*.xml")); len(matches) != 0 {
		t.Errorf("temporary copies left: %v", matches)
	}
}

// TestCLIUnprivileged: the unprivileged user can list but not define;
// the refusal names the polkit action.
func TestCLIUnprivileged(t *testing.T) {
	a := newAPILab(t, true)
	user := a.l.TestUser()
	r := runCLI(t, a.l, &user, "", nil, "nwfilter-list")
	if r.code != 0 || !tableRow(builtinUUID(t, a, "clean-traffic"), "clean-traffic").MatchString(r.stdout) {
		t.Errorf("nwfilter-list as %s: %v", user.Name, r)
	}
	if r := runCLI(t, a.l, &user, "", nil, "nwfilter-binding-list"); r.code != 0 {
		t.Errorf("nwfilter-binding-list as %s: %v", user.Name, r)
	}
	r = runCLI(t, a.l, &user, testFilterXML("by-user"), nil, "nwfilter-define", "-")
	want := "error: you are not allowed to define network filters: " + polkit.ActionNWFilterManage + "\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("nwfilter-define as %s: %v\nwant stderr %q", user.Name, r, want)
	}
	r = runCLI(t, a.l, &user, "", nil, "nwfilter-undefine", "allow-arp")
	if r.code != 1 || !strings.Contains(r.stderr, "you are not allowed to undefine network filters: "+polkit.ActionNWFilterManage) {
		t.Errorf("nwfilter-undefine as %s: %v", user.Name, r)
	}
	if names := filterNames(t, a.conn); strings.Contains(strings.Join(names, " "), "by-user") {
		t.Errorf("the user's filter was defined: %v", names)
	}
}

// TestCLIWithoutDaemon: no bus, then a bus without the daemon: clear
// errors, exit status 1.
func TestCLIWithoutDaemon(t *testing.T) {
	l := lab.New(t)
	absent := "unix:path=" + filepath.Join(l.Dir, "absent")
	r := runCLI(t, l, nil, "", []string{"DBUS_SYSTEM_BUS_ADDRESS=" + absent}, "nwfilter-list")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: cannot connect to the system bus at "+absent+": ") {
		t.Errorf("without a bus: %v", r)
	}
	l.Bus()
	r = runCLI(t, l, nil, "", nil, "nwfilter-list")
	want := "error: netwardend is not running: nothing owns " + dbusapi.BusName + " on the system bus and it cannot be activated\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("without the daemon: %v\nwant stderr %q", r, want)
	}
	r = runCLI(t, l, nil, "", nil, "event", "--timeout", "5")
	if r.code != 1 || r.stderr != want {
		t.Errorf("event without the daemon: %v", r)
	}
	r = runCLI(t, l, nil, "", nil, "version")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "Client version: ") || r.stderr != want {
		t.Errorf("version without the daemon: %v", r)
	}
}

// TestCLIEditTryAgain: on a terminal, a refused edit asks virsh's
// question; "y" opens the editor again on the edited copy, "n" throws
// the changes away.
func TestCLIEditTryAgain(t *testing.T) {
	lab.Require(t, "script")
	a := newAPILab(t, true)
	a.cli(t, 0, testFilterXML("cli-edit"), "nwfilter-define", "-")
	before := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-edit").stdout
	fixed := strings.ReplaceAll(before, "52:54:00:de:ad:00", "52:54:00:de:ad:02")
	fixedFile := writeFile(t, a.l.Dir, "fixed.xml", fixed)
	for _, tc := range []struct {
		answer string
		code   int
		runs   string
		final  string
		output string
	}{
		{"n", 1, "1", before, ""},
		{"y", 0, "2", fixed, "Network filter cli-edit XML configuration edited."},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			count := filepath.Join(a.l.Dir, "count-"+tc.answer)
			// The first run breaks the XML; the second must find the
			// broken copy and repairs it.
			editor := writeFile(t, a.l.Dir, "editor-"+tc.answer+".sh", fmt.Sprintf(`#!/bin/sh
n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s
if [ $n = 1 ]; then printf '%%s' "<filter name='cli-edit'><rule" > "$1"
elif grep -q "<rule$" "$1"; then cat %[2]s > "$1"
else exit 3; fi
`, count, fixedFile))
			if err := os.Chmod(editor, 0o755); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, "script", "-qec", netwarden+" nwfilter-edit cli-edit", "/dev/null")
			cmd.Env = append(a.l.Env(), "VISUAL=", "EDITOR="+editor)
			cmd.Stdin = strings.NewReader(tc.answer + "\n")
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			s := string(out)
			if code != tc.code || !strings.Contains(s, "error: failed to define the edited network filter cli-edit: invalid: ") ||
				!strings.Contains(s, "Failed. Try again? [y,n,f,?]: ") || !strings.Contains(s, tc.output) {
				t.Errorf("exit status %d (want %d), output:\n%s", code, tc.code, s)
			}
			if runs, _ := os.ReadFile(count); strings.TrimSpace(string(runs)) != tc.runs {
				t.Errorf("editor ran %q times, want %s", runs, tc.runs)
			}
			if now := a.cli(t, 0, "", "nwfilter-dumpxml", "cli-edit").stdout; now != tc.final {
				t.Errorf("filter after the edit:\n%s\nwant\n%s", now, tc.final)
			}
		})
	}
}
