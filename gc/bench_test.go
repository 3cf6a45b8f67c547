package gc_test

// Benchmarks of gc on a job of 100 checkpoints and about 100,000 objects
// (issue 6), side by side with merely listing the same objects.
// docs/benchmarks.md records the figures:
//
//	cd /work/main && CKPT_BENCH_ROUNDS=3 go test ./gc/ -run '^$' -bench GC/file -benchtime 1x -timeout 120m
//	scripts/test-services -- env CKPT_BENCH_ROUNDS=2 CKPT_BENCH_GC_FILES=2000 go test ./gc/ -run '^$' -bench GC/s3 -benchtime 1x -timeout 180m
//
// The job (internal/testutil.WriteSynthJob) is synthetic but valid: an incremental chain of checkpoints of one
// store "default", each referencing CKPT_BENCH_GC_FILES shared sstables
// (default: two shapes, 2000 and 10000) of which CKPT_BENCH_GC_NEW (1000)
// are new since the previous checkpoint (random ones replaced, as
// compactions would), plus 5 private files (MANIFEST, OPTIONS, WAL, two
// marker files), its `_pending` reservation (kept after the commit, as
// checkpoint.Create does) and its `_metadata` (metadata.Encode). Every
// object holds a few bytes, and the sizes and SHA-256 digests in the
// `_metadata` are those of the bytes written. With 100 checkpoints
// (CKPT_BENCH_GC_CHECKPOINTS) that is 101,700 objects and 200,000 file
// references for files=2000, 109,700 objects and 1,000,000 references for
// files=10000.
//
// The job is built once per process and shape on a local file location
// (storage.Open of a temporary directory, written directly with
// os.WriteFile, which the file driver lists as objects) and, when
// CKPT_TEST_S3_URL is set, on S3 (written with 32 concurrent PUTs).
// Sub-benchmarks, run in this order CKPT_BENCH_ROUNDS times (default 1;
// the second round's names end in #01, and so on), so that their figures
// alternate (-count would repeat each one back to back instead):
//
//   - walk (local files only): one filepath.WalkDir of the job directory
//     with every file's size, the least a listing can cost there;
//   - list: one paginated bucket.List of the job directory, counting the
//     objects (what any gc has to read at least);
//   - plan: gc.NewPlan with retain 10 (a dry run: lists, reads every
//     `_metadata`, computes what to delete);
//   - gc: NewPlan then Execute with retain 10, on a fresh copy of the job
//     made outside the timed region (`cp -r` and sync(2) for files; a
//     rebuild under a new prefix for S3), removed afterwards.
//
// MinAge is gc's default (6 h) with the clock 24 h ahead, so every object
// is old enough. objects/s is the job's objects divided by the time, for
// every row, so rows compare directly. peak-heap-MB is the largest
// "/memory/classes/heap/objects:bytes" (live and not yet collected heap
// objects) and peak-live-MB the largest "/gc/heap/live:bytes" (heap
// marked live by a completed GC cycle), both sampled every millisecond
// from runtime/metrics during the timed region after a runtime.GC. cpu-s/op
// is this process's user plus system CPU time in the timed region (the
// heap sampler's included; it is negligible), server-cpu-s/op the S3
// server's when it is a MinIO process on this machine.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/internal/benchutil"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// gcRetain is the retention of the gc sub-benchmarks.
const gcRetain = 10

// gcEnv is one job built for the benchmarks.
type gcEnv struct {
	remote bool // on S3
	loc    *storage.Location
	job    metadata.Job
	shape  testutil.SynthShape
	stats  testutil.SynthStats
	// fresh makes a copy of the job for a destructive iteration, and
	// remove removes such a copy (both untimed).
	fresh  func(b *testing.B, i int) metadata.Job
	remove func(b *testing.B, job metadata.Job)
}

