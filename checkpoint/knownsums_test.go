package checkpoint

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
)

// TestKnownSumsFromTheLocalCopy checks which digests a create with
// LocalDir takes from the previous local copy instead of re-reading the
// file: only hard-linked, unmodified shared files.
func TestKnownSumsFromTheLocalCopy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, testpebble.Spec{Keys: 20000, ValueSize: 100, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	// Files written well before the local copy's _metadata, whatever the
	// timestamp granularity.
	old := time.Now().Add(-time.Hour)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(dir, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
	local := filepath.Join(t.TempDir(), "local")
	open := func() *Store {
		s, err := OpenDir("default", dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if got := knownSums(local, []*Store{open()}); len(got) != 0 {
		t.Fatalf("known sums without a local copy: %v", got)
	}
	s := open()
	b := memblob.OpenBucket(nil)
	res, err := Create(context.Background(), b, metadata.Job{Prefix: "j"}, []*Store{s}, Options{LocalDir: local})
	if err != nil {
		t.Fatal(err)
	}
	c, err := metadata.Read(context.Background(), b, res.MetadataKey)
	if err != nil {
		t.Fatal(err)
	}

	known := knownSums(local, []*Store{s})["default"]
	var shared []SourceFile
	for _, f := range s.Files {
		if f.Shared {
			shared = append(shared, f)
		} else if _, ok := known[f.Name]; ok {
			t.Errorf("private file %s taken from the local copy", f.Name)
		}
	}
	if len(shared) < 3 {
		t.Fatalf("store has %d shared files, the test needs 3", len(shared))
	}
	for _, f := range c.Stores[0].Files {
		if sum, ok := known[f.Name]; ok && sum != f.SHA256 {
			t.Errorf("%s: known sum %s, checkpoint says %s", f.Name, sum, f.SHA256)
		}
	}
	if len(known) != len(shared) {
		t.Fatalf("%d of %d shared files known", len(known), len(shared))
	}

	// Modified since the copy (mtime later than its _metadata): hashed.
	touched := s.Path(shared[0])
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(touched, later, later); err != nil {
		t.Fatal(err)
	}
	// Replaced by a copy (another inode, same bytes): hashed.
	replaced := s.Path(shared[1])
	copyOver(t, replaced)
	known = knownSums(local, []*Store{s})["default"]
	for _, f := range shared[:2] {
		if _, ok := known[f.Name]; ok {
			t.Errorf("%s: digest taken from the local copy though the file is not the one copied", f.Name)
		}
	}
	if _, ok := known[shared[2].Name]; !ok {
		t.Errorf("%s: untouched file not taken from the local copy", shared[2].Name)
	}

	// An unreadable local copy: nothing known.
	if err := os.WriteFile(filepath.Join(res.LocalCopy, metadata.MetadataName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := knownSums(local, []*Store{s}); len(got) != 0 {
		t.Fatalf("known sums from a corrupt local copy: %v", got)
	}
}

// copyOver replaces the file at path with a copy of itself (a new inode).
func copyOver(t *testing.T, path string) {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp := path + ".copy"
	out, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	old := time.Now().Add(-time.Hour)
	os.Chtimes(tmp, old, old)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
