package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadLeases(t *testing.T) {
	now := time.Unix(1700000000, 0)
	const file = `1700000600 52:54:00:7b:35:93 192.168.122.10 vm1 01:52:54:00:7b:35:93
1699999999 52:54:00:00:00:01 192.168.122.11 old *
0 52:54:00:00:00:02 192.168.122.12 * *
1700000000 20-00:11:22 192.168.122.13 ib *
duid 00:01:00:01:2c:2b:2a:29:52:54:00:aa:bb:cc
1700003600 1234 fd00::10 vm1 00:01:00:01:2c:2b:2a:29:52:54:00:7b:35:93
1700003600 T77 fd00::11 * 00:03:00:01:52:54:00:00:00:05
1700003600 9 fd00::12 * 00:02:00:00:ab:11:01:02
1700003600 1 fd00::13 half`
	dir := t.TempDir()
	path := filepath.Join(dir, "net.leases")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLeases(path, now)
	if err != nil {
		t.Fatal(err)
	}
	sduid := "00:01:00:01:2c:2b:2a:29:52:54:00:aa:bb:cc"
	want := []DHCPLease{
		{Expiry: time.Unix(1700000600, 0), Type: LeaseIPv4, MAC: "52:54:00:7b:35:93", IPAddr: netip.MustParseAddr("192.168.122.10"),
			Hostname: "vm1", ClientID: "01:52:54:00:7b:35:93"},
		{Type: LeaseIPv4, MAC: "52:54:00:00:00:02", IPAddr: netip.MustParseAddr("192.168.122.12")},
		{Expiry: now, Type: LeaseIPv4, MAC: "20-00:11:22", IPAddr: netip.MustParseAddr("192.168.122.13"), Hostname: "ib"},
		{Expiry: time.Unix(1700003600, 0), Type: LeaseIPv6, MAC: "52:54:00:7b:35:93", IAID: "1234", IPAddr: netip.MustParseAddr("fd00::10"),
			Hostname: "vm1", ClientID: "00:01:00:01:2c:2b:2a:29:52:54:00:7b:35:93", ServerDUID: sduid},
		{Expiry: time.Unix(1700003600, 0), Type: LeaseIPv6, MAC: "52:54:00:00:00:05", IAID: "T77", IPAddr: netip.MustParseAddr("fd00::11"),
			ClientID: "00:03:00:01:52:54:00:00:00:05", ServerDUID: sduid},
		{Expiry: time.Unix(1700003600, 0), Type: LeaseIPv6, IAID: "9", IPAddr: netip.MustParseAddr("fd00::12"),
			ClientID: "00:02:00:00:ab:11:01:02", ServerDUID: sduid},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	if l, err := ReadLeases(filepath.Join(dir, "missing"), now); err != nil || l != nil {
		t.Errorf("missing file: %v, %v; want no leases", l, err)
	}
}

func TestReadLeasesRejects(t *testing.T) {
	for _, c := range []struct{ name, line string }{
		{"fields", "1 52:54:00:00:00:01 10.0.0.1 *\n"},
		{"expiry", "x 52:54:00:00:00:01 10.0.0.1 * *\n"},
		{"negative", "-5 52:54:00:00:00:01 10.0.0.1 * *\n"},
		{"address", "1 52:54:00:00:00:01 10.0.0 * *\n"},
		{"v6 before duid", "1 52:54:00:00:00:01 fd00::1 * *\n"},
		{"v4 after duid", "duid 00:01:02\n1 5 10.0.0.1 * *\n"},
		{"mac", "1 zz:54 10.0.0.1 * *\n"},
		{"client id", "1 52:54:00:00:00:01 10.0.0.1 * 1;2\n"},
		{"iaid", "duid 00:01:02\n1 x fd00::1 * *\n"},
		{"duid", "duid\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "l")
			if err := os.WriteFile(path, []byte(c.line), 0o644); err != nil {
				t.Fatal(err)
			}
			if l, err := ReadLeases(path, time.Unix(0, 0)); err == nil || !strings.Contains(err.Error(), "line ") {
				t.Errorf("ReadLeases = %+v, %v; want an error naming the line", l, err)
			}
		})
	}
}

