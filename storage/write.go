package storage

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// conflictRetries bounds how often WriteIfAbsent replays an upload that S3
// refused with 409 ConditionalRequestConflict.
const conflictRetries = 3

// WriteIfAbsent writes the content of r to key in b only if no object exists
// there, atomically on every backend: of several concurrent callers exactly
// one succeeds. A caller that loses gets an error for which
// errors.Is(err, ErrExists) holds, and the existing object is untouched.
//
// opts may be nil; IfNotExist is forced on, and an empty ContentType becomes
// "application/octet-stream". If opts.ContentMD5 is set, r is read into memory
// and checked before anything is sent; a mismatch writes nothing.
//
// The write goes through (*blob.Bucket).Upload, never through Writer.Write,
// because gocloud's azureblob Writer panics in Close when a conditional
// Write-path upload fails, while its Upload path returns the error.
//
// Lost races are recognised from gcerrors FailedPrecondition or AlreadyExists
// (memblob, the local-file driver, S3 412, GCS 412, Azure 409
// BlobAlreadyExists and 412 ConditionNotMet), and from the raw S3, GCS and
// Azure errors for the same conditions. When S3 answers 409
// ConditionalRequestConflict, the upload is replayed if r is an io.Seeker;
// otherwise, when Azure answers InvalidBlockList (a competitor's commit
// discarded this writer's staged blocks), and when the request body could not
// be sent (MinIO refuses a conditional PutObject before reading the body and
// drops the connection), WriteIfAbsent waits briefly for the competing object
// and reports ErrExists if it appears.
//
// Like any conditional write over a network, the outcome is ambiguous when a
// response is lost: if the SDK's own retry follows a first attempt that did
// store the object, the retry is refused and this caller gets ErrExists for
// an object holding its own bytes. Callers that must know can compare
// content.
func WriteIfAbsent(ctx context.Context, b *blob.Bucket, key string, r io.Reader, opts *blob.WriterOptions) error {
	var o blob.WriterOptions
	if opts != nil {
		o = *opts
	}
	o.IfNotExist = true
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	if len(o.ContentMD5) > 0 {
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("reading content for %s: %w", key, err)
		}
		if sum := md5.Sum(data); !bytes.Equal(sum[:], o.ContentMD5) {
			return fmt.Errorf("writing %s: content does not match WriterOptions.ContentMD5", key)
		}
		r, o.ContentMD5 = bytes.NewReader(data), nil
	}
	start := int64(-1)
	if s, ok := r.(io.Seeker); ok {
		if pos, err := s.Seek(0, io.SeekCurrent); err == nil {
			start = pos
		}
	}

	var err error
	for attempt := 0; ; attempt++ {
		err = b.Upload(ctx, key, r, &o)
		if err == nil {
			return nil
		}
		if isExistsError(err) {
			return existsError(key, err)
		}
		code := serviceCode(err)
		if code == "ConditionalRequestConflict" && attempt < conflictRetries && start >= 0 {
			// S3: a concurrent conditional write interfered; replay.
			if _, serr := r.(io.Seeker).Seek(start, io.SeekStart); serr == nil {
				continue
			}
		}
		// S3's conflict we cannot replay, and Azure's InvalidBlockList (a
		// competitor's commit discarded our staged blocks): the write lost
		// if the competitor's object shows up.
		if (code == "ConditionalRequestConflict" || code == "InvalidBlockList") && waitForObject(ctx, b, key) {
			return existsError(key, err)
		}
		// MinIO rejects a conditional PutObject as soon as it has read the
		// headers and closes the connection, so the client sees a failure
		// to send the body instead of the 412. Our bytes did not arrive;
		// if the object is there, a competitor wrote it.
		if sendFailed(err) && waitForObject(ctx, b, key) {
			return existsError(key, err)
		}
		break
	}
	return fmt.Errorf("writing %s: %w", key, Wrap(err))
}

func existsError(key string, cause error) error {
	return fmt.Errorf("writing %s: %w", key, &mappedError{sentinel: ErrExists, err: cause, msg: ErrExists.Error()})
}

// isExistsError reports whether err, from a write with IfNotExist, means the
// object already existed.
func isExistsError(err error) bool {
	if isExistsCode(gcerrors.Code(err)) {
		// gocloud also reports use of a closed bucket as FailedPrecondition,
		// through an unexported error that only its text identifies.
		return !strings.Contains(err.Error(), "Bucket has been closed")
	}
	switch serviceCode(err) {
	case "PreconditionFailed", "BlobAlreadyExists", "ConditionNotMet":
		return true
	}
	return httpStatus(err) == 412
}

// sendFailed reports whether err is a network failure of the request or its
// response (a refused body, a reset or dropped connection): the server may
// have refused the write because the object exists. Under load MinIO's early
// refusal shows up as a failed write, a reset while reading, or an
// unexpected EOF.
func sendFailed(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// waitForObject polls for key for up to about ten seconds (a loaded server
// may take a while to commit the competing object).
func waitForObject(ctx context.Context, b *blob.Bucket, key string) bool {
	delay := 50 * time.Millisecond
	for range 8 {
		if ok, err := b.Exists(ctx, key); err == nil && ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay *= 2
	}
	return false
}
