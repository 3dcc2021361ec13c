package doctor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// ReadNftables takes a snapshot of every table of conn's network
// namespace. It only reads.
func ReadNftables(conn *nftables.Conn) (Ruleset, error) {
	var rs Ruleset
	tables, err := conn.ListTables()
	if err != nil {
		return rs, fmt.Errorf("list nftables tables: %w", err)
	}
	chains, err := conn.ListChains()
	if err != nil {
		return rs, fmt.Errorf("list nftables chains: %w", err)
	}
	for _, nt := range tables {
		fam := familyName(nt.Family)
		if fam == "" {
			continue
		}
		t := Table{Family: fam, Name: nt.Name}
		for _, nc := range chains {
			if nc.Table == nil || nc.Table.Name != nt.Name || nc.Table.Family != nt.Family {
				continue
			}
			c := Chain{Name: nc.Name, Type: string(nc.Type)}
			if nc.Hooknum != nil {
				c.Hook = hookName(*nc.Hooknum)
				if nc.Priority != nil {
					c.Priority = int(*nc.Priority)
				}
				c.Policy = "accept"
				if nc.Policy != nil && *nc.Policy == nftables.ChainPolicyDrop {
					c.Policy = "drop"
				}
			}
			if !Own(fam, nt.Name) {
				rules, err := conn.GetRules(nt, nc)
				if err != nil {
					return rs, fmt.Errorf("list the rules of chain %s of table %s %s: %w", nc.Name, fam, nt.Name, err)
				}
				for _, r := range rules {
					c.Rules = append(c.Rules, RuleFromExprs(r.Exprs, r.UserData))
				}
			}
			t.Chains = append(t.Chains, c)
		}
		rs.Tables = append(rs.Tables, t)
	}
	slices.SortFunc(rs.Tables, func(a, b Table) int {
		if a.Family != b.Family {
			return cmpString(a.Family, b.Family)
		}
		return cmpString(a.Name, b.Name)
	})
	return rs, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return ""
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookPrerouting:
		return HookPrerouting
	case *nftables.ChainHookInput:
		return HookInput
	case *nftables.ChainHookForward:
		return HookForward
	case *nftables.ChainHookOutput:
		return HookOutput
	case *nftables.ChainHookPostrouting:
		return HookPostrouting
	}
	return fmt.Sprintf("hook%d", h)
}

// reg is what a register holds while a rule is decoded.
type reg struct {
	key  CondKey
	desc string
	mask uint32 // for ct state after a bitwise
}

