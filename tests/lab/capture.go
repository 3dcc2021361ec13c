package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// PacketType is the kernel's classification of a captured frame
// (sll_pkttype of an AF_PACKET socket): to this host, broadcast,
// multicast, to another host, or sent by this host.
type PacketType uint8

// The PacketType values, as in <linux/if_packet.h>.
const (
	PacketHost      PacketType = unix.PACKET_HOST      // unicast to this interface's MAC
	PacketBroadcast PacketType = unix.PACKET_BROADCAST // Ethernet broadcast
	PacketMulticast PacketType = unix.PACKET_MULTICAST // Ethernet multicast
	PacketOtherHost PacketType = unix.PACKET_OTHERHOST // unicast to another MAC (seen on a bridge port)
	PacketOutgoing  PacketType = unix.PACKET_OUTGOING  // transmitted by this interface
)

// String returns the name of the packet type, e.g. "outgoing".
func (t PacketType) String() string {
	switch t {
	case PacketHost:
		return "host"
	case PacketBroadcast:
		return "broadcast"
	case PacketMulticast:
		return "multicast"
	case PacketOtherHost:
		return "otherhost"
	case PacketOutgoing:
		return "outgoing"
	}
	return fmt.Sprintf("pkttype(%d)", uint8(t))
}

// PacketTypeOf returns the type a Capture recorded for p (in its
// metadata's AncillaryData); ok is false for a packet that did not come
// from a Capture.
func PacketTypeOf(p gopacket.Packet) (t PacketType, ok bool) {
	md := p.Metadata()
	if md == nil {
		return 0, false
	}
	for _, a := range md.AncillaryData {
		if t, ok := a.(PacketType); ok {
			return t, true
		}
	}
	return 0, false
}

// maxQueued bounds how many matching packets a Capture keeps unconsumed;
// later matches are counted but dropped.
const maxQueued = 4096

// Capture records the frames crossing one interface of a namespace, in
// both directions, and queues those its Match accepts until Wait takes
// them. It is made by Netns.Capture and safe for use by several
// goroutines.
type Capture struct {
	ns, iface string
	match     Match
	file      *os.File
	done      chan struct{} // closed when the reader goroutine has ended
	closing   atomic.Bool   // set by Close before it closes file
	closeOnce sync.Once

	mu      sync.Mutex
	queue   []gopacket.Packet
	arrived chan struct{} // closed and replaced when a match is queued
	seen    int           // frames read, matching or not
	matched int           // matching frames, including consumed and dropped
	readErr error         // why the reader stopped, if not Close
}

// Capture starts capturing on iface in the namespace and returns once
// the capture socket is bound, so any frame that crosses the interface
// after Capture returns is seen. match selects the frames to queue (nil
// queues all). The capture runs until Close, which the lab also calls at
// clean-up.
func (n *Netns) Capture(iface string, match Match) (*Capture, error) {
	if match == nil {
		match = MatchAll()
	}
	var fd int
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		// Protocol 0 at socket(): nothing is delivered to the socket
		// until bind names both the interface and ETH_P_ALL, so no frame
		// from another interface slips in.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind to ifindex %d: %w", ifi.Index, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: capture on %s: %w", n.Name, iface, err)
	}
	c := &Capture{
		ns:      n.Name,
		iface:   iface,
		match:   match,
		file:    os.NewFile(uintptr(fd), "capture "+n.Name+"/"+iface), // non-blocking: served by the runtime poller
		done:    make(chan struct{}),
		arrived: make(chan struct{}),
	}
	go c.read()
	n.lab.onClose(fmt.Sprintf("capture on %s/%s", n.Name, iface), c.Close)
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read receives frames until the socket is closed.
func (c *Capture) read() {
	defer close(c.done)
	rc, err := c.file.SyscallConn()
	if err != nil {
		c.stop(err)
		return
	}
	buf := make([]byte, 1<<17) // room for a GSO super-frame on veth
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			if !c.closing.Load() {
				c.stop(err)
			}
			return
		}
		if rerr != nil {
			if rerr == unix.EINTR {
				continue
			}
			c.stop(fmt.Errorf("recvfrom: %w", rerr))
			return
		}
		c.handle(buf[:n], from)
	}
}

func (c *Capture) stop(err error) {
	c.mu.Lock()
	c.readErr = err
	c.mu.Unlock()
}

// handle decodes one frame (copying it) and queues it if it matches.
func (c *Capture) handle(data []byte, from unix.Sockaddr) {
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
	md := p.Metadata()
	md.Timestamp = time.Now()
	md.CaptureLength = len(data)
	md.Length = len(data)
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		md.InterfaceIndex = ll.Ifindex
		md.AncillaryData = append(md.AncillaryData, PacketType(ll.Pkttype))
	}
	ok := c.match(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen++
	if !ok {
		return
	}
	c.matched++
	if len(c.queue) < maxQueued {
		c.queue = append(c.queue, p)
	}
	close(c.arrived)
	c.arrived = make(chan struct{})
}

