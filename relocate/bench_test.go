package relocate_test

// Benchmarks of relocation, side by side with `cp -r` of the same job
// directory and, on S3, with plain copies of the same objects.
// docs/benchmarks.md records the figures:
//
//	cd /work/main && CKPT_BENCH_ROUNDS=3 CKPT_BENCH_STORE_MB=1024 go test ./relocate/ -run '^$' -bench . -benchtime 1x -timeout 60m
//	scripts/test-services -- env CKPT_BENCH_ROUNDS=3 CKPT_BENCH_STORE_MB=1024 go test ./relocate/ -run '^$' -bench Relocate/s3 -benchtime 1x -timeout 90m
//
// One Pebble v2 store of about CKPT_BENCH_STORE_MB MiB (default 1024;
// incompressible 1 KiB values, Pebble's default sstable sizes) is built
// once per process under $TMPDIR and checkpointed (checkpoint.Create) into
// a job directory and, when CKPT_TEST_S3_URL is set (scripts/test-services
// starts MinIO), into a job on S3; TestMain removes everything. Each
// iteration relocates that checkpoint into a fresh job beside it (same
// filesystem, or same bucket), removed afterwards.
//
// Local files (BenchmarkRelocate/file/…). Before each timed iteration
// sync(2) flushes the dirty pages of earlier iterations and the source job
// is read once (warm page cache, for ckpt and cp alike).
//
//   - server-side: source and destination in the one file bucket, as `ckpt
//     relocate` does for two local paths: the local-file driver's Copy
//     (copy_file_range into a temporary file, fsync, rename, directory
//     fsync).
//   - streamed: two bucket values, as between two services: every object
//     is read, hashed (SHA-256, checked against _metadata) and written
//     (temporary file, fsync, rename).
//   - read-data: server-side with --read-data (source read and hashed before,
//     destination read and hashed after).
//   - cp-r: `cp -r` of the job directory, no fsync; cp-r-sync adds sync(2)
//     inside the timed region.
//
// S3 (BenchmarkRelocate/s3/…), within one bucket:
//
//   - server-side: source and destination the same *blob.Bucket: every
//     object copied with Bucket.Copy (S3 CopyObject), as `ckpt relocate`
//     does within one bucket;
//   - streamed: the destination a second *blob.Bucket opened from the same
//     URL, which forces the streaming path (GET, SHA-256, PUT), as between
//     two buckets or services;
//   - copy-objects: reference: Bucket.Copy of each of the checkpoint's
//     objects into a fresh prefix, 8 at a time (relocate's default
//     parallelism), without planning, reservation, verification or commit.
//
// The sub-benchmarks run in the order above, CKPT_BENCH_ROUNDS times
// (default 1; the second round's names end in #01, and so on), so that
// their figures alternate (-count would repeat each back to back). Both
// ckpt rows include the planning and verification reads (listings) that
// relocation does. MB/s is 10^6 bytes of the checkpoint's files per second.
// cpu-s/op is the user plus system CPU time of the timed region, of this
// process and of its children (cp); server-cpu-s/op that of the S3 server,
// when it is a MinIO process on this machine.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/benchutil"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

type benchEnv struct {
	root  string // temporary directory holding everything
	job   string // the source job directory
	id    uint64
	bytes int64 // bytes of the checkpoint's files
	files int
	// s3 holds the same store's checkpoint s3ID in s3Job (nil without
	// CKPT_TEST_S3_URL); s3Keys are its objects.
	s3     *storage.Location
	s3URL  string
	s3Job  metadata.Job
	s3ID   uint64
	s3Keys []string
	err    error
}

var (
	benchOnce sync.Once
	bench     benchEnv
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.s3 != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := benchutil.DeletePrefix(ctx, bench.s3.Bucket, bench.s3.Prefix+"/"); err != nil {
			fmt.Fprintln(os.Stderr, "removing the benchmark objects:", err)
		}
		cancel()
		bench.s3.Close()
	}
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
	b.Logf("checkpoint: %d files, %d bytes; built in %v", bench.files, bench.bytes, time.Since(start).Round(time.Second))
	if u := os.Getenv(storagetest.EnvS3); u != "" {
		start := time.Now()
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		be := storagetest.Backend{Name: "s3", URL: u}.Sub("ckpt-bench-relocate-" + hex.EncodeToString(rnd[:]))
		if bench.s3, err = storage.Open(ctx, be.URL); err != nil {
			return err
		}
		bench.s3URL = be.URL
		bench.s3Job = metadata.Job{Prefix: bench.s3.Prefix + "/src"}
		r, err := checkpoint.Create(ctx, bench.s3.Bucket, bench.s3Job, []*checkpoint.Store{s}, checkpoint.Options{})
		if err != nil {
			return fmt.Errorf("checkpointing to S3: %w", err)
		}
		bench.s3ID = r.CheckpointID
		c, err := metadata.Read(ctx, bench.s3.Bucket, bench.s3Job.MetadataKey(r.CheckpointID))
		if err != nil {
			return err
		}
		dir := bench.s3Job.CheckpointDir(r.CheckpointID)
		for _, st := range c.Stores {
			for _, f := range st.Files {
				key, err := metadata.Resolve(dir, f.Path)
				if err != nil {
					return err
				}
				bench.s3Keys = append(bench.s3Keys, key)
			}
		}
		b.Logf("checkpointed to %s in %v", be.Name, time.Since(start).Round(time.Second))
	}
	return os.RemoveAll(store)
}

func jobOf(dir string) metadata.Job {
	return metadata.Job{Prefix: strings.TrimPrefix(filepath.ToSlash(dir), "/")}
}

func reportRate(b *testing.B, n int64) {
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/1e6/perOp, "MB/s")
}

