package main

import (
	"context"
	"encoding/json"

	"fmt"
	"io"

	"github.com/netwarden/netwarden/doctor"
)

// doctorAPI is the daemon's coexistence doctor; *dbusapi.Client has it.
type doctorAPI interface {
	Doctor(ctx context.Context) (string, error)
}

// doctorVerb is the doctor command.
func doctorVerb() verb {
	return verb{name: "doctor", summary: "find other firewalls that drop the networks' traffic",
		desc: "Asks the daemon which of the host's other firewall tables (firewalld, docker, ufw, nftables.service, iptables, iptables-legacy, or any other nftables table) would drop the DHCP, DNS or forwarded traffic of each active network, and prints, per network, one entry per problem, as a linter does:\n\n" +
			"  error: table inet planted, chain fwd: forwarded traffic out\n" +
			"    why: drops it (forward hook, priority 0): policy drop\n" +
			"    fix: nft insert rule inet planted fwd iifname \"virbr0\" accept\n\n" +
			"An error is traffic the table drops for certain; a warning traffic it may drop (a rule the doctor cannot evaluate, such as a set lookup or an address match, decides); info is worth knowing but drops nothing for certain. Nothing is changed. " +
			"The command exits with status 0 when there is no error, 1 when there is at least one (or the daemon could not be asked). With --json it prints the daemon's JSON report as it is (see the Manager's Doctor method).",
		opts: []option{{name: "json", kind: optBool, help: "print the report as JSON"}},
		run:  doctorRun}
}

func doctorRun(s *session, c api, p parsed) error {
	ctx, cancel := s.callContext()
	defer cancel()
	d, ok := c.(doctorAPI)
	if !ok {
		return &cmdError{msg: "this client cannot ask the daemon for a diagnosis"}
	}
	raw, err := d.Doctor(ctx)
	if err != nil {
		return fail(netReadFailure("failed to diagnose the networks", ""), err)
	}
	var r doctor.Report
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return fmt.Errorf("the daemon's report cannot be read: %w", err)
	}
	if p.has("json") {
		io.WriteString(s.stdout, raw+"\n")
	} else {
		io.WriteString(s.stdout, r.Text())
	}
	if r.Errors() > 0 {
		return errDoctor
	}
	return nil
}

// errDoctor: the report holds errors; it was printed, exit status 1.
var errDoctor = fmt.Errorf("%w: the doctor found errors", errSilent)
