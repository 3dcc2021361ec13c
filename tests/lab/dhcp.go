package lab

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Lease is what a guest's DHCP client was given by the server.
type Lease struct {
	// IP is the leased address.
	IP net.IP
	// Mask is the subnet mask (option 1), and Prefix its length.
	Mask   net.IPMask
	Prefix int
	// Router is the first default gateway offered (option 3), nil if none.
	Router net.IP
	// DNS lists the name servers offered (option 6).
	DNS []net.IP
	// Domain is the domain name offered (option 15), if any.
	Domain string
	// LeaseTime is the lease duration (option 51).
	LeaseTime time.Duration
	// ServerID is the address of the server that granted the lease
	// (option 54).
	ServerID net.IP
}

// CIDR returns the leased address with its prefix, e.g. "10.9.0.12/24".
func (l Lease) CIDR() string { return fmt.Sprintf("%s/%d", l.IP, l.Prefix) }

// udhcpcScript is the event script busybox udhcpc runs. On "bound" and
// "renew" it records the lease in the file named by $1 of the template
// (written atomically) and configures the guest like a DHCP client
// would: the address on the interface and a default route via the first
// router.
const udhcpcScript = `#!/bin/sh
# udhcpc event script written by the netwarden test lab.
out=%s
case "$1" in
bound|renew)
	{
		echo "ip=$ip"
		echo "subnet=$subnet"
		echo "mask=$mask"
		echo "router=$router"
		echo "dns=$dns"
		echo "domain=$domain"
		echo "lease=$lease"
		echo "serverid=$serverid"
	} >"$out.tmp" && mv "$out.tmp" "$out" || exit 1
	ip addr replace "$ip/$mask" dev "$interface" || exit 1
	if [ -n "$router" ]; then
		set -- $router
		ip route replace default via "$1" dev "$interface" || exit 1
	fi
	;;
esac
exit 0
`

// DHCPOptions tunes the DHCP client run by Guest.DHCPWith.
type DHCPOptions struct {
	// Timeout bounds the whole exchange (10 s if zero). The client sends
	// one DISCOVER a second until then.
	Timeout time.Duration
	// Broadcast sets the BOOTP broadcast flag, asking the server to
	// broadcast its replies; without it (what most VM clients do) the
	// server unicasts them to the offered address.
	Broadcast bool
	// Hostname is sent as option 12, so dnsmasq can register the name
	// in DNS.
	Hostname string
	// RequestIP asks for this address (option 50), nil for any.
	RequestIP net.IP
}

// DHCP runs a DHCP client (busybox udhcpc) on the guest's interface until
// it obtains a lease or timeout passes; see DHCPWith.
func (g *Guest) DHCP(timeout time.Duration) (Lease, error) {
	g.lab.t.Helper()
	return g.DHCPWith(DHCPOptions{Timeout: timeout})
}

// DHCPWith runs a DHCP client (busybox udhcpc) on the guest's interface
// until it obtains a lease or opts.Timeout passes. Expect about 3 s from
// a dnsmasq that pings a new address before offering it (its default;
// --no-ping turns that off). The lease's address is
// configured on the interface and a default route set via its router,
// as a VM's client would. The client exits once leased (it neither
// renews nor releases); its output is in the lab's log directory. A
// missing busybox skips (or in strict mode fails) the test.
func (g *Guest) DHCPWith(opts DHCPOptions) (Lease, error) {
	g.lab.t.Helper()
	Require(g.lab.t, "busybox")
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dir := filepath.Join(g.lab.Dir, "dhcp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Lease{}, fmt.Errorf("dhcp: %w", err)
	}
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	base := filepath.Join(dir, fmt.Sprintf("%s-%s", g.Name, stamp))
	script, result := base+".sh", base+".lease"
	if err := os.WriteFile(script, fmt.Appendf(nil, udhcpcScript, shellQuote(result)), 0o755); err != nil {
		return Lease{}, fmt.Errorf("dhcp: write script: %w", err)
	}
	tries := max(int(math.Ceil(timeout.Seconds())), 1)
	argv := []string{"busybox", "udhcpc", "-i", g.Iface, "-f", "-q", "-n",
		"-t", strconv.Itoa(tries), "-T", "1", "-s", script}
	if opts.Broadcast {
		argv = append(argv, "-B")
	}
	if opts.Hostname != "" {
		argv = append(argv, "-x", "hostname:"+opts.Hostname)
	}
	if opts.RequestIP != nil {
		argv = append(argv, "-r", opts.RequestIP.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	p, err := g.lab.start(fmt.Sprintf("udhcpc-%s-%s", g.Name, stamp), g.Command(ctx, argv...))
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp: %w", err)
	}
	select {
	case <-p.Exited():
	case <-time.After(timeout + 2*time.Second):
		_ = p.Stop()
		return Lease{}, fmt.Errorf("in %s: udhcpc on %s still running after %v; log:\n%s", g.Name, g.Iface, timeout, readFile(p.Log))
	}
	if err := p.Err(); err != nil {
		return Lease{}, fmt.Errorf("in %s: no DHCP lease on %s within %v: udhcpc: %w; log:\n%s", g.Name, g.Iface, timeout, err, readFile(p.Log))
	}
	lease, err := parseLease(result)
	if err != nil {
		return Lease{}, fmt.Errorf("in %s: dhcp on %s: %w; log:\n%s", g.Name, g.Iface, err, readFile(p.Log))
	}
	return lease, nil
}

// parseLease reads the key=value file the udhcpc script wrote.
func parseLease(path string) (Lease, error) {
	f, err := os.Open(path)
	if err != nil {
		return Lease{}, fmt.Errorf("lease file: %w", err)
	}
	defer f.Close()
	v := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, val, ok := strings.Cut(sc.Text(), "="); ok {
			v[k] = strings.TrimSpace(val)
		}
	}
	if err := sc.Err(); err != nil {
		return Lease{}, fmt.Errorf("lease file: %w", err)
	}
	var l Lease
	if l.IP = net.ParseIP(v["ip"]).To4(); l.IP == nil {
		return Lease{}, fmt.Errorf("lease file: bad ip %q", v["ip"])
	}
	if m := net.ParseIP(v["subnet"]).To4(); m != nil {
		l.Mask = net.IPMask(m)
		l.Prefix, _ = l.Mask.Size()
	} else if n, err := strconv.Atoi(v["mask"]); err == nil {
		l.Prefix, l.Mask = n, net.CIDRMask(n, 32)
	} else {
		return Lease{}, fmt.Errorf("lease file: no subnet mask (subnet=%q mask=%q)", v["subnet"], v["mask"])
	}
	if r := strings.Fields(v["router"]); len(r) > 0 {
		l.Router = net.ParseIP(r[0]).To4()
	}
	for _, d := range strings.Fields(v["dns"]) {
		if ip := net.ParseIP(d); ip != nil {
			l.DNS = append(l.DNS, ip)
		}
	}
	l.Domain = v["domain"]
	if s, err := strconv.Atoi(v["lease"]); err == nil {
		l.LeaseTime = time.Duration(s) * time.Second
	}
	l.ServerID = net.ParseIP(v["serverid"]).To4()
	return l, nil
}

// shellQuote quotes s as one word for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