func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkRelocate relocates one checkpoint (see the comment at the top of
// this file).
func BenchmarkRelocate(b *testing.B) {
	env := benchSetup(b)
	rounds := benchutil.Rounds(b)
	b.Run("file", func(b *testing.B) {
		for range rounds {
			b.Run("server-side", func(b *testing.B) { benchRelocateFile(b, env, false, false) })
			b.Run("streamed", func(b *testing.B) { benchRelocateFile(b, env, true, false) })
			b.Run("read-data", func(b *testing.B) { benchRelocateFile(b, env, false, true) })
			b.Run("cp-r", func(b *testing.B) { benchCopy(b, env, false) })
			b.Run("cp-r-sync", func(b *testing.B) { benchCopy(b, env, true) })
		}
	})
	if env.s3 == nil {
		return
	}
	b.Run("s3", func(b *testing.B) {
		for range rounds {
			b.Run("server-side", func(b *testing.B) { benchRelocateS3(b, env, false) })
			b.Run("streamed", func(b *testing.B) { benchRelocateS3(b, env, true) })
			b.Run("copy-objects", func(b *testing.B) { benchCopyObjects(b, env) })
		}
	})
}

var dstSeq int // names destinations uniquely across rounds

func benchRelocateFile(b *testing.B, env *benchEnv, streamed, readData bool) {
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
	var cpu time.Duration
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		dstSeq++
		dir := filepath.Join(env.root, fmt.Sprintf("dst-%d", dstSeq))
		benchutil.Settle(b, env.job)
		c0 := benchutil.CPUTime(b)
		b.StartTimer()
		res := mustRelocate(b, relocate.Source{Bucket: src.Bucket, Job: jobOf(env.job), IDs: []uint64{env.id}},
			relocate.Destination{Bucket: dstBucket, Job: jobOf(dir)}, relocate.Options{ReadData: readData})
		b.StopTimer()
		cpu += benchutil.CPUTime(b) - c0
		if res.BytesCopied != env.bytes || res.ServerSide == streamed {
			b.Fatalf("relocated %+v, want %d bytes copied", res, env.bytes)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, env.bytes)
	reportCPU(b, cpu)
}

func benchCopy(b *testing.B, env *benchEnv, durable bool) {
	var cpu time.Duration
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		dstSeq++
		dir := filepath.Join(env.root, fmt.Sprintf("copy-%d", dstSeq))
		benchutil.Settle(b, env.job)
		c0 := benchutil.CPUTime(b)
		b.StartTimer()
		out, err := exec.Command("cp", "-r", env.job, dir).CombinedOutput()
		if err == nil && durable {
			syscall.Sync()
		}
		b.StopTimer()
		cpu += benchutil.CPUTime(b) - c0
		if err != nil {
			b.Fatalf("cp -r: %v: %s", err, out)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, env.bytes)
	reportCPU(b, cpu)
}

func benchRelocateS3(b *testing.B, env *benchEnv, streamed bool) {
	ctx := context.Background()
	dstBucket := env.s3.Bucket
	if streamed {
		// Same bucket, but another *blob.Bucket value: relocate streams.
		dst, err := storage.Open(ctx, env.s3URL)
		if err != nil {
			b.Fatal(err)
		}
		defer dst.Close()
		dstBucket = dst.Bucket
	}
	var cpu, server time.Duration
	serverOK := true
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		dstSeq++
		job := metadata.Job{Prefix: fmt.Sprintf("%s/dst-%d", env.s3.Prefix, dstSeq)}
		syscall.Sync()
		c0 := benchutil.CPUTime(b)
		s0, ok0 := benchutil.ServerCPU()
		b.StartTimer()
		res := mustRelocate(b, relocate.Source{Bucket: env.s3.Bucket, Job: env.s3Job, IDs: []uint64{env.s3ID}},
			relocate.Destination{Bucket: dstBucket, Job: job}, relocate.Options{})
		b.StopTimer()
		cpu += benchutil.CPUTime(b) - c0
		s1, ok1 := benchutil.ServerCPU()
		server += s1 - s0
		serverOK = serverOK && ok0 && ok1
		if res.BytesCopied != env.bytes || res.ServerSide == streamed {
			b.Fatalf("relocated %+v, want %d bytes copied", res, env.bytes)
		}
		if err := benchutil.DeletePrefix(ctx, env.s3.Bucket, job.Dir()); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, env.bytes)
	reportCPU(b, cpu)
	if serverOK {
		b.ReportMetric(server.Seconds()/float64(b.N), "server-cpu-s/op")
	}
}

func benchCopyObjects(b *testing.B, env *benchEnv) {
	ctx := context.Background()
	bk := env.s3.Bucket
	var cpu, server time.Duration
	serverOK := true
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		dstSeq++
		prefix := fmt.Sprintf("%s/copy-%d/", env.s3.Prefix, dstSeq)
		syscall.Sync()
		c0 := benchutil.CPUTime(b)
		s0, ok0 := benchutil.ServerCPU()
		b.StartTimer()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(relocate.DefaultParallel)
		for i, k := range env.s3Keys {
			g.Go(func() error { return bk.Copy(gctx, fmt.Sprintf("%s%06d", prefix, i), k, nil) })
		}
		err := g.Wait()
		b.StopTimer()
		cpu += benchutil.CPUTime(b) - c0
		s1, ok1 := benchutil.ServerCPU()
		server += s1 - s0
		serverOK = serverOK && ok0 && ok1
		if err != nil {
			b.Fatal(err)
		}
		if err := benchutil.DeletePrefix(ctx, bk, prefix); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, env.bytes)
	reportCPU(b, cpu)
	if serverOK {
		b.ReportMetric(server.Seconds()/float64(b.N), "server-cpu-s/op")
	}
}
