package main

// D-Bus API benchmarks (the API issue): the real netwardend on the lab's
// private bus with the real polkitd, called as root and as the
// unprivileged test user over Go connections. Every call, root's
// included, is a polkit CheckAuthorization round trip in the daemon
// (dbusapi.PolkitAuthorizer asks polkitd first, whoever calls).
//
//	api.lookup_by_name.{root,user}.{p50,p99}_ms   NWFilterLookupByName
//	api.list_nwfilters.{root,user}.{p50,p99}_ms   ListNWFilters
//	api.define_xml.{root,user}.{p50,p99}_ms       NWFilterDefineXML, authorized (the user by a rules.d rule)
//	api.polkit_check.{p50,p99}_ms                 CheckAuthorization alone, from the bench to polkitd
//	api.concurrent.clients_N.calls_per_s          NWFilterLookupByName from N connections
//	api.rss.*_kb                                  the daemon's VmRSS
//	api.cold_start.bindings_N.median_ms           exec of netwardend to READY=1

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	vnetns "github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/polkit"
	"github.com/netwarden/netwarden/tests/lab"
)

// apiOptions are the -api-* flags.
type apiOptions struct {
	calls    int           // timed calls per latency series
	warmup   int           // untimed calls before each series
	duration time.Duration // how long each concurrency run calls
	clients  int           // concurrent clients
	bindings int           // stored bindings for RSS and cold start
	starts   int           // cold starts per size (median)
}

type apiBench struct {
	t    lab.TB
	l    *lab.Lab
	bin  string
	ns   vnetns.NsHandle
	user lab.TestUser
	opt  apiOptions
	seq  int
}

// apiDaemon is one netwardend run.
type apiDaemon struct {
	p      *lab.Process
	notify *net.UnixConn
	ready  time.Duration // exec to READY=1
}