var (
	gcEnvMu  sync.Mutex
	gcEnvs   = map[string]*gcEnv{}
	gcClean  []func() // run by TestMain
	gcRounds = map[string]int{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(gcClean) - 1; i >= 0; i-- {
		gcClean[i]()
	}
	os.Exit(code)
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func BenchmarkGC(b *testing.B) {
	checkpoints := envInt(b, "CKPT_BENCH_GC_CHECKPOINTS", 100)
	churn := envInt(b, "CKPT_BENCH_GC_NEW", 1000)
	rounds := envInt(b, "CKPT_BENCH_ROUNDS", 1)
	files := []int{2000, 10000}
	if v := os.Getenv("CKPT_BENCH_GC_FILES"); v != "" {
		files = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				b.Fatalf("CKPT_BENCH_GC_FILES=%q: want positive numbers separated by commas", v)
			}
			files = append(files, n)
		}
	}
	if checkpoints <= gcRetain {
		b.Fatalf("CKPT_BENCH_GC_CHECKPOINTS=%d: want more than the retention, %d", checkpoints, gcRetain)
	}
	backends := []string{"file"}
	if os.Getenv(storagetest.EnvS3) != "" {
		backends = append(backends, "s3")
	}
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			for _, f := range files {
				if churn > f {
					b.Fatalf("CKPT_BENCH_GC_NEW=%d is more than the %d files of a checkpoint", churn, f)
				}
				shape := testutil.SynthShape{Checkpoints: checkpoints, Files: f, Churn: churn}
				b.Run(fmt.Sprintf("files=%d", f), func(b *testing.B) {
					env := gcSetup(b, backend, shape)
					for range rounds {
						if !env.remote {
							b.Run("walk", func(b *testing.B) { benchWalk(b, env) })
						}
						b.Run("list", func(b *testing.B) { benchList(b, env) })
						b.Run("plan", func(b *testing.B) { benchPlan(b, env) })
						b.Run("gc", func(b *testing.B) { benchExecute(b, env) })
					}
				})
			}
		})
	}
}

// gcOptions are the options of every gc the benchmarks run.
func gcOptions() gc.Options {
	now := time.Now().Add(24 * time.Hour)
	return gc.Options{Policy: gc.Policy{Retain: gcRetain}, MinAge: gc.DefaultMinAge, Now: func() time.Time { return now }}
}

func benchList(b *testing.B, env *gcEnv) {
	ctx := context.Background()
	var peak heapPeak
	m := cpuMeter{remote: env.remote}
	b.ReportAllocs()
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		var n int
		var size int64
		var err error
		timed(b, &m, &peak, func() { n, size, err = listAll(ctx, env.loc.Bucket, env.job.Dir()) })
		if err != nil {
			b.Fatal(err)
		}
		if n != env.stats.Objects || size != env.stats.Bytes {
			b.Fatalf("listed %d objects, %d bytes; want %d, %d", n, size, env.stats.Objects, env.stats.Bytes)
		}
	}
	reportGC(b, env, &peak)
	m.report(b)
}

// benchWalk reads the job directory once with filepath.WalkDir, with each
// file's size: what a listing of a local file location costs at least.
func benchWalk(b *testing.B, env *gcEnv) {
	var peak heapPeak
	m := cpuMeter{}
	b.ReportAllocs()
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		var n int
		var size int64
		var err error
		timed(b, &m, &peak, func() {
			err = filepath.WalkDir("/"+env.job.Prefix, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				n++
				size += fi.Size()
				return nil
			})
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != env.stats.Objects || size != env.stats.Bytes {
			b.Fatalf("walked %d files, %d bytes; want %d, %d", n, size, env.stats.Objects, env.stats.Bytes)
		}
	}
	reportGC(b, env, &peak)
	m.report(b)
}

func benchPlan(b *testing.B, env *gcEnv) {
	ctx := context.Background()
	var peak heapPeak
	m := cpuMeter{remote: env.remote}
	b.ReportAllocs()
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		var p *gc.Plan
		var err error
		timed(b, &m, &peak, func() { p, err = gc.NewPlan(ctx, env.loc.Bucket, []metadata.Job{env.job}, gcOptions()) })
		if err != nil {
			b.Fatal(err)
		}
		if r := p.Result(); r.FilesDeleted != env.stats.Deletable(gcRetain) {
			b.Fatalf("plan deletes %d objects, want %d", r.FilesDeleted, env.stats.Deletable(gcRetain))
		}
	}
	reportGC(b, env, &peak)
	m.report(b)
	b.ReportMetric(float64(env.stats.Deletable(gcRetain)), "deleted/op")
}

