package lab

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// DNSError is the error QueryDNS returns when the server answers with a
// response code other than NOERROR (for example NXDOMAIN or REFUSED).
type DNSError struct {
	// Server, Name and Type identify the query.
	Server string
	Name   string
	Type   layers.DNSType
	// RCode is the server's response code.
	RCode layers.DNSResponseCode
}

// Error names the query and the response code.
func (e *DNSError) Error() string {
	return fmt.Sprintf("dns %s %v @%s: rcode %d (%v)", e.Name, e.Type, e.Server, uint8(e.RCode), e.RCode)
}

// QueryDNS sends one recursive query for name and qtype (e.g.
// layers.DNSTypeA) over UDP from the namespace to server ("host" for
// port 53, or "host:port") and returns the answer section. A response
// code other than NOERROR is returned as a *DNSError; a truncated
// response is an error too. It waits at most timeout for the answer.
func (n *Netns) QueryDNS(server, name string, qtype layers.DNSType, timeout time.Duration) ([]layers.DNSResourceRecord, error) {
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("in %s: dns %s %v @%s: %s", n.Name, name, qtype, server, fmt.Sprintf(format, args...))
	}
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fail("query id: %v", err)
	}
	q := &layers.DNS{
		ID:        binary.BigEndian.Uint16(idb[:]),
		RD:        true,
		OpCode:    layers.DNSOpCodeQuery,
		Questions: []layers.DNSQuestion{{Name: []byte(strings.TrimSuffix(name, ".")), Type: qtype, Class: layers.DNSClassIN}},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := q.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		return nil, fail("build query: %v", err)
	}
	c, err := n.dialUDP(server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fail("%v", err)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return nil, fail("send: %v", err)
	}
	rbuf := make([]byte, 65536)
	for {
		m, err := c.Read(rbuf)
		if err != nil {
			return nil, fail("no answer: %v", err)
		}
		var r layers.DNS
		if err := r.DecodeFromBytes(rbuf[:m], gopacket.NilDecodeFeedback); err != nil {
			return nil, fail("malformed response: %v", err)
		}
		if !r.QR || r.ID != q.ID {
			continue // not the answer to this query
		}
		if r.ResponseCode != layers.DNSResponseCodeNoErr {
			return nil, &DNSError{Server: server, Name: name, Type: qtype, RCode: r.ResponseCode}
		}
		if r.TC {
			return nil, fail("response truncated")
		}
		return r.Answers, nil
	}
}

// LookupDNS is QueryDNS for addresses: it returns the IPs of the A (for
// layers.DNSTypeA) or AAAA (layers.DNSTypeAAAA) records in the answer,
// and an error if there are none.
func (n *Netns) LookupDNS(server, name string, qtype layers.DNSType, timeout time.Duration) ([]net.IP, error) {
	if qtype != layers.DNSTypeA && qtype != layers.DNSTypeAAAA {
		return nil, fmt.Errorf("dns lookup %s: type %v is not A or AAAA", name, qtype)
	}
	answers, err := n.QueryDNS(server, name, qtype, timeout)
	if err != nil {
		return nil, err
	}
	ips := AnswerIPs(answers, qtype)
	if len(ips) == 0 {
		return nil, errors.New("in " + n.Name + ": dns " + name + " " + qtype.String() + " @" + server + ": no address in the answer")
	}
	return ips, nil
}

// AnswerIPs returns the addresses of the records of type qtype (A or
// AAAA) in answers, skipping CNAMEs and anything else.
func AnswerIPs(answers []layers.DNSResourceRecord, qtype layers.DNSType) []net.IP {
	var ips []net.IP
	for _, rr := range answers {
		if rr.Type == qtype && rr.IP != nil {
			ips = append(ips, rr.IP)
		}
	}
	return ips
}
