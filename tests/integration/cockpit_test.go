package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/tests/lab"
)

// The programs of the browser test (Debian's cockpit-ws, cockpit-bridge
// and chromium packages).
const (
	cockpitWS     = "/usr/lib/cockpit/cockpit-ws"
	cockpitBridge = "cockpit-bridge"
	chromiumBin   = "chromium"
)

// TestCockpitPage drives the Cockpit page (cockpit/) in headless
// Chromium against cockpit-ws --local-session on the lab's bus, with the
// real daemon, polkitd and firewalld: it defines, starts, autostarts and
// stops a network (a guest's DHCP lease shows), defines a filter (an
// invalid one shows the daemon's message, the valid one its filterref
// graph), creates a binding, sees a firewall-cmd --reload in the status
// strip, and, in a second cockpit-ws running as the unprivileged test
// user, sees "You are not allowed to …". Screenshots of each view go to
// DIR/screenshots in the lab directory and, when NETWARDEN_ARTIFACTS is
// set, to that directory too.
func TestCockpitPage(t *testing.T) {
	lab.Require(t, cockpitWS, cockpitBridge, chromiumBin)
	l := lab.New(t)
	bus := l.Bus()
	conn := bus.Conn()
	l.Polkit()
	user := l.TestUser()
	fw := l.StartFirewalld("nftables")
	d := startDaemon(t, l, "netwardend", nil)
	d.waitOwned(t, conn)
	d.waitReady(t)
	n := &netLab{l: l, conn: conn, d: d}
	g0, g1 := l.AddGuest(), l.AddGuest()

	pkgs := cockpitPackages(t, l, filepath.Join(bus.PolicyDir, "org.netwarden1.conf"))
	rootURL := startCockpitWS(t, l, "cockpit-ws", pkgs, nil)
	browser := startChromium(t, l)
	shots := newScreenshots(t, l)

	p := openPage(t, browser, rootURL)
	p.wait(`document.getElementById("status-backend").textContent === "nftables"`, "the status strip shows the backend")
	p.wait(`document.getElementById("status-firewalld").textContent === "running"`, "the status strip shows firewalld running")

	// Networks: an invalid definition shows the daemon's message inline.
	p.click(`#network-define-box summary`)
	p.setValue(`#network-xml`, `<network><name>broken</name><forward mode='bogus'/></network>`)
	p.click(`#network-define`)
	p.wait(`!document.getElementById("network-define-error").hidden`, "the define error is shown")
	if msg := p.text(`#network-define-error`); !strings.Contains(msg, "Could not define the network") || !strings.Contains(msg, "bogus") {
		t.Errorf("define error shown: %q", msg)
	}
	shots.take(p, "network-define-error")

	// A valid one appears through the daemon's signals, inactive.
	p.setValue(`#network-xml`, natNetwork("cockpit", "nwbr7", "97", g1.MAC))
	p.click(`#network-define`)
	row := `#networks tr[data-name="cockpit"]`
	p.wait(jsText(row+` .nw-state`)+` === "inactive"`, "the defined network is listed as inactive")
	for sel, want := range map[string]string{row + " .nw-forward": "nat", row + " .nw-bridge": "nwbr7", row + " .nw-subnet": "10.97.0.1/24"} {
		if got := p.text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}

	// Start, autostart.
	p.click(row + ` .nw-start`)
	p.wait(jsText(row+` .nw-state`)+` === "active"`, "the started network is active")
	path := networkPath(t, n, "cockpit")
	if !networkProp(t, n, path, "Active").(bool) {
		t.Errorf("the daemon does not report the network active")
	}
	p.click(row + ` .nw-autostart`)
	deadline := time.Now().Add(timeout)
	for !networkProp(t, n, path, "Autostart").(bool) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon does not report autostart on%s", p.diagnose())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.wait(`document.querySelector('`+row+` .nw-autostart').checked && !document.querySelector('`+row+` .nw-row-error')`, "autostart is shown on")

	// A guest on the network leases an address.
	n.plug(t, path, g0, "")
	lease, err := g0.DHCP(15 * time.Second)
	if err != nil {
		t.Fatalf("DHCP: %v\n%s", err, d.log(t))
	}

	// Filters: an invalid definition shows the daemon's message; a valid
	// one with references draws its graph.
	p.click(`#tab-filters`)
	p.wait(`document.querySelector('#filters tr[data-name="clean-traffic"] .nw-builtin') !== null`, "clean-traffic is listed as built-in")
	p.click(`#filter-new`)
	p.setValue(`#filter-xml`, `<filter name='cockpit-bad' chain='root'><rule action='accept' direction='in'><tcp dstportstart='99999'/></rule></filter>`)
	p.click(`#filter-define`)
	p.wait(`!document.getElementById("filter-error").hidden`, "the filter error is shown")
	if msg := p.text(`#filter-error`); !strings.Contains(msg, "Could not define filter “cockpit-bad”") || !strings.Contains(msg, "99999") {
		t.Errorf("filter error shown: %q", msg)
	}
	shots.take(p, "filter-define-error")
	p.setValue(`#filter-xml`, `<filter name='cockpit-guest' chain='root'>
  <filterref filter='clean-traffic'/>
  <filterref filter='allow-dhcp-server'/>
  <rule action='accept' direction='in' priority='500'><tcp dstportstart='22'/></rule>
</filter>`)
	p.click(`#filter-define`)
	p.wait(`document.querySelector('#filters tr[data-name="cockpit-guest"]') !== null`, "the defined filter is listed")
	p.click(`#filters tr[data-name="cockpit-guest"]`)
	p.wait(`document.querySelector('#filter-graph-svg g[data-filter="no-mac-spoofing"]') !== null`, "the filter graph reaches clean-traffic's references")
	nodes := p.text(`#filter-graph-svg`)
	for _, f := range []string{"cockpit-guest", "clean-traffic", "allow-dhcp-server", "no-ip-spoofing", "allow-incoming-ipv4"} {
		if !strings.Contains(nodes, f) {
			t.Errorf("the graph lacks %s: %q", f, nodes)
		}
	}
	if x := p.text(`#filter-xml-view`); !strings.Contains(x, "filterref filter='clean-traffic'") && !strings.Contains(x, `filterref filter="clean-traffic"`) {
		t.Errorf("the XML view shows %q", x)
	}
	shots.take(p, "filters")

	// Bindings: create one.
	p.click(`#tab-bindings`)
	p.click(`#binding-create-box summary`)
	p.setValue(`#binding-port`, g1.HostIface)
	p.setValue(`#binding-mac`, g1.MAC.String())
	p.setValue(`#binding-filter`, "cockpit-guest")
	p.setValue(`#binding-params`, "IP=10.97.0.77\nDHCPSERVER=10.97.0.1")
	p.click(`#binding-create`)
	brow := fmt.Sprintf(`#bindings tr[data-port=%q]`, g1.HostIface)
	p.wait(`document.querySelector('`+brow+`') !== null`, "the binding is listed")
	if got := p.text(brow + ` .nw-params`); !strings.Contains(got, "IP=10.97.0.77") || !strings.Contains(got, "DHCPSERVER=10.97.0.1") {
		t.Errorf("binding parameters shown: %q", got)
	}
	if got := p.text(brow + ` .nw-mode`); got != "enforce" {
		t.Errorf("binding status shown: %q", got)
	}
	if _, err := l.Hypervisor().Run("nft", "list", "table", "bridge", "netwarden"); err != nil {
		t.Errorf("no bridge table after the binding: %v", err)
	}
	shots.take(p, "bindings")

	// The status strip follows a firewalld reload.
	p.click(`#tab-networks`)
	p.wait(`document.querySelector('`+row+` .nw-leases-cell').textContent.indexOf("`+lease.IP.String()+`") >= 0`, "the lease is shown")
	before := p.text(`#status-reapply`)
	beforeUS := p.attr(`#status-reapply`, "data-us")
	if out, err := fw.Cmd("--reload"); err != nil {
		t.Fatalf("firewall-cmd --reload: %v %s", err, out)
	}
	p.wait(`Number(document.getElementById("status-reapply").getAttribute("data-us")) > `+beforeUS, "the status strip shows a later re-apply")
	t.Logf("last re-apply shown: %q → %q", before, p.text(`#status-reapply`))
	shots.take(p, "networks")

	// The unprivileged user, in a cockpit session of its own, reads but
	// may not change anything.
	home := filepath.Join(l.Dir, "user-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, int(user.UID), int(user.GID)); err != nil {
		t.Fatal(err)
	}
	userURL := startCockpitWS(t, l, "cockpit-ws-user", pkgs, func(cmd *exec.Cmd) {
		user.As(cmd)
		cmd.Env = append(cmd.Env, "HOME="+home, "USER="+user.Name, "LOGNAME="+user.Name, "XDG_RUNTIME_DIR="+home)
	})
	up := openPage(t, browser, userURL)
	up.wait(jsText(row+` .nw-state`)+` === "active"`, "the user sees the active network")
	up.click(row + ` .nw-stop`)
	up.wait(`document.querySelector('`+row+` .nw-row-error') !== null`, "the user's stop is refused")
	if msg := up.text(row + ` .nw-row-error`); !strings.HasPrefix(msg, "You are not allowed to stop network “cockpit”.") {
		t.Errorf("the user sees %q", msg)
	}
	shots.take(up, "denied")
	if !networkProp(t, n, path, "Active").(bool) {
		t.Errorf("the network stopped although the user was refused")
	}

	// Root stops and undefines it (with confirmation); the binding goes.
	p.click(row + ` .nw-stop`)
	p.wait(jsText(row+` .nw-state`)+` === "inactive"`, "the stopped network is inactive")
	p.click(row + ` .nw-undefine`)
	p.wait(`document.querySelector('`+row+` .nw-undefine-yes') !== null`, "undefine asks for confirmation")
	if !networkExists(n, "cockpit") {
		t.Errorf("the network went before the confirmation")
	}
	p.click(row + ` .nw-undefine-yes`)
	p.wait(`document.querySelector('`+row+`') === null`, "the undefined network is gone")
	p.click(`#tab-bindings`)
	p.click(brow + ` .nw-delete`)
	p.click(brow + ` .nw-delete-yes`)
	p.wait(`document.querySelector('`+brow+`') === null`, "the deleted binding is gone")
}

