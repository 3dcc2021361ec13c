package netfilter

import (
	"context"
	"errors"
	"sync"
)

// Fake is an in-memory Backend for tests of the layers above the
// kernel: Apply records the state, Verify checks Broken, nothing touches
// the kernel. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	applied *State
	applies int
	// Err, when set, is returned by the next Apply (and then cleared),
	// which then records nothing, as a failing kernel transaction would.
	Err error
	// Broken makes Verify fail, as if someone flushed the ruleset.
	Broken bool
}

// Name implements Backend.
func (f *Fake) Name() string { return "fake" }

// Probe implements Backend; the fake kernel can do everything.
func (f *Fake) Probe(context.Context) (Capabilities, error) {
	return Capabilities{BridgeConntrack: true, BridgeReject: true, BridgeNetfilter: true, StatefulPath: StatefulBrNetfilter}, nil
}

// Apply implements Backend.
func (f *Fake) Apply(_ context.Context, s *State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Err; err != nil {
		f.Err = nil
		return err
	}
	f.applied = s
	f.applies++
	f.Broken = false
	return nil
}

// Verify implements Backend.
func (f *Fake) Verify(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Broken {
		return errors.New("fake: kernel state damaged")
	}
	return nil
}

// Remove implements Backend.
func (f *Fake) Remove(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = nil
	return nil
}

// Applied returns the last state applied and how many applies succeeded.
func (f *Fake) Applied() (*State, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.applies
}
