package learning

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netwarden/netwarden/tests/lab"
)

// inNetns runs f on a locked thread inside a new network namespace and
// deletes the namespace afterwards (the test's own namespace is never
// changed).
func inNetns(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.New()
		if err != nil {
			t.Errorf("netns: %v", err)
			return
		}
		defer ns.Close()
		f()
	}()
	<-done
}

// TestLearnerConverges200Ports: 200 veth pairs in a namespace, each
// host end learning (half any, half dhcp); every guest end sends one
// learning frame at once; all 200 ports report their address.
func TestLearnerConverges200Ports(t *testing.T) {
	const n = 200
	inNetns(t, func() {
		var mu sync.Mutex
		got := map[string]Change{}
		all := make(chan struct{})
		l, err := New(Config{Changed: func(c Change) {
			mu.Lock()
			defer mu.Unlock()
			got[c.Port] = c
			if len(got) == n {
				close(all)
			}
		}})
		if err != nil {
			t.Error(err)
			return
		}
		defer l.Close()
		socks := make([]int, n)
		macs := make([]net.HardwareAddr, n)
		for i := 0; i < n; i++ {
			macs[i] = net.HardwareAddr{0x52, 0x54, 0, 0, byte(i >> 8), byte(i)}
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("lh%d", i)}, PeerName: fmt.Sprintf("lg%d", i), PeerHardwareAddr: macs[i]}
			if err := netlink.LinkAdd(veth); err != nil {
				t.Errorf("veth: %v", err)
				return
			}
			for _, name := range []string{veth.Name, veth.PeerName} {
				link, _ := netlink.LinkByName(name)
				if err := netlink.LinkSetUp(link); err != nil {
					t.Error(err)
					return
				}
			}
			mode := ModeAny
			if i%2 == 1 {
				mode = ModeDHCP
			}
			if err := l.Add(Spec{Port: veth.Name, MAC: macs[i], Mode: mode, IPv4: true}, nil); err != nil {
				t.Error(err)
				return
			}
			peer, _ := net.InterfaceByName(veth.PeerName)
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer unix.Close(fd)
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: peer.Index}); err != nil {
				t.Error(err)
				return
			}
			socks[i] = fd
		}
		for name, open := range l.Ports() {
			if !open {
				t.Errorf("port %s has no socket", name)
			}
		}
		frames := make([][]byte, n)
		for i := range frames {
			ip := net.IPv4(10, 1, byte(i>>8), byte(i+1))
			if i%2 == 0 {
				frames[i], err = lab.ARPFrame(layers.ARPRequest, macs[i], ip, nil, net.IPv4(10, 1, 0, 254))
			} else {
				// A DHCP ACK "to the guest" travels the other way: sent on
				// the host end, it leaves it outgoing, as dnsmasq's would.
				frames[i], err = lab.DHCPFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, macs[i], net.IPv4(10, 1, 0, 254), ip,
					lab.DHCPMessage{Type: layers.DHCPMsgTypeAck, ClientMAC: macs[i], YourIP: ip, Lease: 600})
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
		hostSock := func(i int) int {
			ifi, _ := net.InterfaceByName(fmt.Sprintf("lh%d", i))
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
				t.Fatal(err)
			}
			return fd
		}
		send := make([]int, n)
		for i := range send {
			send[i] = socks[i]
			if i%2 == 1 {
				send[i] = hostSock(i)
				defer unix.Close(send[i])
			}
		}
		start := time.Now()
		for i := range frames {
			if _, err := unix.Write(send[i], frames[i]); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			mu.Lock()
			t.Errorf("%d of %d ports learned; counters %+v", len(got), n, l.Counters())
			mu.Unlock()
			return
		}
		t.Logf("%d ports converged in %v; counters %+v", n, time.Since(start), l.Counters())
		for i := 0; i < n; i++ {
			c := got[fmt.Sprintf("lh%d", i)]
			want := net.IPv4(10, 1, byte(i>>8), byte(i+1)).String()
			if len(c.Addresses) != 1 || c.Addresses[0].Addr.String() != want {
				t.Errorf("lh%d: %+v, want %s", i, c.Addresses, want)
			}
			if i%2 == 0 && !c.Complete {
				t.Errorf("lh%d (any) not complete", i)
			}
		}
		// Complete "any" ports need no socket any more.
		open := 0
		for _, o := range l.Ports() {
			if o {
				open++
			}
		}
		if open != n/2 {
			t.Errorf("%d sockets open, want %d (the dhcp ports)", open, n/2)
		}
	})
}
