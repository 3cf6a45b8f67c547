package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/storage"
)

// FuzzRedact: Redact never panics, is idempotent, and removes the value of
// any secret-looking query parameter.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"s3://AKIA:secret@bucket/p?region=x",
		"azblob://c/p?sig=abc&sv=2020",
		"gs://b/p?token=t#frag",
		"AccountKey=abc;AccountName=x",
		"/plain/path",
		"s3://b?endpoint=http://u:p@127.0.0.1:9000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := storage.Redact(s)
		if again := storage.Redact(r); again != r {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, r, again)
		}
		if strings.Contains(s, "?sig=SECRETVALUE") && strings.Contains(r, "SECRETVALUE") {
			t.Fatalf("secret kept: %q", r)
		}
	})
}

// FuzzOpen: parsing a location never panics, and every error is one line
// that does not repeat a secret given in the location. Cloud schemes are
// skipped (opening them looks up credentials in the environment).
func FuzzOpen(f *testing.F) {
	for _, s := range []string{"mem://a/b", "file:///tmp/x", "./rel", "ftp://x", "file://host/x", "mem://a?x=1", "", "%zz://", "file:///tmp/x#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		low := strings.ToLower(s)
		for _, p := range []string{"s3:", "gs:", "azblob:"} {
			if strings.HasPrefix(strings.TrimSpace(low), p) {
				return
			}
		}
		loc, err := storage.Open(context.Background(), s+"?secret=SECRETVALUE")
		if err != nil {
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "SECRETVALUE") {
				t.Fatalf("bad error for %q: %q", s, err)
			}
			return
		}
		_ = loc.Close()
	})
}
