package store

import (
	"errors"
	"fmt"
	"strings"
)

// MaxNameLen is the longest name, in bytes, that ValidateName accepts. It
// leaves room within the kernel's 255-byte limit on a file name for the
// extension and the temporary-file decoration (".<name>.xml.tmp-<random>").
const MaxNameLen = 200

// ErrNotFound is matched (with errors.Is) by the error of an operation on a
// definition or file that does not exist. IsNotFound is the short form.
// Such errors also match fs.ErrNotExist.
var ErrNotFound = errors.New("not found")

// ErrInvalidName is matched (with errors.Is) by the *NameError of a name
// that ValidateName rejects.
var ErrInvalidName = errors.New("invalid name")

// IsNotFound reports whether err says that a definition or file does not
// exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// NameError reports a name that cannot be used as a file name component.
// It matches ErrInvalidName.
type NameError struct {
	// Name is the rejected name, as given.
	Name string
	// Reason says which rule it breaks, e.g. "contains '/'".
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("store: invalid name %q: %s", e.Name, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidName) true for a *NameError.
func (e *NameError) Is(target error) bool { return target == ErrInvalidName }

// ValidateName checks that name is safe to use as one component of a file
// name: non-empty, at most MaxNameLen bytes, without '/' or NUL, and not
// starting with '.' (which keeps ".", ".." and our temporary files out of
// the name space). It returns nil or a *NameError.
//
// It says nothing about the rules of the object's own XML format (libvirt
// allows other characters in a filter name than in a network name); those
// are checked by the packages that parse the definitions.
func ValidateName(name string) error {
	reason := ""
	switch {
	case name == "":
		reason = "empty"
	case len(name) > MaxNameLen:
		reason = fmt.Sprintf("longer than %d bytes", MaxNameLen)
	case strings.ContainsRune(name, '/'):
		reason = "contains '/'"
	case strings.ContainsRune(name, 0):
		reason = "contains NUL"
	case name[0] == '.':
		reason = "starts with '.'"
	default:
		return nil
	}
	return &NameError{Name: name, Reason: reason}
}

// notFound wraps the error of an operation on a missing file (normally an
// *fs.PathError, which names the path) so that it also matches ErrNotFound.
type notFound struct{ err error }

func (e *notFound) Error() string        { return e.err.Error() }
func (e *notFound) Unwrap() error        { return e.err }
func (e *notFound) Is(target error) bool { return target == ErrNotFound }
