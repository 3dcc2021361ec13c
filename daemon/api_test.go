package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/dbusapi"
	"github.com/netwarden/netwarden/netfilter"
)

// newTestCore returns a core whose engine runs on a fake kernel.
func newTestCore(t *testing.T) (*core, *netfilter.Fake) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	filters, err := OpenFilters(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	fake := &netfilter.Fake{}
	e, err := NewEngine(context.Background(), log, fake, filters, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newCore("1.0", nil)
	c.start(e, &Networks{}, nil)
	return c, fake
}

const testBinding = `<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
<portdev name='vnet0'/><mac address='52:54:00:00:00:10'/><filterref filter='clean-traffic'>
<parameter name='IP' value='10.77.0.10'/></filterref></filterbinding>`

// TestCoreWaitsForEngine: calls before start-up wait for the engine,
// give up with "still starting" when their context ends first, and fail
// with the reason when start-up failed — never panic.
func TestCoreWaitsForEngine(t *testing.T) {
	c := newCore("1.0", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Filters(ctx); err == nil || !strings.Contains(err.Error(), "still starting") || dbusapi.ErrorName(err) != dbusapi.ErrorFailed {
		t.Errorf("Filters before start: %v", err)
	}

	ready, _ := newTestCore(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.LookupFilter(context.Background(), "clean-traffic")
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.start(ready.engine, &Networks{}, nil)
	if err := <-done; err != nil {
		t.Errorf("LookupFilter waiting for start-up: %v", err)
	}

	failed := newCore("1.0", nil)
	failed.start(nil, nil, errors.New("probe failed"))
	failed.start(ready.engine, &Networks{}, nil) // too late: the first call counts
	if _, err := failed.Bindings(context.Background()); err == nil || !strings.Contains(err.Error(), "probe failed") {
		t.Errorf("Bindings after a failed start: %v", err)
	}
}

// TestCoreErrors: the core's failures carry the kinds the API names,
// and a failed change leaves the state as it was.
func TestCoreErrors(t *testing.T) {
	c, fake := newTestCore(t)
	ctx := context.Background()
	name := func(err error) string { return dbusapi.ErrorName(err) }

	if _, err := c.LookupFilter(ctx, "nope"); name(err) != dbusapi.ErrorNotFound {
		t.Errorf("LookupFilter: %v", err)
	}
	if _, err := c.LookupFilterByUUID(ctx, "nope"); name(err) != dbusapi.ErrorNotFound {
		t.Errorf("LookupFilterByUUID: %v", err)
	}
	if _, err := c.LookupBinding(ctx, "vnet0"); name(err) != dbusapi.ErrorNotFound {
		t.Errorf("LookupBinding: %v", err)
	}
	if err := c.DeleteBinding(ctx, "vnet0"); name(err) != dbusapi.ErrorNotFound {
		t.Errorf("DeleteBinding: %v", err)
	}
	if err := c.UndefineFilter(ctx, "nope"); name(err) != dbusapi.ErrorNotFound {
		t.Errorf("UndefineFilter: %v", err)
	}
	if err := c.UndefineFilter(ctx, "clean-traffic"); name(err) != dbusapi.ErrorInvalidArgument {
		t.Errorf("UndefineFilter of a built-in: %v", err)
	}
	if _, _, err := c.DefineFilter(ctx, "<filter name='a b'/>"); name(err) != dbusapi.ErrorInvalidArgument {
		t.Errorf("DefineFilter: %v", err)
	}

	// A kernel failure: Failed, and no binding.
	fake.Err = errors.New("kernel says no")
	if _, err := c.CreateBinding(ctx, testBinding); name(err) != dbusapi.ErrorFailed || !strings.Contains(err.Error(), "kernel says no") {
		t.Errorf("CreateBinding with a failing kernel: %v", err)
	}
	if bs, err := c.Bindings(ctx); err != nil || len(bs) != 0 {
		t.Errorf("bindings after the failure: %v, %v", bs, err)
	}
	b, err := c.CreateBinding(ctx, testBinding)
	if err != nil || b.PortDev != "vnet0" || b.Mode != "enforce" || b.FilterName != "clean-traffic" || !strings.Contains(b.XML, "vnet0") {
		t.Fatalf("CreateBinding: %+v, %v", b, err)
	}
	if _, err := c.CreateBinding(ctx, testBinding); name(err) != dbusapi.ErrorExists {
		t.Errorf("second CreateBinding: %v", err)
	}
	f, created, err := c.DefineFilter(ctx, "<filter name='mine'><filterref filter='clean-traffic'/></filter>")
	if err != nil || !created || f.BuiltIn || f.UUID == "" {
		t.Fatalf("DefineFilter: %+v, %v, %v", f, created, err)
	}
	if g, err := c.LookupFilterByUUID(ctx, strings.ToUpper(f.UUID)); err != nil || g.Name != "mine" {
		t.Errorf("LookupFilterByUUID: %+v, %v", g, err)
	}
	if ct, err := c.LookupFilter(ctx, "clean-traffic"); err != nil || !ct.BuiltIn {
		t.Errorf("clean-traffic: %+v, %v", ct, err)
	}
}
