package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"gocloud.dev/gcerrors"
)

// Defaults of RetryPolicy, chosen for a command run by a person or a
// scheduler: a flaky request is retried for up to about half a minute, and a
// store that stays unreachable is reported well before anyone gives up
// waiting. The storage SDKs retry some failures on their own (the AWS SDK
// three times) below this policy.
const (
	DefaultRetryAttempts   = 5
	DefaultRetryMaxElapsed = 30 * time.Second
	DefaultRetryInitial    = 250 * time.Millisecond
	DefaultRetryMax        = 8 * time.Second
	// DefaultAttemptTimeout bounds one listing page, attribute lookup,
	// delete or reader open (not a transfer of data); a call that gets no
	// answer within it is abandoned and retried.
	DefaultAttemptTimeout = time.Minute
)

// RetryPolicy bounds the retries of transient storage failures (see
// IsTransient): at most Attempts attempts, no new one after MaxElapsed, with
// exponential backoff from Initial, doubling up to Max, each delay drawn
// uniformly from its upper half (jitter). Zero fields take the defaults
// above. Time is read and slept through Now and Sleep, so tests need not
// sleep.
type RetryPolicy struct {
	Attempts       int
	MaxElapsed     time.Duration
	Initial        time.Duration
	Max            time.Duration
	AttemptTimeout time.Duration // see DefaultAttemptTimeout; < 0 means none
	// Now returns the current time (time.Now if nil).
	Now func() time.Time
	// Sleep waits d or until ctx ends, returning ctx.Err() then (a real
	// timer if nil).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the jitter (math/rand/v2 if nil).
	Rand func() float64
}

// DefaultRetryPolicy returns the policy Open gives every bucket.
func DefaultRetryPolicy() RetryPolicy { return RetryPolicy{} }

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultRetryAttempts
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = DefaultRetryMaxElapsed
	}
	if p.Initial <= 0 {
		p.Initial = DefaultRetryInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultRetryMax
	}
	if p.AttemptTimeout == 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryError is what Retry returns when a transient failure outlasted the
// policy. Err is the last failure; errors.Is, errors.As and gcerrors.Code
// see through to it.
type RetryError struct {
	What     string // what was being done, "" if the caller says it
	Attempts int
	Elapsed  time.Duration
	Err      error
}

func (e *RetryError) Error() string {
	cause := e.Err.Error()
	// gocloud prefixes `blob (key "k") (code=C): `, which the message that
	// wraps this one already says.
	if strings.HasPrefix(cause, "blob (") {
		if _, rest, ok := strings.Cut(cause, "): "); ok {
			cause = rest
		}
	}
	s := fmt.Sprintf("giving up after %d attempts over %v: %s", e.Attempts, e.Elapsed.Round(time.Millisecond), cause)
	if e.What != "" {
		s = e.What + ": " + s
	}
	return s
}

func (e *RetryError) Unwrap() error { return e.Err }

// Retry calls fn until it succeeds, fails with an error that is not
// transient (returned as is), ctx ends (fn's last error is returned), or p's
// bound is reached: then the error is a *RetryError naming what (for example
// "reading chk-3/_metadata"; "" when the caller adds it) and the number of
// attempts. A nil p makes exactly one attempt. fn must be safe to repeat.
func Retry(ctx context.Context, p *RetryPolicy, what string, fn func() error) error {
	if p == nil {
		return fn()
	}
	q := p.withDefaults()
	start := q.Now()
	delay := q.Initial
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil || !IsTransient(err) {
			return err
		}
		d := delay/2 + time.Duration(float64(delay/2)*q.Rand())
		elapsed := q.Now().Sub(start)
		if attempt >= q.Attempts || elapsed+d > q.MaxElapsed {
			return &RetryError{What: what, Attempts: attempt, Elapsed: elapsed, Err: err}
		}
		if q.Sleep(ctx, d) != nil {
			return err
		}
		delay = min(2*delay, q.Max)
	}
}

// IsTransient reports whether err is a failure that may not recur: the
// service was unavailable, throttled the request, failed internally (HTTP
// 5xx, 408, 429), the request timed out (the caller checks that its own
// context is still alive), or the connection broke (reset, broken pipe,
// unexpected EOF). Refused connections and unknown hosts are not transient
// (they usually mean a wrong endpoint and should be reported at once), nor is
// anything Retry already gave up on, nor a cancelled context.
func IsTransient(err error) bool {
	var re *RetryError
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.As(err, &re):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	switch gcerrors.Code(err) {
	case gcerrors.ResourceExhausted, gcerrors.DeadlineExceeded:
		return true
	case gcerrors.NotFound, gcerrors.AlreadyExists, gcerrors.FailedPrecondition,
		gcerrors.PermissionDenied, gcerrors.InvalidArgument, gcerrors.Unimplemented, gcerrors.Canceled:
		return false
	}
	switch httpStatus(err) {
	case 408, 429, 500, 502, 503, 504:
		return true
	}
	switch serviceCode(err) {
	case "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "ServerBusy", "OperationTimedOut", "InternalServerError":
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