// RuleFromExprs makes the cheap view of a rule from its expressions
// (and user data, for the comment). Expressions that match on anything
// but interface names, nfproto, l4proto, transport ports and conntrack
// state become CondOther conditions, which the analysis treats as
// "may match".
func RuleFromExprs(exprs []expr.Any, userData []byte) Rule {
	r := Rule{Comment: comment(userData)}
	regs := map[uint32]reg{}
	other := func(desc string) { r.Conds = append(r.Conds, Cond{Key: CondOther, Desc: desc}) }
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				continue // meta set
			}
			switch e.Key {
			case expr.MetaKeyIIFNAME:
				regs[e.Register] = reg{key: CondIIFName}
			case expr.MetaKeyOIFNAME:
				regs[e.Register] = reg{key: CondOIFName}
			case expr.MetaKeyBRIIIFNAME:
				regs[e.Register] = reg{key: CondIBrName}
			case expr.MetaKeyBRIOIFNAME:
				regs[e.Register] = reg{key: CondOBrName}
			case expr.MetaKeyNFPROTO:
				regs[e.Register] = reg{key: CondNFProto}
			case expr.MetaKeyL4PROTO:
				regs[e.Register] = reg{key: CondL4Proto}
			default:
				regs[e.Register] = reg{key: CondOther, desc: fmt.Sprintf("meta key %d", e.Key)}
			}
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				continue
			}
			switch {
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 0 && e.Len == 2:
				regs[e.DestRegister] = reg{key: CondSPort}
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				regs[e.DestRegister] = reg{key: CondDPort}
			default:
				regs[e.DestRegister] = reg{key: CondOther, desc: payloadDesc(e)}
			}
		case *expr.Ct:
			if e.SourceRegister {
				continue // ct set
			}
			if e.Key == expr.CtKeySTATE {
				regs[e.Register] = reg{key: CondCtState, mask: ^uint32(0)}
			} else {
				regs[e.Register] = reg{key: CondOther, desc: fmt.Sprintf("ct key %d", e.Key)}
			}
		case *expr.Bitwise:
			src, ok := regs[e.SourceRegister]
			if ok && src.key == CondCtState && len(e.Mask) == 4 {
				src.mask = binary.NativeEndian.Uint32(e.Mask)
				regs[e.DestRegister] = src
			} else {
				regs[e.DestRegister] = reg{key: CondOther, desc: "bitwise " + src.desc}
			}
		case *expr.Cmp:
			other := func() { r.Conds = append(r.Conds, Cond{Key: CondOther, Desc: describeCmp(regs[e.Register], e)}) }
			src, ok := regs[e.Register]
			if !ok || (e.Op != expr.CmpOpEq && e.Op != expr.CmpOpNeq) {
				other()
				continue
			}
			neg := e.Op == expr.CmpOpNeq
			switch src.key {
			case CondIIFName, CondOIFName, CondIBrName, CondOBrName:
				name, prefix := ifName(e.Data)
				r.Conds = append(r.Conds, Cond{Key: src.key, Neg: neg, Name: name, Prefix: prefix})
			case CondNFProto:
				fam := "ipv4"
				if len(e.Data) == 1 && e.Data[0] == 10 {
					fam = "ipv6"
				}
				r.Conds = append(r.Conds, Cond{Key: CondNFProto, Neg: neg, Name: fam})
			case CondL4Proto:
				if len(e.Data) != 1 {
					other()
					continue
				}
				r.Conds = append(r.Conds, Cond{Key: CondL4Proto, Neg: neg, Num: uint16(e.Data[0])})
			case CondDPort, CondSPort:
				if len(e.Data) != 2 {
					other()
					continue
				}
				r.Conds = append(r.Conds, Cond{Key: src.key, Neg: neg, Num: binary.BigEndian.Uint16(e.Data)})
			case CondCtState:
				if len(e.Data) != 4 {
					other()
					continue
				}
				v := binary.NativeEndian.Uint32(e.Data)
				switch {
				case v == 0 && src.mask != ^uint32(0):
					// ct state & mask != 0: "ct state established,related"
					r.Conds = append(r.Conds, Cond{Key: CondCtState, Neg: !neg, Mask: src.mask})
				case src.mask == ^uint32(0) || src.mask == v:
					r.Conds = append(r.Conds, Cond{Key: CondCtState, Neg: neg, Mask: v})
				default:
					other()
				}
			default:
				other()
			}
		case *expr.Range:
			other("range " + regs[e.Register].desc)
		case *expr.Lookup:
			if e.IsDestRegSet {
				r.Verdict = VerdictUnknown
				continue
			}
			not := ""
			if e.Invert {
				not = "!"
			}
			src := regs[e.SourceRegister]
			name := string(src.key)
			if src.key == CondOther {
				name = src.desc
			}
			other(fmt.Sprintf("%s %s@%s", name, not, e.SetName))
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				r.Verdict = VerdictAccept
			case expr.VerdictDrop:
				r.Verdict = VerdictDrop
			case expr.VerdictReturn:
				r.Verdict = VerdictReturn
			case expr.VerdictJump:
				r.Verdict, r.Target = VerdictJump, e.Chain
			case expr.VerdictGoto:
				r.Verdict, r.Target = VerdictGoto, e.Chain
			case expr.VerdictContinue:
			default:
				r.Verdict = VerdictUnknown
			}
		case *expr.Reject:
			r.Verdict = VerdictReject
		case *expr.Queue:
			r.Verdict = VerdictUnknown
		case *expr.Match:
			other("xt match " + e.Name)
		case *expr.Target:
			switch e.Name {
			case "REJECT":
				r.Verdict = VerdictReject
			case "LOG", "NFLOG", "MARK", "CONNMARK", "CHECKSUM", "CT", "NOTRACK", "TCPMSS", "AUDIT":
			default:
				r.Verdict = VerdictUnknown
			}
		case *expr.Limit:
			other("limit")
		case *expr.Quota:
			other("quota")
		case *expr.Connlimit:
			other("ct count")
		case *expr.Counter, *expr.Log, *expr.Immediate, *expr.Masq, *expr.NAT, *expr.Notrack, *expr.Redir:
		default:
			other(fmt.Sprintf("%T", e))
		}
	}
	return r
}

func payloadDesc(e *expr.Payload) string {
	base := map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "ll", expr.PayloadBaseNetworkHeader: "nh",
		expr.PayloadBaseTransportHeader: "th"}[e.Base]
	return fmt.Sprintf("@%s,%d,%d", base, e.Offset*8, e.Len*8)
}

func describeCmp(src reg, e *expr.Cmp) string {
	d := src.desc
	if d == "" {
		d = string(src.key)
	}
	return fmt.Sprintf("%s cmp %d %x", d, e.Op, e.Data)
}

// ifName decodes an interface name compared by cmp: with its NUL it is
// exact, without a wildcard prefix ("virbr*").
func ifName(data []byte) (string, bool) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return string(data[:i]), false
	}
	return string(data), true
}

// comment decodes nft's rule comment from rule user data (TLV, type 0).
func comment(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if 2+n > len(ud) {
			return ""
		}
		if typ == 0 {
			return string(bytes.TrimRight(ud[2:2+n], "\x00"))
		}
		ud = ud[2+n:]
	}
	return ""
}