func benchExecute(b *testing.B, env *gcEnv) {
	ctx := context.Background()
	var peak heapPeak
	m := cpuMeter{remote: env.remote}
	b.ReportAllocs()
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		job := env.fresh(b, i)
		var r gc.Result
		var err error
		timed(b, &m, &peak, func() {
			var p *gc.Plan
			if p, err = gc.NewPlan(ctx, env.loc.Bucket, []metadata.Job{job}, gcOptions()); err == nil {
				r, err = p.Execute(ctx, nil)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		if r.FilesDeleted != env.stats.Deletable(gcRetain) || len(r.Failed) > 0 {
			b.Fatalf("gc deleted %d objects (%d failed), want %d", r.FilesDeleted, len(r.Failed), env.stats.Deletable(gcRetain))
		}
		n, _, err := listAll(ctx, env.loc.Bucket, job.Dir())
		if err != nil {
			b.Fatal(err)
		}
		if want := env.stats.Objects - env.stats.Deletable(gcRetain); n != want {
			b.Fatalf("%d objects left after gc, want %d", n, want)
		}
		env.remove(b, job)
	}
	reportGC(b, env, &peak)
	m.report(b)
	b.ReportMetric(float64(env.stats.Deletable(gcRetain)), "deleted/op")
}

// timed runs f as the timed region of one iteration, after a GC, with the
// heap sampled and the CPU counted.
func timed(b *testing.B, m *cpuMeter, peak *heapPeak, f func()) {
	settleGC()
	stop := peak.watch()
	m.start(b)
	b.StartTimer()
	f()
	b.StopTimer()
	m.stop(b)
	stop()
}

func reportGC(b *testing.B, env *gcEnv, peak *heapPeak) {
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(env.stats.Objects)/perOp, "objects/s")
	b.ReportMetric(float64(peak.heap)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peak.live)/(1<<20), "peak-live-MB")
}

// cpuMeter adds up the CPU time of timed regions: this process's and the
// S3 server's (see serverCPU).
type cpuMeter struct {
	remote       bool // report the server's CPU time too
	self, server time.Duration
	s0, v0       time.Duration
	serverOK     bool
	n            int
}

func (m *cpuMeter) start(b *testing.B) {
	var ok bool
	m.s0 = selfCPU(b)
	m.v0, ok = benchutil.ServerCPU()
	m.serverOK = ok && (m.n == 0 || m.serverOK)
}

func (m *cpuMeter) stop(b *testing.B) {
	m.self += selfCPU(b) - m.s0
	v, ok := benchutil.ServerCPU()
	m.server += v - m.v0
	m.serverOK = m.serverOK && ok
	m.n++
}

func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(m.self.Seconds()/float64(b.N), "cpu-s/op")
	if m.remote && m.serverOK {
		b.ReportMetric(m.server.Seconds()/float64(b.N), "server-cpu-s/op")
	}
}

func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settleGC flushes dirty pages and collects garbage, so every timed region
// starts from the same state.
func settleGC() {
	syscall.Sync()
	runtime.GC()
}

// heapPeak records the largest heap sizes seen by watch.
type heapPeak struct {
	heap, live uint64
}

// watch samples the heap every millisecond until the returned function is
// called (which waits for the sampler to stop).
func (p *heapPeak) watch() (stop func()) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	read := func() {
		metrics.Read(samples)
		p.heap = max(p.heap, samples[0].Value.Uint64())
		p.live = max(p.live, samples[1].Value.Uint64())
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				read()
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// listAll lists every object under prefix in one paginated listing.
func listAll(ctx context.Context, bk *blob.Bucket, prefix string) (int, int64, error) {
	var n int
	var size int64
	it := bk.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, size, nil
		}
		if err != nil {
			return n, size, err
		}
		n++
		size += o.Size
	}
}

// gcSetup returns the job of this shape on backend, building it the first
// time.
func gcSetup(b *testing.B, backend string, shape testutil.SynthShape) *gcEnv {
	b.Helper()
	gcEnvMu.Lock()
	defer gcEnvMu.Unlock()
	name := fmt.Sprintf("%s/%d-%d-%d", backend, shape.Checkpoints, shape.Files, shape.Churn)
	if env := gcEnvs[name]; env != nil {
		return env
	}
	start := time.Now()
	var env *gcEnv
	switch backend {
	case "file":
		env = setupFile(b, shape)
	case "s3":
		env = setupS3(b, shape)
	}
	st := env.stats
	b.Logf("%s: %d checkpoints x %d shared files (%d new each): %d objects, %d bytes, %d file references, %d bytes of _metadata; gc with retain %d deletes %d; built in %v",
		backend, shape.Checkpoints, shape.Files, shape.Churn, st.Objects, st.Bytes, st.Refs, st.MetaBytes, gcRetain, st.Deletable(gcRetain),
		time.Since(start).Round(time.Millisecond))
	gcEnvs[name] = env
	return env
}

