package model

import (
	"errors"
	"fmt"
)

// InvalidError reports an object rejected for invalid content. The state no longer holds any object
// under that key (an earlier valid version is removed: fail closed), except for IP set members and config
// keys, where only the bad member is skipped or the bad key keeps its default.
type InvalidError struct {
	Kind Kind
	// Key identifies the object (its key's String form), "" if the key itself was unreadable.
	Key string
	// ID is the typed key (string, PolicyKey, WorkloadEndpointKey, …) when known, else nil.
	ID  any
	Err error
	// Rejected is true when the whole object was rejected (and removed from the state).
	Rejected bool
}

func (e *InvalidError) Error() string {
	what := "invalid"
	if e.Rejected {
		what = "rejected invalid"
	}
	return fmt.Sprintf("%s %s %q: %v", what, e.Kind, e.Key, e.Err)
}

func (e *InvalidError) Unwrap() error { return e.Err }

// UnknownPayloadError reports a ToDataplane message whose payload this build does not know (a newer Felix).
type UnknownPayloadError struct {
	// Type names the payload: its protobuf field number, e.g. "field_39", or "none" for an empty message.
	Type string
}

func (e *UnknownPayloadError) Error() string {
	return fmt.Sprintf("unknown ToDataplane payload %s (newer Felix?); ignored", e.Type)
}

// InvalidErrors extracts every *InvalidError from err (which may join several).
func InvalidErrors(err error) []*InvalidError {
	if err == nil {
		return nil
	}
	var out []*InvalidError
	var walk func(error)
	walk = func(e error) {
		if ie, ok := e.(*InvalidError); ok {
			out = append(out, ie)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// IsUnknownPayload reports whether err is an *UnknownPayloadError and returns it.
func IsUnknownPayload(err error) (*UnknownPayloadError, bool) {
	var u *UnknownPayloadError
	ok := errors.As(err, &u)
	return u, ok
}
