package lab

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// Packet helpers: build Ethernet frames with gopacket and inject them on
// an interface inside a lab namespace, bypassing the namespace's IP stack.
// They let a test forge what a misbehaving guest could send (another
// source MAC or IP, an ARP reply it has no right to, a non-IP ethertype)
// and check what netwarden's filters let through; see capture.go for the
// receiving side.

// BroadcastMAC returns the Ethernet broadcast address ff:ff:ff:ff:ff:ff
// (a fresh slice on every call, so callers may modify it).
func BroadcastMAC() net.HardwareAddr {
	return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}

// Interface returns the kernel's view of the named interface inside the
// namespace (index, MTU, hardware address, flags).
func (n *Netns) Interface(iface string) (*net.Interface, error) {
	var ifi *net.Interface
	err := n.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName(iface)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: interface %s: %w", n.Name, iface, err)
	}
	return ifi, nil
}

// SendFrame transmits frame, a complete Ethernet frame starting with the
// destination MAC, out of iface in the namespace. It goes through an
// AF_PACKET raw socket bound to the interface, so the frame leaves
// exactly as given: no routing, no neighbour resolution, no checksum
// fix-ups, no padding to the 60-byte Ethernet minimum.
func (n *Netns) SendFrame(iface string, frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("in %s: send on %s: frame of %d bytes is shorter than an Ethernet header", n.Name, iface, len(frame))
	}
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		// Protocol 0: the socket receives nothing, it only sends.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], frame[:6])
		if err := unix.Sendto(fd, frame, 0, to); err != nil {
			return fmt.Errorf("sendto: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("in %s: send %d-byte frame on %s: %w", n.Name, len(frame), iface, err)
	}
	return nil
}

// Sender sends frames out of one interface over one AF_PACKET socket
// opened in the namespace, for tests that send many frames.
type Sender struct {
	fd int
	to *unix.SockaddrLinklayer
}

// Sender opens a sender on iface, closed at the lab's clean-up (or by
// Close).
func (n *Netns) Sender(iface string) (*Sender, error) {
	s := &Sender{fd: -1}
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		s.to = &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: sender on %s: %w", n.Name, iface, err)
	}
	n.lab.onClose("sender on "+iface+" in "+n.Name, s.Close)
	return s, nil
}

// Send transmits one complete Ethernet frame.
func (s *Sender) Send(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("send: frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	to := *s.to
	copy(to.Addr[:], frame[:6])
	return unix.Sendto(s.fd, frame, 0, &to)
}

// Close closes the socket; closing twice is harmless.
func (s *Sender) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

// Flood sends frame out of iface as fast as one socket can for d and
// returns the number sent; for packet-rate measurements. A full transmit
// queue (ENOBUFS) is waited out, not counted as an error.
func (n *Netns) Flood(iface string, frame []byte, d time.Duration) (sent int, err error) {
	var fd int
	var to *unix.SockaddrLinklayer
	err = n.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		to = &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], frame[:6])
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("in %s: flood on %s: %w", n.Name, iface, err)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		if i%256 == 0 && time.Now().After(deadline) {
			return sent, nil
		}
		switch err := unix.Sendto(fd, frame, 0, to); err {
		case nil:
			sent++
		case unix.ENOBUFS, unix.EAGAIN:
			time.Sleep(10 * time.Microsecond)
		default:
			return sent, fmt.Errorf("in %s: flood on %s: %w", n.Name, iface, err)
		}
	}
}

// Frame serializes the layers, outermost first, into one frame, fixing
// up lengths and computing checksums. gopacket pads a frame that starts
// with an Ethernet layer to the 60-byte minimum with zeros (after the
// IP packet, whose length fields exclude the padding). A TCP, UDP or ICMPv6 layer gets the
// nearest IPv4 or IPv6 layer before it as its pseudo-header for the
// checksum, so callers need not call SetNetworkLayerForChecksum.
func Frame(ls ...gopacket.SerializableLayer) ([]byte, error) {
	var network gopacket.NetworkLayer
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			network = l
		case *layers.IPv6:
			network = l
		case interface {
			LayerType() gopacket.LayerType
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}:
			if network == nil {
				return nil, fmt.Errorf("frame: %v layer has no IP layer before it for its checksum", l.LayerType())
			}
			if err := l.SetNetworkLayerForChecksum(network); err != nil {
				return nil, fmt.Errorf("frame: %v checksum: %w", l.LayerType(), err)
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		return nil, fmt.Errorf("frame: serialize: %w", err)
	}
	return buf.Bytes(), nil
}

