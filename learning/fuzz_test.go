package learning

import (
	"errors"
	"testing"
)

// The fuzz targets feed arbitrary bytes to the parsers: they must never
// panic, and every refusal must be ErrMalformed.

func FuzzParseFrame(f *testing.F) {
	f.Add(ack(f, server, guestMAC, "10.0.0.50", 3600), false)
	f.Add(dhcp6Reply(f, "2001:db8::99", 600), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, b []byte, fromGuest bool) {
		evs, err := Parse(b, fromGuest)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not ErrMalformed: %v", err)
		}
		for _, ev := range evs {
			if !ev.Addr.IsValid() {
				t.Fatalf("event without an address: %+v", ev)
			}
		}
	})
}

func FuzzParseDHCPv4(f *testing.F) {
	fr := ack(f, server, guestMAC, "10.0.0.50", 3600)
	f.Add(fr[42:])
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseDHCPv4(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
}

func FuzzParseDHCPv6(f *testing.F) {
	fr := dhcp6Reply(f, "2001:db8::99", 600)
	f.Add(fr[62:])
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := ParseDHCPv6(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
}

func FuzzParseNA(f *testing.F) {
	f.Add([]byte{136, 0, 0, 0, 0x20, 0, 0, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := ParseNA(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
}
