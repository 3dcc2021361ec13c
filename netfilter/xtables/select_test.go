package xtables

import (
	"context"
	"errors"
	"testing"

	"github.com/netwarden/netwarden/netfilter"
)

type removeCounter struct {
	netfilter.Fake
	removes int
	err     error
}

func (r *removeCounter) Remove(context.Context) error {
	r.removes++
	return r.err
}

// TestSwitch: the previous backend's objects go after the first
// successful Apply of the next, once; a failing Apply keeps them, a
// failing Remove is tried again.
func TestSwitch(t *testing.T) {
	ctx := context.Background()
	next, prev := &netfilter.Fake{}, &removeCounter{err: errors.New("busy")}
	b := Switch(next, prev, nil)
	if b.Name() != "fake" {
		t.Fatalf("name %s", b.Name())
	}
	next.Err = errors.New("kernel says no")
	if err := b.Apply(ctx, &netfilter.State{}); err == nil || prev.removes != 0 {
		t.Fatalf("failed apply: err %v, removes %d", err, prev.removes)
	}
	if err := b.Apply(ctx, &netfilter.State{}); err != nil || prev.removes != 1 {
		t.Fatalf("apply: err %v, removes %d", err, prev.removes)
	}
	prev.err = nil
	for i := 0; i < 2; i++ {
		if err := b.Apply(ctx, &netfilter.State{}); err != nil {
			t.Fatal(err)
		}
	}
	if prev.removes != 2 {
		t.Fatalf("removes %d, want 2", prev.removes)
	}
	if _, ok := b.(netfilter.Watcher); ok {
		t.Fatal("a Fake is no Watcher")
	}
}