// ipLayer returns an IPv4 or IPv6 header from src to dst carrying next,
// choosing the version by the addresses' family (which must agree).
func ipLayer(src, dst net.IP, next layers.IPProtocol) (gopacket.SerializableLayer, layers.EthernetType, error) {
	src4, dst4 := src.To4(), dst.To4()
	switch {
	case src4 != nil && dst4 != nil:
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: next, SrcIP: src4, DstIP: dst4}, layers.EthernetTypeIPv4, nil
	case src4 == nil && dst4 == nil && len(src) == net.IPv6len && len(dst) == net.IPv6len:
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: src, DstIP: dst}, layers.EthernetTypeIPv6, nil
	default:
		return nil, 0, fmt.Errorf("addresses %v and %v are not both IPv4 or both IPv6", src, dst)
	}
}

// UDPFrame builds an Ethernet frame carrying a UDP datagram from
// srcIP:sport to dstIP:dport with the given payload, over IPv4 or IPv6
// depending on the addresses (both must be of one family). Lengths and
// checksums are correct, so a receiving kernel accepts the datagram.
func UDPFrame(srcMAC, dstMAC net.HardwareAddr, srcIP, dstIP net.IP, sport, dport uint16, payload []byte) ([]byte, error) {
	ip, etype, err := ipLayer(srcIP, dstIP, layers.IPProtocolUDP)
	if err != nil {
		return nil, fmt.Errorf("udp frame: %w", err)
	}
	return Frame(
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: etype},
		ip,
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)},
		gopacket.Payload(payload),
	)
}

// ARPFrame builds an Ethernet ARP packet for IPv4. op is
// layers.ARPRequest or layers.ARPReply. srcMAC and srcIP are the sender
// fields (and srcMAC the Ethernet source); dstMAC and dstIP the target
// fields. For a request the Ethernet destination is broadcast and a nil
// dstMAC becomes 00:00:00:00:00:00 in the target field; for a reply the
// Ethernet destination is dstMAC.
func ARPFrame(op uint16, srcMAC net.HardwareAddr, srcIP net.IP, dstMAC net.HardwareAddr, dstIP net.IP) ([]byte, error) {
	if op != layers.ARPRequest && op != layers.ARPReply {
		return nil, fmt.Errorf("arp frame: operation %d is neither request nor reply", op)
	}
	src4, dst4 := srcIP.To4(), dstIP.To4()
	if src4 == nil || dst4 == nil {
		return nil, fmt.Errorf("arp frame: %v and %v must both be IPv4", srcIP, dstIP)
	}
	ethDst, target := dstMAC, dstMAC
	if op == layers.ARPRequest {
		ethDst = BroadcastMAC()
		if target == nil {
			target = make(net.HardwareAddr, 6)
		}
	}
	if len(srcMAC) != 6 || len(target) != 6 {
		return nil, errors.New("arp frame: sender and target MACs must be 6 bytes (target may be nil in a request)")
	}
	return Frame(
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: ethDst, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType:          layers.LinkTypeEthernet,
			Protocol:          layers.EthernetTypeIPv4,
			HwAddressSize:     6,
			ProtAddressSize:   4,
			Operation:         op,
			SourceHwAddress:   srcMAC,
			SourceProtAddress: src4,
			DstHwAddress:      target,
			DstProtAddress:    dst4,
		},
	)
}

// RawFrame builds an Ethernet frame of any ethertype with payload as its
// body (zero-padded to 60 bytes, see Frame), for protocols the other builders do not cover (for example a
// local experimental ethertype such as 0x88b5 to test non-IP filtering).
func RawFrame(srcMAC, dstMAC net.HardwareAddr, ethertype layers.EthernetType, payload []byte) ([]byte, error) {
	return Frame(
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: ethertype},
		gopacket.Payload(payload),
	)
}

// Neighbour advertisement flags (RFC 4861 section 4.4), for
// NeighborAdvertFrame.
const (
	NARouter    uint8 = 0x80 // the sender is a router
	NASolicited uint8 = 0x40 // the advertisement answers a solicitation
	NAOverride  uint8 = 0x20 // the advertisement overrides a cached address
)

// NeighborAdvertFrame builds an ICMPv6 neighbour advertisement from
// srcMAC/srcIP to dstMAC/dstIP claiming that target is at srcMAC (target
// link-layer address option), with the given NA* flags and hop limit 255
// as receivers require. For an unsolicited advertisement use dstIP
// ff02::1 and dstMAC 33:33:00:00:00:01.
func NeighborAdvertFrame(srcMAC net.HardwareAddr, srcIP net.IP, dstMAC net.HardwareAddr, dstIP, target net.IP, flags uint8) ([]byte, error) {
	for _, a := range []net.IP{srcIP, dstIP, target} {
		if a.To4() != nil || len(a) != net.IPv6len {
			return nil, fmt.Errorf("neighbour advertisement: %v is not an IPv6 address", a)
		}
	}
	return Frame(
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: srcIP, DstIP: dstIP},
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)},
		&layers.ICMPv6NeighborAdvertisement{
			Flags:         flags,
			TargetAddress: target,
			Options:       layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: srcMAC}},
		},
	)
}
