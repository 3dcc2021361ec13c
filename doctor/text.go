package doctor

import (
	"fmt"
	"strings"
)

// Text renders the report for people, as a linter does: per network,
// one block per finding (severity, table and chain, traffic; why; fix),
// then a summary line.
func (r *Report) Text() string {
	var b strings.Builder
	if len(r.Tables) == 0 {
		b.WriteString("Other firewall tables: none\n")
	} else {
		fmt.Fprintf(&b, "Other firewall tables: %s\n", strings.Join(r.Tables, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(r.Networks) == 0 {
		b.WriteString("\nNo active network.\n")
	}
	for _, n := range r.Networks {
		fmt.Fprintf(&b, "\nnetwork %s (bridge %s, %s):\n", n.Name, n.Bridge, n.Mode)
		if len(n.Findings) == 0 {
			b.WriteString("  ok: no other table drops its traffic\n")
		}
		for _, f := range n.Findings {
			owner := ""
			if f.Owner != "" {
				owner = " [" + f.Owner + "]"
			}
			fmt.Fprintf(&b, "  %s: table %s%s, chain %s: %s\n", f.Severity, f.Table, owner, f.Chain, f.What)
			fmt.Fprintf(&b, "    why: %s\n", f.Why)
			fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
		}
	}
	fmt.Fprintf(&b, "\n%d error(s), %d warning(s)\n", r.Errors(), r.Warnings())
	return b.String()
}
