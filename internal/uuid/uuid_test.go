package uuid

import (
	"regexp"
	"testing"
)

func TestNewIsVersion4AndUnique(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		u, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(u) {
			t.Fatalf("New() = %q, not a canonical version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("New() repeated %q", u)
		}
		seen[u] = true
	}
}
