package dbusapi

import (
	"errors"
	"fmt"
	"testing"
)

func TestNameTakenError(t *testing.T) {
	for _, tc := range []struct {
		err  NameTakenError
		want string
	}{
		{NameTakenError{BusName, ":1.7", 4242}, "bus name org.netwarden1 is already owned by :1.7 (pid 4242); is another netwardend running?"},
		{NameTakenError{BusName, ":1.7", 0}, "bus name org.netwarden1 is already owned by :1.7; is another netwardend running?"},
		{NameTakenError{BusName, "", 0}, "bus name org.netwarden1 is owned by another connection (which has gone since)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	// Callers find it through wrapping.
	var taken *NameTakenError
	wrapped := fmt.Errorf("start: %w", &NameTakenError{Name: BusName, Owner: ":1.7"})
	if !errors.As(wrapped, &taken) || taken.Owner != ":1.7" {
		t.Errorf("errors.As did not find the NameTakenError in %v", wrapped)
	}
}
