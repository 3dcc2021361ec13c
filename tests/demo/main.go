// Command demo runs netwarden in a throw-away lab and shows what it does,
// step by step. It is what ./scripts/demo runs; each capability of the
// project extends it.
//
//	go run ./tests/demo -netwardend bin/netwardend
//
// Everything happens inside network namespaces the demo creates (named
// nwl<id>-…), on a private D-Bus system bus; all of it is removed again
// at the end, and the lab's leak check confirms that nothing is left.
// It must run as root.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/netwarden/netwarden/polkit"
	"github.com/netwarden/netwarden/tests/lab"
)

func main() {
	daemon := flag.String("netwardend", "bin/netwardend", "path of the netwardend binary to run")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `usage: demo [-netwardend PATH]

Builds a throw-away lab of network namespaces (a hypervisor, two guests,
an upstream LAN), a private system bus with polkitd, starts netwardend in
the hypervisor namespace and shows it answering; then removes everything.
Run as root.

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	bin, err := filepath.Abs(*daemon)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: netwardend binary: %v (run make first)\n", err)
		os.Exit(2)
	}
	r := &lab.Runner{Out: os.Stdout}
	if err := r.Run(func(t lab.TB) { demo(t, bin) }); err != nil {
		fmt.Println("\ndemo: FAILED")
		os.Exit(1)
	}
	fmt.Println("\ndemo: done; the lab was removed and the leak check found nothing")
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func show(format string, args ...any) {
	fmt.Printf("    "+format+"\n", args...)
}

func demo(t lab.TB, bin string) {
	l := lab.New(t)

	step("a lab: hypervisor, two guests and an upstream LAN, each its own network namespace")
	hv := l.Hypervisor()
	g0, g1 := l.AddGuest(), l.AddGuest()
	up := l.Upstream()
	hv.AddBridge("br0", "10.77.0.1/24", g0.HostIface, g1.HostIface)
	g0.SetAddr("10.77.0.10/24")
	g1.SetAddr("10.77.0.11/24")
	show("hypervisor %s: bridge br0 10.77.0.1/24 with %s and %s; %s %s/%d to the LAN",
		hv.Name, g0.HostIface, g1.HostIface, up.HostIface, up.HostAddr, up.Prefix)
	show("guest %s: eth0 %s 10.77.0.10", g0.Name, g0.MAC)
	show("guest %s: eth0 %s 10.77.0.11", g1.Name, g1.MAC)
	show("upstream %s: eth0 %s", up.Name, up.Addr)

	step("guests talk over the bridge")
	if err := g0.Ping("10.77.0.11", 2, 5*time.Second); err != nil {
		t.Fatalf("ping: %v", err)
	}
	show("ping 10.77.0.10 -> 10.77.0.11: 2 of 2 replies")

	step("a frame with a forged MAC and IP, sent from guest 0, reaches guest 1 (no filter yet)")
	forgedMAC := net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x01}
	c, err := g1.Capture(g1.Iface, lab.MatchSrcMAC(forgedMAC))
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	frame, err := lab.UDPFrame(forgedMAC, g1.MAC, net.ParseIP("10.77.0.99"), net.ParseIP("10.77.0.11"), 4000, 4001, []byte("forged"))
	if err != nil {
		t.Fatalf("frame: %v", err)
	}
	if err := g0.SendFrame(g0.Iface, frame); err != nil {
		t.Fatalf("send: %v", err)
	}
	pkts, err := c.Wait(3*time.Second, 1)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	show("captured on guest 1: %s", lab.Describe(pkts[0]))
	show("(binding clean-traffic to %s will stop exactly this once filters are enforced)", g0.HostIface)

	step("a private system bus with polkitd")
	bus := l.Bus()
	pk := l.Polkit()
	show("bus %s", bus.Address)
	show("polkitd pid %d, with netwarden's actions installed for this bus only", pk.Process.PID)

	step("netwardend in the hypervisor namespace")
	cmd := hv.Command(context.Background(), bin,
		"--config-dir", filepath.Join(l.Dir, "etc"), "--state-dir", filepath.Join(l.Dir, "run"))
	d := l.Start("netwardend", cmd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := bus.Busctl("status", "org.netwarden1"); err == nil {
			break
		}
		if !d.Alive() || time.Now().After(deadline) {
			t.Fatalf("netwardend did not come up; log:\n%s", readLog(d.Log))
		}
		time.Sleep(20 * time.Millisecond)
	}
	show("pid %d owns org.netwarden1", d.PID)
	out, err := bus.Busctl("get-property", "org.netwarden1", "/org/netwarden1", "org.netwarden1.Manager", "Version")
	if err != nil {
		t.Fatalf("%v", err)
	}
	show("$ busctl --system get-property org.netwarden1 /org/netwarden1 org.netwarden1.Manager Version")
	show("%s", strings.TrimSpace(out))
	out, err = bus.Busctl("introspect", "org.netwarden1", "/org/netwarden1", "org.netwarden1.Manager")
	if err != nil {
		t.Fatalf("%v", err)
	}
	show("$ busctl --system introspect org.netwarden1 /org/netwarden1 org.netwarden1.Manager")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		show("%s", line)
	}

	step("polkit decides who may change things")
	conn := bus.Conn()
	auth := polkit.NewAuthority(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := auth.Check(ctx, polkit.BusNameSubject(conn.Names()[0]), polkit.ActionNWFilterManage, 0)
	if err != nil {
		t.Fatalf("%v", err)
	}
	show("root on %s: authorized=%v", polkit.ActionNWFilterManage, res.Authorized)
	u := l.TestUser()
	sleeper := l.Start("test-user", u.As(exec.Command("sleep", "30")))
	st, err := lab.StartTime(sleeper.PID)
	if err != nil {
		t.Fatalf("%v", err)
	}
	res, err = auth.Check(ctx, polkit.ProcessSubject(uint32(sleeper.PID), st, int32(u.UID)), polkit.ActionNWFilterManage, 0)
	if err != nil {
		t.Fatalf("%v", err)
	}
	show("user %s on %s: authorized=%v (may authenticate as admin: %v)", u.Name, polkit.ActionNWFilterManage, res.Authorized, res.Challenge)

	step("netwardend stops cleanly on SIGTERM")
	if err := d.Stop(); err != nil {
		t.Fatalf("%v", err)
	}
	select {
	case <-d.Exited():
	case <-time.After(5 * time.Second):
	}
	if d.Err() != nil {
		t.Fatalf("netwardend exit: %v", d.Err())
	}
	show("exit status 0; its log:")
	for _, line := range strings.Split(strings.TrimSpace(readLog(d.Log)), "\n") {
		show("  %s", line)
	}
	step("removing the lab")
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
