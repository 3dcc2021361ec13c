package systemd

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"
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
		"Type":      "notify",
		"BusName":   "org.netwarden1",
		"ExecStart": "/usr/sbin/netwardend",
		// Bindings in /run/netwarden must survive a daemon restart.
		"RuntimeDirectory":         "netwarden",
		"RuntimeDirectoryPreserve": "yes",
		"KillMode":                 "process",
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
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW"} {
		if !slices.Contains(strings.Fields(caps[0]), c) {
			t.Errorf("CapabilityBoundingSet %q lacks %s", caps[0], c)
		}
	}
	if got := u["Install"]["WantedBy"]; !slices.Equal(got, []string{"multi-user.target"}) {
		t.Errorf("[Install] WantedBy = %q", got)
	}
}

func TestBusActivationFile(t *testing.T) {
	f := keyFile(t, BusActivation)
	want := map[string]string{
		"Name":           "org.netwarden1",
		"Exec":           "/usr/sbin/netwardend",
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
