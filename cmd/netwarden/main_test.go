package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		want           int
		stdout, stderr string
	}{
		{[]string{"--help"}, exitOK, "Usage: netwarden", ""},
		{[]string{"--version"}, exitOK, "netwarden ", ""},
		{nil, exitUsage, "", "no command given"},
		{[]string{"net-frob"}, exitUsage, "", `unknown command "net-frob"`},
		{[]string{"version", "x"}, exitUsage, "", `unexpected argument "x"`},
		{[]string{"--bogus"}, exitUsage, "", "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tc.args, &stdout, &stderr); got != tc.want {
				t.Errorf("exit status %d, want %d", got, tc.want)
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
		})
	}
}

func TestVersionWithoutBus(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "absent"))
	var stdout, stderr bytes.Buffer
	if got := run([]string{"version"}, &stdout, &stderr); got != exitFailure {
		t.Errorf("exit status %d, want %d", got, exitFailure)
	}
	if !strings.Contains(stdout.String(), "Client version:") || !strings.Contains(stderr.String(), "system bus") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}
