package storage

import (
	"errors"

	"gocloud.dev/gcerrors"
)

// Sentinel errors. Test for them with errors.Is; they are never returned bare
// but always wrapped with the operation and the (redacted) object or location.
var (
	// ErrNotFound means the object (or, from Check, the bucket) does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists means a create-if-absent write lost: the object already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrBadLocation means a location string could not be understood: it is
	// malformed, uses an unknown scheme, or carries options or credentials this
	// package refuses.
	ErrBadLocation = errors.New("storage: bad location")
)

// mappedError attaches one of this package's sentinels to an error from a
// bucket call, and replaces its message by a redacted one. Unwrap exposes
// both the sentinel and the original error, so errors.Is, errors.As and
// gcerrors.Code keep working.
type mappedError struct {
	sentinel error // may be nil
	err      error
	msg      string
}

func (e *mappedError) Error() string { return e.msg }

func (e *mappedError) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.err}
	}
	return []error{e.sentinel, e.err}
}

// Wrap maps an error returned by a *blob.Bucket call (or by anything wrapping
// one) so that errors.Is(err, ErrNotFound) holds for gcerrors.NotFound and
// errors.Is(err, ErrExists) holds for gcerrors.AlreadyExists. The message is
// the original one passed through Redact. The original error stays reachable
// through errors.As and gcerrors.Code. Wrap(nil) is nil, and errors already
// carrying ErrNotFound or ErrExists are returned unchanged.
//
// gcerrors.FailedPrecondition is deliberately not mapped to ErrExists here:
// outside a conditional write it means other things (a closed bucket, a
// ContentMD5 mismatch). WriteIfAbsent does that mapping itself.
func Wrap(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		return err
	}
	var sentinel error
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		sentinel = ErrNotFound
	case gcerrors.AlreadyExists:
		sentinel = ErrExists
	}
	return &mappedError{sentinel: sentinel, err: err, msg: Redact(err.Error())}
}

// IsNotFound reports whether err, or any error it wraps, means "does not
// exist": ErrNotFound or an error whose gcerrors code is NotFound.
func IsNotFound(err error) bool {
	return err != nil && (errors.Is(err, ErrNotFound) || gcerrors.Code(err) == gcerrors.NotFound)
}

// isExistsCode reports whether a gcerrors code from a conditional write means
// the object was already there.
func isExistsCode(c gcerrors.ErrorCode) bool {
	return c == gcerrors.FailedPrecondition || c == gcerrors.AlreadyExists
}