// Wait waits up to timeout for count matching packets and returns them,
// oldest first, removing them from the queue; it returns as soon as they
// are there. Packets captured before the call and not yet taken by an
// earlier Wait count. On timeout it returns the packets it has (still
// queued) and an error saying how many of count it saw.
func (c *Capture) Wait(timeout time.Duration, count int) ([]gopacket.Packet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.WaitContext(ctx, count)
}

// WaitContext is Wait with a context instead of a timeout.
func (c *Capture) WaitContext(ctx context.Context, count int) ([]gopacket.Packet, error) {
	for {
		c.mu.Lock()
		if len(c.queue) >= count {
			got := c.queue[:count:count]
			c.queue = append([]gopacket.Packet(nil), c.queue[count:]...)
			c.mu.Unlock()
			return got, nil
		}
		arrived, have, seen, rerr := c.arrived, len(c.queue), c.seen, c.readErr
		partial := append([]gopacket.Packet(nil), c.queue...)
		c.mu.Unlock()
		select {
		case <-arrived:
		case <-c.done:
			// Closed or failed: nothing more will come; report below
			// unless the reader queued the last packets while closing.
			c.mu.Lock()
			enough := len(c.queue) >= count
			c.mu.Unlock()
			if enough {
				continue
			}
			if rerr == nil {
				rerr = errors.New("capture closed")
			}
			return partial, fmt.Errorf("%s: %d of %d matching packets before the capture ended: %w", c, have, count, rerr)
		case <-ctx.Done():
			return partial, fmt.Errorf("%s: %d of %d matching packets (%d frames seen in all): %w", c, have, count, seen, ctx.Err())
		}
	}
}

// ExpectNone waits d and returns an error if a matching packet is
// captured meanwhile or was captured earlier and not taken by Wait. It
// returns at the first such packet, describing it. The packet stays
// queued.
func (c *Capture) ExpectNone(d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			p := c.queue[0]
			c.mu.Unlock()
			return fmt.Errorf("%s: expected no matching packet within %v, got %s", c, d, Describe(p))
		}
		arrived := c.arrived
		c.mu.Unlock()
		select {
		case <-arrived:
		case <-c.done:
			c.mu.Lock()
			rerr := c.readErr
			c.mu.Unlock()
			if rerr != nil {
				return fmt.Errorf("%s: capture failed while expecting no packets: %w", c, rerr)
			}
			return fmt.Errorf("%s: capture closed while expecting no packets", c)
		case <-timer.C:
			return nil
		}
	}
}

// Packets returns the matching packets queued and not yet taken by Wait,
// without removing them.
func (c *Capture) Packets() []gopacket.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]gopacket.Packet(nil), c.queue...)
}

// Seen returns how many frames the capture has read in all, matching or
// not, and how many of them matched.
func (c *Capture) Seen() (frames, matched int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen, c.matched
}

// String names the capture, e.g. "capture on nwlab12cd-g1/eth0".
func (c *Capture) String() string { return "capture on " + c.ns + "/" + c.iface }

// Close stops the capture and waits for its reader to end. Packets
// already queued stay available to Packets. Close is idempotent.
func (c *Capture) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		err = c.file.Close()
		<-c.done
	})
	return err
}

// Describe summarises a packet in one line for messages: its packet type
// if captured, and each decoded layer's addresses and ports.
func Describe(p gopacket.Packet) string {
	var parts []string
	if t, ok := PacketTypeOf(p); ok {
		parts = append(parts, "["+t.String()+"]")
	}
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.Ethernet:
			parts = append(parts, fmt.Sprintf("eth %s > %s type %v", l.SrcMAC, l.DstMAC, l.EthernetType))
		case *layers.Dot1Q:
			parts = append(parts, fmt.Sprintf("vlan %d", l.VLANIdentifier))
		case *layers.ARP:
			parts = append(parts, fmt.Sprintf("arp op %d %s(%s) > %s(%s)", l.Operation,
				net.IP(l.SourceProtAddress), net.HardwareAddr(l.SourceHwAddress),
				net.IP(l.DstProtAddress), net.HardwareAddr(l.DstHwAddress)))
		case *layers.IPv4:
			parts = append(parts, fmt.Sprintf("ip %s > %s", l.SrcIP, l.DstIP))
		case *layers.IPv6:
			parts = append(parts, fmt.Sprintf("ip6 %s > %s", l.SrcIP, l.DstIP))
		case *layers.UDP:
			parts = append(parts, fmt.Sprintf("udp %d > %d", l.SrcPort, l.DstPort))
		case *layers.TCP:
			parts = append(parts, fmt.Sprintf("tcp %d > %d", l.SrcPort, l.DstPort))
		case *layers.ICMPv4:
			parts = append(parts, "icmp "+l.TypeCode.String())
		case *layers.ICMPv6:
			parts = append(parts, "icmp6 "+l.TypeCode.String())
		}
	}
	parts = append(parts, fmt.Sprintf("(%d bytes)", len(p.Data())))
	return strings.Join(parts, " ")
}

