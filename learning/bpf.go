package learning

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// filterProgram is the classic BPF program of a port's socket: ARP
// always; IPv4 UDP 67/68 (dhcp) or all IPv4 (any, while IPv4 is being
// learned); IPv6 UDP to 546/547 (dhcp) or all IPv6 (any). Everything else
// stays in the kernel.
func filterProgram(spec Spec) ([]unix.SockFilter, error) {
	const (
		accept = "accept"
		reject = "reject"
	)
	p := &prog{labels: map[string]int{}}
	p.add(bpf.LoadAbsolute{Off: 12, Size: 2}, "", "")
	p.jeq(0x0806, accept, "")
	if spec.IPv4 {
		p.jeq(0x0800, "v4", "")
	}
	if spec.IPv6 {
		p.jeq(0x86dd, "v6", "")
	}
	p.ret(0)
	if spec.IPv4 {
		p.label("v4")
		if spec.Mode == ModeAny {
			p.ret(0x40000)
		} else {
			p.add(bpf.LoadAbsolute{Off: 23, Size: 1}, "", "") // protocol
			p.jeq(17, "", reject)
			p.add(bpf.LoadAbsolute{Off: 20, Size: 2}, "", "") // fragment offset
			p.jset(0x1fff, reject, "")
			p.add(bpf.LoadMemShift{Off: 14}, "", "")
			p.add(bpf.LoadIndirect{Off: 14, Size: 2}, "", "") // source port
			p.jeq(67, accept, "")
			p.jeq(68, accept, reject)
		}
	}
	if spec.IPv6 {
		p.label("v6")
		if spec.Mode == ModeAny {
			p.ret(0x40000)
		} else {
			p.add(bpf.LoadAbsolute{Off: 20, Size: 1}, "", "") // next header
			p.jeq(17, "", reject)
			p.add(bpf.LoadAbsolute{Off: 56, Size: 2}, "", "") // destination port
			p.jeq(546, accept, "")
			p.jeq(547, accept, reject)
		}
	}
	p.label(reject)
	p.ret(0)
	p.label(accept)
	p.ret(0x40000)
	return p.assemble()
}

// prog is a BPF program with symbolic jump targets ("" is the next
// instruction).
type prog struct {
	ins    []bpf.Instruction
	jumps  [][2]string
	labels map[string]int
}

func (p *prog) add(i bpf.Instruction, t, f string) {
	p.ins = append(p.ins, i)
	p.jumps = append(p.jumps, [2]string{t, f})
}
func (p *prog) jeq(v uint32, t, f string) { p.add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: v}, t, f) }
func (p *prog) jset(v uint32, t, f string) {
	p.add(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: v}, t, f)
}
func (p *prog) ret(n uint32)      { p.add(bpf.RetConstant{Val: n}, "", "") }
func (p *prog) label(name string) { p.labels[name] = len(p.ins) }

func (p *prog) assemble() ([]unix.SockFilter, error) {
	skip := func(from int, l string) (uint8, error) {
		if l == "" {
			return 0, nil
		}
		to, ok := p.labels[l]
		if !ok || to <= from || to-from-1 > 255 {
			return 0, fmt.Errorf("bpf: bad jump from %d to %q", from, l)
		}
		return uint8(to - from - 1), nil
	}
	for i, in := range p.ins {
		if j, ok := in.(bpf.JumpIf); ok {
			var err error
			if j.SkipTrue, err = skip(i, p.jumps[i][0]); err != nil {
				return nil, err
			}
			if j.SkipFalse, err = skip(i, p.jumps[i][1]); err != nil {
				return nil, err
			}
			p.ins[i] = j
		}
	}
	raw, err := bpf.Assemble(p.ins)
	if err != nil {
		return nil, err
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}
