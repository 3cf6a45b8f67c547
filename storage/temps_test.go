//go:build unix

package storage_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/storage"
)

func TestSweepTempsRemovesOnlyOldTemporaryFilesInside(t *testing.T) {
	base := t.TempDir()
	job := filepath.Join(base, "job")
	outside := t.TempDir()
	old := time.Now().Add(-24 * time.Hour)
	write := func(p string, mod time.Time) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("12345"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(job, "shared", ".ckpt-tmp-a"), old)
	write(filepath.Join(job, "chk-1", ".ckpt-tmp-b"), old)
	write(filepath.Join(job, "chk-1", ".ckpt-tmp-fresh"), time.Now()) // a write in progress
	write(filepath.Join(job, "chk-1", "000001.sst"), old)             // an object
	write(filepath.Join(base, "other", ".ckpt-tmp-c"), old)           // outside the job
	write(filepath.Join(outside, ".ckpt-tmp-target"), old)            // outside the location
	if err := os.Symlink(filepath.Join(outside, ".ckpt-tmp-target"), filepath.Join(job, ".ckpt-tmp-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(job, "linked-dir")); err != nil {
		t.Fatal(err)
	}

	l, err := storage.Open(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := time.Now().Add(-time.Hour)
	n, size, err := storage.SweepTemps(t.Context(), l, l.Prefix, before, true)
	if err != nil || n != 2 || size != 10 {
		t.Fatalf("dry run: %d files, %d bytes, %v; want 2, 10", n, size, err)
	}
	if _, err := os.Stat(filepath.Join(job, "shared", ".ckpt-tmp-a")); err != nil {
		t.Fatalf("dry run removed a file: %v", err)
	}
	n, _, err = storage.SweepTemps(t.Context(), l, l.Prefix, before, false)
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d files, %v", n, err)
	}
	for p, want := range map[string]bool{
		filepath.Join(job, "shared", ".ckpt-tmp-a"):    false,
		filepath.Join(job, "chk-1", ".ckpt-tmp-b"):     false,
		filepath.Join(job, "chk-1", ".ckpt-tmp-fresh"): true,
		filepath.Join(job, "chk-1", "000001.sst"):      true,
		filepath.Join(base, "other", ".ckpt-tmp-c"):    true,
		filepath.Join(outside, ".ckpt-tmp-target"):     true,
		filepath.Join(job, ".ckpt-tmp-link"):           true,
	} {
		_, err := os.Lstat(p)
		if exists := err == nil; exists != want {
			t.Errorf("%s: exists %v, want %v", p, exists, want)
		}
	}
	if _, _, err := storage.SweepTemps(t.Context(), l, "elsewhere", before, true); err == nil {
		t.Fatal("a prefix outside the location was swept")
	}
	mem, err := storage.Open(t.Context(), "mem://sweep/job")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if n, _, err := storage.SweepTemps(t.Context(), mem, mem.Prefix, before, false); n != 0 || err != nil {
		t.Fatalf("mem: %d, %v", n, err)
	}
}
