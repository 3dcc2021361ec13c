package network_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/network"
)

func TestCheckIfName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"virbr0", true},
		{"a", true},
		{"exactly15bytes_", true},
		{"br.10", true},
		{"vnet-0", true},
		{"é", true}, // the kernel takes any byte but '/', ':', white space and NUL
		{"", false},
		{"sixteen_bytes_ab", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a:b", false},
		{"a b", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\vb", false},
		{"a\rb", false},
		{"a\x00b", false},
	} {
		err := network.CheckIfName(c.name)
		if c.ok && err != nil {
			t.Errorf("CheckIfName(%q) = %v, want nil", c.name, err)
		}
		if !c.ok {
			var le *network.LinkError
			if !errors.Is(err, network.ErrInvalidIfName) || !errors.As(err, &le) || le.Link != c.name {
				t.Errorf("CheckIfName(%q) = %v, want a *LinkError wrapping ErrInvalidIfName", c.name, err)
			}
		}
	}
}

func TestLinkErrorMessage(t *testing.T) {
	err := network.CheckIfName(strings.Repeat("x", 16))
	if got, want := err.Error(), "xxxxxxxxxxxxxxxx: check name: invalid interface name: longer than 15 bytes"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
