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
	// NetTableName is the inet table holding the virtual networks'
	// firewalls (see network.go).
	NetTableName = "netwarden-net"

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

	// The IP layer (see iplayer_kernel.go). In the bridge table:
	// chainIPMarkFrom (prerouting) and chainIPMarkTo (forward) put the
	// sending and receiving ports' ids into the packet mark, from the map
	// mapIPPortIDs and the sets ipToBitSetName(0…15).
	chainIPMarkFrom = "ip-mark-from"
	chainIPMarkTo   = "ip-mark-to"
	mapIPPortIDs    = "ip-port-ids"
	// priorityIPMark: after the Ethernet-layer chains (−300), before
	// br_netfilter's hooks (0 on prerouting, −1 on forward).
	priorityIPMark = -250
	// In the inet table: base chains on forward and input (priority 0,
	// iptables' filter table, where libvirt's chains are) dispatching by
	// mark through the verdict maps to the ports' chains.
	chainIPForward = "forward"
	chainIPInput   = "input"
	mapIPFrom      = "from-port"
	mapIPTo        = "to-port"
	mapIPHost      = "host-from-port"
	priorityIP     = 0

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

// ipToBitSetName is the bridge-table set of ports whose IP-layer id has
// bit k.
func ipToBitSetName(k int) string { return fmt.Sprintf("ip-to-bit-%d", k) }

// connlimitSetName is the inet table's set counting connections for the
// connlimit-above rules of chains of kind c (FJ, FP, HJ) of one family.
func connlimitSetName(c ipChain, v6 bool) string {
	fam := "ip"
	if v6 {
		fam = "ip6"
	}
	return "connlimit-" + ipChainWords[c] + "-" + fam
}

// ipChainName is an FJ, FP or HJ chain in the inet table, named by hash,
// the 12 hex digits of a hash of its rules (see ipChainHash), e.g.
// "ip-1a2b3c4d5e6f-fj"; every port whose chain of that kind has those
// rules shares it.
func ipChainName(hash string, c ipChain) string { return "ip-" + hash + "-" + ipChainWords[c] }

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
