// Package uuid makes the random UUIDs netwarden gives to objects whose
// definitions have none (filters, networks, ports), as libvirt does.
package uuid

import (
	"crypto/rand"
	"fmt"
)

// New returns a random (version 4) UUID in canonical lower-case form.
func New() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate UUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
