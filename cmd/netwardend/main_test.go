package main

import (
	"bytes"
	"flag"
	"log/slog"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/daemon"
)

func TestParseArgsDefaults(t *testing.T) {
	opts, _, err := parseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := opts.config
	if c.ConfigDir != "/etc/netwarden" || c.StateDir != "/run/netwarden" || c.Backend != daemon.BackendAuto {
		t.Errorf("defaults: %+v", c)
	}
	if opts.logLevel != slog.LevelInfo || opts.version {
		t.Errorf("defaults: level %v, version %v", opts.logLevel, opts.version)
	}
}

func TestParseArgs(t *testing.T) {
	opts, _, err := parseArgs([]string{"--config-dir", "/x/etc", "--state-dir=/x/run",
		"--backend", "iptables", "--log-level", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	c := opts.config
	if c.ConfigDir != "/x/etc" || c.StateDir != "/x/run" || c.Backend != daemon.BackendIPTables || opts.logLevel != slog.LevelDebug {
		t.Errorf("parsed %+v, level %v", c, opts.logLevel)
	}
	for _, l := range levelNames {
		opts, _, err := parseArgs([]string{"--log-level", l.name})
		if err != nil || opts.logLevel != l.level {
			t.Errorf("--log-level %s: %v, %v", l.name, opts.logLevel, err)
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		want   int
		stdout string // substring
		stderr string // substring
	}{
		{args: []string{"--help"}, want: exitOK, stdout: "Usage: netwardend"},
		{args: []string{"-h"}, want: exitOK, stdout: "Usage: netwardend"},
		{args: []string{"--version"}, want: exitOK, stdout: "netwardend "},
		{args: []string{"--backend", "pf"}, want: exitUsage, stderr: "want nftables, iptables or auto"},
		{args: []string{"--backend="}, want: exitUsage, stderr: "unknown firewall backend"},
		{args: []string{"--log-level", "info+2"}, want: exitUsage, stderr: "want debug, info, warn or error"},
		{args: []string{"--frobnicate"}, want: exitUsage, stderr: "flag provided but not defined"},
		{args: []string{"serve"}, want: exitUsage, stderr: `unexpected argument "serve"`},
		{args: []string{"--state-dir", "run"}, want: exitUsage, stderr: "must be an absolute path"},
		{args: []string{"--config-dir", ""}, want: exitUsage, stderr: "must be an absolute path"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tc.args, &stdout, &stderr); got != tc.want {
				t.Errorf("exit status %d, want %d; stderr: %s", got, tc.want, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
			if tc.want == exitUsage && !strings.Contains(stderr.String(), "--help") {
				t.Errorf("usage error does not point at --help: %q", stderr.String())
			}
		})
	}
}

// The manual names every option, both environment variables, the exit
// statuses and the files.
func TestHelpIsComplete(t *testing.T) {
	var stdout bytes.Buffer
	if run([]string{"--help"}, &stdout, &bytes.Buffer{}) != exitOK {
		t.Fatal("--help failed")
	}
	help := stdout.String()
	want := []string{"--help"}
	_, fs, _ := parseArgs(nil)
	fs.VisitAll(func(f *flag.Flag) { want = append(want, "--"+f.Name) })
	want = append(want, "DBUS_SYSTEM_BUS_ADDRESS", "NOTIFY_SOCKET", "READY=1", "STOPPING=1",
		"Exit status:", "Files:", "/etc/netwarden", "/run/netwarden", "Default: auto.", "Default: info.",
		"org.netwarden1.conf", "org.netwarden1.policy", "netwardend.service")
	for _, w := range want {
		if !strings.Contains(help, w) {
			t.Errorf("--help lacks %q", w)
		}
	}
	for i, line := range strings.Split(help, "\n") {
		if len(line) > 79 {
			t.Errorf("--help line %d longer than 79 columns: %q", i+1, line)
		}
	}
}
