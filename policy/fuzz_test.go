package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/netwarden/netwarden/internal/conformance"
)

// addConformanceSeeds adds every XML file of the given conformance
// subdirectories to the fuzz corpus; without the conformance data the
// inline seeds are all there is.
func addConformanceSeeds(f *testing.F, subdirs ...string) {
	dir, err := conformance.Find()
	if err != nil {
		return
	}
	for _, sub := range subdirs {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.xml"))
		for _, file := range files {
			if data, err := readConformanceFile(file); err == nil {
				f.Add(data)
			}
		}
	}
}

// FuzzParseFormat checks that whatever ParseFilter accepts formats, that
// the output parses back to the same filter, and that formatting is stable:
// format(parse(format(x))) == format(x). ParseFilter must never panic and
// must only return *ValidationError.
func FuzzParseFormat(f *testing.F) {
	for _, s := range []string{
		`<filter name='t'/>`,
		`<filter name='t' chain='mac' priority='0'><uuid>5c6d49af-b071-6127-b4ec-6f8ed4b55335</uuid></filter>`,
		`<filter name='t'><rule action='accept' direction='in'><tcp dstportstart='22' dstportend='0x50' state='NEW'/></rule></filter>`,
		`<filter name='t'><rule action='drop' direction='out' statematch='0'><ipv6 srcipaddr='::1.2.3.4' srcipmask='ffff::' protocol='udp' srcportstart='$P[@2]'/></rule></filter>`,
		`<filter name='t'><filterref filter='u'><parameter name='A' value='1'/><parameter name='A' value='2'/></filterref></filter>`,
		`<filter name='t'><rule action='accept' direction='inout'><arp opcode='1' arpsrcipaddr='$IP' gratuitous='no' comment='x &amp; y'/></rule></filter>`,
		`<filter name='t'><rule action='accept' direction='in'><stp root-cost='0x1' root-cost-hi='0xffffffff' match='no'/></rule></filter>`,
	} {
		f.Add([]byte(s))
	}
	addConformanceSeeds(f, "nwfilterxml2xmlin", "nwfilterxml2xmlout", "nwfilterxml2firewalldata", "builtin-filters")
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := ParseFilter(data)
		if err != nil {
			if !IsValidationError(err) {
				t.Fatalf("error is not a *ValidationError: %T %v", err, err)
			}
			return
		}
		out, err := fl.FormatXML()
		if err != nil {
			t.Fatalf("format of a parsed filter failed: %v\ninput: %q", err, data)
		}
		g, err := ParseFilter(out)
		if err != nil {
			t.Fatalf("parse(format(x)) failed: %v\ninput: %q\noutput: %s", err, data, out)
		}
		if !equivalentFilters(fl, g) {
			t.Fatalf("parse(format(x)) != x\ninput: %q\n%+v\n%+v", data, normalisedFilter(fl), normalisedFilter(g))
		}
		again, err := g.FormatXML()
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("format not stable: %v\n%s\n%s", err, out, again)
		}
	})
}

// FuzzParseBinding checks the same properties for binding documents.
func FuzzParseBinding(f *testing.F) {
	for _, s := range []string{
		`<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='vnet0'/><mac address='52:54:00:7b:35:93'/><filterref filter='clean-traffic'/></filterbinding>`,
		`<filterbinding><owner><name>a &amp; b</name><uuid>D54DF46F1AB54A2286184560EF5FAC2C</uuid></owner><portdev name='vnet0'/><linkdev name='eth0'/><mac address='2:0:0:0:0:1'/><filterref filter='x'><parameter name='IP' value='10.0.0.1'/></filterref></filterbinding>`,
	} {
		f.Add([]byte(s))
	}
	addConformanceSeeds(f, "virnwfilterbindingxml2xmldata")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBinding(data)
		if err != nil {
			if !IsValidationError(err) {
				t.Fatalf("error is not a *ValidationError: %T %v", err, err)
			}
			return
		}
		out, err := b.FormatXML()
		if err != nil {
			t.Fatalf("format of a parsed binding failed: %v\ninput: %q", err, data)
		}
		c, err := ParseBinding(out)
		if err != nil {
			t.Fatalf("parse(format(x)) failed: %v\ninput: %q\noutput: %s", err, data, out)
		}
		if !reflect.DeepEqual(b, c) {
			// Params may be reordered by name; compare libvirt's order.
			b.Params, c.Params = SortedParams(b.Params), SortedParams(c.Params)
			if !reflect.DeepEqual(b, c) {
				t.Fatalf("parse(format(x)) != x\n%+v\n%+v", b, c)
			}
		}
		again, err := c.FormatXML()
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("format not stable: %v\n%s\n%s", err, out, again)
		}
	})
}

// BenchmarkParseCleanTraffic parses libvirt's clean-traffic filter (inline
// when the conformance data is missing).
func BenchmarkParseCleanTraffic(b *testing.B) {
	data := []byte(`<filter name='clean-traffic' chain='root'>
   <filterref filter='no-mac-spoofing'/>
   <filterref filter='no-ip-spoofing'/>
   <rule direction='out' action='accept' priority='-650'>
      <mac protocolid='ipv4'/>
   </rule>
   <filterref filter='allow-incoming-ipv4'/>
   <filterref filter='no-arp-spoofing'/>
   <rule action='accept' direction='inout' priority='-500'>
      <mac protocolid='arp'/>
   </rule>
   <filterref filter='no-other-l2-traffic'/>
   <filterref filter='qemu-announce-self'/>
</filter>`)
	if dir, err := conformance.Find(); err == nil {
		if d, err := os.ReadFile(filepath.Join(dir, "builtin-filters", "clean-traffic.xml")); err == nil {
			data = d
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFilter(data); err != nil {
			b.Fatal(err)
		}
	}
}
