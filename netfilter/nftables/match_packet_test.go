package nftables

import (
	"bytes"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"

	"github.com/netwarden/netwarden/netfilter"
	"github.com/netwarden/netwarden/tests/lab"
)

// Packet proof of the most important matches: a compiled match with a
// drop verdict sits in the hypervisor of a lab (two guests on a bridge),
// a guest sends frames the rule must drop and frames it must let
// through, and the other guest's capture says which arrived. The rule's
// counter must count exactly the frames it dropped.
//
// Ethernet-layer rules sit in a bridge-family prerouting chain;
// IP-layer rules in an inet forward chain, which bridged traffic passes
// with net.bridge.bridge-nf-call-iptables=1 (set in the lab's hypervisor
// namespace only).

// packetWorld is the lab: guests g0 (vnet0) and g1 (vnet1) on bridge br0
// in the hypervisor namespace.
type packetWorld struct {
	hv     *lab.Netns
	g0, g1 *lab.Guest
	hvNS   netns.NsHandle
}

// newPacketWorld builds the lab.
func newPacketWorld(t *testing.T) *packetWorld {
	t.Helper()
	l := lab.New(t)
	w := &packetWorld{hv: l.Hypervisor(), g0: l.AddGuest(), g1: l.AddGuest()}
	w.hv.AddBridge("br0", "", w.g0.HostIface, w.g1.HostIface)
	w.hv.MustRun("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")
	h, err := netns.GetFromName(w.hv.Name)
	if err != nil {
		t.Fatalf("open %s: %v", w.hv.Name, err)
	}
	t.Cleanup(func() { h.Close() })
	w.hvNS = h
	return w
}

// frameCheck is one frame a packet case sends and whether the rule must
// drop it.
type frameCheck struct {
	what  string
	from  *lab.Guest // sender (the other guest captures)
	frame []byte
	match lab.Match // recognises the frame at the receiver
	drop  bool
}

// packetCase is a compiled match to prove with frames.
type packetCase struct {
	name   string
	rule   netfilter.Rule
	dir    netfilter.Direction
	share  []int
	elems  []elem
	frames func(t *testing.T, w *packetWorld) []frameCheck
}

// install loads the case's match with counter and drop into the
// hypervisor: bridge prerouting or inet forward.
func (w *packetWorld) install(t *testing.T, c *packetCase) {
	t.Helper()
	conn := &nftables.Conn{NetNS: int(w.hvNS)}
	conn.FlushRuleset()
	fam := mustFamily(c.rule.Protocol)
	table := conn.AddTable(&nftables.Table{Family: fam, Name: "nwm"})
	hook := nftables.ChainHookPrerouting
	if fam == nftables.TableFamilyINet {
		hook = nftables.ChainHookForward
	}
	chain := conn.AddChain(&nftables.Chain{Table: table, Name: "c", Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: nftables.ChainPriorityFilter})
	r := c.rule
	if r.Direction == 0 {
		r.Direction = c.dir
	}
	o := matchOptions{Dir: c.dir, Shared: c.share}
	if len(c.share) > 0 {
		kt, err := sharedKeyType(r.Protocol, keyFields(&r, c.share), false)
		if err != nil {
			t.Fatal(err)
		}
		set := &nftables.Set{Table: table, Name: "s", KeyType: kt, Concatenation: len(nftables.ConcatSetTypeElements(kt)) > 1}
		var elems []nftables.SetElement
		for _, e := range c.elems {
			mc := matchCase{rule: r, share: c.share}
			key, err := sharedKey(e.port, r.Protocol, keyFields(mc.instance(e), c.share), false)
			if err != nil {
				t.Fatal(err)
			}
			elems = append(elems, nftables.SetElement{Key: key})
		}
		if err := conn.AddSet(set, elems); err != nil {
			t.Fatal(err)
		}
		o.Set = set
	}
	exprs, err := compileMatch(fam, &r, o)
	if err != nil {
		t.Fatalf("compileMatch: %v", err)
	}
	exprs = append(exprs, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs})
	if err := conn.Flush(); err != nil {
		t.Fatalf("install: %v", err)
	}
}

var packetsRE = regexp.MustCompile(`counter packets (\d+) bytes`)

