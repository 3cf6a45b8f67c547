package checkpoint_test

// Benchmarks of checkpoint creation, side by side with `cp -r` of the same
// store on the same filesystem. docs/benchmarks.md records the figures:
//
//	cd /work/main && CKPT_BENCH_STORE_MB=1024 go test ./checkpoint/ -run '^$' -bench . -benchtime 3x -count 1 -timeout 60m
//
// One Pebble v2 store of about CKPT_BENCH_STORE_MB MiB (default 1024;
// incompressible random 1 KiB values, Pebble's default sstable sizes,
// compacted into the last level) is built once per process in a temporary
// directory under $TMPDIR, shared by every benchmark and removed by
// TestMain. Every destination is a fresh directory beside it (so on the same
// filesystem), removed after its iteration. Before each timed iteration the
// source is read once (warm page cache, for ckpt and cp alike) and sync(2)
// has flushed the dirty pages of earlier iterations and of the setup, so
// every iteration starts from the same cache state.
//
// The checkpoint destination is the local-file driver of storage.Open (the
// driver `ckpt create` uses for a local path): each object is written to a
// temporary file, fsynced, linked or renamed into place, and its directory
// fsynced. `cp -r` does not fsync; BenchmarkCopyBaselineSync adds a sync(2)
// inside the timed region for the durable comparison.
//
// MB/s is 10^6 bytes of the store's checkpointed files (the files
// checkpoint.OpenDir selects, which `cp -r` also copies) per second, for
// every benchmark, so the rates compare directly. cpu-s/op is the CPU time
// (user + system) of the timed region: this process's for Create, cp's for
// the copies. On a shared machine it is much steadier than wall time.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
)

const (
	benchValueSize = 1024
	// benchKeyBytes approximates the on-disk bytes of one key/value beyond
	// the value (12-byte key, 8-byte trailer, block and index overhead).
	benchKeyBytes = 86
	benchChurn    = 0.05
)

var benchJob = metadata.Job{Prefix: "job"}

// benchEnv is the store every benchmark reads, built once per process.
type benchEnv struct {
	root  string // temporary directory holding everything; removed by TestMain
	store string // the pristine store, never modified
	spec  testpebble.Spec
	bytes int64 // bytes of the files a checkpoint holds
	err   error
}

// incEnv is the state of the incremental benchmarks, built once: a copy of
// the store, checkpointed in full into the base job, then churned.
type incEnv struct {
	store    string // the churned copy
	baseJob  string // a location holding the full checkpoint chk-1 (pre-churn)
	bytes    int64  // bytes of the churned store's checkpointed files
	newSSTs  int64  // bytes of sstables the full checkpoint does not hold
	private  int64  // bytes of the churned store's private (non-shared) files
	newFiles int
	err      error
}

var (
	benchOnce sync.Once
	bench     benchEnv
	incOnce   sync.Once
	inc       incEnv
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

func benchStore(b *testing.B) *benchEnv {
	b.Helper()
	benchOnce.Do(func() { bench.err = buildBenchStore(b) })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return &bench
}

func buildBenchStore(b *testing.B) error {
	mb := 1024
	if v := os.Getenv("CKPT_BENCH_STORE_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("CKPT_BENCH_STORE_MB=%q: want a positive number of MiB", v)
		}
		mb = n
	}
	root, err := os.MkdirTemp("", "ckpt-bench-")
	if err != nil {
		return err
	}
	bench.root = root
	bench.store = filepath.Join(root, "store")
	bench.spec = testpebble.Spec{
		Keys:           int(int64(mb) << 20 / (benchValueSize + benchKeyBytes)),
		ValueSize:      benchValueSize,
		Seed:           1,
		TargetFileSize: testpebble.PebbleDefaults,
	}
	start := time.Now()
	if err := testpebble.Create(testpebble.V2, bench.store, bench.spec); err != nil {
		return fmt.Errorf("building the benchmark store: %w", err)
	}
	files, err := storeFiles(bench.store)
	if err != nil {
		return err
	}
	var ssts int
	for _, f := range files {
		bench.bytes += f.Size
		if f.Shared {
			ssts++
		}
	}
	b.Logf("store: %d keys x %d B values, %d files (%d sstables), %d bytes checkpointed; built in %v",
		bench.spec.Keys, bench.spec.ValueSize, len(files), ssts, bench.bytes, time.Since(start).Round(time.Second))
	return nil
}

