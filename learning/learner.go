package learning

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Change is what the Learner reports when a port's addresses change.
type Change struct {
	Port string
	// Addresses are the port's addresses now.
	Addresses []Address
	// Seen is when the frame that caused the change was read (or the
	// time of the expiry); the caller measures enforcement latency from it.
	Seen time.Time
	// Complete: the port has learned all it learns (mode any).
	Complete bool
}

// Config configures a Learner.
type Config struct {
	Log *slog.Logger
	// Changed is called from the Learner's goroutine for every change;
	// it should hand the change over and return quickly.
	Changed func(Change)
	// Rate and Burst limit the frames parsed per port (per second, and
	// at once); defaults 100 and 200. Frames over the limit are dropped
	// and counted.
	Rate  float64
	Burst int
	// Retry is how often a port whose interface does not exist yet is
	// tried again; default 1 s.
	Retry time.Duration
}

// Counters count what the Learner saw, for status and tests.
type Counters struct {
	Frames      uint64 // frames read
	Malformed   uint64 // frames Parse refused
	RateLimited uint64 // frames dropped by a port's rate limit
	Ignored     uint64 // events that did not concern the port
	Changes     uint64 // changes reported
}

// Learner runs the learning of every port in one goroutine.
type Learner struct {
	cfg  Config
	epfd int
	wake int // eventfd

	mu    sync.Mutex
	ports map[string]*entry
	byFD  map[int]*entry

	counters struct{ frames, malformed, limited, ignored, changes atomic.Uint64 }
	done     chan struct{}
	closed   bool
}

type entry struct {
	spec    Spec
	port    *Port
	fd      int // -1: not open
	ifindex int
	bucket  bucket
	retryAt time.Time
}

// New starts a Learner.
func New(cfg Config) (*Learner, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Rate == 0 {
		cfg.Rate = 100
	}
	if cfg.Burst == 0 {
		cfg.Burst = 200
	}
	if cfg.Retry == 0 {
		cfg.Retry = time.Second
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("learning: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("learning: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("learning: epoll: %w", err)
	}
	l := &Learner{cfg: cfg, epfd: epfd, wake: wake, ports: map[string]*entry{}, byFD: map[int]*entry{}, done: make(chan struct{})}
	go l.loop()
	return l, nil
}

// Add starts learning on spec.Port with the addresses already known
// (expired ones are dropped; the first report says so). A port learned
// already is replaced. The interface may not exist yet: it is tried again
// every Retry.
func (l *Learner) Add(spec Spec, known []Address) error {
	if spec.Mode != ModeAny && spec.Mode != ModeDHCP {
		return fmt.Errorf("learning: port %s: mode %q", spec.Port, spec.Mode)
	}
	if len(spec.MAC) != 6 {
		return fmt.Errorf("learning: port %s: MAC %q", spec.Port, spec.MAC)
	}
	now := time.Now()
	e := &entry{spec: spec, port: NewPort(spec, known, now), fd: -1}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.New("learning: closed")
	}
	if old := l.ports[spec.Port]; old != nil {
		l.closeLocked(old)
	}
	l.ports[spec.Port] = e
	if !e.port.Complete() {
		if err := l.openLocked(e); err != nil {
			l.cfg.Log.Debug("learning: interface not ready, will retry", "port", spec.Port, "error", err)
			e.retryAt = now.Add(l.cfg.Retry)
		}
	}
	l.mu.Unlock()
	l.kick()
	return nil
}

// Remove stops learning on port.
func (l *Learner) Remove(port string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.ports[port]; e != nil {
		l.closeLocked(e)
		delete(l.ports, port)
	}
}

// Ports lists the ports being learned and whether each has its socket
// open.
func (l *Learner) Ports() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.ports))
	for n, e := range l.ports {
		out[n] = e.fd >= 0
	}
	return out
}

// Counters returns the Learner's counters.
func (l *Learner) Counters() Counters {
	return Counters{Frames: l.counters.frames.Load(), Malformed: l.counters.malformed.Load(),
		RateLimited: l.counters.limited.Load(), Ignored: l.counters.ignored.Load(), Changes: l.counters.changes.Load()}
}

// Close stops the Learner and closes every socket.
func (l *Learner) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.kick()
	<-l.done
	l.mu.Lock()
	for _, e := range l.ports {
		l.closeLocked(e)
	}
	l.ports = map[string]*entry{}
	l.mu.Unlock()
	unix.Close(l.epfd)
	unix.Close(l.wake)
}

