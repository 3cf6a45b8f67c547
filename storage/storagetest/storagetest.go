package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/storage"
)

// Backend is one storage location to run a test against.
type Backend struct {
	// Name is "mem", "file", "s3", "gcs" or "azure"; use it as a subtest name.
	Name string
	// URL is a location for storage.Open, unique to this Backends call.
	URL string
}

// Sub returns b with elem appended to the URL's path (query kept), for a
// test that wants several independent locations inside one backend.
func (b Backend) Sub(elem string) Backend {
	u, err := url.Parse(b.URL)
	if err != nil {
		panic("storagetest: invalid backend URL " + storage.Redact(b.URL)) // Backends only builds valid ones
	}
	u.Path = path.Join("/", u.Path, elem)
	u.RawPath = ""
	return Backend{Name: b.Name, URL: u.String()}
}

// Environment variables read by Backends.
const (
	EnvS3      = "CKPT_TEST_S3_URL"
	EnvGCS     = "CKPT_TEST_GCS_URL"
	EnvAzure   = "CKPT_TEST_AZURE_URL"
	EnvRequire = "CKPT_REQUIRE_SERVICES"
)

// Backends returns the backends to test against: always "mem" (a fresh
// mem://<unique> name) and "file" (a fresh t.TempDir()), then "s3", "gcs" and
// "azure" for each of CKPT_TEST_S3_URL, CKPT_TEST_GCS_URL and
// CKPT_TEST_AZURE_URL that is set, each with a unique path appended. A
// missing service variable is logged and skipped, or fails the test when
// CKPT_REQUIRE_SERVICES=1. Objects written under the service prefixes are
// deleted when the test ends.
func Backends(t testing.TB) []Backend {
	t.Helper()
	id := uniqueName(t)
	bs := []Backend{
		{Name: "mem", URL: "mem://" + id},
		{Name: "file", URL: (&url.URL{Scheme: "file", Path: t.TempDir()}).String()},
	}
	required := os.Getenv(EnvRequire) == "1"
	for _, s := range []struct{ name, env string }{{"s3", EnvS3}, {"gcs", EnvGCS}, {"azure", EnvAzure}} {
		base := os.Getenv(s.env)
		if base == "" {
			if required {
				t.Fatalf("%s not set but %s=1", s.env, EnvRequire)
			}
			t.Logf("%s not set; skipping the %s backend", s.env, s.name)
			continue
		}
		if _, err := url.Parse(base); err != nil {
			t.Fatalf("%s is not a valid URL: %s", s.env, storage.Redact(base))
		}
		b := Backend{Name: s.name, URL: base}.Sub(id)
		t.Cleanup(func() { empty(t, b.URL) })
		bs = append(bs, b)
	}
	return bs
}

// Open opens url with storage.Open, fails the test on error and closes the
// location when the test ends.
func Open(t testing.TB, url string) *storage.Location {
	t.Helper()
	loc, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = loc.Close() })
	return loc
}

// OpenNarrow opens url and returns its bucket narrowed to the location
// (keys relative to it), closed when the test ends.
func OpenNarrow(t testing.TB, url string) *blob.Bucket {
	t.Helper()
	loc, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	b := loc.Narrow()
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// uniqueName is a name safe as a mem host, a directory and an object prefix.
func uniqueName(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case b.Len() >= 40:
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return "ckpt-test-" + strings.Trim(b.String(), "-") + "-" + hex.EncodeToString(rnd[:])
}

// empty deletes every object under url; failures are only logged.
func empty(t testing.TB, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loc, err := storage.Open(ctx, url)
	if err != nil {
		t.Logf("cleaning up %s: %v", storage.Redact(url), err) // Open errors are redacted
		return
	}
	defer loc.Close()
	it := loc.Bucket.List(&blob.ListOptions{})
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Logf("cleaning up %s: %s", loc.Display, storage.Redact(err.Error()))
			}
			return
		}
		if err := loc.Bucket.Delete(ctx, obj.Key); err != nil && !storage.IsNotFound(err) {
			t.Logf("cleaning up %s: %s", loc.Display, storage.Redact(err.Error()))
		}
	}
}
