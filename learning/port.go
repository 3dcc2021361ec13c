package learning

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Modes (policy's CTRL_IP_LEARNING values).
const (
	ModeAny  = "any"
	ModeDHCP = "dhcp"
)

// Spec says what to learn on one port.
type Spec struct {
	// Port is the interface name on the host.
	Port string
	// MAC is the guest's MAC address.
	MAC net.HardwareAddr
	// Mode is ModeAny or ModeDHCP.
	Mode string
	// IPv4 and IPv6 say which families to learn.
	IPv4, IPv6 bool
	// Servers and Servers6 are the trusted DHCP and DHCPv6 servers of
	// ModeDHCP; empty trusts any.
	Servers, Servers6 []netip.Addr
}

// Address is one learned address.
type Address struct {
	Addr netip.Addr `json:"addr"`
	// Expires is when its lease ends; zero: never.
	Expires time.Time `json:"expires,omitempty"`
}

// Valid reports whether the address is still valid at now.
func (a Address) Valid(now time.Time) bool { return a.Expires.IsZero() || now.Before(a.Expires) }

// Port is the learning state machine of one port. It is not safe for
// concurrent use; the Learner serialises it.
type Port struct {
	spec  Spec
	addrs map[netip.Addr]time.Time // address → expiry (zero: never)
}

// NewPort starts the state machine of spec with the addresses known
// already (those expired at now are dropped).
func NewPort(spec Spec, known []Address, now time.Time) *Port {
	p := &Port{spec: spec, addrs: map[netip.Addr]time.Time{}}
	for _, a := range known {
		if a.Valid(now) && p.wants(a.Addr) {
			p.addrs[a.Addr] = a.Expires
		}
	}
	return p
}

func (p *Port) wants(a netip.Addr) bool {
	return (a.Is4() && p.spec.IPv4) || (a.Is6() && !a.Is4In6() && p.spec.IPv6)
}

// has reports whether the port has an address of a's family.
func (p *Port) has(v4 bool) bool {
	for a := range p.addrs {
		if a.Is4() == v4 {
			return true
		}
	}
	return false
}

// Complete reports whether an "any" port has learned every family it
// learns: it needs no more frames. A dhcp port is never complete (leases
// are renewed, released and expire).
func (p *Port) Complete() bool {
	return p.spec.Mode == ModeAny && (!p.spec.IPv4 || p.has(true)) && (!p.spec.IPv6 || p.has(false))
}

// pending is the port's spec narrowed to the families an "any" port
// still learns: its socket's filter need not pass the frames of a
// family learned already (they would only use up its rate limit).
func (p *Port) pending() Spec {
	s := p.spec
	if s.Mode == ModeAny {
		s.IPv4 = s.IPv4 && !p.has(true)
		s.IPv6 = s.IPv6 && !p.has(false)
	}
	return s
}

// Addresses returns the learned addresses, sorted.
func (p *Port) Addresses() []Address {
	out := make([]Address, 0, len(p.addrs))
	for a, exp := range p.addrs {
		out = append(out, Address{Addr: a, Expires: exp})
	}
	slices.SortFunc(out, func(x, y Address) int { return x.Addr.Compare(y.Addr) })
	return out
}

func trusted(servers []netip.Addr, s netip.Addr) bool {
	return len(servers) == 0 || slices.Contains(servers, s)
}

// Handle applies one event seen at now and reports whether the port's
// addresses changed. Events that do not concern the port (another MAC,
// an untrusted server, a family it does not learn) change nothing.
func (p *Port) Handle(ev Event, now time.Time) bool {
	if !p.wants(ev.Addr) {
		return false
	}
	if ev.MAC != nil && !bytes.Equal(ev.MAC, p.spec.MAC) {
		return false
	}
	expiry := func(d time.Duration) time.Time {
		if d == Infinite {
			return time.Time{}
		}
		return now.Add(d)
	}
	switch p.spec.Mode {
	case ModeAny:
		switch ev.Kind {
		case SourceIPv4, ARPSender, DHCPAck, SourceIPv6, NeighborAdvert, DHCPv6Reply:
		default:
			return false
		}
		if ev.Kind == DHCPv6Reply && ev.Lifetime == 0 {
			return false
		}
		if p.has(ev.Addr.Is4()) {
			return false // the first address of a family is the one
		}
		p.addrs[ev.Addr] = time.Time{}
		return true
	case ModeDHCP:
		switch ev.Kind {
		case DHCPAck:
			if !trusted(p.spec.Servers, ev.Server) {
				return false
			}
			return p.set(ev.Addr, expiry(ev.Lifetime))
		case DHCPv6Reply:
			if !trusted(p.spec.Servers6, ev.Server) {
				return false
			}
			if ev.Lifetime == 0 {
				return p.remove(ev.Addr)
			}
			return p.set(ev.Addr, expiry(ev.Lifetime))
		case DHCPRelease, DHCPDecline, DHCPv6Release, DHCPv6Decline:
			return p.remove(ev.Addr)
		}
	}
	return false
}

func (p *Port) set(a netip.Addr, exp time.Time) bool {
	old, ok := p.addrs[a]
	p.addrs[a] = exp
	return !ok || !old.Equal(exp)
}

func (p *Port) remove(a netip.Addr) bool {
	if _, ok := p.addrs[a]; !ok {
		return false
	}
	delete(p.addrs, a)
	return true
}

// Expire removes the addresses whose lease ended at now and reports
// whether any did.
func (p *Port) Expire(now time.Time) bool {
	changed := false
	for a, exp := range p.addrs {
		if !exp.IsZero() && !now.Before(exp) {
			delete(p.addrs, a)
			changed = true
		}
	}
	return changed
}

// NextExpiry is when the next lease ends (zero: none will).
func (p *Port) NextExpiry() time.Time {
	var next time.Time
	for _, exp := range p.addrs {
		if !exp.IsZero() && (next.IsZero() || exp.Before(next)) {
			next = exp
		}
	}
	return next
}

// bucket is a token bucket: rate frames per second, burst at most.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens += now.Sub(b.last).Seconds() * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