// jsText is a JavaScript expression for the text of the element sel
// (null if there is none).
func jsText(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q) || {}).textContent`, sel)
}

func networkPath(t *testing.T, n *netLab, name string) dbus.ObjectPath {
	t.Helper()
	var path dbus.ObjectPath
	if err := call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkLookupByName", []any{name}, &path); err != nil {
		t.Fatalf("NetworkLookupByName %s: %v", name, err)
	}
	return path
}

func networkExists(n *netLab, name string) bool {
	var path dbus.ObjectPath
	return call(n.conn, dbusapi.ObjectPath, dbusapi.ManagerInterface+".NetworkLookupByName", []any{name}, &path) == nil
}

func networkProp(t *testing.T, n *netLab, path dbus.ObjectPath, prop string) any {
	t.Helper()
	v, err := n.conn.Object(dbusapi.BusName, path).GetProperty(networkIface + "." + prop)
	if err != nil {
		t.Fatalf("%s.%s: %v", path, prop, err)
	}
	return v.Value()
}

// cockpitPackages copies cockpit/ into a fresh XDG_DATA_HOME as the
// package "netwarden" (where cockpit-bridge looks for a user's packages)
// and returns that directory. The manifest's condition is pointed at the
// lab bus's policy file: the machine's /usr/share/dbus-1/system.d is
// never written.
func cockpitPackages(t *testing.T, l *lab.Lab, policy string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	xdg := filepath.Join(l.Dir, "xdg")
	dst := filepath.Join(xdg, "cockpit", "netwarden")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "cockpit")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "manifest.json" {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("cockpit/manifest.json: %v", err)
			}
			conds, _ := m["conditions"].([]any)
			if len(conds) == 0 {
				t.Fatalf("cockpit/manifest.json has no conditions")
			}
			m["conditions"] = []any{map[string]any{"path-exists": policy}}
			if data, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return xdg
}

// freePort returns a TCP port free on 127.0.0.1 just now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// noSessionBus gives env a session bus address: the lab's bus. Without
// one, cockpit-bridge and chromium launch a session dbus-daemon of their
// own, which outlives the test.
func noSessionBus(env []string) []string {
	for _, kv := range env {
		if addr, ok := strings.CutPrefix(kv, "DBUS_SYSTEM_BUS_ADDRESS="); ok {
			return append(env, "DBUS_SESSION_BUS_ADDRESS="+addr)
		}
	}
	return append(env, "DBUS_SESSION_BUS_ADDRESS=disabled:")
}

// startCockpitWS starts cockpit-ws with a local session (cockpit-bridge,
// no login) on 127.0.0.1 only, in the machine's namespace, with the lab's
// environment (its bus) and XDG_DATA_HOME at xdg; the lab stops it by
// PID. It returns the page's URL once cockpit-ws serves the package.
func startCockpitWS(t *testing.T, l *lab.Lab, name, xdg string, adjust func(*exec.Cmd)) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(cockpitWS, "--local-session="+cockpitBridge, "--address", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Env = append(noSessionBus(l.Env()), "XDG_DATA_HOME="+xdg)
	if adjust != nil {
		adjust(cmd)
	}
	ws := l.Start(name, cmd)
	url := fmt.Sprintf("http://127.0.0.1:%d/cockpit/@localhost/netwarden/index.html", port)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if !ws.Alive() || time.Now().After(deadline) {
			log, _ := os.ReadFile(ws.Log)
			t.Fatalf("%s does not serve %s (%v, alive %v); log:\n%s", name, url, err, ws.Alive(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startChromium starts headless Chromium with a fresh profile and its
// DevTools endpoint on 127.0.0.1 (the lab stops it by PID) and returns
// an allocator context connected to it.
func startChromium(t *testing.T, l *lab.Lab) context.Context {
	t.Helper()
	profile := filepath.Join(l.Dir, "chromium-profile")
	home := filepath.Join(l.Dir, "chromium-home")
	for _, dir := range []string{profile, home} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(chromiumBin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--window-size=1280,900", "about:blank")
	cmd.Env = append(noSessionBus(l.Env()), "HOME="+home)
	proc := l.Start("chromium", cmd)
	deadline := time.Now().Add(timeout)
	var ws string
	for {
		data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); err == nil && len(lines) == 2 {
			ws = "ws://127.0.0.1:" + lines[0] + lines[1]
			break
		}
		if !proc.Alive() || time.Now().After(deadline) {
			log, _ := os.ReadFile(proc.Log)
			t.Fatalf("chromium shows no DevTools endpoint (alive %v); log:\n%s", proc.Alive(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := remote.NewAllocator(context.Background(), ws, remote.NoModifyURL)
	t.Cleanup(cancel)
	return ctx
}

// page is one browser tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string
}

// openPage opens url in a new tab and waits for the page to have read
// the daemon's objects.
func openPage(t *testing.T, allocator context.Context, url string) *page {
	t.Helper()
	listen := func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			t.Logf("page exception: %s %s", d.Text, desc)
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			t.Logf("page console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	}
	ctx, cancel := chromedp.NewContext(allocator, chromedp.WithListener(listen))
	t.Cleanup(cancel)
	p := &page{t: t, ctx: ctx, name: url}
	// The first action opens the tab, which lives as long as the
	// context of that call: no timeout there.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	p.run("open "+url, chromedp.Navigate(url))
	p.wait(`document.body && document.body.getAttribute("data-loaded") === "true"`, "the page has loaded the daemon's objects")
	return p
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v%s", what, err, p.diagnose())
	}
}

// diagnose returns what the page shows in its alert and error areas.
func (p *page) diagnose() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll(".nw-alert, .nw-error, .nw-row-error")).filter(e => !e.hidden).map(e => e.id + ": " + e.textContent).join("\n")`))
	if s == "" {
		return ""
	}
	return "\npage shows:\n" + s
}

