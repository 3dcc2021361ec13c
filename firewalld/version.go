package firewalld

import (
	"strconv"
	"strings"
)

// CompareVersions compares two firewalld versions ("1.3.3", "0.9.0",
// "2.0.0a1") by their numeric dotted prefix: -1, 0 or +1. Missing parts
// count as 0; a part's non-numeric tail is ignored.
func CompareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

func versionParts(v string) []int {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	var out []int
	for _, f := range strings.Split(v, ".") {
		end := 0
		for end < len(f) && f[end] >= '0' && f[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		n, err := strconv.Atoi(f[:end])
		if err != nil {
			break
		}
		out = append(out, n)
		if end < len(f) {
			break // "3rc1": the rest is a pre-release tag
		}
	}
	return out
}

// MinVersionZonesOnNftables is the first firewalld that can load the
// libvirt zone with the nftables backend: the zone's low-priority reject
// rule needs rich-rule priorities (firewalld 0.7.0). With an older
// firewalld on nftables, firewalld's own table rejects the guests'
// traffic whatever netwarden's tables allow (every nftables table must
// accept a packet); the iptables backend is the way out there.
const MinVersionZonesOnNftables = "0.7.0"

// MinVersionPolicies is the first firewalld with policy objects (needed by
// the libvirt-routed zone's policies).
const MinVersionPolicies = "0.9.0"

// SupportsZonesOnNftables reports whether a firewalld of this version can
// run the libvirt zone with the nftables backend.
func SupportsZonesOnNftables(version string) bool {
	return version != "" && CompareVersions(version, MinVersionZonesOnNftables) >= 0
}

// SupportsPolicies reports whether a firewalld of this version has
// policy objects.
func SupportsPolicies(version string) bool {
	return version != "" && CompareVersions(version, MinVersionPolicies) >= 0
}