// dropped returns the rule's counter.
func (w *packetWorld) dropped(t *testing.T, fam nftables.TableFamily) int {
	t.Helper()
	out := w.hv.MustRun("nft", "list", "table", familyName(fam), "nwm")
	m := packetsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// receiver is the guest that is not g.
func (w *packetWorld) receiver(g *lab.Guest) *lab.Guest {
	if g == w.g0 {
		return w.g1
	}
	return w.g0
}

// marker returns a payload unique to one frame.
func marker(name string, i int) []byte { return []byte(fmt.Sprintf("nwm-%s-%d-marker", name, i)) }

// contains matches frames carrying m.
func contains(m []byte) lab.Match {
	return func(p gopacket.Packet) bool { return bytes.Contains(p.Data(), m) }
}

// must returns mustFrame bound to t, to wrap a frame builder's results.
func must(t *testing.T) func([]byte, error) []byte {
	return func(b []byte, err error) []byte { return mustFrame(t, b, err) }
}

// mustFrame fails the test on a frame-building error.
func mustFrame(t *testing.T, b []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ipv4Frame builds an IPv4 frame with the given transport layers.
func ipv4Frame(t *testing.T, src, dst net.HardwareAddr, sip, dip string, proto layers.IPProtocol, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	all := append([]gopacket.SerializableLayer{
		&layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(sip).To4(), DstIP: net.ParseIP(dip).To4()},
	}, ls...)
	b, err := lab.Frame(all...)
	return mustFrame(t, b, err)
}

// arpFrom matches ARP packets of operation op from sender IP ip.
func arpFrom(op uint16, ip string) lab.Match {
	return func(p gopacket.Packet) bool {
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		return ok && a.Operation == op && net.IP(a.SourceProtAddress).Equal(net.ParseIP(ip))
	}
}

// TestKernelMatchPackets proves the important matches with frames (see the
// comment at the top of the file).
func TestKernelMatchPackets(t *testing.T) {
	requireKernel(t)
	w := newPacketWorld(t)
	bcast := lab.BroadcastMAC()
	fake := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	out := netfilter.DirOut

	cases := []packetCase{
		{
			name: "mac-srcmacaddr-mask",
			rule: netfilter.Rule{Protocol: "mac", Fields: []netfilter.Field{f("srcmacaddr", "02:aa:bb:cc:00:00"), f("srcmacmask", "ff:ff:ff:ff:00:00")}},
			dir:  out,
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					src  string
					drop bool
				}{{"02:aa:bb:cc:12:34", true}, {"02:aa:bb:cd:12:34", false}, {"02:aa:bb:cc:ff:ff", true}} {
					m := marker("mac", i)
					fs = append(fs, frameCheck{what: "source " + c.src, from: w.g0, drop: c.drop, match: contains(m),
						frame: must(t)(lab.RawFrame(fake(c.src), bcast, 0x88b5, m))})
				}
				return fs
			},
		},
		{
			name: "arp-opcode-arpsrcipaddr",
			rule: netfilter.Rule{Protocol: "arp", Fields: []netfilter.Field{f("opcode", "Request"), f("arpsrcipaddr", "10.0.0.5")}},
			dir:  out,
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				return []frameCheck{
					{what: "request from 10.0.0.5", from: w.g0, drop: true, match: arpFrom(layers.ARPRequest, "10.0.0.5"),
						frame: must(t)(lab.ARPFrame(layers.ARPRequest, w.g0.MAC, net.ParseIP("10.0.0.5"), nil, net.ParseIP("10.0.0.9")))},
					{what: "request from 10.0.0.6", from: w.g0, drop: false, match: arpFrom(layers.ARPRequest, "10.0.0.6"),
						frame: must(t)(lab.ARPFrame(layers.ARPRequest, w.g0.MAC, net.ParseIP("10.0.0.6"), nil, net.ParseIP("10.0.0.9")))},
					{what: "reply from 10.0.0.5", from: w.g0, drop: false, match: arpFrom(layers.ARPReply, "10.0.0.5"),
						frame: must(t)(lab.ARPFrame(layers.ARPReply, w.g0.MAC, net.ParseIP("10.0.0.5"), w.g1.MAC, net.ParseIP("10.0.0.9")))},
				}
			},
		},
		{
			name: "ip-srcipaddr-mask-udp-dstport-range",
			rule: netfilter.Rule{Protocol: "ip", Fields: []netfilter.Field{f("srcipaddr", "10.1.0.0"), f("srcipmask", "16"), f("protocol", "udp"),
				f("dstportstart", "1000"), f("dstportend", "2000")}},
			dir: out,
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					src   string
					dport uint16
					drop  bool
				}{{"10.1.2.3", 1500, true}, {"10.1.255.1", 1000, true}, {"10.1.2.3", 2000, true}, {"10.2.2.3", 1500, false}, {"10.1.2.3", 2001, false}, {"10.1.2.3", 999, false}} {
					m := marker("ip", i)
					fs = append(fs, frameCheck{what: fmt.Sprintf("udp from %s to port %d", c.src, c.dport), from: w.g0, drop: c.drop, match: contains(m),
						frame: must(t)(lab.UDPFrame(w.g0.MAC, bcast, net.ParseIP(c.src), net.ParseIP("10.9.9.9"), 4000, c.dport, m))})
				}
				m := marker("ip-tcp", 0)
				fs = append(fs, frameCheck{what: "tcp from 10.1.2.3 to port 1500", from: w.g0, drop: false, match: contains(m),
					frame: ipv4Frame(t, w.g0.MAC, bcast, "10.1.2.3", "10.9.9.9", layers.IPProtocolTCP, &layers.TCP{SrcPort: 4000, DstPort: 1500, SYN: true, Window: 1000}, gopacket.Payload(m))})
				return fs
			},
		},
		{
			name: "ipv6-srcipaddr-prefix",
			rule: netfilter.Rule{Protocol: "ipv6", Fields: []netfilter.Field{f("srcipaddr", "2001:db8:1::"), f("srcipmask", "48")}},
			dir:  out,
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					src  string
					drop bool
				}{{"2001:db8:1::5", true}, {"2001:db8:1:ffff::1", true}, {"2001:db8:2::5", false}} {
					m := marker("ipv6", i)
					fs = append(fs, frameCheck{what: "udp from " + c.src, from: w.g0, drop: c.drop, match: contains(m),
						frame: must(t)(lab.UDPFrame(w.g0.MAC, bcast, net.ParseIP(c.src), net.ParseIP("2001:db8:9::9"), 4000, 5000, m))})
				}
				return fs
			},
		},
		{
			name: "tcp-flags-syn",
			rule: netfilter.Rule{Protocol: "tcp", Fields: []netfilter.Field{f("flags", "SYN,ACK/SYN")}},
			dir:  out,
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					what          string
					syn, ack, fin bool
					drop          bool
				}{{"SYN", true, false, false, true}, {"SYN+FIN", true, false, true, true}, {"SYN+ACK", true, true, false, false}, {"ACK", false, true, false, false}} {
					m := marker("tcp", i)
					fs = append(fs, frameCheck{what: c.what, from: w.g0, drop: c.drop, match: contains(m),
						frame: ipv4Frame(t, w.g0.MAC, w.g1.MAC, "10.0.0.1", "10.0.0.2", layers.IPProtocolTCP,
							&layers.TCP{SrcPort: 4000, DstPort: 80, SYN: c.syn, ACK: c.ack, FIN: c.fin, Window: 1000}, gopacket.Payload(m))})
				}
				return fs
			},
		},
		{
			name: "icmp-type-code",
			rule: netfilter.Rule{Protocol: "icmp", Fields: []netfilter.Field{f("type", "8"), f("code", "0")}},
			dir:  out,
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					typ, code uint8
					drop      bool
				}{{8, 0, true}, {0, 0, false}, {8, 1, false}} {
					m := marker("icmp", i)
					fs = append(fs, frameCheck{what: fmt.Sprintf("icmp %d/%d", c.typ, c.code), from: w.g0, drop: c.drop, match: contains(m),
						frame: ipv4Frame(t, w.g0.MAC, w.g1.MAC, "10.0.0.1", "10.0.0.2", layers.IPProtocolICMPv4,
							&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(c.typ, c.code), Id: 1, Seq: uint16(i)}, gopacket.Payload(m))})
				}
				return fs
			},
		},
		{
			name: "all-srcmacaddr-inet",
			rule: netfilter.Rule{Protocol: "all", Fields: []netfilter.Field{f("srcmacaddr", "02:aa:bb:cc:dd:01")}},
			dir:  out,
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					src  string
					drop bool
				}{{"02:aa:bb:cc:dd:01", true}, {"02:aa:bb:cc:dd:02", false}} {
					m := marker("all", i)
					fs = append(fs, frameCheck{what: "udp from " + c.src, from: w.g0, drop: c.drop, match: contains(m),
						frame: must(t)(lab.UDPFrame(fake(c.src), w.g1.MAC, net.ParseIP("10.0.0.1"), net.ParseIP("10.0.0.2"), 4000, 5000, m))})
				}
				return fs
			},
		},
		{
			name:  "shared-ip-srcmacaddr-srcipaddr",
			rule:  netfilter.Rule{Protocol: "ip", Fields: []netfilter.Field{v("srcmacaddr", "MAC", "00:00:00:00:00:00"), v("srcipaddr", "IP", "10.0.0.1")}},
			dir:   out,
			share: []int{0, 1},
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					from *lab.Guest
					src  net.HardwareAddr
					ip   string
					drop bool
				}{{w.g0, w.g0.MAC, "10.0.0.1", true}, {w.g0, w.g0.MAC, "10.0.0.2", false}, {w.g0, fake("02:aa:bb:cc:dd:03"), "10.0.0.1", false},
					{w.g1, w.g0.MAC, "10.0.0.1", false}, {w.g1, w.g1.MAC, "10.0.0.11", true}} {
					m := marker("shared", i)
					fs = append(fs, frameCheck{what: fmt.Sprintf("udp from port %s, %s %s", c.from.HostIface, c.src, c.ip), from: c.from, drop: c.drop, match: contains(m),
						frame: must(t)(lab.UDPFrame(c.src, bcast, net.ParseIP(c.ip), net.ParseIP("10.9.9.9"), 4000, 5000, m))})
				}
				return fs
			},
		},
		{
			name:  "shared-mac-negated",
			rule:  netfilter.Rule{Protocol: "mac", Negate: true, Fields: []netfilter.Field{v("srcmacaddr", "MAC", "00:00:00:00:00:00")}},
			dir:   out,
			share: []int{0},
			frames: func(t *testing.T, w *packetWorld) []frameCheck {
				var fs []frameCheck
				for i, c := range []struct {
					from *lab.Guest
					src  net.HardwareAddr
					drop bool
				}{{w.g0, w.g0.MAC, false}, {w.g0, fake("02:aa:bb:cc:dd:04"), true}, {w.g1, w.g1.MAC, false}, {w.g1, w.g0.MAC, true}} {
					m := marker("negated", i)
					fs = append(fs, frameCheck{what: fmt.Sprintf("frame from port %s, source %s", c.from.HostIface, c.src), from: c.from, drop: c.drop, match: contains(m),
						frame: must(t)(lab.RawFrame(c.src, bcast, 0x88b5, m))})
				}
				return fs
			},
		},
	}
	for i := range cases {
		c := &cases[i]
		t.Run(c.name, func(t *testing.T) {
			if len(c.share) > 0 {
				switch c.name {
				case "shared-ip-srcmacaddr-srcipaddr":
					c.elems = []elem{{w.g0.HostIface, []string{w.g0.MAC.String(), "10.0.0.1"}}, {w.g1.HostIface, []string{w.g1.MAC.String(), "10.0.0.11"}}}
				case "shared-mac-negated":
					c.elems = []elem{{w.g0.HostIface, []string{w.g0.MAC.String()}}, {w.g1.HostIface, []string{w.g1.MAC.String()}}}
				}
			}
			w.install(t, c)
			wantDropped := 0
			for _, fc := range c.frames(t, w) {
				rx := w.receiver(fc.from)
				capture, err := rx.Capture(rx.Iface, lab.All(lab.Incoming(), fc.match))
				if err != nil {
					t.Fatal(err)
				}
				if err := fc.from.SendFrame(fc.from.Iface, fc.frame); err != nil {
					t.Fatal(err)
				}
				if fc.drop {
					wantDropped++
					if err := capture.ExpectNone(300 * time.Millisecond); err != nil {
						t.Errorf("%s: should have been dropped: %v", fc.what, err)
					}
				} else if _, err := capture.Wait(3*time.Second, 1); err != nil {
					t.Errorf("%s: should have been delivered: %v", fc.what, err)
				}
				capture.Close()
			}
			if got := w.dropped(t, mustFamily(c.rule.Protocol)); got != wantDropped {
				t.Errorf("the rule counted %d packets, want %d (the frames it dropped)", got, wantDropped)
			}
		})
	}
}