// eval returns the string value of a JavaScript expression.
func (p *page) eval(what, expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("%s: %v%s", what, err, p.diagnose())
	}
	return s
}

// wait waits until the JavaScript expression is true.
func (p *page) wait(expr, what string) {
	p.t.Helper()
	p.run("wait until "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout)))
}

// click waits for a visible element and clicks it in one step of the
// page's own event loop: the page re-renders its tables on every signal,
// so a node found in one round trip may be gone in the next.
func (p *page) click(sel string) {
	p.t.Helper()
	p.wait(fmt.Sprintf(`(e => e !== null && e.offsetParent !== null && !e.disabled)(document.querySelector(%q))`, sel), sel+" is there")
	p.eval("click "+sel, fmt.Sprintf(`document.querySelector(%q).click(), ""`, sel))
}

func (p *page) setValue(sel, value string) {
	p.t.Helper()
	p.run("set "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value))
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return strings.TrimSpace(p.eval("read "+sel, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel)))
}

func (p *page) attr(sel, name string) string {
	p.t.Helper()
	return p.eval("read "+sel, fmt.Sprintf(`(document.querySelector(%q) || {getAttribute: () => ""}).getAttribute(%q) || ""`, sel, name))
}

// screenshots saves PNG captures in the lab directory and, when
// NETWARDEN_ARTIFACTS names a directory, there too.
type screenshots struct {
	t    *testing.T
	dirs []string
}

func newScreenshots(t *testing.T, l *lab.Lab) *screenshots {
	s := &screenshots{t: t, dirs: []string{filepath.Join(l.Dir, "screenshots")}}
	if dir := os.Getenv("NETWARDEN_ARTIFACTS"); dir != "" {
		s.dirs = append(s.dirs, dir)
	}
	for _, dir := range s.dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *screenshots) take(p *page, name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, dir := range s.dirs {
		file := filepath.Join(dir, "cockpit-"+name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			s.t.Fatal(err)
		}
		s.t.Logf("screenshot %s", file)
	}
}
