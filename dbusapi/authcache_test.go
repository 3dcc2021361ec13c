package dbusapi

import (
	"testing"
	"time"
)

func TestAuthCacheRemembersOnlyCachedActions(t *testing.T) {
	a := &PolkitAuthorizer{Cached: map[string]bool{"read": true}, CacheTTL: 50 * time.Millisecond}
	read := AuthRequest{Sender: ":1.5", Action: "read", Details: map[string]string{"network_name": "a"}}
	for _, tc := range []struct {
		name string
		req  AuthRequest
		want bool
	}{
		{"same caller, action and object", read, true},
		{"another object", AuthRequest{Sender: ":1.5", Action: "read", Details: map[string]string{"network_name": "b"}}, false},
		{"another caller", AuthRequest{Sender: ":1.6", Action: "read", Details: read.Details}, false},
		{"an action not cached", AuthRequest{Sender: ":1.5", Action: "manage", Details: read.Details}, false},
		{"interactive", AuthRequest{Sender: ":1.5", Action: "read", Details: read.Details, Interactive: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.remember(read)
			a.remember(AuthRequest{Sender: ":1.5", Action: "manage", Details: read.Details})
			if got := a.cached(tc.req); got != tc.want {
				t.Errorf("cached = %v, want %v", got, tc.want)
			}
		})
	}
	time.Sleep(60 * time.Millisecond)
	if a.cached(read) {
		t.Error("an answer outlived its TTL")
	}
}
