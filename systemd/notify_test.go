package systemd

import (
	"net"
	"path/filepath"
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
