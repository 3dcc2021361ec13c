// Package integration runs the real netwardend and netwarden binaries in
// the lab (tests/lab): the daemon in the lab's hypervisor namespace, on
// the lab's private system bus, never on the machine's own.
//
//	NETWARDEN_INTEGRATION=1 go test ./tests/integration/ -count=1 -v
//
// TestMain builds both programs once, from the work tree, into a
// temporary directory. Without root or the lab's programs the tests skip
// (fail with NETWARDEN_INTEGRATION=1).
package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Paths of the binaries TestMain builds.
var (
	netwardend string
	netwarden  string
)

func TestMain(m *testing.M) {
	// The test binary doubles as a hung D-Bus service (see hungService).
	if len(os.Args) == 3 && os.Args[1] == hungServiceArg {
		os.Exit(hungService(os.Args[2]))
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "netwarden-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The lab's child processes run as root in other namespaces; they
	// must be able to reach the binaries.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	netwardend = filepath.Join(dir, "netwardend")
	netwarden = filepath.Join(dir, "netwarden")
	for bin, pkg := range map[string]string{netwardend: "./cmd/netwardend", netwarden: "./cmd/netwarden"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: go build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// repoRoot finds the module root above the working directory (which `go
// test` sets to this package's directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/netwarden/netwarden\n")) {
			return dir, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/netwarden/netwarden above the working directory")
		}
		dir = parent
	}
}

// binaryVersion returns what `netwardend --version` reports.
func binaryVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(netwardend, "--version").Output()
	if err != nil {
		t.Fatalf("netwardend --version: %v", err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "netwardend ")
	if !ok || v == "" {
		t.Fatalf("netwardend --version printed %q", out)
	}
	return v
}
