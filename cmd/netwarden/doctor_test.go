package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/doctor"
)

// doctorFake adds the Doctor method to fakeAPI.
type doctorFake struct {
	*fakeAPI
	report string
	err    error
}

func (f doctorFake) Doctor(context.Context) (string, error) { return f.report, f.err }

func TestDoctor(t *testing.T) {
	rs := doctor.Ruleset{Tables: []doctor.Table{{Family: "inet", Name: "planted", Chains: []doctor.Chain{
		{Name: "fwd", Hook: doctor.HookForward, Type: "filter", Policy: "drop"}}}}}
	net := doctor.Network{Name: "default", Bridge: "virbr0", Mode: "nat", IPv4: true, DHCPv4: true, DNS: true}
	js := func(r doctor.Report) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	bad := js(doctor.Analyze(rs, []doctor.Network{net}))
	good := js(doctor.Analyze(doctor.Ruleset{}, []doctor.Network{net}))
	for _, tc := range []struct {
		name           string
		args           []string
		report         string
		err            error
		want           int
		stdout, stderr string
	}{
		{name: "errors", args: []string{"doctor"}, report: bad, want: exitFailure,
			stdout: "network default (bridge virbr0, nat):\n  error: table inet planted, chain fwd: forwarded traffic out\n    why: drops it (forward hook, priority 0): policy drop\n    fix: nft insert rule inet planted fwd iifname \"virbr0\" accept"},
		{name: "clean", args: []string{"doctor"}, report: good, stdout: "Other firewall tables: none\n\nnetwork default (bridge virbr0, nat):\n  ok: no other table drops its traffic\n\n0 error(s), 0 warning(s)\n"},
		{name: "json", args: []string{"doctor", "--json"}, report: bad, want: exitFailure, stdout: `"table":"inet planted","chain":"fwd"`},
		{name: "denied", args: []string{"doctor"}, err: &dbusapi.DeniedError{Action: "org.netwarden1.network.read", Reason: "polkit refused it"},
			want: exitFailure, stderr: "error: failed to diagnose the networks"},
		{name: "garbage", args: []string{"doctor"}, report: "nope", want: exitFailure, stderr: "the daemon's report cannot be read"},
		{name: "help", args: []string{"doctor", "--help"}, stdout: "exits with status 0 when there is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, stdout, stderr := testSession(nil, "")
			s.dial = func() (api, func(), error) {
				return doctorFake{fakeAPI: newFakeAPI(), report: tc.report, err: tc.err}, func() {}, nil
			}
			if got := s.run(tc.args); got != tc.want {
				t.Errorf("exit status %d, want %d (stderr %q)", got, tc.want, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
		})
	}
	// A client without the method says so.
	s, _, stderr := testSession(newFakeAPI(), "")
	if got := s.run([]string{"doctor"}); got != exitFailure || !strings.Contains(stderr.String(), "cannot ask") {
		t.Errorf("exit %d, stderr %q", got, stderr.String())
	}
}
