package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/dbusapi"
)

// fakeNets is the network part of the fake daemon: default (active,
// persistent, autostart), idle (inactive, persistent), tmp (active,
// transient) with one port.
type fakeNets struct {
	nets  map[string]*dbusapi.NetworkObject
	ports map[dbus.ObjectPath]string // port object → XML
	calls []string
}

const tmpPort = "0c0c0c0c-0000-4000-8000-000000000001"

func netFakeUUID(name string) string {
	return fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012x", len(name))
}

func newFakeNets() *fakeNets {
	f := &fakeNets{nets: map[string]*dbusapi.NetworkObject{}, ports: map[dbus.ObjectPath]string{}}
	for _, n := range []dbusapi.Network{
		{Name: "default", Active: true, Persistent: true, Autostart: true, Bridge: "virbr0"},
		{Name: "idle", Persistent: true},
		{Name: "tmp", Active: true, Bridge: "virbr2"},
	} {
		n.UUID = netFakeUUID(n.Name)
		f.nets[n.Name] = &dbusapi.NetworkObject{Path: dbusapi.NetworkPath(n.UUID), Network: n}
	}
	f.ports[dbusapi.NetworkPortPath(netFakeUUID("tmp"), tmpPort)] = "<networkport/>"
	return f
}

func (f *fakeAPI) netAt(path dbus.ObjectPath) (*dbusapi.NetworkObject, error) {
	for _, n := range f.nets.nets {
		if n.Path == path {
			return n, nil
		}
	}
	return nil, notFound()
}

func (f *fakeAPI) Networks(context.Context) ([]dbusapi.NetworkObject, error) {
	var ns []dbusapi.NetworkObject
	if f.nets == nil {
		return nil, nil
	}
	for _, name := range []string{"default", "fresh", "idle", "tmp"} {
		if n, ok := f.nets.nets[name]; ok {
			ns = append(ns, *n)
		}
	}
	return ns, nil
}

func (f *fakeAPI) Network(_ context.Context, path dbus.ObjectPath) (dbusapi.NetworkObject, error) {
	n, err := f.netAt(path)
	if err != nil {
		return dbusapi.NetworkObject{}, err
	}
	return *n, nil
}

func (f *fakeAPI) LookupNetwork(_ context.Context, s string) (dbus.ObjectPath, error) {
	for _, n := range f.nets.nets {
		if n.Name == s || strings.EqualFold(n.UUID, s) {
			return n.Path, nil
		}
	}
	return "", notFound()
}

func (f *fakeAPI) NetworkDefineXML(_ context.Context, xml string) (dbus.ObjectPath, error) {
	name := xmlName(xml)
	f.nets.calls = append(f.nets.calls, "define "+name)
	if n, ok := f.nets.nets[name]; ok {
		n.Persistent = true
		return n.Path, nil
	}
	n := &dbusapi.NetworkObject{Path: dbusapi.NetworkPath(netFakeUUID(name)), Network: dbusapi.Network{Name: name, UUID: netFakeUUID(name), Persistent: true}}
	f.nets.nets[name] = n
	return n.Path, nil
}

func (f *fakeAPI) NetworkCreateXML(_ context.Context, xml string) (dbus.ObjectPath, error) {
	name := xmlName(xml)
	n := &dbusapi.NetworkObject{Path: dbusapi.NetworkPath(netFakeUUID(name)), Network: dbusapi.Network{Name: name, UUID: netFakeUUID(name), Active: true}}
	f.nets.nets[name] = n
	return n.Path, nil
}

func (f *fakeAPI) netCall(verb string, path dbus.ObjectPath, change func(n *dbusapi.NetworkObject) error) error {
	n, err := f.netAt(path)
	if err != nil {
		return err
	}
	f.nets.calls = append(f.nets.calls, verb+" "+n.Name)
	return change(n)
}