func TestLeasePrefix(t *testing.T) {
	n, err := Parse([]byte(`<network><name>p</name>
	  <ip address='192.168.122.1' prefix='24'/>
	  <ip address='10.1.0.1' netmask='255.255.0.0'/>
	  <ip family='ipv6' address='fd00::1' prefix='64'/>
	  <ip family='ipv6' address='fd01::1' prefix='80'/></network>`))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]int{
		"192.168.122.50": 24, "10.1.2.3": 16, "172.16.0.1": 24,
		"fd00::5": 64, "fd01::5": 80, "fe80::1": 64,
	} {
		if got := n.LeasePrefix(netip.MustParseAddr(addr)); got != want {
			t.Errorf("LeasePrefix(%s) = %d, want %d", addr, got, want)
		}
	}
	if got := (&Network{}).LeasePrefix(netip.MustParseAddr("10.0.0.1")); got != 0 {
		t.Errorf("no <ip>: %d", got)
	}
}

func TestReleaseArgv(t *testing.T) {
	ip4, ip6 := netip.MustParseAddr("192.168.122.10"), netip.MustParseAddr("fd00::10")
	for _, c := range []struct {
		name               string
		bridge             string
		ip                 netip.Addr
		mac, clientID      string
		want               []string // nil: refused
		iaid, cduid, sduid string   // IPv6
	}{
		{name: "plain", bridge: "virbr0", ip: ip4, mac: "52:54:00:7B:35:93",
			want: []string{"dhcp_release", "virbr0", "192.168.122.10", "52:54:00:7b:35:93"}},
		{name: "client id", bridge: "virbr0", ip: ip4, mac: "52:54:00:7b:35:93", clientID: "01:52:54:00:7b:35:93",
			want: []string{"dhcp_release", "virbr0", "192.168.122.10", "52:54:00:7b:35:93", "01:52:54:00:7b:35:93"}},
		{name: "star", bridge: "virbr0", ip: ip4, mac: "52:54:00:7b:35:93", clientID: "*",
			want: []string{"dhcp_release", "virbr0", "192.168.122.10", "52:54:00:7b:35:93"}},
		{name: "bridge option", bridge: "-h", ip: ip4, mac: "52:54:00:7b:35:93", want: []string{"dhcp_release", "-h", "192.168.122.10", "52:54:00:7b:35:93"}},
		{name: "bridge space", bridge: "a b", ip: ip4, mac: "52:54:00:7b:35:93"},
		{name: "bridge long", bridge: "abcdefghijklmnop", ip: ip4, mac: "52:54:00:7b:35:93"},
		{name: "mac", bridge: "virbr0", ip: ip4, mac: "52:54:00:7b:35"},
		{name: "client id injection", bridge: "virbr0", ip: ip4, mac: "52:54:00:7b:35:93", clientID: "01 --x"},
		{name: "ipv6 to v4 tool", bridge: "virbr0", ip: ip6, mac: "52:54:00:7b:35:93"},
		{name: "invalid ip", bridge: "virbr0", mac: "52:54:00:7b:35:93"},
		{name: "v6", bridge: "virbr0", ip: ip6, iaid: "1234", cduid: "00:03:00:01:52:54:00:00:00:05", sduid: "00:01:00:01:2c:2b",
			want: []string{"dhcp_release6", "--iface", "virbr0", "--ip", "fd00::10", "--server-id", "00:01:00:01:2c:2b",
				"--client-id", "00:03:00:01:52:54:00:00:00:05", "--iaid", "1234"}},
		{name: "v6 temporary", bridge: "virbr0", ip: ip6, iaid: "T1", cduid: "00:03", sduid: "00:01"},
		{name: "v6 no server", bridge: "virbr0", ip: ip6, iaid: "1", cduid: "00:03"},
		{name: "v6 v4 address", bridge: "virbr0", ip: ip4, iaid: "1", cduid: "00:03", sduid: "00:01"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var (
				got []string
				err error
			)
			if c.iaid != "" {
				got, err = release6Argv(c.bridge, c.ip, c.iaid, c.cduid, c.sduid)
			} else {
				got, err = releaseArgv(c.bridge, c.ip, c.mac, c.clientID)
			}
			if c.want == nil {
				if err == nil {
					t.Errorf("argv %q, want an error", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("argv %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// FuzzParseLeases checks that a lease database of any content gives leases
// or an error, never a panic, and that every lease has a valid address of
// its type.
func FuzzParseLeases(f *testing.F) {
	f.Add([]byte("1700000600 52:54:00:7b:35:93 192.168.122.10 vm1 01:52:54:00:7b:35:93\nduid 00:01:02\n0 1 fd00::1 * 00:03:00:01:52:54:00:00:00:05\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		leases, err := parseLeases(data, time.Unix(0, 0))
		if err != nil {
			return
		}
		for _, l := range leases {
			if !l.IPAddr.IsValid() || (l.Type == LeaseIPv6) != l.IPAddr.Is6() {
				t.Fatalf("lease %+v", l)
			}
		}
	})
}
