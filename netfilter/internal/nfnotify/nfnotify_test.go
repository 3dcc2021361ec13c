package nfnotify

import (
	"encoding/binary"
	"testing"
)

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestEachAttr(t *testing.T) {
	msg := append([]byte{7, 0, 0, 0}, attr(1, []byte("netwarden\x00"))...)
	msg = append(msg, attr(3|0x8000, []byte("from-guest\x00"))...) // NLA_F_NESTED set
	msg = append(msg, 0xff, 0xff)                                  // a truncated attribute ends the walk
	var got []string
	EachAttr(msg, func(typ uint16, v []byte) bool {
		got = append(got, string(rune('0'+typ))+"="+AttrString(v))
		return true
	})
	if len(got) != 2 || got[0] != "1=netwarden" || got[1] != "3=from-guest" {
		t.Errorf("EachAttr = %q", got)
	}
	n := 0
	EachAttr(msg, func(uint16, []byte) bool { n++; return false })
	if n != 1 {
		t.Errorf("EachAttr went on after false: %d calls", n)
	}
	EachAttr([]byte{1, 2}, func(uint16, []byte) bool { t.Error("called on a short message"); return true })
}
