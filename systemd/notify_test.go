package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNotifyWithoutSocketIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var n Notifier
	if err := n.Notify(Ready); err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET: %v, want nil", err)
	}
}

func TestNotifySendsToSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", path)

	var n Notifier
	for _, state := range []string{Ready, Stopping} {
		if err := n.Notify(state); err != nil {
			t.Fatalf("Notify(%q): %v", state, err)
		}
		if err := l.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		k, err := l.Read(buf)
		if err != nil {
			t.Fatalf("read notification: %v", err)
		}
		if got := string(buf[:k]); got != state {
			t.Errorf("received %q, want %q", got, state)
		}
	}
}

func TestNotifyUnreachableSocketIsError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	var n Notifier
	if err := n.Notify(Ready); err == nil {
		t.Fatal("Notify to an absent socket: nil error, want one")
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	msg := Reloading()
	lines := strings.Split(msg, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading() = %q, want RELOADING=1 and MONOTONIC_USEC=", msg)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec <= 0 {
		t.Errorf("MONOTONIC_USEC %q: %v", lines[1], err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"10000000", "", 5 * time.Second, false},
		{"10000000", strconv.Itoa(os.Getpid()), 5 * time.Second, false},
		{"10000000", "1", 0, false}, // another process's watchdog
		{"ten", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v (error %v)", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}