func runAPI(t lab.TB, bin string, opt apiOptions) {
	l := lab.New(t)
	lab.Require(t, "nft")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("netwardend binary: %v (build it: go build -o bin/netwardend ./cmd/netwardend)", err)
	}
	b := &apiBench{t: t, l: l, bin: bin, user: l.TestUser(), opt: opt}
	bus := l.Bus()
	l.Polkit() // running before the daemon starts: its start does not include polkitd's
	h, err := vnetns.GetFromName(l.Hypervisor().Name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer h.Close()
	b.ns = h
	t.Logf("bench: api lab %s", l.ID)

	empty := filepath.Join(l.Dir, "api-empty")
	full := filepath.Join(l.Dir, fmt.Sprintf("api-%d", opt.bindings))
	b.storeBindings(full, opt.bindings)

	// Cold starts without bindings; the last daemon stays for the calls.
	var starts []time.Duration
	var d *apiDaemon
	for i := 0; i < opt.starts; i++ {
		if d != nil {
			b.stop(d)
		}
		d = b.start(empty)
		starts = append(starts, d.ready)
	}
	out("api.cold_start.bindings_0.median_ms", "%.1f", ms(pct(starts, 50)))
	out("api.cold_start.bindings_0.max_ms", "%.1f", ms(pct(starts, 100)))
	time.Sleep(time.Second)
	out("api.rss.idle_kb", "%d", rss(t, d.p.PID))

	root := bus.Conn()
	user := b.dialAs(bus.Socket, b.user.UID, b.user.GID)
	defer user.Close()
	mgr := dbusapi.ManagerInterface

	// Reads, as root and as the test user (polkit: read actions are yes).
	for _, c := range []struct {
		who  string
		conn *dbus.Conn
	}{{"root", root}, {"user", user}} {
		b.latency("api.lookup_by_name."+c.who, c.conn, mgr+".NWFilterLookupByName", "clean-traffic")
		b.latency("api.list_nwfilters."+c.who, c.conn, mgr+".ListNWFilters", uint32(0))
	}

	// polkit's share: the same question the daemon asks for a read,
	// asked by the bench about its own connection.
	auth := polkit.NewAuthority(root)
	subject := polkit.BusNameSubject(root.Names()[0])
	var pk []time.Duration
	for i := 0; i < opt.warmup+opt.calls; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		t0 := time.Now()
		res, err := auth.CheckWithDetails(ctx, subject, polkit.ActionNWFilterRead, map[string]string{polkit.DetailNWFilterName: "clean-traffic"}, 0)
		d := time.Since(t0)
		cancel()
		if err != nil || !res.Authorized {
			t.Fatalf("CheckAuthorization: %v (%+v)", err, res)
		}
		if i >= opt.warmup {
			pk = append(pk, d)
		}
	}
	latencyOut("api.polkit_check", pk)

	// An authorized manage call: redefining the same small filter.
	define := `<filter name='%s' chain='root'>
  <rule action='accept' direction='out' priority='500'><tcp dstportstart='22'/></rule>
</filter>`
	b.latency("api.define_xml.root", root, mgr+".NWFilterDefineXML", fmt.Sprintf(define, "bench-api-root"))
	// The test user is refused (auth_admin_keep, no agent) until a rule
	// grants it nwfilter.manage: proof that the daemon sees the user.
	userDefine := fmt.Sprintf(define, "bench-api-user")
	if err := callErr(user, mgr+".NWFilterDefineXML", userDefine); !isAccessDenied(err) {
		t.Fatalf("test user's NWFilterDefineXML without a rule: %v, want AccessDenied", err)
	}
	b.latency("api.define_xml.user_denied", user, mgr+".NWFilterDefineXML", userDefine, true)
	l.Polkit().AddRule("50-bench-api.rules", fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (action.id == %q && subject.user == %q) { return polkit.Result.YES; }
});
`, polkit.ActionNWFilterManage, b.user.Name))
	deadline := time.Now().Add(callTimeout)
	for callErr(user, mgr+".NWFilterDefineXML", userDefine) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("polkitd did not pick up the rule granting %s to %s", polkit.ActionNWFilterManage, b.user.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.latency("api.define_xml.user", user, mgr+".NWFilterDefineXML", userDefine)

	// Throughput: one client, then N, each on its own connection.
	for _, n := range []int{1, opt.clients} {
		conns := []*dbus.Conn{}
		for i := 0; i < n; i++ {
			conns = append(conns, bus.Conn())
		}
		out(fmt.Sprintf("api.concurrent.clients_%d.calls_per_s", n), "%.0f", b.throughput(conns, mgr+".NWFilterLookupByName", "clean-traffic"))
	}
	out("api.rss.after_calls_kb", "%d", rss(t, d.p.PID))
	out("api.rss.peak_kb", "%d", hwm(t, d.p.PID))
	b.stop(d)

	// With stored bindings, which the daemon adopts (and enforces) at
	// start.
	starts = nil
	d = nil
	for i := 0; i < opt.starts; i++ {
		if d != nil {
			b.stop(d)
		}
		d = b.start(full)
		starts = append(starts, d.ready)
	}
	n := opt.bindings
	out(fmt.Sprintf("api.cold_start.bindings_%d.median_ms", n), "%.1f", ms(pct(starts, 50)))
	out(fmt.Sprintf("api.cold_start.bindings_%d.max_ms", n), "%.1f", ms(pct(starts, 100)))
	time.Sleep(time.Second)
	out(fmt.Sprintf("api.rss.bindings_%d_kb", n), "%d", rss(t, d.p.PID))
	var paths []dbus.ObjectPath
	if err := call(root, mgr+".ListNWFilterBindings", []any{uint32(0)}, &paths); err != nil {
		t.Fatalf("ListNWFilterBindings: %v", err)
	}
	if len(paths) != n {
		t.Fatalf("daemon adopted %d bindings, want %d; log:\n%s", len(paths), n, readLog(t, d.p))
	}
	b.latency(fmt.Sprintf("api.lookup_by_name.root.bindings_%d", n), root, mgr+".NWFilterLookupByName", "clean-traffic")
	out(fmt.Sprintf("api.rss.bindings_%d_after_calls_kb", n), "%d", rss(t, d.p.PID))
	out(fmt.Sprintf("api.rss.bindings_%d_peak_kb", n), "%d", hwm(t, d.p.PID))
	b.stop(d)
}

// storeBindings writes n clean-traffic bindings as the daemon stores
// them (STATE/bindings/PORT.xml), for it to adopt at start. The ports do
// not exist: nftables matches them by name.
func (b *apiBench) storeBindings(dir string, n int) {
	bd := filepath.Join(dir, "run", "bindings")
	if err := os.MkdirAll(bd, 0o700); err != nil {
		b.t.Fatalf("%v", err)
	}
	for i := 0; i < n; i++ {
		port := fmt.Sprintf("bench%d", i)
		xml := fmt.Sprintf(`<filterbinding><owner><name>vm%d</name><uuid>d54df46f-1ab5-4a22-8618-%012d</uuid></owner>
