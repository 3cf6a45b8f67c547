//go:build unix

package storage_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/storage"
)

func TestSyncBatchDefersDirectorySyncs(t *testing.T) {
	base := t.TempDir()
	if real, err := filepath.EvalSymlinks(base); err == nil {
		base = real
	}
	loc := filepath.Join(base, "job")
	b := openDir(t, loc).Bucket
	ctx, sb := storage.WithSyncBatch(t.Context())

	// The first write creates job/, job/shared/ and job/shared/x/: each
	// new directory and the one it was created in must be synced.
	for _, k := range []string{"shared/x/a", "shared/x/b", "chk-1/_metadata"} {
		if err := b.WriteAll(ctx, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{base, loc, loc + "/chk-1", loc + "/shared", loc + "/shared/x"}
	if got := sb.Pending(); !slices.Equal(got, want) {
		t.Fatalf("pending after writes = %q, want %q", got, want)
	}
	for _, k := range []string{"shared/x/a", "shared/x/b", "chk-1/_metadata"} {
		got, err := b.ReadAll(ctx, k)
		if err != nil || !bytes.Equal(got, []byte(k)) {
			t.Fatalf("reading %s under a batch: %q, %v", k, got, err)
		}
	}
	if err := sb.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sb.Len(); n != 0 {
		t.Fatalf("%d directories pending after Sync", n)
	}

	// Deleting both files of shared/x prunes it: the directory the pruning
	// stopped at is recorded, and one that is gone by Sync is skipped.
	if err := b.Delete(ctx, "shared/x/a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "shared/x/b"); err != nil {
		t.Fatal(err)
	}
	if got := sb.Pending(); !slices.Equal(got, []string{loc, loc + "/shared/x"}) {
		t.Fatalf("pending after deletes = %q", got)
	}
	if err := sb.Sync(ctx); err != nil {
		t.Fatalf("sync after pruning: %v", err)
	}

	// Without a batch nothing is recorded.
	if err := b.WriteAll(t.Context(), "chk-2/_metadata", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if n := sb.Len(); n != 0 {
		t.Fatalf("a write without the batch's context was recorded (%d)", n)
	}
}

func TestSyncBatchReportsAWrittenDirectoryThatVanished(t *testing.T) {
	dir := t.TempDir()
	b := openDir(t, dir).Bucket
	ctx, sb := storage.WithSyncBatch(t.Context())
	if err := b.WriteAll(ctx, "d/obj", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if err := sb.Sync(ctx); err == nil {
		t.Fatal("Sync succeeded although a written object's directory is gone")
	}
	if sb.Len() != 1 {
		t.Fatalf("failed directory not kept for a retry: %d pending", sb.Len())
	}
}

func TestSyncBatchInclude(t *testing.T) {
	base := t.TempDir()
	if real, err := filepath.EvalSymlinks(base); err == nil {
		base = real
	}
	b := openDir(t, base).Bucket
	if err := b.WriteAll(t.Context(), "shared/x/a", []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	ctx, sb := storage.WithSyncBatch(t.Context())
	if _, err := b.Attributes(ctx, "shared/x/a"); err != nil {
		t.Fatal(err)
	}
	if n := sb.Len(); n != 0 {
		t.Fatalf("a plain Attributes call under a batch recorded %d directories", n)
	}
	if err := sb.Include(t.Context(), b, "shared/x/a"); err != nil {
		t.Fatal(err)
	}
	want := []string{base, base + "/shared", base + "/shared/x"}
	if got := sb.Pending(); !slices.Equal(got, want) {
		t.Fatalf("pending after Include = %q, want %q", got, want)
	}
	if err := sb.Include(t.Context(), b, "shared/x/missing"); err == nil {
		t.Fatal("Include of a missing object succeeded")
	}
	if err := sb.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}

	mem := memblob.OpenBucket(nil)
	defer mem.Close()
	if err := sb.Include(t.Context(), mem, "no/such/object"); err != nil {
		t.Fatalf("Include on a memory bucket: %v", err)
	}
}
