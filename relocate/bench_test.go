package relocate_test

// Benchmarks of relocation on local files, side by side with `cp -r` of the
// same job directory:
//
//	cd /work/main && CKPT_BENCH_STORE_MB=1024 go test ./relocate/ -run '^$' -bench . -benchtime 3x -count 1 -timeout 60m
//
// One Pebble v2 store of about CKPT_BENCH_STORE_MB MiB (default 1024;
// incompressible 1 KiB values, Pebble's default sstable sizes) is built
// once per process under $TMPDIR and checkpointed (checkpoint.Create) into
// a job directory; TestMain removes everything. Each iteration relocates
// that checkpoint into a fresh job directory beside it (same filesystem),
// removed afterwards. Before each timed iteration sync(2) flushes the
// dirty pages of earlier iterations and the source job is read once (warm
// page cache, for ckpt and cp alike).
//
//   - ServerSide: source and destination in the one file bucket, as `ckpt
//     relocate` does for two local paths: the local-file driver's Copy
//     (copy_file_range into a temporary file, fsync, rename, directory
//     fsync).
//   - Streamed: two bucket values, as between two services: every object
//     is read, hashed (SHA-256, checked against _metadata) and written
//     (temporary file, fsync, rename).
//   - ReadData: ServerSide with --read-data (source read and hashed before,
//     destination read and hashed after).
//   - CopyBaseline: `cp -r` of the job directory, no fsync;
//     CopyBaselineSync adds sync(2) inside the timed region.
//
// Both sides include the planning and verification reads (listings) that
// relocation does. MB/s is 10^6 bytes of the checkpoint's files per second.

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
)

type benchEnv struct {
	root  string // temporary directory holding everything
	job   string // the source job directory
	id    uint64
	bytes int64 // bytes of the checkpoint's files
	files int
	err   error
}

var (
	benchOnce sync.Once
	bench     benchEnv
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.root != "" {
		if err := os.RemoveAll(bench.root); err != nil {
			fmt.Fprintln(os.Stderr, "removing benchmark directory:", err)
		}
	}
	os.Exit(code)
}

func benchSetup(b *testing.B) *benchEnv {
	b.Helper()
	benchOnce.Do(func() { bench.err = buildBench(b) })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return &bench
}

func buildBench(b *testing.B) error {
	mb := 1024
	if v := os.Getenv("CKPT_BENCH_STORE_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("CKPT_BENCH_STORE_MB=%q: want a positive number of MiB", v)
		}
		mb = n
	}
	root, err := os.MkdirTemp("", "ckpt-relocate-bench-")
	if err != nil {
		return err
	}
	bench.root = root
	store := filepath.Join(root, "store")
	const valueSize, keyBytes = 1024, 86
	spec := testpebble.Spec{Keys: int(int64(mb) << 20 / (valueSize + keyBytes)), ValueSize: valueSize, Seed: 1, TargetFileSize: testpebble.PebbleDefaults}
	start := time.Now()
	if err := testpebble.Create(testpebble.V2, store, spec); err != nil {
		return fmt.Errorf("building the benchmark store: %w", err)
	}
	ctx := context.Background()
	loc, err := storage.Open(ctx, "file:///")
	if err != nil {
		return err
	}
	defer loc.Close()
	bench.job = filepath.Join(root, "job")
	s, err := checkpoint.OpenDir("default", store)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := checkpoint.Create(ctx, loc.Bucket, jobOf(bench.job), []*checkpoint.Store{s}, checkpoint.Options{})
	if err != nil {
		return err
	}
	bench.id, bench.bytes, bench.files = res.CheckpointID, res.TotalBytes, res.TotalFiles
	if err := os.RemoveAll(store); err != nil {
		return err
	}
	b.Logf("checkpoint: %d files, %d bytes; built in %v", bench.files, bench.bytes, time.Since(start).Round(time.Second))
	return nil
}

func jobOf(dir string) metadata.Job {
	return metadata.Job{Prefix: strings.TrimPrefix(filepath.ToSlash(dir), "/")}
}

// settle flushes dirty pages and reads every file under dir once.
func settle(b *testing.B, dir string) {
	b.Helper()
	syscall.Sync()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

func reportRate(b *testing.B, n int64) {
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/1e6/perOp, "MB/s")
}

func benchRelocate(b *testing.B, streamed, readData bool) {
	env := benchSetup(b)
	ctx := context.Background()
	src, err := storage.Open(ctx, "file:///")
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var dstBucket *blob.Bucket = src.Bucket
	if streamed {
		dst, err := storage.Open(ctx, "file:///")
		if err != nil {
			b.Fatal(err)
		}
		defer dst.Close()
		dstBucket = dst.Bucket
	}
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(env.root, fmt.Sprintf("dst-%d", i))
		settle(b, env.job)
		b.StartTimer()
		res := mustRelocate(b, relocate.Source{Bucket: src.Bucket, Job: jobOf(env.job), IDs: []uint64{env.id}},
			relocate.Destination{Bucket: dstBucket, Job: jobOf(dir)}, relocate.Options{ReadData: readData})
		b.StopTimer()
		if res.BytesCopied != env.bytes || res.ServerSide == streamed {
			b.Fatalf("relocated %+v, want %d bytes copied", res, env.bytes)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, env.bytes)
}

// BenchmarkRelocateServerSide relocates between two local paths as `ckpt
// relocate` does (one file bucket: the driver's Copy).
func BenchmarkRelocateServerSide(b *testing.B) { benchRelocate(b, false, false) }

// BenchmarkRelocateStreamed relocates through the streaming path (read,
// SHA-256, write), as between two services.
func BenchmarkRelocateStreamed(b *testing.B) { benchRelocate(b, true, false) }

// BenchmarkRelocateReadData is ServerSide with --read-data.
func BenchmarkRelocateReadData(b *testing.B) { benchRelocate(b, false, true) }

// BenchmarkCopyBaseline times `cp -r` of the source job directory.
func BenchmarkCopyBaseline(b *testing.B) { benchCopy(b, false) }

// BenchmarkCopyBaselineSync times `cp -r` followed by sync(2).
func BenchmarkCopyBaselineSync(b *testing.B) { benchCopy(b, true) }

func benchCopy(b *testing.B, durable bool) {
	env := benchSetup(b)
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(env.root, fmt.Sprintf("copy-%d", i))
		settle(b, env.job)
		b.StartTimer()
		out, err := exec.Command("cp", "-r", env.job, dir).CombinedOutput()
		if err == nil && durable {
			syscall.Sync()
		}
		b.StopTimer()
		if err != nil {
			b.Fatalf("cp -r: %v: %s", err, out)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, env.bytes)
}
