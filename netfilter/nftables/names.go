package nftables

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/netwarden/netwarden/netfilter"
)

// Kernel names. Everything netwarden installs lives in its own tables of
// this name; nothing is ever added to a table it does not own.
const (
	// TableName is the name of netwarden's tables (bridge family for port
	// filtering).
	TableName = "netwarden"

	// chainFromGuest is the base chain on the bridge prerouting hook: it
	// dispatches frames entering the bridge from a guest port (iifname).
	chainFromGuest = "from-guest"
	// chainToGuest is the base chain on the bridge postrouting hook: it
	// dispatches frames leaving the bridge to a guest port (oifname).
	chainToGuest = "to-guest"
	// mapFromGuest and mapToGuest are the verdict maps keyed by port name
	// that the base chains look up.
	mapFromGuest = "from-guest-ports"
	mapToGuest   = "to-guest-ports"

	// Hook priorities: those of ebtables' nat table, where libvirt puts
	// its port chains, so the relative order with other bridge filtering
	// stays the same.
	priorityFromGuest = -300
	priorityToGuest   = 300

	// maxNameLen is the kernel's limit for table, chain and set names
	// (NFT_NAME_MAXLEN includes the terminating NUL).
	maxNameLen = 255
)

// dirWord names a direction in kernel object names.
func dirWord(d netfilter.Direction) string {
	if d == netfilter.DirIn {
		return "in"
	}
	return "out"
}

// programChainName is the chain of program prog for direction d and
// filter chain c ("root", "ipv4", "arp-xyz", …), e.g. "p-1a2b3c4d-out-root".
func programChainName(prog string, d netfilter.Direction, c string) string {
	return fmt.Sprintf("p-%s-%s-%s", prog, dirWord(d), c)
}

// fallbackMapName is the verdict map, keyed by port, that a program's
// rule group g (which cannot be shared) dispatches through.
func fallbackMapName(prog string, g int) string {
	return fmt.Sprintf("fb-%s-%d", prog, g)
}

// portChainName is the per-port chain holding port's own rules for group
// g of program prog.
func portChainName(port, prog string, g int) string {
	return fmt.Sprintf("pp-%s-%s-%d", port, prog, g)
}

// sharedSetName is the set holding per-port values for lookups with the
// given signature.
func sharedSetName(signature string) string {
	return "s-" + shortHash(signature)
}

// shortHash returns 12 hex digits of the SHA-256 of s: content-addressed
// names for programs and sets.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// checkName verifies a kernel object name against the kernel's limit.
func checkName(kind, name string) error {
	if len(name) == 0 || len(name) > maxNameLen {
		return fmt.Errorf("%s name %q: length %d outside 1..%d", kind, name, len(name), maxNameLen)
	}
	return nil
}
