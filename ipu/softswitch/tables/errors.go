package tables

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
)

// Error is a P4Runtime error for one update or one read request: a canonical gRPC code and a message.
// Every error the store returns for a P4Runtime entity is an *Error (use CodeOf to read the code).
type Error struct {
	Code codes.Code
	Msg  string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Msg }

func errf(c codes.Code, format string, args ...any) *Error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the canonical code of err: OK for nil, the code of an *Error, Unknown otherwise.
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codes.Unknown
}

// ErrBusy is returned by TryLearn when a control-plane batch holds the store.
var ErrBusy = errors.New("tables: store busy")