// Match is a predicate on captured packets. Build them with the Match*
// functions and combine them with All, Any and Not; any
// func(gopacket.Packet) bool will do.
type Match func(gopacket.Packet) bool

// All matches packets that every m matches (all packets if none given).
func All(ms ...Match) Match {
	return func(p gopacket.Packet) bool {
		for _, m := range ms {
			if !m(p) {
				return false
			}
		}
		return true
	}
}

// Any matches packets that at least one m matches.
func Any(ms ...Match) Match {
	return func(p gopacket.Packet) bool {
		for _, m := range ms {
			if m(p) {
				return true
			}
		}
		return false
	}
}

// Not matches packets that m does not match.
func Not(m Match) Match {
	return func(p gopacket.Packet) bool { return !m(p) }
}

// MatchAll matches every packet.
func MatchAll() Match {
	return func(gopacket.Packet) bool { return true }
}

// Incoming matches frames the interface received (every packet type but
// outgoing).
func Incoming() Match {
	return func(p gopacket.Packet) bool {
		t, ok := PacketTypeOf(p)
		return ok && t != PacketOutgoing
	}
}

// Outgoing matches frames the interface transmitted.
func Outgoing() Match {
	return func(p gopacket.Packet) bool {
		t, ok := PacketTypeOf(p)
		return ok && t == PacketOutgoing
	}
}

func ethernet(p gopacket.Packet) *layers.Ethernet {
	e, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	return e
}

// MatchSrcMAC matches frames whose Ethernet source is mac.
func MatchSrcMAC(mac net.HardwareAddr) Match {
	return func(p gopacket.Packet) bool {
		e := ethernet(p)
		return e != nil && bytes.Equal(e.SrcMAC, mac)
	}
}

// MatchDstMAC matches frames whose Ethernet destination is mac.
func MatchDstMAC(mac net.HardwareAddr) Match {
	return func(p gopacket.Packet) bool {
		e := ethernet(p)
		return e != nil && bytes.Equal(e.DstMAC, mac)
	}
}

// MatchEtherType matches frames whose outermost ethertype is t (a VLAN
// tagged frame has layers.EthernetTypeDot1Q here).
func MatchEtherType(t layers.EthernetType) Match {
	return func(p gopacket.Packet) bool {
		e := ethernet(p)
		return e != nil && e.EthernetType == t
	}
}

// MatchARP matches ARP packets.
func MatchARP() Match {
	return func(p gopacket.Packet) bool { return p.Layer(layers.LayerTypeARP) != nil }
}

// MatchARPOp matches ARP packets with the given operation
// (layers.ARPRequest or layers.ARPReply).
func MatchARPOp(op uint16) Match {
	return func(p gopacket.Packet) bool {
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		return ok && a.Operation == op
	}
}

// MatchSrcIP matches IPv4 or IPv6 packets whose source address is ip.
func MatchSrcIP(ip net.IP) Match {
	return func(p gopacket.Packet) bool {
		nl := p.NetworkLayer()
		if nl == nil {
			return false
		}
		return net.IP(nl.NetworkFlow().Src().Raw()).Equal(ip)
	}
}

// MatchDstIP matches IPv4 or IPv6 packets whose destination address is ip.
func MatchDstIP(ip net.IP) Match {
	return func(p gopacket.Packet) bool {
		nl := p.NetworkLayer()
		if nl == nil {
			return false
		}
		return net.IP(nl.NetworkFlow().Dst().Raw()).Equal(ip)
	}
}

// MatchUDP matches UDP datagrams to destination port dport.
func MatchUDP(dport uint16) Match {
	return func(p gopacket.Packet) bool {
		u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		return ok && uint16(u.DstPort) == dport
	}
}

// MatchTCP matches TCP segments to destination port dport.
func MatchTCP(dport uint16) Match {
	return func(p gopacket.Packet) bool {
		t, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		return ok && uint16(t.DstPort) == dport
	}
}

// MatchICMPv4 matches ICMP (IPv4) messages of the given type, e.g.
// layers.ICMPv4TypeEchoRequest.
func MatchICMPv4(typ uint8) Match {
	return func(p gopacket.Packet) bool {
		i, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		return ok && i.TypeCode.Type() == typ
	}
}

// MatchICMPv6 matches ICMPv6 messages of the given type, e.g.
// layers.ICMPv6TypeNeighborAdvertisement.
func MatchICMPv6(typ uint8) Match {
	return func(p gopacket.Packet) bool {
		i, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		return ok && i.TypeCode.Type() == typ
	}
}

// MatchContains matches frames whose bytes (headers included) contain
// marker; a unique marker in a test frame's payload picks out that frame.
func MatchContains(marker []byte) Match {
	return func(p gopacket.Packet) bool { return bytes.Contains(p.Data(), marker) }
}
