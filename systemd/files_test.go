package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// keyFile parses a systemd or D-Bus key file into section → key → values.
func keyFile(t *testing.T, data []byte) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: not key=value in a section: %q", n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestUnitFile(t *testing.T) {
	u := keyFile(t, Unit)
	want := map[string]string{
		"Type":         "notify",
		"NotifyAccess": "main",
		"BusName":      "org.netwarden1",
		"ExecStart":    "/usr/sbin/netwardend",
		"ExecReload":   "/bin/kill -HUP $MAINPID",
		// Bindings in /run/netwarden must survive a daemon restart.
		"RuntimeDirectory":         "netwarden",
		"RuntimeDirectoryPreserve": "yes",
		// dnsmasq, unprivileged, passes through it.
		"RuntimeDirectoryMode": "0711",
		"KillMode":             "process",
		"ProtectSystem":        "strict",
		"DeviceAllow":          "/dev/net/tun rw",
	}
	for k, v := range want {
		if got := u["Service"][k]; !slices.Equal(got, []string{v}) {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	caps := u["Service"]["CapabilityBoundingSet"]
	if len(caps) != 1 {
		t.Fatalf("CapabilityBoundingSet = %q, want one line", caps)
	}
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"} {
		if !slices.Contains(strings.Fields(caps[0]), c) {
			t.Errorf("CapabilityBoundingSet %q lacks %s", caps[0], c)
		}
	}
	if slices.Contains(strings.Fields(caps[0]), "CAP_SYS_ADMIN") {
		t.Errorf("CapabilityBoundingSet %q has CAP_SYS_ADMIN", caps[0])
	}
	// With ProtectSystem=strict, what the daemon writes must be listed
	// (the runtime directory is writable by itself); /proc/sys/net is
	// the one writable corner of the kernel tunables.
	rw := strings.Fields(strings.Join(u["Service"]["ReadWritePaths"], " "))
	for _, p := range []string{"/etc/netwarden", "/proc/sys/net"} {
		if !slices.Contains(rw, p) {
			t.Errorf("ReadWritePaths %q lacks %s", rw, p)
		}
	}
	if got := u["Service"]["WatchdogSec"]; len(got) != 1 {
		t.Errorf("WatchdogSec = %q, want one", got)
	} else if d, err := time.ParseDuration(got[0]); err != nil || d < time.Minute {
		t.Errorf("WatchdogSec = %s, want at least a minute (API calls hold the engine up to 60 s)", got[0])
	}
	if got := u["Unit"]["Wants"]; !slices.Contains(got, "netwardend.socket") {
		t.Errorf("[Unit] Wants = %q, want netwardend.socket among them", got)
	}
	if got := u["Install"]["WantedBy"]; !slices.Equal(got, []string{"multi-user.target"}) {
		t.Errorf("[Install] WantedBy = %q", got)
	}
}

func TestBusActivationFile(t *testing.T) {
	f := keyFile(t, BusActivation)
	want := map[string]string{
		"Name": "org.netwarden1",
		// The bus runs Exec= only without systemd; the daemon then
		// exits when idle and the next call starts it again.
		"Exec":           "/usr/sbin/netwardend --idle-timeout=120s",
		"User":           "root",
		"SystemdService": "netwardend.service",
	}
	s, ok := f["D-BUS Service"]
	if !ok {
		t.Fatal("no [D-BUS Service] section")
	}
	for k, v := range want {
		if got := s[k]; !slices.Equal(got, []string{v}) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestSocketUnit(t *testing.T) {
	u := keyFile(t, SocketUnit)
	want := map[string]string{
		// NETLINK_ROUTE, group RTMGRP_LINK.
		"ListenNetlink": "route 1",
		"Service":       "netwardend.service",
	}
	for k, v := range want {
		if got := u["Socket"][k]; !slices.Equal(got, []string{v}) {
			t.Errorf("[Socket] %s = %q, want %q", k, got, v)
		}
	}
	if _, ok := u["Install"]; ok {
		t.Error("netwardend.socket has an [Install] section; netwardend.service pulls it in")
	}
}

// TestUnitsVerify runs systemd-analyze verify on the units, with the
// daemon's path replaced by a program that exists. Any complaint fails.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	unit := bytes.ReplaceAll(Unit, []byte("/usr/sbin/netwardend"), []byte("/bin/true"))
	for name, data := range map[string][]byte{"netwardend.service": unit, "netwardend.socket": SocketUnit} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(analyze, "verify", "--man=no",
		filepath.Join(dir, "netwardend.service"), filepath.Join(dir, "netwardend.socket"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice", "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	var complaints []string
	for _, line := range strings.Split(string(out), "\n") {
		// Noise of running without systemd as PID 1.
		if line == "" || strings.Contains(line, "of PID 1") || strings.Contains(line, "PR_SET_MM") {
			continue
		}
		complaints = append(complaints, line)
	}
	if err != nil || len(complaints) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(complaints, "\n"))
	}
}
