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
	client := flag.String("netwarden", "", "path of the netwarden command (default: next to netwardend)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `usage: demo [-netwardend PATH] [-netwarden PATH]

Builds a throw-away lab of network namespaces (a hypervisor, guests, an
upstream LAN), a private system bus with polkitd, starts netwardend in
the hypervisor namespace and shows it filtering a guest's traffic and
running libvirt's default NAT network, driven by the netwarden command;
then removes everything. Run as root.

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
	if *client == "" {
		*client = filepath.Join(filepath.Dir(bin), "netwarden")
	}
	cli, err := filepath.Abs(*client)
	if err == nil {
		_, err = os.Stat(cli)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: netwarden binary: %v (run make first)\n", err)
		os.Exit(2)
	}
	r := &lab.Runner{Out: os.Stdout}
	if err := r.Run(func(t lab.TB) { demo(t, bin, cli) }); err != nil {
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

func demo(t lab.TB, bin, cli string) {
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

	step("without a filter, a frame with a forged MAC and IP from guest 0 reaches guest 1")
	forgedMAC := net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x01}
	forged, err := lab.UDPFrame(forgedMAC, g1.MAC, net.ParseIP("10.77.0.99"), net.ParseIP("10.77.0.11"), 4000, 4001, []byte("forged"))
	if err != nil {
		t.Fatalf("frame: %v", err)
	}
	own, err := lab.UDPFrame(g0.MAC, g1.MAC, net.ParseIP("10.77.0.10"), net.ParseIP("10.77.0.11"), 4000, 4001, []byte("honest"))
	if err != nil {
		t.Fatalf("frame: %v", err)
	}
	show("forged frame delivered: %v", deliver(t, g0, g1, forged, "forged"))

	step("a private system bus with polkitd")
	bus := l.Bus()
	pk := l.Polkit()
	show("bus %s", bus.Address)
	show("polkitd pid %d, with netwarden's actions installed for this bus only", pk.Process.PID)

	step("a clean-traffic binding for guest 0's port, on record in the state directory")
	runDir := filepath.Join(l.Dir, "run")
	binding := fmt.Sprintf(`<filterbinding>
  <owner><name>guest0</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='%s'/>
  <mac address='%s'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='10.77.0.10'/>
  </filterref>
</filterbinding>
`, g0.HostIface, g0.MAC)
	if err := os.MkdirAll(filepath.Join(runDir, "bindings"), 0o700); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(filepath.Join(runDir, "bindings", g0.HostIface+".xml"), []byte(binding), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(binding), "\n") {
		show("%s", line)
	}
	show("(the D-Bus methods to create bindings come with the API; the daemon enforces stored ones at start)")

	step("netwardend in the hypervisor namespace")
	d := startDaemon(t, l, hv, bin, runDir, "netwardend")
	show("pid %d owns org.netwarden1 and enforces the binding", d.PID)
	out, err := bus.Busctl("get-property", "org.netwarden1", "/org/netwarden1", "org.netwarden1.Manager", "Version")
	if err != nil {
		t.Fatalf("%v", err)
	}
	show("$ busctl --system get-property org.netwarden1 /org/netwarden1 org.netwarden1.Manager Version")
	show("%s", strings.TrimSpace(out))

	step("with clean-traffic bound, guest 0 can only send as itself")
	show("forged frame delivered: %v", deliver(t, g0, g1, forged, "forged"))
	show("honest frame delivered: %v", deliver(t, g0, g1, own, "honest"))
	if err := g0.Ping("10.77.0.11", 2, 5*time.Second); err != nil {
		t.Fatalf("ping: %v", err)
	}
	show("ping 10.77.0.10 -> 10.77.0.11: 2 of 2 replies")
	show("$ nft list table bridge netwarden   (start; one program shared by every clean-traffic port)")
	for i, line := range strings.Split(hv.MustRun("nft", "list", "table", "bridge", "netwarden"), "\n") {
		if i >= 12 {
			show("  …")
			break
		}
		show("  %s", line)
	}

	step("kill -9 netwardend: the kernel keeps enforcing")
	if err := d.Kill(); err != nil {
		t.Fatalf("%v", err)
	}
	show("forged frame delivered with no daemon running: %v", deliver(t, g0, g1, forged, "forged"))
	d = startDaemon(t, l, hv, bin, runDir, "netwardend-restarted")
	show("restarted (pid %d); it replaced its table in one transaction, no gap", d.PID)
	show("forged frame delivered: %v", deliver(t, g0, g1, forged, "forged"))

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

	networks(t, l, cli)

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

// startDaemon starts netwardend in ns and waits until it is ready.
func startDaemon(t lab.TB, l *lab.Lab, ns *lab.Netns, bin, runDir, name string) *lab.Process {
	cmd := ns.Command(context.Background(), bin,
		"--config-dir", filepath.Join(l.Dir, "etc"), "--state-dir", runDir)
	d := l.Start(name, cmd)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readLog(d.Log), "msg=ready") {
		if !d.Alive() || time.Now().After(deadline) {
			t.Fatalf("netwardend did not come up; log:\n%s", readLog(d.Log))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// deliver sends frame from src and reports whether dst received it.
func deliver(t lab.TB, src, dst *lab.Guest, frame []byte, marker string) bool {
	c, err := dst.Capture(dst.Iface, lab.MatchContains([]byte(marker)))
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	defer c.Close()
	if err := src.SendFrame(src.Iface, frame); err != nil {
		t.Fatalf("send: %v", err)
	}
	_, err = c.Wait(500*time.Millisecond, 1)
	return err == nil
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