func setupFile(b *testing.B, shape testutil.SynthShape) *gcEnv {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "ckpt-gc-bench-")
	if err != nil {
		b.Fatal(err)
	}
	gcClean = append(gcClean, func() { _ = os.RemoveAll(root) })
	loc, err := storage.Open(ctx, root)
	if err != nil {
		b.Fatal(err)
	}
	gcClean = append(gcClean, func() { _ = loc.Close() })
	base := fmt.Sprintf("%d-%d-%d", shape.Checkpoints, shape.Files, shape.Churn)
	job := metadata.Job{Prefix: loc.Prefix + "/" + base + "/job"}
	dirs := sync.Map{}
	put := func(_ context.Context, key string, data []byte) error {
		p := "/" + key
		dir := filepath.Dir(p)
		if _, ok := dirs.Load(dir); !ok {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			dirs.Store(dir, true)
		}
		return os.WriteFile(p, data, 0o644)
	}
	st, err := testutil.WriteSynthJob(ctx, job, shape, put, 4)
	if err != nil {
		b.Fatal(err)
	}
	jobDir := "/" + job.Prefix
	return &gcEnv{
		loc: loc, job: job, shape: shape, stats: st,
		fresh: func(b *testing.B, i int) metadata.Job {
			dir := filepath.Join(filepath.Dir(filepath.Dir(jobDir)), fmt.Sprintf("%s-run-%d", base, i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if out, err := exec.Command("cp", "-r", jobDir, filepath.Join(dir, "job")).CombinedOutput(); err != nil {
				b.Fatalf("cp -r: %v: %s", err, out)
			}
			return metadata.Job{Prefix: strings.TrimPrefix(dir, "/") + "/job"}
		},
		remove: func(b *testing.B, job metadata.Job) {
			if err := os.RemoveAll(filepath.Dir("/" + job.Prefix)); err != nil {
				b.Fatal(err)
			}
		},
	}
}

func setupS3(b *testing.B, shape testutil.SynthShape) *gcEnv {
	ctx := context.Background()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	be := storagetest.Backend{Name: "s3", URL: os.Getenv(storagetest.EnvS3)}.Sub("ckpt-bench-gc-" + hex.EncodeToString(rnd[:]))
	loc, err := storage.Open(ctx, be.URL)
	if err != nil {
		b.Fatal(err)
	}
	gcClean = append(gcClean, func() { _ = loc.Close() })
	gcClean = append(gcClean, func() {
		// Remove everything the benchmarks left (the pristine jobs).
		if err := benchutil.DeletePrefix(context.Background(), loc.Bucket, loc.Prefix+"/"); err != nil {
			fmt.Fprintln(os.Stderr, "removing the benchmark objects:", err)
		}
	})
	base := fmt.Sprintf("%d-%d-%d", shape.Checkpoints, shape.Files, shape.Churn)
	const par = 32
	put := func(ctx context.Context, key string, data []byte) error {
		return loc.Bucket.WriteAll(ctx, key, data, nil)
	}
	job := metadata.Job{Prefix: loc.Prefix + "/" + base + "/job"}
	st, err := testutil.WriteSynthJob(ctx, job, shape, put, par)
	if err != nil {
		b.Fatal(err)
	}
	return &gcEnv{
		remote: true, loc: loc, job: job, shape: shape, stats: st,
		fresh: func(b *testing.B, i int) metadata.Job {
			gcEnvMu.Lock()
			gcRounds[base]++
			n := gcRounds[base]
			gcEnvMu.Unlock()
			job := metadata.Job{Prefix: fmt.Sprintf("%s/%s-run-%d/job", loc.Prefix, base, n)}
			if _, err := testutil.WriteSynthJob(ctx, job, shape, put, par); err != nil {
				b.Fatal(err)
			}
			return job
		},
		remove: func(b *testing.B, job metadata.Job) {
			if err := benchutil.DeletePrefix(ctx, loc.Bucket, job.Dir()); err != nil {
				b.Fatal(err)
			}
		},
	}
}
