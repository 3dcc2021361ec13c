package network_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/netwarden/netwarden/network"
	"github.com/netwarden/netwarden/tests/lab"
)

func TestTapMAC(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"52:54:00:12:34:56", "fe:54:00:12:34:56", true},
		{"fe:00:00:00:00:01", "fe:00:00:00:00:01", true},
		{"01:00:5e:00:00:01", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		in, _ := net.ParseMAC(tt.in)
		got, err := network.TapMAC(in)
		if (err == nil) != tt.ok || (tt.ok && got.String() != tt.want) {
			t.Errorf("TapMAC(%s) = %s, %v; want %s (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && in.String() != tt.in {
			t.Errorf("TapMAC changed its argument to %s", in)
		}
	}
}

// tunInfo is the TAP part of `ip -d -j link show`.
type tunInfo struct {
	LinkInfo struct {
		InfoKind string `json:"info_kind"`
		InfoData struct {
			Type       string `json:"type"`
			PI         bool   `json:"pi"`
			VnetHdr    bool   `json:"vnet_hdr"`
			MultiQueue bool   `json:"multi_queue"`
			Persist    bool   `json:"persist"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

// TestCreateTap creates guests' TAPs in a namespace of its own: their
// settings, MAC, mark and name, plugging them into a bridge, and deleting
// only what netwarden made.
func TestCreateTap(t *testing.T) {
	l := lab.New(t)
	hv := l.Hypervisor()
	links := newLinks(t, hv)
	ctx := context.Background()

	info, err := links.CreateBridge(ctx, mustParse(t, `<network><name>taps</name><bridge name='nwtap'/>
	  <mtu size='1450'/><ip address='192.168.191.1' prefix='24'/></network>`))
	if err != nil {
		t.Fatal(err)
	}
	guest, _ := net.ParseMAC("52:54:00:12:34:56")
	g := l.AddGuest() // the lab names its host-side veth vnet0
	if g.HostIface != "vnet0" {
		t.Fatalf("the lab's guest interface is %s, not vnet0", g.HostIface)
	}

	name, err := links.NextTapName(ctx)
	if err != nil || name != "vnet1" {
		t.Fatalf("NextTapName = %q, %v; want vnet1 (vnet0 is taken)", name, err)
	}
	if err := links.CreateTap(ctx, name, guest); err != nil {
		t.Fatal(err)
	}
	p := showLink(t, hv, name)
	if p.Address != "fe:54:00:12:34:56" || p.Alias != "netwarden port 52:54:00:12:34:56" {
		t.Errorf("%s: MAC %s alias %q", name, p.Address, p.Alias)
	}
	var tun []tunInfo
	if err := json.Unmarshal([]byte(hv.MustRun("ip", "-d", "-j", "link", "show", "dev", name)), &tun); err != nil || len(tun) != 1 {
		t.Fatalf("ip -d -j link show: %v", err)
	}
	if d := tun[0].LinkInfo.InfoData; tun[0].LinkInfo.InfoKind != "tun" || d.Type != "tap" || d.PI || !d.VnetHdr || d.MultiQueue || !d.Persist {
		t.Errorf("%s: kind %q %+v, want a persistent single-queue tap with vnet_hdr and without pi", name, tun[0].LinkInfo.InfoKind, d)
	}

	// The next free name skips vnet1; a name in use is refused, whoever
	// made it; bad names and MACs never reach the kernel.
	if next, err := links.NextTapName(ctx); err != nil || next != "vnet2" {
		t.Errorf("NextTapName after vnet1 = %q, %v", next, err)
	}
	for _, c := range []struct {
		name, tap string
		mac       string
		is        error
	}{
		{"exists", name, "52:54:00:00:00:01", network.ErrLinkExists},
		{"exists-veth", g.HostIface, "52:54:00:00:00:01", network.ErrLinkExists},
		{"bad-name", "a/b", "52:54:00:00:00:01", network.ErrInvalidIfName},
		{"long-name", "vnet012345678901", "52:54:00:00:00:01", network.ErrInvalidIfName},
		{"multicast", "vnet7", "01:00:5e:00:00:01", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			mac, _ := net.ParseMAC(c.mac)
			err := links.CreateTap(ctx, c.tap, mac)
			if err == nil || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("CreateTap(%s) = %v, want %v", c.tap, err, c.is)
			}
		})
	}
	if names := linkNames(t, hv); slices.Contains(names, "vnet7") {
		t.Errorf("a refused TAP was created: %v", names)
	}

	// Plugging gives it the bridge's MTU, the bridge and the up flag; the
	// bridge keeps its own MAC.
	if err := links.PlugPort(ctx, info.Name, name, false); err != nil {
		t.Fatal(err)
	}
	p = showLink(t, hv, name)
	if p.Master != info.Name || p.MTU != 1450 || !slices.Contains(p.Flags, "UP") {
		t.Errorf("%s plugged: master %q MTU %d flags %v", name, p.Master, p.MTU, p.Flags)
	}
	if br := showLink(t, hv, info.Name); br.Address == p.Address {
		t.Errorf("bridge took the TAP's MAC %s", br.Address)
	}

	// Only netwarden's TAPs are deleted.
	hv.MustRun("ip", "tuntap", "add", "dev", "othertap", "mode", "tap")
	for _, other := range []string{g.HostIface, "othertap", info.Name} {
		if err := links.DeleteTap(ctx, other); !errors.Is(err, network.ErrNotOwned) {
			t.Errorf("DeleteTap(%s) = %v, want ErrNotOwned", other, err)
		}
	}
	if err := links.DeleteTap(ctx, name); err != nil {
		t.Fatal(err)
	}
	names := linkNames(t, hv)
	if slices.Contains(names, name) || !slices.Contains(names, "othertap") || !slices.Contains(names, g.HostIface) {
		t.Errorf("links after DeleteTap: %v", names)
	}
	if err := links.DeleteTap(ctx, name); err != nil {
		t.Errorf("DeleteTap of a gone TAP: %v", err)
	}
	if err := links.DestroyBridge(ctx, info.Name); err != nil {
		t.Fatal(err)
	}
}