func benchInc(b *testing.B) (*benchEnv, *incEnv) {
	b.Helper()
	env := benchStore(b)
	incOnce.Do(func() { inc.err = buildInc(b, env) })
	if inc.err != nil {
		b.Fatal(inc.err)
	}
	return env, &inc
}

func buildInc(b *testing.B, env *benchEnv) error {
	ctx := context.Background()
	inc.store = filepath.Join(env.root, "inc-store")
	inc.baseJob = filepath.Join(env.root, "inc-base")
	if err := cpR(env.store, inc.store); err != nil {
		return err
	}
	before, err := storeFiles(inc.store)
	if err != nil {
		return err
	}
	if _, err := createAt(ctx, inc.baseJob, inc.store); err != nil {
		return err
	}
	if err := testpebble.Churn(testpebble.V2, inc.store, env.spec, benchChurn, 7); err != nil {
		return fmt.Errorf("churning %s: %w", inc.store, err)
	}
	after, err := storeFiles(inc.store)
	if err != nil {
		return err
	}
	old := map[string]bool{}
	for _, f := range before {
		if f.Shared {
			old[f.Name] = true
		}
	}
	for _, f := range after {
		inc.bytes += f.Size
		switch {
		case !f.Shared:
			inc.private += f.Size
		case !old[f.Name]:
			inc.newSSTs += f.Size
			inc.newFiles++
		}
	}
	b.Logf("churned %.0f%% of keys: %d files, %d bytes checkpointed; %d new sstables %d bytes, private files %d bytes",
		benchChurn*100, len(after), inc.bytes, inc.newFiles, inc.newSSTs, inc.private)
	return nil
}

// storeFiles lists the files a checkpoint of the store in dir holds.
func storeFiles(dir string) ([]checkpoint.SourceFile, error) {
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Files, nil
}

// createAt checkpoints the store in dir into benchJob at the local location
// loc, as `ckpt create` does.
func createAt(ctx context.Context, loc, dir string) (*checkpoint.Result, error) {
	l, err := storage.Open(ctx, loc)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return checkpoint.Create(ctx, l.Bucket, benchJob, []*checkpoint.Store{s}, checkpoint.Options{})
}

