package lab_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/polkit"
	"github.com/netwarden/netwarden/tests/lab"
)

// TestBusIsPrivateAndSystemType: the lab bus answers, is a system-type bus
// (it passes its address to activated services) and carries the
// project's bus policy, so root may own org.netwarden1 and nobody else may.
func TestBusIsPrivateAndSystemType(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	b := l.Bus()
	conn := b.Conn()

	var id string
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetId", 0).Store(&id); err != nil {
		t.Fatalf("GetId: %v", err)
	}
	if len(id) != 32 {
		t.Fatalf("bus id %q: want 32 hex digits", id)
	}
	// Root may own the project's name (policy file included).
	reply, err := conn.RequestName("org.netwarden1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("root RequestName org.netwarden1: reply %v, err %v", reply, err)
	}
	// The test user may not: busctl as that user fails to own any name
	// we did not allow; check through a real connection as the user.
	u := l.TestUser()
	cmd := u.As(exec.Command("busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus", "RequestName", "su", "org.netwarden1.Other", "4"))
	cmd.Env = l.Env()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Access denied") {
		t.Fatalf("test user owning a name: want access denied, got err %v, output %q", err, out)
	}
	// Activated services get the lab address: the environment of the
	// activation test service proves it.
	b.AddService("org.netwarden1.LabEcho", "/bin/sh -c 'echo \"$DBUS_SYSTEM_BUS_ADDRESS\" > "+l.Dir+"/echo.addr; sleep 0.2'", "root")
	// The service never takes its name; the reply (an error, after the
	// daemon's activation timeout) is not awaited.
	conn.BusObject().Go("org.freedesktop.DBus.StartServiceByName", 0, nil, "org.netwarden1.LabEcho", uint32(0))
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := exec.Command("cat", l.Dir+"/echo.addr").Output()
		// The daemon appends its GUID to the address it passes on.
		if strings.HasPrefix(strings.TrimSpace(string(got)), b.Address+",") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("activated service saw DBUS_SYSTEM_BUS_ADDRESS=%q, want %q", strings.TrimSpace(string(got)), b.Address)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPolkitAnswers: polkitd, activated on the lab bus, knows netwarden's
// actions; root is authorized for a manage action, the unprivileged test
// user is not but may authenticate (challenge), and anyone may read.
func TestPolkitAnswers(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	pk := l.Polkit()
	conn := l.Bus().Conn()
	auth := polkit.NewAuthority(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := auth.Check(ctx, polkit.BusNameSubject(conn.Names()[0]), polkit.ActionNWFilterManage, 0)
	if err != nil {
		t.Fatalf("check root: %v", err)
	}
	if !res.Authorized {
		t.Fatalf("root on %s: %+v, want authorized", polkit.ActionNWFilterManage, res)
	}

	// A process of the test user, identified as polkit's unix-process.
	u := l.TestUser()
	sleeper := l.Start("test-user-sleep", u.As(exec.Command("sleep", "60")))
	st, err := lab.StartTime(sleeper.PID)
	if err != nil {
		t.Fatal(err)
	}
	subject := polkit.ProcessSubject(uint32(sleeper.PID), st, int32(u.UID))
	res, err = auth.Check(ctx, subject, polkit.ActionNWFilterManage, polkit.AllowUserInteraction)
	if err != nil {
		t.Fatalf("check test user: %v", err)
	}
	if res.Authorized || !res.Challenge {
		t.Fatalf("test user on %s: %+v, want not authorized with challenge", polkit.ActionNWFilterManage, res)
	}
	res, err = auth.Check(ctx, subject, polkit.ActionNWFilterRead, 0)
	if err != nil || !res.Authorized {
		t.Fatalf("test user on %s: %+v, %v; want authorized", polkit.ActionNWFilterRead, res, err)
	}

	// A rules.d file granting the action to the user is picked up live.
	pk.AddRule("50-netwarden-lab.rules", `polkit.addRule(function(action, subject) {
  if (action.id == "`+polkit.ActionNWFilterManage+`" && subject.user == "`+u.Name+`") {
    return polkit.Result.YES;
  }
});
`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err = auth.Check(ctx, subject, polkit.ActionNWFilterManage, 0)
		if err == nil && res.Authorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rules.d grant: %+v, %v; want authorized", res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An unregistered action is an error, not a denial.
	if _, err := auth.Check(ctx, subject, "org.netwarden1.no-such-action", 0); err == nil {
		t.Fatal("unregistered action: want an error from polkitd")
	}
}

// TestFirewalldRunsAndReloads runs firewalld with each backend in the
// hypervisor namespace: it reports running, and a Reloaded signal arrives
// after `firewall-cmd --reload`.
func TestFirewalldRunsAndReloads(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			l := lab.New(t)
			fw := l.StartFirewalld(backend)
			conn := l.Bus().Conn()

			obj := conn.Object("org.fedoraproject.FirewallD1", "/org/fedoraproject/FirewallD1/config")
			v, err := obj.GetProperty("org.fedoraproject.FirewallD1.config.FirewallBackend")
			if err != nil {
				t.Fatalf("FirewallBackend property: %v", err)
			}
			if got := v.Value().(string); got != backend {
				t.Fatalf("firewalld backend %q, want %q", got, backend)
			}
			if err := conn.AddMatchSignal(
				dbus.WithMatchObjectPath("/org/fedoraproject/FirewallD1"),
				dbus.WithMatchInterface("org.fedoraproject.FirewallD1"),
				dbus.WithMatchMember("Reloaded"),
			); err != nil {
				t.Fatalf("subscribe Reloaded: %v", err)
			}
			sigs := make(chan *dbus.Signal, 10)
			conn.Signal(sigs)

			if out, err := fw.Cmd("--reload"); err != nil {
				t.Fatalf("reload: %v (%s)", err, out)
			}
			select {
			case s := <-sigs:
				if s.Name != "org.fedoraproject.FirewallD1.Reloaded" {
					t.Fatalf("got signal %s, want Reloaded", s.Name)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no Reloaded signal within 10 s of firewall-cmd --reload")
			}
			// firewalld's rules are in the hypervisor namespace only.
			out := l.Hypervisor().MustRun("nft", "list", "tables")
			if backend == "nftables" && !strings.Contains(out, "firewalld") {
				t.Fatalf("no firewalld table in the hypervisor namespace: %q", out)
			}
		})
	}
}

// TestLeakCheckCatchesLeakedNamespace proves the leak check: a namespace
// with the lab's name that nobody deletes makes Close fail, naming it.
func TestLeakCheckCatchesLeakedNamespace(t *testing.T) {
	l := lab.New(t)
	leaked := lab.Prefix + l.ID + "-leaked"
	if out, err := exec.Command("ip", "netns", "add", leaked).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", leaked).Run()

	err := l.Close()
	if err == nil || !strings.Contains(err.Error(), leaked) {
		t.Fatalf("Close with a leaked namespace: err %v, want one naming %s", err, leaked)
	}
}

// TestLeakCheckCatchesStrayProcess: a process left running inside a lab
// namespace is killed and reported.
func TestLeakCheckCatchesStrayProcess(t *testing.T) {
	l := lab.New(t)
	g := l.AddGuest()
	// Started behind the lab's back, so not tracked.
	cmd := g.Command(context.Background(), "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	err := l.Close()
	if err == nil || !strings.Contains(err.Error(), "untracked processes") {
		t.Fatalf("Close with a stray process: err %v, want one about untracked processes", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stray process was not killed")
	}
}
