package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"time"
)

// Traffic helpers: real IP traffic between lab namespaces through the
// namespaces' own stacks. Every socket is created inside the namespace
// (Netns.Do) and may then be used from any goroutine. They return errors
// rather than failing the test, so a test can assert that traffic is
// blocked as well as that it passes, and they may be called from any
// goroutine. Listeners and servers are also closed at lab clean-up.

// Ping sends count ICMP echo requests to addr (an IPv4 or IPv6 address or
// a name) from the namespace with iputils ping, and succeeds only if all
// count replies arrive within timeout (rounded up to whole seconds).
// A new IPv6 address is unusable while duplicate address detection runs:
// add it with "nodad" in tests.
func (n *Netns) Ping(addr string, count int, timeout time.Duration) error {
	if count < 1 {
		count = 1
	}
	secs := max(int(math.Ceil(timeout.Seconds())), 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+5*time.Second)
	defer cancel()
	argv := []string{"ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-w", strconv.Itoa(secs), addr}
	out, err := n.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("in %s: ping %s (%d in %ds): %w: %s", n.Name, addr, count, secs, err, trimOutput(out))
	}
	return nil
}

func trimOutput(b []byte) string {
	const max = 2000
	s := string(b)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// closeAtCleanup registers c to be closed at lab clean-up; closing
// something the test already closed is not an error.
func (n *Netns) closeAtCleanup(what string, c io.Closer) {
	n.lab.onClose(what+" in "+n.Name, func() error {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
}

// ListenTCP opens a TCP listener on addr ("host:port", port 0 for any)
// inside the namespace. The caller closes it; the lab closes it at
// clean-up otherwise.
func (n *Netns) ListenTCP(addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: listen tcp %s: %w", n.Name, addr, err)
	}
	n.closeAtCleanup("tcp listener "+ln.Addr().String(), ln)
	return ln, nil
}

// DialTCP connects from the namespace to addr ("host:port"), giving up
// after timeout. The caller closes the connection; the lab closes it at
// clean-up otherwise.
func (n *Netns) DialTCP(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := n.dialTCP(addr, timeout)
	if err != nil {
		return nil, err
	}
	n.closeAtCleanup("tcp connection to "+addr, c)
	return c, nil
}

// dialTCP is DialTCP for callers that close the connection themselves.
func (n *Netns) dialTCP(addr string, timeout time.Duration) (*net.TCPConn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: dial tcp %s: %w", n.Name, addr, err)
	}
	return c.(*net.TCPConn), nil
}

// CanConnectTCP reports, as a nil error, that a TCP connection from the
// namespace to addr is established within timeout; it closes it at once.
func (n *Netns) CanConnectTCP(addr string, timeout time.Duration) error {
	c, err := n.dialTCP(addr, timeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// TCPRoundTrip connects from the namespace to addr, sends payload,
// half-closes the connection and returns everything the peer sends back
// before closing its side, all within timeout. Against TCPEcho it
// returns payload.
func (n *Netns) TCPRoundTrip(addr string, payload []byte, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	c, err := n.dialTCP(addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := c.Write(payload); err != nil {
		return nil, fmt.Errorf("in %s: tcp to %s: write: %w", n.Name, addr, err)
	}
	if err := c.CloseWrite(); err != nil {
		return nil, fmt.Errorf("in %s: tcp to %s: half-close: %w", n.Name, addr, err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return got, fmt.Errorf("in %s: tcp to %s: read after %d bytes: %w", n.Name, addr, len(got), err)
	}
	return got, nil
}

// ListenUDP opens a UDP socket bound to addr ("host:port", port 0 for
// any) inside the namespace. The caller closes it; the lab closes it at
// clean-up otherwise.
func (n *Netns) ListenUDP(addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp", ua)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: listen udp %s: %w", n.Name, addr, err)
	}
	n.closeAtCleanup("udp socket "+c.LocalAddr().String(), c)
	return c, nil
}

// dialUDP opens a connected UDP socket from the namespace to addr.
func (n *Netns) dialUDP(addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.DialUDP("udp", nil, ua)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: udp to %s: %w", n.Name, addr, err)
	}
	return c, nil
}

// SendUDP sends one datagram with payload from the namespace (from an
// ephemeral port) to addr ("host:port").
func (n *Netns) SendUDP(addr string, payload []byte) error {
	c, err := n.dialUDP(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(payload); err != nil {
		return fmt.Errorf("in %s: udp to %s: write: %w", n.Name, addr, err)
	}
	return nil
}

// UDPRoundTrip sends one datagram with payload from the namespace to addr
// and returns the first datagram that comes back within timeout. Against
// UDPEcho it returns payload.
func (n *Netns) UDPRoundTrip(addr string, payload []byte, timeout time.Duration) ([]byte, error) {
	c, err := n.dialUDP(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := c.Write(payload); err != nil {
		return nil, fmt.Errorf("in %s: udp to %s: write: %w", n.Name, addr, err)
	}
	buf := make([]byte, 65536)
	m, err := c.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("in %s: udp to %s: no reply: %w", n.Name, addr, err)
	}
	return buf[:m], nil
}

// echoServer tracks an echo server's goroutines so clean-up can end them.
type echoServer struct {
	closer io.Closer
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (s *echoServer) close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.closer.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// TCPEcho starts a TCP server on addr ("host:port", port 0 for any) in
// the namespace that writes back whatever each client sends and closes
// when the client half-closes. It returns the address it listens on. The
// server and its connections end at lab clean-up.
func (n *Netns) TCPEcho(addr string) (net.Addr, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: tcp echo on %s: %w", n.Name, addr, err)
	}
	s := &echoServer{closer: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at clean-up
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	n.lab.onClose("tcp echo "+ln.Addr().String()+" in "+n.Name, s.close)
	return ln.Addr(), nil
}

// UDPEcho starts a UDP server on addr ("host:port", port 0 for any) in
// the namespace that sends every datagram back to its sender. It returns
// the address it is bound to. The server ends at lab clean-up.
func (n *Netns) UDPEcho(addr string) (net.Addr, error) {
	var pc net.PacketConn
	err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in %s: udp echo on %s: %w", n.Name, addr, err)
	}
	s := &echoServer{closer: pc}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			m, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at clean-up
			}
			_, _ = pc.WriteTo(buf[:m], from)
		}
	}()
	n.lab.onClose("udp echo "+pc.LocalAddr().String()+" in "+n.Name, s.close)
	return pc.LocalAddr(), nil
}