<portdev name='%s'/><mac address='52:54:01:%02x:%02x:%02x'/><filterref filter='clean-traffic'><parameter name='IP' value='10.%d.%d.%d'/></filterref></filterbinding>
`, i, i, port, byte(i>>16), byte(i>>8), byte(i), 100+i>>16, i>>8&255, i&255)
		if err := os.WriteFile(filepath.Join(bd, port+".xml"), []byte(xml), 0o600); err != nil {
			b.t.Fatalf("%v", err)
		}
	}
}

// start runs netwardend on dir (config and state) in the hypervisor
// namespace, with NOTIFY_SOCKET on a socket of the bench, and returns once
// it has sent READY=1. The namespace is entered by the thread that forks,
// so the time is netwardend's own, without `ip netns exec`.
func (b *apiBench) start(dir string) *apiDaemon {
	b.seq++
	sockPath := filepath.Join(b.l.Dir, fmt.Sprintf("notify-%d.sock", b.seq))
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	d := &apiDaemon{notify: sock}
	type started struct {
		p   *lab.Process
		at  time.Time
		err any
	}
	ch := make(chan started, 1)
	go func() {
		// The thread is never unlocked: it ends with the goroutine, and
		// no other goroutine runs in the lab's namespace.
		runtime.LockOSThread()
		defer func() {
			if v := recover(); v != nil {
				ch <- started{err: v}
			}
		}()
		if err := vnetns.Set(b.ns); err != nil {
			ch <- started{err: fmt.Sprintf("enter %s: %v", b.l.Hypervisor().Name, err)}
			return
		}
		cmd := exec.Command(b.bin, "--config-dir", filepath.Join(dir, "etc"), "--state-dir", filepath.Join(dir, "run"))
		cmd.Env = append(b.l.Env(), "NOTIFY_SOCKET="+sockPath)
		at := time.Now()
		p := b.l.Start(fmt.Sprintf("netwardend-api-%d", b.seq), cmd)
		ch <- started{p: p, at: at}
	}()
	s := <-ch
	if s.err != nil {
		sock.Close()
		panic(s.err) // a lab failure from the goroutine: Fatalf's panic, carried here
	}
	d.p = s.p
	buf := make([]byte, 4096)
	for {
		if err := sock.SetReadDeadline(time.Now().Add(callTimeout)); err != nil {
			b.t.Fatalf("%v", err)
		}
		n, err := sock.Read(buf)
		if err != nil {
			b.t.Fatalf("no READY=1 from netwardend: %v; log:\n%s", err, readLog(b.t, d.p))
		}
		if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
			d.ready = time.Since(s.at)
			return d
		}
	}
}

func (b *apiBench) stop(d *apiDaemon) {
	if err := d.p.Stop(); err != nil {
		b.t.Fatalf("stop netwardend: %v", err)
	}
	d.notify.Close()
}

// dialAs connects to the bus socket as uid/gid: a thread of the bench
// takes the user's effective ids (setresuid on that thread only, which
// the kernel records as the socket's peer credentials) and connects; the
// bus then authenticates the connection as the user with EXTERNAL.
func (b *apiBench) dialAs(socket string, uid, gid uint32) *dbus.Conn {
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		// Never unlocked: the thread with the user's ids ends with the
		// goroutine.
		runtime.LockOSThread()
		keep := ^uintptr(0)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, keep, uintptr(gid), keep); e != 0 {
			ch <- dialed{err: fmt.Errorf("setresgid: %w", e)}
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
			ch <- dialed{err: fmt.Errorf("setresuid: %w", e)}
			return
		}
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			ch <- dialed{err: err}
			return
		}
		if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: socket}); err != nil {
			syscall.Close(fd)
			ch <- dialed{err: fmt.Errorf("connect %s as uid %d: %w", socket, uid, err)}
			return
		}
		f := os.NewFile(uintptr(fd), socket)
		c, err := net.FileConn(f)
		f.Close()
		ch <- dialed{c, err}
	}()
	r := <-ch
	if r.err != nil {
		b.t.Fatalf("%v", r.err)
	}
	conn, err := dbus.NewConn(r.c)
	if err == nil {
		if err = conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.FormatUint(uint64(uid), 10))}); err == nil {
			err = conn.Hello()
		}
	}
	if err != nil {
		r.c.Close()
		b.t.Fatalf("bus connection as uid %d: %v", uid, err)
	}
	var got uint32
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, conn.Names()[0]).Store(&got); err != nil || got != uid {
		b.t.Fatalf("bus sees the connection as uid %d (%v), want %d", got, err, uid)
	}
	return conn
}

// latency makes opt.warmup untimed then opt.calls timed calls of method
// and prints p50 and p99. Calls must succeed, or with denied be refused
// with AccessDenied.
func (b *apiBench) latency(name string, conn *dbus.Conn, method string, arg any, denied ...bool) {
	var ds []time.Duration
	for i := 0; i < b.opt.warmup+b.opt.calls; i++ {
		t0 := time.Now()
		err := callErr(conn, method, arg)
		d := time.Since(t0)
		switch {
		case len(denied) == 0 && err != nil:
			b.t.Fatalf("%s: %v", method, err)
		case len(denied) > 0 && !isAccessDenied(err):
			b.t.Fatalf("%s: %v, want AccessDenied", method, err)
		}
		if i >= b.opt.warmup {
			ds = append(ds, d)
		}
	}
	latencyOut(name, ds)
}

func latencyOut(name string, ds []time.Duration) {
	out(name+".p50_ms", "%.3f", ms(pct(ds, 50)))
	out(name+".p99_ms", "%.3f", ms(pct(ds, 99)))
	out(name+".calls", "%d", len(ds))
}

// throughput calls method from every connection at once, each in a loop,
// for opt.duration, and returns the calls per second of all of them.
func (b *apiBench) throughput(conns []*dbus.Conn, method string, arg any) float64 {
	for _, c := range conns { // warm-up
		if err := callErr(c, method, arg); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
	}
	var wg sync.WaitGroup
	counts := make([]int, len(conns))
	errs := make([]error, len(conns))
	start := time.Now()
	end := start.Add(b.opt.duration)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if err := callErr(c, method, arg); err != nil {
					errs[i] = err
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	for i := range conns {
		if errs[i] != nil {
			b.t.Fatalf("%s: %v", method, errs[i])
		}
		total += counts[i]
	}
	return float64(total) / elapsed.Seconds()
}

func call(conn *dbus.Conn, method string, args []any, ret ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c := conn.Object(dbusapi.BusName, dbusapi.ObjectPath).CallWithContext(ctx, method, 0, args...)
	if c.Err == nil && len(ret) > 0 {
		return c.Store(ret...)
	}
	return c.Err
}

func callErr(conn *dbus.Conn, method string, arg any) error {
	return call(conn, method, []any{arg})
}

func isAccessDenied(err error) bool {
	var e dbus.Error
	var ep *dbus.Error
	switch {
	case errors.As(err, &e):
	case errors.As(err, &ep) && ep != nil:
		e = *ep
	}
	return e.Name == "org.freedesktop.DBus.Error.AccessDenied"
}

// rss returns VmRSS of pid in kB.
func rss(t lab.TB, pid int) int { return statusKB(t, pid, "VmRSS:") }

// hwm returns VmHWM (peak RSS) of pid in kB.
func hwm(t lab.TB, pid int) int { return statusKB(t, pid, "VmHWM:") }

func statusKB(t lab.TB, pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			v, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("%s %q: %v", field, line, err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func readLog(t lab.TB, p *lab.Process) string {
	data, err := os.ReadFile(p.Log)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(data)
}
