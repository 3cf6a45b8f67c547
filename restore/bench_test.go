package restore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/benchutil"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// benchEnv is what BenchmarkRestore reads, built once per process and
// removed by TestMain.
type benchEnv struct {
	work    string // temporary directory holding everything
	loc     *storage.Location
	job     metadata.Job // the job in the local file location
	local   string       // its complete local copy (create --local-dir)
	copyDir string       // the local copy's store directory, for cp -r
	id      uint64
	bytes   int64
	files   int
	// s3 and s3Job hold the same store's checkpoint on S3 (nil without
	// CKPT_TEST_S3_URL); s3Keys are its objects.
	s3     *storage.Location
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
	if bench.loc != nil {
		bench.loc.Close()
	}
	if bench.work != "" {
		if err := os.RemoveAll(bench.work); err != nil {
			fmt.Fprintln(os.Stderr, "removing benchmark directory:", err)
		}
	}
	os.Exit(code)
}

// BenchmarkRestore restores one checkpoint of a store of CKPT_BENCH_STORE_MB
// megabytes (default 1024; 1 KiB incompressible values, Pebble's default
// table sizes), built once per process:
//
//   - file-location: from a local file location: every file read, hashed,
//     written and fsynced, then the store opened read-only;
//   - file-location-check: the same with Options.Check (every level read);
//   - cp-r, cp-r-sync: `cp -r` of the same files (the local copy's store
//     directory), without and with a `sync` of the target filesystem, for
//     reference;
//   - local-copy: from a complete local copy (`create --local-dir`): every
//     file is hashed, sstables are hard-linked and the few small files
//     copied;
//
// and, when CKPT_TEST_S3_URL names an S3 location (scripts/test-services
// starts MinIO), from the same checkpoint on S3:
//
//   - s3-get: reference: every object of the checkpoint read with 8
//     concurrent GETs into io.Discard (no hashing, no writing);
//   - s3-parallel-1: restore with Options.Parallel 1 (`--parallel 1`);
//   - s3-parallel-8: restore with the default, 8.
//
// Before each timed iteration sync(2) flushes the dirty pages of earlier
// iterations and the local source (the job for file-location, the local
// copy otherwise) is read once, so every iteration starts with it in the
// page cache and nothing dirty (S3: only the flush). cpu-s/op is the user
// plus system CPU time of the timed region, of this process and of its
// children (cp, sync); server-cpu-s/op that of the S3 server, when it is a
// MinIO process on this machine. Targets are beside the
// sources, on the same filesystem, and removed after each iteration. The
// sub-benchmarks run in the order above CKPT_BENCH_ROUNDS times (default 1;
// the second round's names end in #01, and so on), so that their figures
// alternate (-count would repeat each one back to back). MB/s is 10^6
// bytes of the checkpoint's files per second, for every row.
//
// Run:
//
//	CKPT_BENCH_ROUNDS=3 CKPT_BENCH_STORE_MB=1024 go test ./restore/ -run '^$' -bench Restore -benchtime 1x -timeout 60m
//	scripts/test-services -- env CKPT_BENCH_ROUNDS=3 CKPT_BENCH_STORE_MB=1024 go test ./restore/ -run '^$' -bench Restore -benchtime 1x -timeout 90m
func BenchmarkRestore(b *testing.B) {
	env := benchSetup(b)
	ctx := context.Background()

	// each times f; warm is the local source to read before (none for
	// S3, whose server's CPU time is reported instead).
	each := func(b *testing.B, warm string, f func(target string)) {
		b.SetBytes(env.bytes)
		var cpu, server time.Duration
		var serverOK bool
		b.StopTimer()
		b.ResetTimer()
		for range b.N {
			target := filepath.Join(env.work, "target")
			benchutil.Settle(b, warm)
			c0 := benchutil.CPUTime(b)
			s0, ok0 := benchutil.ServerCPU()
			b.StartTimer()
			f(target)
			b.StopTimer()
			cpu += benchutil.CPUTime(b) - c0
			s1, ok1 := benchutil.ServerCPU()
			server += s1 - s0
			serverOK = ok0 && ok1 && warm == ""
			if err := os.RemoveAll(target); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		if serverOK {
			b.ReportMetric(server.Seconds()/float64(b.N), "server-cpu-s/op")
		}
	}
	restoreWith := func(bk *blob.Bucket, job metadata.Job, id uint64, o restore.Options) func(string) {
		return func(target string) {
			o.Target = target
			p, err := restore.NewPlan(ctx, bk, job, id, o)
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
			if out, err := exec.Command("cp", "-r", env.copyDir, target).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v %s", err, out)
			}
			if sync {
				if out, err := exec.Command("sync", "-f", target).CombinedOutput(); err != nil {
					b.Fatalf("sync: %v %s", err, out)
				}
			}
		}
	}
	jobDir := "/" + env.job.Prefix
	fileRestore := func(o restore.Options) func(string) { return restoreWith(env.loc.Bucket, env.job, env.id, o) }
	s3Restore := func(o restore.Options) func(string) { return restoreWith(env.s3.Bucket, env.s3Job, env.s3ID, o) }
	for range benchutil.Rounds(b) {
		b.Run("file-location", func(b *testing.B) { each(b, jobDir, fileRestore(restore.Options{})) })
		b.Run("file-location-check", func(b *testing.B) { each(b, jobDir, fileRestore(restore.Options{Check: true})) })
		b.Run("cp-r", func(b *testing.B) { each(b, env.local, cp(false)) })
		b.Run("cp-r-sync", func(b *testing.B) { each(b, env.local, cp(true)) })
		b.Run("local-copy", func(b *testing.B) { each(b, env.local, fileRestore(restore.Options{LocalDir: env.local})) })
		if env.s3 == nil {
			continue
		}
		b.Run("s3-get", func(b *testing.B) {
			each(b, "", func(string) {
				if err := getAll(ctx, env.s3.Bucket, env.s3Keys, restore.DefaultParallel); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("s3-parallel-1", func(b *testing.B) { each(b, "", s3Restore(restore.Options{Parallel: 1})) })
		b.Run("s3-parallel-8", func(b *testing.B) { each(b, "", s3Restore(restore.Options{})) })
	}
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
	ctx := context.Background()
	mb := 1024
	if s := os.Getenv("CKPT_BENCH_STORE_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("CKPT_BENCH_STORE_MB=%q: want a positive number of MiB", s)
		}
		mb = n
	}
	work, err := os.MkdirTemp("", "ckpt-restore-bench-")
	if err != nil {
		return err
	}
	bench.work = work
	start := time.Now()
	db := filepath.Join(work, "db")
	const valueSize = 1024
	spec := testpebble.Spec{Keys: mb << 20 / (valueSize + 40), ValueSize: valueSize, Seed: 1, TargetFileSize: testpebble.PebbleDefaults}
	if err := testpebble.Create(testpebble.V2, db, spec); err != nil {
		return err
	}
	bench.loc, err = storage.Open(ctx, "file:///")
	if err != nil {
		return err
	}
	bench.job = metadata.Job{Prefix: strings.TrimPrefix(filepath.Join(work, "job"), "/")}
	bench.local = filepath.Join(work, "local")
	s, err := checkpoint.OpenDir("default", db)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := checkpoint.Create(ctx, bench.loc.Bucket, bench.job, []*checkpoint.Store{s}, checkpoint.Options{LocalDir: bench.local})
	if err != nil {
		return err
	}
	bench.id, bench.bytes, bench.files = res.CheckpointID, res.TotalBytes, res.TotalFiles
	bench.copyDir = filepath.Join(bench.local, metadata.CheckpointDirName(res.CheckpointID), "default")
	b.Logf("store: %d files, %d bytes; built in %v", res.TotalFiles, res.TotalBytes, time.Since(start).Round(time.Second))

	if u := os.Getenv(storagetest.EnvS3); u != "" {
		start := time.Now()
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		be := storagetest.Backend{Name: "s3", URL: u}.Sub("ckpt-bench-restore-" + hex.EncodeToString(rnd[:]))
		if bench.s3, err = storage.Open(ctx, be.URL); err != nil {
			return err
		}
		bench.s3Job = metadata.Job{Prefix: bench.s3.Prefix + "/job"}
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
		b.Logf("uploaded to %s in %v", be.Name, time.Since(start).Round(time.Second))
	}
	return os.RemoveAll(db)
}

// getAll reads every key into io.Discard, par at a time.
func getAll(ctx context.Context, bk *blob.Bucket, keys []string, par int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, k := range keys {
		g.Go(func() error {
			r, err := bk.NewReader(gctx, k, nil)
			if err != nil {
				return err
			}
			defer r.Close()
			_, err = io.Copy(io.Discard, r)
			return err
		})
	}
	return g.Wait()
}
