package dbusapi

import (
	"errors"
	"fmt"
	"testing"

	"github.com/netwarden/netwarden/policy"
)

// TestErrorName: errors are named by type and kind, through any
// wrapping, whatever their text.
func TestErrorName(t *testing.T) {
	_, parseErr := policy.ParseFilter([]byte("<filter"))
	for _, c := range []struct {
		err  error
		want string
	}{
		{&DeniedError{Action: "a", Reason: "r"}, ErrorAccessDenied},
		{fmt.Errorf("x: %w", parseErr), ErrorInvalidArgument},
		{&policy.InstantiateError{Reason: "not found"}, ErrorInvalidArgument},
		{&policy.GraphError{Kind: policy.ErrCycle}, ErrorInvalidArgument},
		{&policy.GraphError{Kind: policy.ErrBuiltIn}, ErrorInvalidArgument},
		{&policy.GraphError{Kind: policy.ErrNotFound}, ErrorNotFound},
		{fmt.Errorf("w: %w", &policy.GraphError{Kind: policy.ErrInUse}), ErrorInUse},
		{&policy.GraphError{Kind: policy.ErrConflict}, ErrorExists},
		{Mark(errors.New("in use"), ErrExists), ErrorExists},
		{Mark(errors.New("exists"), ErrNotFound), ErrorNotFound},
		{fmt.Errorf("port x: %w", Mark(errors.New("nope"), ErrInUse)), ErrorInUse},
		{checkFlags(4, 1), ErrorInvalidArgument},
		{fmt.Errorf("network n: %w", Mark(errors.New("forward mode hostdev"), ErrNotSupported)), ErrorNotSupported},
		{fmt.Errorf("forward mode: %w", ErrNotSupported), ErrorNotSupported},
		{errors.New("not found"), ErrorFailed},
	} {
		if got := ErrorName(c.err); got != c.want {
			t.Errorf("ErrorName(%v) = %s, want %s", c.err, got, c.want)
		}
		if de := dbusError(c.err); de.Name != c.want || de.Body[0] != c.err.Error() {
			t.Errorf("dbusError(%v) = %v", c.err, de)
		}
	}
	if dbusError(nil) != nil || Mark(nil, ErrExists) != nil || checkFlags(1, 1) != nil {
		t.Error("nil is not kept nil")
	}
	marked := Mark(&policy.GraphError{Kind: policy.ErrInUse, Filter: "f"}, ErrExists)
	var ge *policy.GraphError
	if !errors.As(marked, &ge) || marked.Error() != ge.Error() {
		t.Errorf("Mark hides what it wraps: %v", marked)
	}
}
