package polkit

import _ "embed"

// ActionsFile is the polkit action definition file of netwardend,
// installed to /usr/share/polkit-1/actions as org.netwarden1.policy.
//
//go:embed org.netwarden1.policy
var ActionsFile []byte
