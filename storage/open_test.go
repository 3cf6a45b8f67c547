package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/storage"
)

func TestOpen(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "us-east-1") // keep s3 config loading local
	for _, tc := range []struct {
		in                             string
		scheme, prefix, local, display string
	}{
		{"file:///tmp/x/y", "file", "tmp/x/y", "/tmp/x/y", "file:///tmp/x/y"},
		{"file://localhost/tmp/x/", "file", "tmp/x", "/tmp/x", "file://localhost/tmp/x/"},
		{"file:///tmp/a/../b", "file", "tmp/b", "/tmp/b", "file:///tmp/a/../b"},
		{"file:///", "file", "", "/", "file:///"},
		{"/abs/dir/../dir2", "file", "abs/dir2", "/abs/dir2", "/abs/dir2"},
		{"rel/store", "file", strings.TrimPrefix(filepath.Join(wd, "rel/store"), "/"), filepath.Join(wd, "rel/store"), filepath.Join(wd, "rel/store")},
		{"mem://open-test/some//prefix/", "mem", "some/prefix", "", "mem://open-test/some//prefix/"},
		{"mem://open-test", "mem", "", "", "mem://open-test"},
		{"s3://bucket/a/b?region=eu-west-1", "s3", "a/b", "", "s3://bucket/a/b?region=eu-west-1"},
		{"s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=true&disable_https=true&kmskeyid=k1", "s3", "", "", "s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=true&disable_https=true&kmskeyid=REDACTED"},
		{"S3://bucket/p", "s3", "p", "", "S3://bucket/p"},
	} {
		loc, err := storage.Open(t.Context(), tc.in)
		if err != nil {
			t.Errorf("Open(%q): %v", tc.in, err)
			continue
		}
		if loc.Scheme != tc.scheme || loc.Prefix != tc.prefix || loc.Local != tc.local || loc.Display != tc.display {
			t.Errorf("Open(%q) = {Scheme %q, Prefix %q, Local %q, Display %q}, want {%q, %q, %q, %q}",
				tc.in, loc.Scheme, loc.Prefix, loc.Local, loc.Display, tc.scheme, tc.prefix, tc.local, tc.display)
		}
		if loc.String() != loc.Display {
			t.Errorf("String() = %q, want Display", loc.String())
		}
		loc.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	for _, tc := range []struct{ in, want string }{
		{"", "storage: empty location"},
		{"   ", "storage: empty location"},
		{"ftp://host/x", `storage: unsupported scheme "ftp" in "ftp://host/x" (use file://, mem://, s3://, gs://, azblob:// or a local path)`},
		{"s3://", `storage: missing bucket name in "s3://"`},
		{"s3:///prefix", `storage: missing bucket name in "s3:///prefix"`},
		{"azblob:///p", `storage: missing container name in "azblob:///p"`},
		{"file://host/x", `storage: file location "file://host/x" names host "host"`},
		{"file:///x?y=1", `storage: file location "file:///x?y=1" takes no query parameters`},
		{"mem://x?y=1", `storage: mem location "mem://x?y=1" takes no query parameters`},
		{"s3://b/p?prefix=x", `storage: query parameter "prefix" in "s3://b/p?prefix=x" is not supported`},
		{"s3://b/p#frag", `storage: location "s3://b/p#frag" has a fragment`},
		{"s3://b/%zz", `storage: malformed location "s3://b/%zz": invalid URL escape "%zz"`},
		{"s3://AKIA:secret@bucket/p", `storage: location "s3://AKIA:xxxxx@bucket/p" carries credentials`},
		{"s3://b/p?bogus=1", `storage: opening "s3://b/p?bogus=1": `},
	} {
		loc, err := storage.Open(t.Context(), tc.in)
		if err == nil {
			loc.Close()
			t.Errorf("Open(%q) succeeded, want error", tc.in)
			continue
		}
		if !errors.Is(err, storage.ErrBadLocation) {
			t.Errorf("Open(%q) error %v does not wrap ErrBadLocation", tc.in, err)
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Open(%q) error\n got %q\nwant prefix %q", tc.in, err, tc.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q) error is not one line: %q", tc.in, err)
		}
	}
}

