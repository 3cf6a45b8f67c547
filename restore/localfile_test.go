package restore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
)

// From a local file location, files are copied inside the kernel and
// hashed by reading the target back: the result is the checkpoint, and a
// damaged or truncated source file is still refused.
func TestRestoreFromLocalFilesCopiesInKernelAndVerifies(t *testing.T) {
	dir := t.TempDir()
	loc, err := storage.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, testpebble.V2, false)
	f.b = loc.Narrow()
	t.Cleanup(func() { f.b.Close() })
	f.take(t)
	c := f.meta(t, 1)

	target := filepath.Join(t.TempDir(), "r")
	r := mustRestore(t, f, 1, restore.Options{Target: target})
	if r.FilesFromRemote != r.TotalFiles {
		t.Fatalf("%+v", r)
	}
	checkStoreDir(t, target, c, "default", f.digests[1]["default"])

	var ssts []string
	for _, x := range c.Stores[0].Files {
		if strings.HasSuffix(x.Name, ".sst") && x.Size > 1024 {
			p, err := filepath.Glob(filepath.Join(dir, "jobs/a/shared", strings.TrimSuffix(x.Name, ".sst")+"-*.sst"))
			if err != nil || len(p) != 1 {
				t.Fatalf("shared file of %s: %v %v", x.Name, p, err)
			}
			ssts = append(ssts, p[0])
		}
	}
	if len(ssts) < 2 {
		t.Fatalf("need 2 sstables, have %d", len(ssts))
	}
	for _, tc := range []struct {
		name, reason string
		damage       func(path string) error
	}{
		{"flipped byte", "checksum", func(p string) error {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			data[len(data)/2] ^= 1
			return os.WriteFile(p, data, 0o644)
		}},
		{"truncated", "bytes", func(p string) error { return os.Truncate(p, 100) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ssts[0]
			if tc.name == "truncated" {
				p = ssts[1]
			}
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(p, orig, 0o644)
			if err := tc.damage(p); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "r")
			_, _, err = f.restore(t, 1, restore.Options{Target: target})
			if !errors.Is(err, restore.ErrVerifyFailed) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("restore of a %s source file: %v", tc.name, err)
			}
			if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a failed restore left %s: %v", target, err)
			}
		})
	}
}
