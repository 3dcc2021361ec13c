package doctor

import (
	"bufio"
	"strconv"
	"strings"
)

// ParseIptablesSave reads the output of iptables-legacy-save (family
// "ip") or ip6tables-legacy-save ("ip6") into Legacy tables. Only the
// filter table's chains matter: INPUT, FORWARD and OUTPUT become base
// chains on those hooks. Matches it does not understand become
// CondOther.
func ParseIptablesSave(family, text string) []Table {
	var out []Table
	var t *Table
	hooks := map[string]string{"INPUT": HookInput, "FORWARD": HookForward, "OUTPUT": HookOutput}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			out = append(out, Table{Family: family, Name: line[1:], Legacy: true})
			t = &out[len(out)-1]
			if t.Name != "filter" {
				t = nil
			}
		case line == "COMMIT":
			t = nil
		case t == nil:
		case line[0] == ':':
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				continue
			}
			c := Chain{Name: f[0]}
			if h, ok := hooks[f[0]]; ok {
				c.Hook, c.Type, c.Policy = h, "filter", strings.ToLower(f[1])
			}
			t.Chains = append(t.Chains, c)
		case strings.HasPrefix(line, "-A "):
			f := splitArgs(line)
			if len(f) < 2 {
				continue
			}
			c := t.chain(f[1])
			if c == nil {
				t.Chains = append(t.Chains, Chain{Name: f[1]})
				c = &t.Chains[len(t.Chains)-1]
			}
			c.Rules = append(c.Rules, ruleFromArgs(f[2:]))
		}
	}
	// Drop the tables other than filter: nothing to judge there. A jump
	// to no chain of the table is to an extension target.
	kept := out[:0]
	for _, t := range out {
		if t.Name != "filter" {
			continue
		}
		for i := range t.Chains {
			for j := range t.Chains[i].Rules {
				r := &t.Chains[i].Rules[j]
				if (r.Verdict == VerdictJump || r.Verdict == VerdictGoto) && t.chain(r.Target) == nil {
					r.Verdict = VerdictUnknown
				}
			}
		}
		kept = append(kept, t)
	}
	return kept
}

// splitArgs splits an iptables-save line, honouring double quotes.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && inQ && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case ch == '"':
			inQ, have = !inQ, true
		case ch == ' ' && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// ruleFromArgs makes the cheap view of one iptables rule.
func ruleFromArgs(args []string) Rule {
	var r Rule
	neg := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch a {
		case "!":
			neg = true
			continue
		case "-i", "--in-interface", "-o", "--out-interface":
			key := CondIIFName
			if a == "-o" || a == "--out-interface" {
				key = CondOIFName
			}
			name := val()
			prefix := strings.HasSuffix(name, "+")
			r.Conds = append(r.Conds, Cond{Key: key, Neg: neg, Name: strings.TrimSuffix(name, "+"), Prefix: prefix})
		case "-p", "--protocol":
			p := val()
			num := map[string]uint16{"tcp": protoTCP, "udp": protoUDP, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58}[p]
			if num == 0 {
				if n, err := strconv.Atoi(p); err == nil {
					num = uint16(n)
				}
			}
			if p == "all" {
				break
			}
			if num == 0 {
				r.Conds = append(r.Conds, Cond{Key: CondOther, Desc: "-p " + p})
				break
			}
			r.Conds = append(r.Conds, Cond{Key: CondL4Proto, Neg: neg, Num: num})
		case "--dport", "--sport", "--destination-port", "--source-port":
			v := val()
			key := CondDPort
			if a == "--sport" || a == "--source-port" {
				key = CondSPort
			}
			if n, err := strconv.Atoi(v); err == nil {
				r.Conds = append(r.Conds, Cond{Key: key, Neg: neg, Num: uint16(n)})
			} else {
				r.Conds = append(r.Conds, Cond{Key: CondOther, Desc: a + " " + v})
			}
		case "--ctstate", "--state":
			var mask uint32
			for _, s := range strings.Split(val(), ",") {
				mask |= map[string]uint32{"INVALID": CtInvalid, "ESTABLISHED": CtEstablished, "RELATED": CtRelated,
					"NEW": CtNew, "UNTRACKED": CtUntracked}[s]
			}
			r.Conds = append(r.Conds, Cond{Key: CondCtState, Neg: neg, Mask: mask})
		case "-m", "--match":
			m := val()
			switch m {
			case "conntrack", "state", "tcp", "udp", "comment":
			default:
				r.Conds = append(r.Conds, Cond{Key: CondOther, Desc: "-m " + m})
			}
		case "--comment":
			r.Comment = val()
		case "-j", "--jump", "-g", "--goto":
			target := val()
			switch target {
			case "ACCEPT":
				r.Verdict = VerdictAccept
			case "DROP":
				r.Verdict = VerdictDrop
			case "REJECT":
				r.Verdict = VerdictReject
			case "RETURN":
				r.Verdict = VerdictReturn
			case "LOG", "NFLOG", "MARK", "CONNMARK", "CHECKSUM", "CT", "NOTRACK", "TCPMSS", "AUDIT":
			default:
				// A chain, or an extension target (e.g. NFQUEUE), which
				// ParseIptablesSave makes unknown.
				r.Verdict, r.Target = VerdictJump, target
				if a == "-g" || a == "--goto" {
					r.Verdict = VerdictGoto
				}
			}
			// Options of the target follow; none is a match.
			return r
		default:
			if strings.HasPrefix(a, "-") {
				d := a
				if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					d += " " + val()
				}
				r.Conds = append(r.Conds, Cond{Key: CondOther, Neg: neg, Desc: d})
			}
		}
		neg = false
	}
	return r
}
