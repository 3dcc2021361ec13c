package lab

import (
	"encoding/binary"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// DHCPMessage describes a hand-made DHCP message for DHCPFrame.
type DHCPMessage struct {
	Type      layers.DHCPMsgType
	ClientMAC net.HardwareAddr // chaddr
	ClientIP  net.IP           // ciaddr
	YourIP    net.IP           // yiaddr
	Server    net.IP           // option 54, when set
	Requested net.IP           // option 50, when set
	// Lease is option 51 in seconds, when not 0.
	Lease uint32
	Mask  net.IPMask // option 1, when set
}

// DHCPFrame builds an Ethernet frame carrying m: a server's message
// (offer, ack, nak) goes from port 67 to 68, a client's from 68 to 67.
func DHCPFrame(srcMAC, dstMAC net.HardwareAddr, srcIP, dstIP net.IP, m DHCPMessage) ([]byte, error) {
	op, sport, dport := layers.DHCPOpRequest, uint16(68), uint16(67)
	switch m.Type {
	case layers.DHCPMsgTypeOffer, layers.DHCPMsgTypeAck, layers.DHCPMsgTypeNak:
		op, sport, dport = layers.DHCPOpReply, 67, 68
	}
	d := &layers.DHCPv4{Operation: op, HardwareType: layers.LinkTypeEthernet, HardwareLen: 6,
		Xid: 0x4e570001, ClientHWAddr: m.ClientMAC, ClientIP: orZero(m.ClientIP), YourClientIP: orZero(m.YourIP),
		NextServerIP: net.IPv4zero.To4(), RelayAgentIP: net.IPv4zero.To4()}
	d.Options = append(d.Options, layers.NewDHCPOption(layers.DHCPOptMessageType, []byte{byte(m.Type)}))
	if m.Server != nil {
		d.Options = append(d.Options, layers.NewDHCPOption(layers.DHCPOptServerID, m.Server.To4()))
	}
	if m.Requested != nil {
		d.Options = append(d.Options, layers.NewDHCPOption(layers.DHCPOptRequestIP, m.Requested.To4()))
	}
	if m.Lease != 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], m.Lease)
		d.Options = append(d.Options, layers.NewDHCPOption(layers.DHCPOptLeaseTime, b[:]))
	}
	if m.Mask != nil {
		d.Options = append(d.Options, layers.NewDHCPOption(layers.DHCPOptSubnetMask, m.Mask))
	}
	d.Options = append(d.Options, layers.NewDHCPOption(layers.DHCPOptEnd, nil))
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		return nil, err
	}
	return UDPFrame(srcMAC, dstMAC, srcIP, dstIP, sport, dport, buf.Bytes())
}

func orZero(ip net.IP) net.IP {
	if ip == nil {
		return net.IPv4zero.To4()
	}
	return ip.To4()
}
