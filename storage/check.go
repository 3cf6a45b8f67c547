package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

// Check performs one cheap call against the location (a listing of at most
// one object under the prefix) and reports whether the location can be used.
// It writes nothing. A missing local directory is fine (it is created by the
// first write), as is an empty prefix.
//
// The error, if any, is one line naming the redacted location and says what
// went wrong: the service cannot be reached, access was denied (wrapping
// gcerrors' PermissionDenied cause), the bucket does not exist (wrapping
// ErrNotFound), the context ended, or the service's own message, redacted.
func (l *Location) Check(ctx context.Context) error {
	if l.Scheme == SchemeFile {
		// A missing directory is fine (the first write makes it); one that
		// cannot be a directory is not.
		if st, err := os.Stat(l.Local); err == nil && !st.IsDir() || errors.Is(err, syscall.ENOTDIR) {
			return &locationError{msg: fmt.Sprintf("storage: checking %q: not a directory", l.Display), sentinel: ErrBadLocation}
		}
	}
	opts := &blob.ListOptions{}
	if l.Prefix != "" {
		opts.Prefix = l.Prefix + "/"
	}
	_, _, err := l.Bucket.ListPage(ctx, blob.FirstPageToken, 1, opts)
	if err == nil {
		return nil
	}
	return checkError(l.Display, err)
}

func checkError(display string, err error) error {
	e := &locationError{cause: err}
	prefix := fmt.Sprintf("storage: checking %q: ", display)
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.msg = prefix + "timed out"
	case errors.Is(err, context.Canceled):
		e.msg = prefix + "interrupted"
	case errors.As(err, &dnsErr):
		e.msg = prefix + "cannot reach the storage service: " + oneLine(Redact(dnsErr.Error()))
	case errors.As(err, &netErr):
		e.msg = prefix + "cannot reach the storage service: " + oneLine(Redact(netErr.Error()))
	case isPermissionError(err):
		e.msg = prefix + "access denied (check the credentials and their permissions)"
	case gcerrors.Code(err) == gcerrors.NotFound:
		e.sentinel = ErrNotFound
		e.msg = prefix + "the bucket does not exist (or is not visible with these credentials)"
	default:
		e.msg = prefix + oneLine(Redact(err.Error()))
	}
	return e
}

func isPermissionError(err error) bool {
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return true
	}
	switch serviceCode(err) {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthenticationFailed", "AuthorizationFailure", "InvalidToken", "ExpiredToken":
		return true
	}
	s := httpStatus(err)
	return s == 401 || s == 403
}

// httpStatus returns the HTTP status code carried by an S3, GCS or Azure
// error, or 0.
func httpStatus(err error) int {
	var withStatus interface{ HTTPStatusCode() int } // S3 (smithy) response errors
	var azErr *azcore.ResponseError
	var gErr *googleapi.Error
	switch {
	case errors.As(err, &withStatus):
		return withStatus.HTTPStatusCode()
	case errors.As(err, &azErr):
		return azErr.StatusCode
	case errors.As(err, &gErr):
		return gErr.Code
	}
	return 0
}

// serviceCode returns the service's own error code ("PreconditionFailed",
// "BlobAlreadyExists", …) carried by an S3 or Azure error, or "".
func serviceCode(err error) string {
	var apiErr smithy.APIError
	var azErr *azcore.ResponseError
	switch {
	case errors.As(err, &apiErr):
		return apiErr.ErrorCode()
	case errors.As(err, &azErr):
		return azErr.ErrorCode
	}
	return ""
}
