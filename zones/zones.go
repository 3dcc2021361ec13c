// Package zones holds the firewalld zones and policies netwarden ships —
// the libvirt zone for NAT, isolated and open networks, the libvirt-routed
// zone and its libvirt-to-host, libvirt-routed-in and libvirt-routed-out
// policies for routed networks — with the meaning of libvirt 9.0's files
// of the same names (our own descriptions), and creates the missing ones
// in a running firewalld (Ensure).
//
// The definitions are firewalld XML files in firewalld/zones and
// firewalld/policies, embedded here and installed by `make install` into
// firewalld's directories; Settings gives the same definition as
// firewalld's config.addZone2 / config.addPolicy take it.
package zones

import (
	"bytes"
	"embed"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/netwarden/netwarden/firewalld"
)

// The names netwarden uses.
const (
	Libvirt          = "libvirt"
	LibvirtRouted    = "libvirt-routed"
	LibvirtToHost    = "libvirt-to-host"
	LibvirtRoutedIn  = "libvirt-routed-in"
	LibvirtRoutedOut = "libvirt-routed-out"
)

//go:embed firewalld/zones/*.xml firewalld/policies/*.xml
var files embed.FS

// Kind tells a zone from a policy.
type Kind int

const (
	Zone Kind = iota + 1
	Policy
)

func (k Kind) String() string {
	if k == Policy {
		return "policy"
	}
	return "zone"
}

// DefaultPolicyPriority is firewalld's priority of a policy file without
// one (DEFAULT_POLICY_PRIORITY).
const DefaultPolicyPriority = -1

// Definition is one zone or policy, as far as netwarden's definitions use
// firewalld's format (target, services, protocols, rich rules of an action
// with a priority and family, ingress and egress zones, priority).
type Definition struct {
	Kind        Kind
	Name        string
	Short       string
	Description string
	// Target is the target attribute ("" for firewalld's default).
	Target    string
	Services  []string
	Protocols []string
	// Rules are rich rules in firewalld's string form, e.g.
	// `rule priority="32767" reject`.
	Rules []string
	// Forward (zones only): intra-zone forwarding, the <forward/>
	// element. A zone file without it has none, while a zone created
	// through the API without the "forward" key gets it (firewalld ≥ 1.0);
	// Settings therefore always states it.
	Forward bool
	// Policies only.
	Priority     int
	IngressZones []string
	EgressZones  []string
}

type xmlNamed struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xmlAction struct {
	XMLName xml.Name
	Type    string     `xml:"type,attr"`
	Any     []xml.Name `xml:",any"`
}

type xmlRule struct {
	Family   string      `xml:"family,attr"`
	Priority int         `xml:"priority,attr"`
	Actions  []xmlAction `xml:",any"`
}

type xmlDef struct {
	XMLName     xml.Name
	Target      string     `xml:"target,attr"`
	Priority    *int       `xml:"priority,attr"`
	Version     string     `xml:"version,attr"`
	Short       string     `xml:"short"`
	Description string     `xml:"description"`
	Services    []xmlNamed `xml:"service"`
	Protocols   []xmlNamed `xml:"protocol"`
	Rules       []xmlRule  `xml:"rule"`
	Ingress     []xmlNamed `xml:"ingress-zone"`
	Egress      []xmlNamed `xml:"egress-zone"`
	Forward     *struct{}  `xml:"forward"`
	Other       []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// Parse reads a firewalld zone or policy file (the kind is its root
// element) named name. Elements outside what Definition holds are an
// error, so nothing of a file's meaning is silently dropped.
func Parse(name string, data []byte) (*Definition, error) {
	var x xmlDef
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch tok := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(tok)) > 0 {
				return nil, fmt.Errorf("%s: text after the root element", name)
			}
		default:
			return nil, fmt.Errorf("%s: content after the root element", name)
		}
	}
	d := &Definition{Name: name, Short: x.Short, Description: strings.Join(strings.Fields(x.Description), " "), Target: x.Target}
	switch x.XMLName.Local {
	case "zone":
		d.Kind = Zone
		d.Forward = x.Forward != nil
		if x.Priority != nil || len(x.Ingress) > 0 || len(x.Egress) > 0 {
			return nil, fmt.Errorf("%s: a zone with a policy's priority or ingress/egress zones", name)
		}
	case "policy":
		d.Kind = Policy
		if x.Forward != nil {
			return nil, fmt.Errorf("%s: <forward/> in a policy", name)
		}
		d.Priority = DefaultPolicyPriority
		if x.Priority != nil {
			d.Priority = *x.Priority
		}
	default:
		return nil, fmt.Errorf("%s: root element <%s>, want <zone> or <policy>", name, x.XMLName.Local)
	}
	if len(x.Other) > 0 {
		return nil, fmt.Errorf("%s: element <%s> not supported", name, x.Other[0].XMLName.Local)
	}
	for _, s := range x.Services {
		d.Services = append(d.Services, s.Name)
	}
	for _, p := range x.Protocols {
		d.Protocols = append(d.Protocols, p.Value)
	}
	for _, z := range x.Ingress {
		d.IngressZones = append(d.IngressZones, z.Name)
	}
	for _, z := range x.Egress {
		d.EgressZones = append(d.EgressZones, z.Name)
	}
	for i, r := range x.Rules {
		s, err := richRule(r)
		if err != nil {
			return nil, fmt.Errorf("%s: rule %d: %w", name, i+1, err)
		}
		d.Rules = append(d.Rules, s)
	}
	return d, nil
}