func (f *fakeAPI) NetworkCreate(_ context.Context, path dbus.ObjectPath) error {
	return f.netCall("start", path, func(n *dbusapi.NetworkObject) error {
		if n.Active {
			return fmt.Errorf("x: %w", dbus.Error{Name: dbusapi.ErrorInvalidArgument, Body: []any{"network is already active"}})
		}
		n.Active = true
		return nil
	})
}

func (f *fakeAPI) NetworkDestroy(_ context.Context, path dbus.ObjectPath) error {
	return f.netCall("destroy", path, func(n *dbusapi.NetworkObject) error { n.Active = false; return nil })
}

func (f *fakeAPI) NetworkUndefine(_ context.Context, path dbus.ObjectPath) error {
	return f.netCall("undefine", path, func(n *dbusapi.NetworkObject) error { n.Persistent = false; return nil })
}

func (f *fakeAPI) NetworkSetAutostart(_ context.Context, path dbus.ObjectPath, on bool) error {
	return f.netCall(fmt.Sprintf("autostart=%v", on), path, func(n *dbusapi.NetworkObject) error {
		if !n.Persistent {
			return fmt.Errorf("x: %w", dbus.Error{Name: dbusapi.ErrorAccessDenied, Body: []any{"not authorized for org.netwarden1.network.manage: no"}})
		}
		n.Autostart = on
		return nil
	})
}

