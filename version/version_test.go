package version

import "testing"

// A test binary carries no -X version and no module version, so String
// falls back to Dev.
func TestStringFallsBackToDev(t *testing.T) {
	if got := String(); got != Dev {
		t.Errorf("String() = %q, want %q", got, Dev)
	}
}