// TestSecretsNeverInErrors checks that no error from Open or Check for a
// location carrying a secret shows the secret.
func TestSecretsNeverInErrors(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-under-test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	const secret = "hunter2"
	for _, loc := range []string{
		"ftp://user:hunter2@host/x",
		"s3://AKIA:hunter2@bucket/p",
		"s3://user:hun/ter2hunter2@host/p",
		"s3://b/p?bogus=1&token=hunter2",
		"s3://b/p?sig=hunter2",
		"s3://b/%zz?sig=hunter2",
		"s3://b/p#x?password=hunter2",
		"mem://m/p?secret=hunter2",
		"file:///tmp/x?sas=hunter2",
		"azblob://c/p?sig=hunter2",
		"s3://b/p?private_key_path=hunter2",
		"gs://b/p?token=hunter2",
	} {
		if strings.HasPrefix(loc, "gs:") && os.Getenv("STORAGE_EMULATOR_HOST") == "" {
			continue // opening gs without an emulator looks for cloud credentials
		}
		l, err := storage.Open(t.Context(), loc)
		if err == nil {
			l.Close()
			t.Errorf("Open(%q) succeeded, want an error", storage.Redact(loc))
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open error shows the secret: %q", err)
		}
	}

	// A location that opens but cannot be reached: Check's error names it,
	// redacted, on one line.
	l, err := storage.Open(t.Context(), "s3://bucket/p?endpoint=http://127.0.0.1:1&use_path_style=true&kmskeyid=hunter2")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = l.Check(ctx)
	if err == nil {
		t.Fatal("Check of an unreachable endpoint succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, secret) || strings.Contains(msg, "\n") {
		t.Errorf("Check error shows the secret or spans lines: %q", msg)
	}
	if !strings.HasPrefix(msg, `storage: checking "s3://bucket/p?endpoint=http://127.0.0.1:1&use_path_style=true&kmskeyid=REDACTED": `) {
		t.Errorf("Check error does not name the redacted location: %q", msg)
	}
	if !strings.Contains(msg, "cannot reach") && !strings.Contains(msg, "timed out") {
		t.Errorf("Check error does not say the service is unreachable: %q", msg)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	for _, url := range []string{
		"mem://check-test/p",
		dir,                                 // exists, empty
		filepath.Join(dir, "not/yet/there"), // created on first write
	} {
		l, err := storage.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Check(t.Context()); err != nil {
			t.Errorf("Check(%s): %v", url, err)
		}
		l.Close()
	}
	// A path through a regular file cannot hold a store.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := storage.Open(t.Context(), filepath.Join(file, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.Check(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), `storage: checking "`+filepath.Join(file, "sub")+`": `) {
		t.Fatalf("Check of a path under a file: got %v", err)
	}
}

func TestResetMem(t *testing.T) {
	l := storagetestOpen(t, "mem://reset-test")
	put(t, l.Bucket, "k", []byte("v"))
	storage.ResetMem()
	l2 := storagetestOpen(t, "mem://reset-test")
	if ok, err := l2.Bucket.Exists(t.Context(), "k"); err != nil || ok {
		t.Fatalf("after ResetMem: exists=%v err=%v, want an empty bucket", ok, err)
	}
	if _, err := l.Bucket.ReadAll(t.Context(), "k"); err == nil {
		t.Fatal("a bucket opened before ResetMem still works")
	}
}

// storagetestOpen opens url for a test of the storage layer itself: its
// Bucket is narrowed to the location, so keys are relative to it.
func storagetestOpen(t *testing.T, url string) *storage.Location {
	t.Helper()
	l, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	n := *l
	n.Bucket = l.Narrow()
	t.Cleanup(func() { n.Bucket.Close() })
	return &n
}