// richRule formats a rule of one action the way firewalld prints rich
// rules (firewall/core/rich.py): priority when not 0, family, action.
func richRule(r xmlRule) (string, error) {
	if len(r.Actions) != 1 {
		return "", fmt.Errorf("want exactly one action element, have %d", len(r.Actions))
	}
	a := r.Actions[0]
	if len(a.Any) > 0 {
		return "", fmt.Errorf("<%s> with child elements not supported", a.XMLName.Local)
	}
	s := "rule"
	if r.Priority != 0 {
		s += fmt.Sprintf(" priority=%q", fmt.Sprint(r.Priority))
	}
	if r.Family != "" {
		s += fmt.Sprintf(" family=%q", r.Family)
	}
	switch a.XMLName.Local {
	case "accept", "drop":
		s += " " + a.XMLName.Local
	case "reject":
		s += " reject"
		if a.Type != "" {
			s += fmt.Sprintf(" type=%q", a.Type)
		}
	default:
		return "", fmt.Errorf("<%s> not supported (accept, reject or drop)", a.XMLName.Local)
	}
	return s, nil
}

// order is the order of creation: zones before the policies naming them.
var order = []struct {
	kind Kind
	name string
}{
	{Zone, Libvirt}, {Zone, LibvirtRouted},
	{Policy, LibvirtToHost}, {Policy, LibvirtRoutedIn}, {Policy, LibvirtRoutedOut},
}

// FilePath returns the path of a definition's file below the embedded
// tree and the installed tree (zones/NAME.xml, policies/NAME.xml).
func FilePath(kind Kind, name string) string {
	if kind == Policy {
		return path.Join("policies", name+".xml")
	}
	return path.Join("zones", name+".xml")
}

// File returns the shipped file of a definition.
func File(kind Kind, name string) ([]byte, error) {
	return files.ReadFile(path.Join("firewalld", FilePath(kind, name)))
}

// All returns every shipped definition, zones first, each a fresh copy.
func All() []*Definition {
	out := make([]*Definition, 0, len(order))
	for _, o := range order {
		data, err := File(o.kind, o.name)
		if err != nil {
			panic(err) // embedded: a build error
		}
		d, err := Parse(o.name, data)
		if err != nil || d.Kind != o.kind {
			panic(fmt.Sprintf("zones: shipped %s %s: %v", o.kind, o.name, err))
		}
		out = append(out, d)
	}
	return out
}

// Get returns the shipped definition of name.
func Get(name string) (*Definition, bool) {
	for _, d := range All() {
		if d.Name == name {
			return d, true
		}
	}
	return nil, false
}

// Settings returns what config.addZone2 (zones) or config.addPolicy
// (policies) need to create the shipped definition of name.
func Settings(name string) (firewalld.Settings, error) {
	d, ok := Get(name)
	if !ok {
		return nil, fmt.Errorf("zones: no zone or policy %q", name)
	}
	return d.Settings(), nil
}

// Settings returns the definition as firewalld's settings dictionary: the
// keys of firewalld's IMPORT_EXPORT_STRUCTURE (firewalld 1.3,
// firewall/core/io/zone.py and policy.py). Zones carry rich rules as
// "rules_str", policies as "rich_rules"; a policy's priority is an int32;
// a zone's "forward" is always given (see Definition.Forward).
func (d *Definition) Settings() firewalld.Settings {
	s := firewalld.Settings{
		"short":       dbus.MakeVariant(d.Short),
		"description": dbus.MakeVariant(d.Description),
	}
	if d.Target != "" {
		s["target"] = dbus.MakeVariant(d.Target)
	}
	list := func(key string, v []string) {
		if len(v) > 0 {
			s[key] = dbus.MakeVariant(v)
		}
	}
	list("services", d.Services)
	list("protocols", d.Protocols)
	if d.Kind == Policy {
		list("rich_rules", d.Rules)
		list("ingress_zones", d.IngressZones)
		list("egress_zones", d.EgressZones)
		s["priority"] = dbus.MakeVariant(int32(d.Priority))
	} else {
		list("rules_str", d.Rules)
		s["forward"] = dbus.MakeVariant(d.Forward)
	}
	return s
}

// Rename returns copies of defs in which every name netwarden defines,
// and every reference to one in ingress and egress zones, is replaced by
// rename(name): a set that can be created beside the real one, for tests
// on a firewalld that has libvirt's zones already. (firewalld limits zone
// names to 17 characters and policy names to 18.)
func Rename(defs []*Definition, rename func(name string) string) []*Definition {
	names := map[string]bool{}
	for _, d := range defs {
		names[d.Name] = true
	}
	ren := func(v []string) []string {
		if v == nil {
			return nil
		}
		out := make([]string, len(v))
		for i, n := range v {
			if names[n] {
				n = rename(n)
			}
			out[i] = n
		}
		return out
	}
	out := make([]*Definition, len(defs))
	for i, d := range defs {
		c := *d
		c.Name = rename(d.Name)
		c.Short = c.Name
		c.IngressZones = ren(d.IngressZones)
		c.EgressZones = ren(d.EgressZones)
		out[i] = &c
	}
	return out
}
