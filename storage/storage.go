package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // registers its lazy, environment-configured opener, which azblobOpener forwards to
	"gocloud.dev/blob/driver"
	_ "gocloud.dev/blob/gcsblob" // likewise for gs
	"gocloud.dev/blob/s3blob"

	"github.com/ckpt-dev/ckpt/storage/internal/relay"
)

// Location is an opened storage location: a bucket and a key prefix in it.
type Location struct {
	// Bucket is the whole bucket (not narrowed to Prefix): checkpoints
	// reference files of other jobs of the same bucket by relative paths,
	// so ckpt works with keys from the bucket's root, built by package
	// metadata from Prefix. For local files the bucket is rooted at the
	// filesystem root. The caller owns it and should Close it (or the
	// Location) when done.
	Bucket *blob.Bucket
	// Prefix is the path inside the bucket, cleaned, without leading or
	// trailing "/", "" for the bucket root. For file locations it is the
	// absolute directory, with symbolic links resolved, without its leading
	// "/".
	Prefix string
	// Display is the location as given (or, for a plain path, the absolute
	// path) with credentials removed by Redact. Use it in every message.
	Display string
	// Scheme is one of "file", "mem", "s3", "gs" or "azblob".
	Scheme string
	// Local is the absolute directory of a file location, "" otherwise.
	Local string
}

// Narrow returns a view of the bucket whose keys are relative to the
// location (Prefix applied). Closing it closes the location's bucket.
func (l *Location) Narrow() *blob.Bucket {
	var d driver.Bucket = &relay.Bucket{Inner: l.Bucket}
	if l.Prefix != "" {
		d = driver.NewPrefixedBucket(d, l.Prefix+"/")
	}
	return blob.NewBucket(d)
}

// SameBucket reports whether o is in the same bucket as l (same scheme,
// bucket and driver parameters), so that objects can be copied server-side
// and referenced by relative paths. Every local path is in the one file
// bucket.
func (l *Location) SameBucket(o *Location) bool {
	if l.Scheme != o.Scheme {
		return false
	}
	if l.Scheme == SchemeFile {
		return true
	}
	return bucketID(l.Display) == bucketID(o.Display)
}

// bucketID is a display location without its path: scheme, bucket, query.
func bucketID(display string) string {
	base, query, _ := strings.Cut(display, "?")
	scheme, rest, _ := strings.Cut(base, "://")
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host + "?" + query
}

// String returns l.Display.
func (l *Location) String() string { return l.Display }

// Close closes l.Bucket (and so every view from Narrow). For mem locations the shared data stays in the
// registry (see ResetMem).
func (l *Location) Close() error { return l.Bucket.Close() }

// Schemes accepted by Open.
const (
	SchemeFile  = "file"
	SchemeMem   = "mem"
	SchemeS3    = "s3"
	SchemeGCS   = "gs"
	SchemeAzure = "azblob"
)

const schemesHint = "(use file://, mem://, s3://, gs://, azblob:// or a local path)"

// urlLikeRE tells URLs from local paths: anything starting "scheme://".
var urlLikeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*://`)

// Open parses location and returns the Location it names. It accepts
//
//   - file:///abs/path (host empty or "localhost", no query parameters);
//   - a plain local path, relative (to the working directory) or absolute;
//   - mem://name/prefix: an in-process bucket shared by every Open of the
//     same name in this process (see ResetMem);
//   - s3://bucket/prefix?region=…&endpoint=…&use_path_style=…&disable_https=…
//   - gs://bucket/prefix (STORAGE_EMULATOR_HOST is honoured);
//   - azblob://container/prefix?protocol=…&domain=…&localemu=…
//
// The path after the bucket becomes the prefix (cleaned); the query string is
// passed unchanged to gocloud's URL opener for that scheme, which documents
// the parameters it accepts. The "prefix" and "key" parameters are refused
// (put the prefix in the path), and so is userinfo: credentials come from
// each driver's usual environment variables (AWS_ACCESS_KEY_ID,
// AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS, …).
//
// Local files are served by this package's own driver: the bucket is rooted
// at the filesystem root and the prefix is the location directory with the
// symbolic links in the path given to Open resolved. The directory need not
// exist (the first write creates it with mode 0755, and reads or lists of a
// missing directory find nothing). Keys must satisfy CheckKey. Symbolic
// links met below the resolved path are not objects: List skips them, reads
// report not found, and writes through them fail.
//
// The bucket retries transient failures by DefaultRetryPolicy (see
// WithRetry).
//
// Open makes no network calls of its own (drivers may look up credentials);
// use Location.Check to test reachability. Every error wraps ErrBadLocation,
// is one line long and names the location through Redact.
func Open(ctx context.Context, location string) (*Location, error) {
	l, err := open(ctx, location)
	if err != nil {
		return nil, err
	}
	l.Bucket = WithRetry(l.Bucket, DefaultRetryPolicy())
	return l, nil
}

