package restore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
)

// BenchmarkRestore restores one checkpoint of a store of CKPT_BENCH_STORE_MB
// megabytes (default 1024; 1 KiB incompressible values, Pebble's default
// table sizes) kept in a local file location:
//
//   - file-location: every file read from the location, hashed, written and
//     fsynced, then the store opened read-only;
//   - file-location-check: the same with Options.Check (every level read);
//   - cp-r, cp-r-sync: `cp -r` of the same files (the local copy's store
//     directory), without and with a `sync` of the target filesystem, for
//     reference;
//   - local-copy: from a complete local copy (`create --local-dir`): every
//     file is hashed, sstables are hard-linked and the few small files
//     copied.
//
// Run: CKPT_BENCH_STORE_MB=1024 go test ./restore/ -run '^$' -bench Restore -benchtime 3x -timeout 60m
func BenchmarkRestore(b *testing.B) {
	ctx := context.Background()
	mb := 1024
	if s := os.Getenv("CKPT_BENCH_STORE_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("CKPT_BENCH_STORE_MB=%q", s)
		}
		mb = n
	}
	work := b.TempDir()
	db := filepath.Join(work, "db")
	const valueSize = 1024
	spec := testpebble.Spec{Keys: mb << 20 / (valueSize + 40), ValueSize: valueSize, Seed: 1, TargetFileSize: testpebble.PebbleDefaults}
	if err := testpebble.Create(testpebble.V2, db, spec); err != nil {
		b.Fatal(err)
	}
	loc, err := storage.Open(ctx, "file:///")
	if err != nil {
		b.Fatal(err)
	}
	defer loc.Close()
	job := metadata.Job{Prefix: strings.TrimPrefix(filepath.Join(work, "job"), "/")}
	local := filepath.Join(work, "local")
	s, err := checkpoint.OpenDir("default", db)
	if err != nil {
		b.Fatal(err)
	}
	res, err := checkpoint.Create(ctx, loc.Bucket, job, []*checkpoint.Store{s}, checkpoint.Options{LocalDir: local})
	s.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("store: %d files, %d MB", res.TotalFiles, res.TotalBytes>>20)
	copyDir := filepath.Join(local, metadata.CheckpointDirName(res.CheckpointID), "default")

	each := func(b *testing.B, f func(target string)) {
		b.SetBytes(res.TotalBytes)
		for i := 0; i < b.N; i++ {
			target := filepath.Join(work, "target")
			f(target)
			b.StopTimer()
			if err := os.RemoveAll(target); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	restoreWith := func(o restore.Options) func(string) {
		return func(target string) {
			o.Target = target
			p, err := restore.NewPlan(ctx, loc.Bucket, job, res.CheckpointID, o)
			if err != nil {
				b.Fatal(err)
			}
			r, err := p.Execute(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if o.LocalDir != "" && r.BytesFromRemote != 0 {
				b.Fatalf("downloaded %d bytes with a complete local copy", r.BytesFromRemote)
			}
		}
	}
	cp := func(sync bool) func(string) {
		return func(target string) {
			if out, err := exec.Command("cp", "-r", copyDir, target).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v %s", err, out)
			}
			if sync {
				if out, err := exec.Command("sync", "-f", target).CombinedOutput(); err != nil {
					b.Fatalf("sync: %v %s", err, out)
				}
			}
		}
	}
	b.Run("file-location", func(b *testing.B) { each(b, restoreWith(restore.Options{})) })
	b.Run("file-location-check", func(b *testing.B) { each(b, restoreWith(restore.Options{Check: true})) })
	b.Run("cp-r", func(b *testing.B) { each(b, cp(false)) })
	b.Run("cp-r-sync", func(b *testing.B) { each(b, cp(true)) })
	b.Run("local-copy", func(b *testing.B) { each(b, restoreWith(restore.Options{LocalDir: local})) })
}
