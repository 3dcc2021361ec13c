package ipplan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/netfilter"
)

func describe(es []Entry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%d swap=%v state=%s ctdir=%s connlimit=%s", e.Chain, e.Swap, e.State, e.CtDir, e.Connlimit))
	}
	return strings.Join(parts, "; ")
}

// TestEntries checks libvirt's layout on a few rules; every case of
// libvirt's nwfilterxml2firewalldata is covered through the backends'
// golden files.
func TestEntries(t *testing.T) {
	tcp := func(dir netfilter.Direction, a netfilter.Action, sm bool, fields ...netfilter.Field) *netfilter.Rule {
		return &netfilter.Rule{Direction: dir, Action: a, StateMatch: sm, Protocol: "tcp", Fields: fields}
	}
	for _, c := range []struct {
		r    *netfilter.Rule
		want string
	}{
		{tcp(netfilter.DirOut, netfilter.Accept, true), "0 swap=false state=NEW,ESTABLISHED ctdir=original connlimit=; 1 swap=true state=ESTABLISHED ctdir=reply connlimit=; 2 swap=false state=NEW,ESTABLISHED ctdir=original connlimit="},
		{tcp(netfilter.DirIn, netfilter.Drop, true), "0 swap=true state= ctdir= connlimit=; 1 swap=false state= ctdir= connlimit=; 2 swap=true state= ctdir= connlimit="},
		{tcp(netfilter.DirInOut, netfilter.Accept, false), "0 swap=true state= ctdir= connlimit=; 1 swap=false state= ctdir= connlimit=; 2 swap=true state= ctdir= connlimit="},
		{tcp(netfilter.DirIn, netfilter.Accept, true, netfilter.Field{Attr: "state", Value: "NEW"}), "1 swap=false state=NEW ctdir= connlimit="},
		{tcp(netfilter.DirOut, netfilter.Accept, true, netfilter.Field{Attr: "connlimit-above", Value: "3"}), "0 swap=false state= ctdir= connlimit=3; 2 swap=false state= ctdir= connlimit=3"},
	} {
		es, err := Entries(c.r)
		if err != nil {
			t.Fatal(err)
		}
		if got := describe(es); got != c.want {
			t.Errorf("%s%s:\n got %s\nwant %s", c.r.Direction, c.r.MatchString(), got, c.want)
		}
		for _, e := range es {
			for _, f := range e.Match.Fields {
				if f.Attr == "state" || f.Attr == "connlimit-above" {
					t.Errorf("%s left in the match", f.Attr)
				}
			}
		}
	}
	if _, err := Entries(tcp(netfilter.DirOut, netfilter.Accept, true, netfilter.Field{Attr: "state", Value: "BOGUS"})); err == nil {
		t.Error("unknown state accepted")
	}
}