func open(ctx context.Context, location string) (*Location, error) {
	if strings.TrimSpace(location) == "" {
		return nil, badLocation(nil, "storage: empty location %s", schemesHint)
	}
	if !urlLikeRE.MatchString(location) {
		return openLocalPath(location)
	}
	display := Redact(location)
	u, err := url.Parse(location)
	if err != nil {
		reason := "not a valid URL"
		var ue *url.Error
		// The parser's reason may quote part of a malformed userinfo; only
		// use it when there is none.
		if errors.As(err, &ue) && !strings.Contains(strings.SplitN(location, "?", 2)[0], "@") {
			reason = ue.Err.Error()
		}
		return nil, badLocation(nil, "storage: malformed location %q: %s", display, reason)
	}
	scheme := u.Scheme // lower-cased by url.Parse
	switch scheme {
	case SchemeFile, SchemeMem, SchemeS3, SchemeGCS, SchemeAzure:
	default:
		return nil, badLocation(nil, "storage: unsupported scheme %q in %q %s", scheme, display, schemesHint)
	}
	if u.User != nil {
		return nil, badLocation(nil, "storage: location %q carries credentials; remove them and use the environment (for example AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY)", display)
	}
	if u.Fragment != "" || strings.Contains(location, "#") {
		return nil, badLocation(nil, "storage: location %q has a fragment (#…), which means nothing here", display)
	}
	switch scheme {
	case SchemeFile:
		if u.Host != "" && u.Host != "localhost" {
			return nil, badLocation(nil, "storage: file location %q names host %q (use file:///absolute/path)", display, u.Host)
		}
		if u.RawQuery != "" {
			return nil, badLocation(nil, "storage: file location %q takes no query parameters", display)
		}
		if u.Path == "" {
			return nil, badLocation(nil, "storage: file location %q has no path (use file:///absolute/path)", display)
		}
		return openFile(filepath.Clean(filepath.FromSlash(u.Path)), display), nil
	case SchemeMem:
		if u.RawQuery != "" {
			return nil, badLocation(nil, "storage: mem location %q takes no query parameters", display)
		}
		prefix := cleanPrefix(u.Path)
		return &Location{
			Bucket:  openMem(u.Host),
			Prefix:  prefix,
			Display: display,
			Scheme:  scheme,
		}, nil
	}
	return openCloud(ctx, u, display)
}

func openLocalPath(p string) (*Location, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, badLocation(err, "storage: resolving local path %q: %s", Redact(p), oneLine(Redact(err.Error())))
	}
	return openFile(abs, Redact(abs)), nil
}

func openFile(dir, display string) *Location {
	real := resolveExisting(dir)
	return &Location{
		Bucket:  openFileBucket(string(filepath.Separator), strings.Trim(filepath.ToSlash(real), "/")),
		Prefix:  strings.Trim(filepath.ToSlash(real), "/"),
		Display: display,
		Scheme:  SchemeFile,
		Local:   real,
	}
}

// resolveExisting resolves the symbolic links of the longest existing
// ancestor of the absolute path dir and appends the rest.
func resolveExisting(dir string) string {
	rest := ""
	for cur := dir; ; {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(real, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return dir
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func openCloud(ctx context.Context, u *url.URL, display string) (*Location, error) {
	if u.Host == "" {
		what := "bucket"
		if u.Scheme == SchemeAzure {
			what = "container"
		}
		return nil, badLocation(nil, "storage: missing %s name in %q", what, display)
	}
	q := u.Query()
	for _, p := range []string{"prefix", "key"} {
		if q.Has(p) {
			return nil, badLocation(nil, "storage: query parameter %q in %q is not supported (put the prefix in the path)", p, display)
		}
	}
	// The opener sees only the bucket and the driver's parameters.
	bu := &url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}
	b, err := newMux().OpenBucketURL(ctx, bu)
	if err != nil {
		return nil, badLocation(err, "storage: opening %q: %s", display, oneLine(Redact(err.Error())))
	}
	if u.Scheme == SchemeAzure {
		b = newUploadOnlyBucket(b) // see azure.go
	}
	prefix := cleanPrefix(u.Path)
	return &Location{
		Bucket:  b,
		Prefix:  prefix,
		Display: display,
		Scheme:  u.Scheme,
	}, nil
}

// newMux returns a URL mux for the cloud schemes only: local files and mem
// buckets are opened by this package. Each Open builds its own so that no
// opener state is shared between calls.
func newMux() *blob.URLMux {
	mux := new(blob.URLMux)
	// s3blob.URLOpener keeps per-URL options in itself; use a fresh one.
	mux.RegisterBucket(SchemeS3, openerFunc(func(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
		return (&s3blob.URLOpener{}).OpenBucketURL(ctx, u)
	}))
	// gcsblob and azureblob resolve credentials from the environment in
	// unexported lazy openers registered on gocloud's default mux; forward
	// exactly these schemes to them.
	forward := openerFunc(func(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
		return blob.DefaultURLMux().OpenBucketURL(ctx, u)
	})
	mux.RegisterBucket(SchemeGCS, forward)
	mux.RegisterBucket(SchemeAzure, forward)
	return mux
}

type openerFunc func(context.Context, *url.URL) (*blob.Bucket, error)

func (f openerFunc) OpenBucketURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	return f(ctx, u)
}

// cleanPrefix turns a URL path into a prefix without leading or trailing "/".
func cleanPrefix(p string) string {
	return strings.Trim(path.Clean("/"+p), "/")
}

// locationError is an error naming a location: its message is already
// redacted and on one line, and it wraps a sentinel and, possibly, a cause.
type locationError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *locationError) Error() string { return e.msg }

func (e *locationError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.sentinel}
	}
	return []error{e.sentinel, e.cause}
}

func badLocation(cause error, format string, args ...any) error {
	return &locationError{msg: fmt.Sprintf(format, args...), sentinel: ErrBadLocation, cause: cause}
}

// oneLine collapses runs of white space (including newlines) into single
// spaces and shortens very long texts.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const limit = 300
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