func (f *fakeAPI) NetworkGetXMLDesc(_ context.Context, path dbus.ObjectPath, flags uint32) (string, error) {
	n, err := f.netAt(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("<network flags='%d'><name>%s</name></network>", flags, n.Name), nil
}

func (f *fakeAPI) NetworkGetDHCPLeases(_ context.Context, path dbus.ObjectPath, mac string, _ uint32) ([]dbusapi.Lease, error) {
	if _, err := f.netAt(path); err != nil {
		return nil, err
	}
	all := []dbusapi.Lease{
		{Iface: "virbr0", ExpiryTime: 1700000100, Type: 1, MAC: "52:54:00:00:00:02", IAID: "5", IPAddr: "fd00::10", Prefix: 64, ClientID: "00:04:aa"},
		{Iface: "virbr0", ExpiryTime: 1700000000, Type: 0, MAC: "52:54:00:00:00:01", IPAddr: "192.168.122.10", Prefix: 24, Hostname: "g1", ClientID: "01:52:54:00:00:00:01"},
	}
	var ls []dbusapi.Lease
	for _, l := range all {
		if mac == "" || l.MAC == mac {
			ls = append(ls, l)
		}
	}
	return ls, nil
}

func (f *fakeAPI) NetworkListPorts(_ context.Context, path dbus.ObjectPath, _ uint32) ([]dbus.ObjectPath, error) {
	var ps []dbus.ObjectPath
	for p := range f.nets.ports {
		if strings.HasPrefix(string(p), string(path)+"/") {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

func (f *fakeAPI) NetworkPortCreateXML(_ context.Context, path dbus.ObjectPath, xml string, flags uint32) (dbus.ObjectPath, error) {
	n, err := f.netAt(path)
	if err != nil {
		return "", err
	}
	p := dbusapi.NetworkPortPath(n.UUID, "0c0c0c0c-0000-4000-8000-000000000002")
	f.nets.ports[p] = xml
	f.nets.calls = append(f.nets.calls, fmt.Sprintf("port-create %s %d", n.Name, flags))
	return p, nil
}

func (f *fakeAPI) NetworkPortLookupByUUID(_ context.Context, path dbus.ObjectPath, uuid string) (dbus.ObjectPath, error) {
	n, err := f.netAt(path)
	if err != nil {
		return "", err
	}
	p := dbusapi.NetworkPortPath(n.UUID, uuid)
	if _, ok := f.nets.ports[p]; !ok {
		return "", notFound()
	}
	return p, nil
}

func (f *fakeAPI) NetworkPortGetXMLDesc(_ context.Context, path dbus.ObjectPath, _ uint32) (string, error) {
	return f.nets.ports[path], nil
}

func (f *fakeAPI) NetworkPortDelete(_ context.Context, path dbus.ObjectPath) error {
	delete(f.nets.ports, path)
	f.nets.calls = append(f.nets.calls, "port-delete")
	return nil
}

func TestNetworkVerbs(t *testing.T) {
	dir := t.TempDir()
	netXML := filepath.Join(dir, "fresh.xml")
	portXML := filepath.Join(dir, "port.xml")
	if err := os.WriteFile(netXML, []byte("<network><name>fresh</name></network>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(portXML, []byte("<networkport/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	defUUID := netFakeUUID("default")
	for _, tc := range []struct {
		args           []string
		want           int
		stdout, stderr string
		calls          string
	}{
		{args: []string{"net-list"}, stdout: " Name      State    Autostart   Persistent\n" +
			"--------------------------------------------\n" +
			" default   active   yes         yes\n" +
			" tmp       active   no          no\n\n"},
		{args: []string{"net-list", "--all"}, stdout: " default   active     yes         yes\n idle      inactive   no          yes\n tmp       active     no          no\n"},
		{args: []string{"net-list", "--inactive"}, stdout: "-\n idle   inactive   no          yes\n\n"},
		{args: []string{"net-list", "--all", "--transient"}, stdout: "-\n tmp    active   no          no\n\n"},
		{args: []string{"net-list", "--all", "--persistent", "--autostart"}, stdout: "-\n default   active   yes         yes\n\n"},
		{args: []string{"-q", "net-list", "--all", "--no-autostart"}, stdout: " idle   inactive   no          yes\n tmp    active     no          no\n"},
		{args: []string{"net-define", netXML}, stdout: "Network fresh defined from " + netXML + "\n", calls: "define fresh"},
		{args: []string{"net-create", "-"}, stdout: "Network fresh created from standard input\n"},
		{args: []string{"net-start", "idle"}, stdout: "Network idle started\n", calls: "start idle"},
		{args: []string{"net-start", defUUID}, want: exitFailure, stderr: "error: failed to start network default: invalid: network is already active\n"},
		{args: []string{"net-start", "nope"}, want: exitFailure, stderr: "error: failed to get network 'nope': no network with that name or UUID\n"},
		{args: []string{"net-destroy", "default"}, stdout: "Network default destroyed\n", calls: "destroy default"},
		{args: []string{"net-undefine", "--network", "idle"}, stdout: "Network idle has been undefined\n", calls: "undefine idle"},
		{args: []string{"net-autostart", "idle"}, stdout: "Network idle marked as autostarted\n", calls: "autostart=true idle"},
		{args: []string{"net-autostart", "default", "--disable"}, stdout: "Network default unmarked as autostarted\n", calls: "autostart=false default"},
		{args: []string{"net-autostart", "tmp"}, want: exitFailure, stderr: "error: you are not allowed to change the autostart of networks: org.netwarden1.network.manage\n"},
		{args: []string{"net-dumpxml", "default"}, stdout: "<network flags='0'><name>default</name></network>\n"},
		{args: []string{"net-dumpxml", "--inactive", strings.ToUpper(defUUID)}, stdout: "<network flags='1'><name>default</name></network>\n"},
		{args: []string{"net-info", "default"}, stdout: "Name:           default\nUUID:           " + defUUID +
			"\nActive:         yes\nPersistent:     yes\nAutostart:      yes\nBridge:         virbr0\n"},
		{args: []string{"net-uuid", "default"}, stdout: defUUID + "\n"},
		{args: []string{"net-name", defUUID}, stdout: "default\n"},
		{args: []string{"net-dhcp-leases", "default"}, stdout: " Expiry Time           MAC address         Protocol   IP address          Hostname   Client ID or DUID\n" +
			"-----------------------------------------------------------------------------------------------------------\n" +
			" 2023-11-14 22:13:20   52:54:00:00:00:01   ipv4       192.168.122.10/24   g1         01:52:54:00:00:00:01\n" +
			" 2023-11-14 22:15:00   52:54:00:00:00:02   ipv6       fd00::10/64         -          00:04:aa\n\n"},
		{args: []string{"-q", "net-dhcp-leases", "default", "--mac", "52:54:00:00:00:02"}, stdout: " 2023-11-14 22:15:00   52:54:00:00:00:02   ipv6       fd00::10/64   -          00:04:aa\n"},
		{args: []string{"net-dhcp-leases", "default", "52:54:00:00:00:02"}, want: exitUsage, stderr: "unexpected data '52:54:00:00:00:02'"},
		{args: []string{"net-port-list", "tmp"}, stdout: " UUID\n---------------------------------------\n " + tmpPort + "\n\n"},
		{args: []string{"net-port-create", "tmp", portXML, "--validate"}, stdout: "Network port 0c0c0c0c-0000-4000-8000-000000000002 created from " + portXML + "\n", calls: "port-create tmp 2"},
		{args: []string{"net-port-create", "tmp"}, want: exitUsage, stderr: "requires <file> option"},
		{args: []string{"net-port-dumpxml", "tmp", tmpPort}, stdout: "<networkport/>\n"},
		{args: []string{"net-port-dumpxml", "default", tmpPort}, want: exitFailure, stderr: "error: failed to get network port '" + tmpPort + "': no port with that UUID on the network\n"},
		{args: []string{"net-port-delete", "tmp", tmpPort}, stdout: "Network port " + tmpPort + " deleted\n", calls: "port-delete"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAPI()
			f.nets = newFakeNets()
			s, stdout, stderr := testSession(f, "<network><name>fresh</name></network>")
			s.loc = time.UTC
			if got := s.run(tc.args); got != tc.want {
				t.Errorf("exit status %d, want %d (stderr %q)", got, tc.want, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
			if tc.calls != "" && strings.Join(f.nets.calls, "; ") != tc.calls {
				t.Errorf("calls %q, want %q", f.nets.calls, tc.calls)
			}
		})
	}
}

func TestNetworkEventLines(t *testing.T) {
	f := newFakeAPI()
	for i := range 5 {
		f.events = append(f.events, dbusapi.Event{Kind: dbusapi.NetworkEventKind, Event: int32(i), Name: "default"})
	}
	s, stdout, _ := testSession(f, "")
	if got := s.run([]string{"event", "--loop", "--timeout", "1"}); got != exitOK {
		t.Errorf("exit status %d", got)
	}
	want := "event 'lifecycle' for network default: Defined\n" +
		"event 'lifecycle' for network default: Undefined\n" +
		"event 'lifecycle' for network default: Started\n" +
		"event 'lifecycle' for network default: Stopped\n" +
		"event 'lifecycle' for network default: Unknown (4)\n" +
		"event loop timed out\nevents received: 5\n"
	if stdout.String() != want {
		t.Errorf("got\n%s\nwant\n%s", stdout.String(), want)
	}
}

// TestNetEdit: net-edit edits the inactive XML and defines the result.
func TestNetEdit(t *testing.T) {
	f := newFakeAPI()
	f.nets = newFakeNets()
	s, stdout, stderr := testSession(f, "")
	var seen string
	s.edit = func(_ *session, path string) error {
		b, err := os.ReadFile(path)
		seen = string(b)
		if err != nil {
			return err
		}
		return os.WriteFile(path, []byte("<network><name>default</name><bridge name='virbr5'/></network>"), 0o600)
	}
	if got := s.run([]string{"net-edit", "default"}); got != exitOK {
		t.Fatalf("exit status %d, stderr %q", got, stderr.String())
	}
	if seen != "<network flags='1'><name>default</name></network>" || stdout.String() != "Network default XML configuration edited.\n" ||
		strings.Join(f.nets.calls, ";") != "define default" {
		t.Errorf("editor saw %q; stdout %q; calls %v", seen, stdout.String(), f.nets.calls)
	}
}