func cpR(src, dst string) error {
	if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -r %s %s: %v: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// settle brings the page cache to the state every timed iteration starts
// from: no dirty pages (earlier copies flushed) and dir read once.
func settle(b *testing.B, dir string) {
	b.Helper()
	syscall.Sync()
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

func removeDest(b *testing.B, dir string) {
	b.Helper()
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
}

// cpuTime returns the user plus system CPU time used so far by this process
// (who = syscall.RUSAGE_SELF) or by its waited-for children
// (syscall.RUSAGE_CHILDREN). CPU time is far less sensitive than wall time
// to other load on the machine.
func cpuTime(b *testing.B, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU seconds per iteration.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// reportRate reports MB/s of n bytes per iteration.
func reportRate(b *testing.B, n int64) {
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/1e6/perOp, "MB/s")
}

// BenchmarkCreateFull times OpenDir and a full Create of the store into a
// fresh local job directory.
func BenchmarkCreateFull(b *testing.B) {
	env := benchStore(b)
	ctx := context.Background()
	var uploaded int64
	var cpu time.Duration
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(env.root, fmt.Sprintf("full-%d", i))
		settle(b, env.store)
		c0 := cpuTime(b, syscall.RUSAGE_SELF)
		b.StartTimer()
		res, err := createAt(ctx, dst, env.store)
		b.StopTimer()
		cpu += cpuTime(b, syscall.RUSAGE_SELF) - c0
		if err != nil {
			b.Fatal(err)
		}
		if res.Kind != metadata.KindFull || res.BytesUploaded != env.bytes {
			b.Fatalf("full checkpoint: %+v, want %d bytes uploaded", res, env.bytes)
		}
		uploaded = res.BytesUploaded
		removeDest(b, dst)
	}
	reportRate(b, env.bytes)
	reportCPU(b, cpu)
	b.ReportMetric(float64(uploaded), "uploaded-B")
}

// BenchmarkCopyBaseline times `cp -r` of the same store into a fresh
// directory, without any fsync.
func BenchmarkCopyBaseline(b *testing.B) {
	env := benchStore(b)
	benchCopy(b, env.store, env.bytes, false)
}

// BenchmarkCopyBaselineSync times `cp -r` followed by sync(2), which makes
// the copy durable as ckpt's fsyncs do.
func BenchmarkCopyBaselineSync(b *testing.B) {
	env := benchStore(b)
	benchCopy(b, env.store, env.bytes, true)
}

// benchCopy times `cp -r src` (and sync(2) if durable); cpu-s/op counts cp's
// CPU time and, with durable, this process's (the sync call).
func benchCopy(b *testing.B, src string, n int64, durable bool) {
	var cpu time.Duration
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(filepath.Dir(src), fmt.Sprintf("copy-%d", i))
		settle(b, src)
		c0 := cpuTime(b, syscall.RUSAGE_CHILDREN) + cpuTime(b, syscall.RUSAGE_SELF)
		b.StartTimer()
		err := cpR(src, dst)
		if err == nil && durable {
			syscall.Sync()
		}
		b.StopTimer()
		cpu += cpuTime(b, syscall.RUSAGE_CHILDREN) + cpuTime(b, syscall.RUSAGE_SELF) - c0
		if err != nil {
			b.Fatal(err)
		}
		removeDest(b, dst)
	}
	reportRate(b, n)
	reportCPU(b, cpu)
}

// BenchmarkCreateIncremental5pct times an incremental Create after 5 % of
// the keys were rewritten since the full checkpoint it builds on. Each
// iteration starts from a hard-linked copy (cp -al, untimed) of a job that
// holds only that full checkpoint. MB/s is relative to the whole store.
func BenchmarkCreateIncremental5pct(b *testing.B) {
	env, inc := benchInc(b)
	ctx := context.Background()
	var uploaded int64
	var cpu time.Duration
	b.StopTimer()
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(env.root, fmt.Sprintf("inc-%d", i))
		if out, err := exec.Command("cp", "-al", inc.baseJob, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp -al: %v: %s", err, out)
		}
		settle(b, inc.store)
		c0 := cpuTime(b, syscall.RUSAGE_SELF)
		b.StartTimer()
		res, err := createAt(ctx, dst, inc.store)
		b.StopTimer()
		cpu += cpuTime(b, syscall.RUSAGE_SELF) - c0
		if err != nil {
			b.Fatal(err)
		}
		if res.Kind != metadata.KindIncremental || res.BaseID != 1 {
			b.Fatalf("incremental checkpoint: %+v", res)
		}
		uploaded = res.BytesUploaded
		removeDest(b, dst)
	}
	reportRate(b, inc.bytes)
	reportCPU(b, cpu)
	ideal := inc.newSSTs + inc.private
	ratio := float64(uploaded) / float64(ideal)
	b.ReportMetric(float64(uploaded), "uploaded-B")
	b.ReportMetric(float64(ideal), "new+private-B")
	b.ReportMetric(ratio, "uploaded/new")
	if ratio > 1.05 {
		b.Errorf("incremental uploaded %d bytes, %.3f times the %d bytes of new sstables (%d) and private files (%d)",
			uploaded, ratio, ideal, inc.newSSTs, inc.private)
	}
}

// BenchmarkCopyIncremental5pct times `cp -r` of the churned store: without
// ckpt, the whole store is copied again.
func BenchmarkCopyIncremental5pct(b *testing.B) {
	_, inc := benchInc(b)
	benchCopy(b, inc.store, inc.bytes, false)
}