func (l *Learner) kick() {
	var one = [8]byte{1}
	_, _ = unix.Write(l.wake, one[:])
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openLocked opens the port's packet socket: created without a protocol
// (so nothing is queued), filtered, then bound to the interface.
func (l *Learner) openLocked(e *entry) error {
	ifi, err := net.InterfaceByName(e.spec.Port)
	if err != nil {
		return err
	}
	prog, err := filterProgram(e.port.pending())
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		unix.Close(fd)
		return fmt.Errorf("attach filter: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 256<<10)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("bind to %s: %w", e.spec.Port, err)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("epoll: %w", err)
	}
	e.fd, e.ifindex = fd, ifi.Index
	l.byFD[fd] = e
	return nil
}

func (l *Learner) closeLocked(e *entry) {
	if e.fd < 0 {
		return
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, e.fd, nil)
	unix.Close(e.fd)
	delete(l.byFD, e.fd)
	e.fd = -1
}

// loop is the Learner's one goroutine.
func (l *Learner) loop() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 64)
	buf := make([]byte, 2048)
	for {
		timeout := l.housekeeping()
		if timeout < 0 {
			return
		}
		n, err := unix.EpollWait(l.epfd, events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.cfg.Log.Error("learning: epoll", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.wake {
				var b [8]byte
				_, _ = unix.Read(l.wake, b[:])
				continue
			}
			l.drain(fd, buf)
		}
	}
}

// housekeeping expires leases, retries interfaces and returns the epoll
// timeout in ms (-1 once closed).
func (l *Learner) housekeeping() int {
	now := time.Now()
	var changes []Change
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return -1
	}
	next := now.Add(time.Minute)
	for _, e := range l.ports {
		if e.port.Expire(now) {
			changes = append(changes, l.changeLocked(e, now))
		}
		if x := e.port.NextExpiry(); !x.IsZero() && x.Before(next) {
			next = x
		}
		if e.fd < 0 && !e.port.Complete() {
			if !now.Before(e.retryAt) {
				if err := l.openLocked(e); err != nil {
					e.retryAt = now.Add(l.cfg.Retry)
				}
			}
			if e.fd < 0 && e.retryAt.Before(next) {
				next = e.retryAt
			}
		}
	}
	l.mu.Unlock()
	l.report(changes)
	l.closeComplete(changes)
	d := time.Until(next)
	if d < 0 {
		d = 0
	}
	return int(d/time.Millisecond) + 1
}

// changeLocked makes the change report of e. A complete port needs its
// socket no more, but the caller closes it only after reporting (see
// closeComplete): closing a packet socket waits for an RCU grace period
// (synchronize_net), which would otherwise delay the enforcement.
func (l *Learner) changeLocked(e *entry, now time.Time) Change {
	c := Change{Port: e.spec.Port, Addresses: e.port.Addresses(), Seen: now, Complete: e.port.Complete()}
	if !c.Complete && e.fd >= 0 && e.spec.Mode == ModeAny {
		// One family learned: the socket now takes only the other's.
		if prog, err := filterProgram(e.port.pending()); err == nil {
			fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
			if err := unix.SetsockoptSockFprog(e.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
				l.cfg.Log.Debug("learning: cannot narrow the socket filter", "port", e.spec.Port, "error", err)
			}
		}
	}
	return c
}

func (l *Learner) report(changes []Change) {
	for _, c := range changes {
		l.counters.changes.Add(1)
		if l.cfg.Changed != nil {
			l.cfg.Changed(c)
		}
	}
}

// closeComplete closes the sockets of the reported ports that learn
// nothing more (unless they were replaced or removed meanwhile).
func (l *Learner) closeComplete(changes []Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range changes {
		if e := l.ports[c.Port]; c.Complete && e != nil && e.port.Complete() {
			l.closeLocked(e)
		}
	}
}

// drain reads up to 64 frames from one socket (epoll is level-triggered:
// a busy port cannot hold the loop).
func (l *Learner) drain(fd int, buf []byte) {
	var changes []Change
	for i := 0; i < 64; i++ {
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				break
			}
			// The interface went away: close and try again later.
			l.mu.Lock()
			if e := l.byFD[fd]; e != nil {
				l.cfg.Log.Debug("learning: socket error, reopening later", "port", e.spec.Port, "error", err)
				l.closeLocked(e)
				e.retryAt = time.Now().Add(l.cfg.Retry)
			}
			l.mu.Unlock()
			break
		}
		now := time.Now()
		l.counters.frames.Add(1)
		ll, _ := from.(*unix.SockaddrLinklayer)
		fromGuest := ll == nil || ll.Pkttype != unix.PACKET_OUTGOING
		l.mu.Lock()
		e := l.byFD[fd]
		if e == nil {
			l.mu.Unlock()
			break
		}
		if !e.bucket.take(now, l.cfg.Rate, l.cfg.Burst) {
			l.mu.Unlock()
			l.counters.limited.Add(1)
			continue
		}
		evs, perr := Parse(buf[:n], fromGuest)
		if perr != nil {
			l.counters.malformed.Add(1)
		}
		changed := false
		for _, ev := range evs {
			if e.port.Handle(ev, now) {
				changed = true
			} else {
				l.counters.ignored.Add(1)
			}
		}
		done := false
		if changed {
			c := l.changeLocked(e, now)
			changes = append(changes, c)
			done = c.Complete // nothing more to learn
		}
		l.mu.Unlock()
		if done {
			break
		}
	}
	l.report(changes)
	l.closeComplete(changes)
}
