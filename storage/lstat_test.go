//go:build linux

package storage

import (
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/gcerrors"
)

// The one-call resolution (openat2) and the component-by-component check
// must agree on every kind of path.
func TestLstatKeyFastPathAgreesWithTheWalk(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a/b"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644))
	must(os.Symlink("b", filepath.Join(dir, "a/link")))
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "a/b/abs")))
	must(os.Symlink(outside, filepath.Join(dir, "out")))
	must(os.Symlink("f", filepath.Join(dir, "a/b/rel")))

	root, err := os.OpenRoot(dir)
	must(err)
	defer root.Close()
	b := &fileBucket{dir: dir}
	describe := func(key string) string {
		fi, err := lstatKey(root, key)
		if err != nil {
			return "error " + b.ErrorCode(err).String()
		}
		return fi.Mode().Type().String() + " " + fi.Name()
	}
	for key, want := range map[string]string{
		"":           "d--------- .",
		"a/b/f":      "---------- f",
		"a/b":        "d--------- b",
		"a/link/f":   "error " + gcerrors.NotFound.String(),
		"a/link":     "error " + gcerrors.NotFound.String(),
		"a/b/abs":    "error " + gcerrors.NotFound.String(),
		"a/b/rel":    "error " + gcerrors.NotFound.String(),
		"out/secret": "error " + gcerrors.NotFound.String(),
		"a/b/f/x":    "error " + gcerrors.NotFound.String(),
		"a/missing":  "error " + gcerrors.NotFound.String(),
	} {
		fast := describe(key)
		openat2Missing.Store(true)
		slow := describe(key)
		openat2Missing.Store(false)
		if fast != slow || fast != want {
			t.Errorf("%q: openat2 says %q, the walk says %q, want %q", key, fast, slow, want)
		}
	}
}
