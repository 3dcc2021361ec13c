package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/learning"
	"github.com/netwarden/netwarden/netfilter"
)

const learningBinding = `<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
<portdev name='nwlearn0'/><mac address='52:54:00:00:00:10'/><filterref filter='clean-traffic'>
<parameter name='CTRL_IP_LEARNING' value='dhcp'/><parameter name='DHCPSERVER' value='10.77.0.1'/></filterref></filterbinding>`

func newLearningEngine(t *testing.T, state, config string) (*Engine, *netfilter.Fake) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	filters, err := OpenFilters(config, log)
	if err != nil {
		t.Fatal(err)
	}
	fake := &netfilter.Fake{}
	e, err := NewEngine(context.Background(), log, fake, filters, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, fake
}

// TestLearningBindingLifecycle: a binding whose $IP is learned gets the
// basic rules (not drop-all); learned addresses put its filter in force
// with them; they are stored, survive a new engine (expired ones
// dropped) and their expiry returns the port to the basic rules.
func TestLearningBindingLifecycle(t *testing.T) {
	state, config := t.TempDir(), t.TempDir()
	e, fake := newLearningEngine(t, state, config)
	ctx := context.Background()
	if _, err := e.CreateBinding(ctx, []byte(learningBinding)); err != nil {
		t.Fatal(err)
	}
	_, st, _ := e.Binding("nwlearn0")
	if st.Mode != ModeLearning || !strings.Contains(st.Reason, "learning IP") {
		t.Fatalf("status %+v", st)
	}
	applied, _ := fake.Applied()
	ps := applied.Ports["nwlearn0"]
	if ps.Mode != netfilter.Enforce || !strings.Contains(ps.Rules.String(), "srcipaddr=$DHCPSERVER:10.77.0.1 protocol=udp srcportstart=67 dstportstart=68") {
		t.Fatalf("port state %v\n%v", ps.Mode, ps.Rules)
	}

	lease := learning.Address{Addr: netip.MustParseAddr("10.77.0.50"), Expires: time.Now().Add(time.Hour)}
	e.applyLearned(ctx, map[string]learning.Change{"nwlearn0": {Port: "nwlearn0", Addresses: []learning.Address{lease}, Seen: time.Now()}})
	_, st, _ = e.Binding("nwlearn0")
	if st.Mode != "enforce" || len(st.LearnedAddresses) != 1 || st.LearnedAddresses[0] != "10.77.0.50" {
		t.Fatalf("status after learning %+v", st)
	}
	applied, _ = fake.Applied()
	if !strings.Contains(applied.Ports["nwlearn0"].Rules.String(), "srcipaddr=$IP:10.77.0.50") {
		t.Fatalf("learned address not in the rules:\n%v", applied.Ports["nwlearn0"].Rules)
	}
	if _, err := os.Stat(filepath.Join(state, "learned", "nwlearn0.json")); err != nil {
		t.Fatal(err)
	}

	// A new engine on the same state: the valid lease is enforced at once.
	e.Close()
	e2, fake2 := newLearningEngine(t, state, config)
	if got := e2.LearnedAddresses("nwlearn0"); len(got) != 1 || got[0] != "10.77.0.50" {
		t.Fatalf("restored %v", got)
	}
	applied, _ = fake2.Applied()
	if !strings.Contains(applied.Ports["nwlearn0"].Rules.String(), "srcipaddr=$IP:10.77.0.50") {
		t.Fatal("restored lease not enforced by the first Apply")
	}
	// Expired in the file: dropped by the next engine.
	expired := `{"mode":"dhcp","addresses":[{"addr":"10.77.0.50","expires":"2000-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(filepath.Join(state, "learned", "nwlearn0.json"), []byte(expired), 0o600); err != nil {
		t.Fatal(err)
	}
	e2.Close()
	e3, _ := newLearningEngine(t, state, config)
	if _, st, _ := e3.Binding("nwlearn0"); st.Mode != ModeLearning || len(st.LearnedAddresses) != 0 {
		t.Fatalf("expired lease restored: %+v", st)
	}
	// The lease ends: back to the basic rules.
	e3.applyLearned(ctx, map[string]learning.Change{"nwlearn0": {Port: "nwlearn0", Seen: time.Now()}})
	if _, st, _ := e3.Binding("nwlearn0"); st.Mode != ModeLearning {
		t.Fatalf("after expiry %+v", st)
	}
	if err := e3.DeleteBinding(ctx, "nwlearn0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "learned", "nwlearn0.json")); !os.IsNotExist(err) {
		t.Fatalf("learned state left behind: %v", err)
	}
}

const bothFamiliesFilter = `<filter name='both-families' chain='root'>
  <filterref filter='no-ip-spoofing'/>
  <filterref filter='no-ipv6-spoofing'/>
</filter>`

const bothFamiliesBinding = `<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2d</uuid></owner>
<portdev name='nwlearn1'/><mac address='52:54:00:00:00:12'/><filterref filter='both-families'/></filterbinding>`

// TestLearningPerFamily: a filter needing $IP and $IPV6 is enforced for
// IPv4 once $IP is learned, IPv6 keeping the basic rules, and completely
// once $IPV6 is learned too.
func TestLearningPerFamily(t *testing.T) {
	e, fake := newLearningEngine(t, t.TempDir(), t.TempDir())
	ctx := context.Background()
	if _, _, err := e.DefineFilter(ctx, []byte(bothFamiliesFilter)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateBinding(ctx, []byte(bothFamiliesBinding)); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := e.Binding("nwlearn1"); st.Mode != ModeLearning || !strings.Contains(st.Reason, "learning IP, IPV6") {
		t.Fatalf("status %+v", st)
	}
	v4 := learning.Address{Addr: netip.MustParseAddr("10.77.0.5")}
	e.applyLearned(ctx, map[string]learning.Change{"nwlearn1": {Port: "nwlearn1", Addresses: []learning.Address{v4}, Seen: time.Now()}})
	_, st, _ := e.Binding("nwlearn1")
	if st.Mode != ModeLearning || !strings.Contains(st.Reason, "learning IPV6") || !strings.Contains(st.Reason, "10.77.0.5 enforced") {
		t.Fatalf("status with IPv4 learned %+v", st)
	}
	applied, _ := fake.Applied()
	rules := applied.Ports["nwlearn1"].Rules.String()
	for _, want := range []string{"return ip srcipaddr=$IP:10.77.0.5", "inout -1000 drop ipv6", "accept ipv6 srcmacaddr=$MAC:52:54:00:00:00:12 protocol=icmpv6 type=135 typeend=136"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	if strings.Contains(rules, "drop ip\n") || strings.Contains(rules, "$IPV6") {
		t.Errorf("IPv4 still learning or $IPV6 used:\n%s", rules)
	}
	v6 := learning.Address{Addr: netip.MustParseAddr("fd00::5")}
	e.applyLearned(ctx, map[string]learning.Change{"nwlearn1": {Port: "nwlearn1", Addresses: []learning.Address{v4, v6}, Seen: time.Now()}})
	if _, st, _ := e.Binding("nwlearn1"); st.Mode != "enforce" || len(st.LearnedAddresses) != 2 {
		t.Fatalf("status with both learned %+v", st)
	}
	applied, _ = fake.Applied()
	rules = applied.Ports["nwlearn1"].Rules.String()
	if !strings.Contains(rules, "srcipaddr=$IPV6:fd00::5") || strings.Contains(rules, "-1000") {
		t.Errorf("complete filter:\n%s", rules)
	}
}
