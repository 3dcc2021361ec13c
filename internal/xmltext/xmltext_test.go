package xmltext

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1": "'10.0.0.1'",
		"it's":     `"it's"`,
		"a\nb":     `"a\nb"`,
		"":         "''",
		"é":        "'é'",
		"\x7f":     `"\x7f"`,
		"\xff":     `"\xff"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	long := strings.Repeat("é", 40) // 80 bytes
	got := Quote(long)
	if !strings.HasSuffix(got, "…'") || len(got) > MaxShown+len("…")+2 {
		t.Errorf("Quote(80 bytes) = %s: want it cut at a character boundary with …", got)
	}
}
