package scaletest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
)

func big() bool { return os.Getenv("CKPT_SCALE") == "1" }

// measure runs f and returns its duration and the peak heap above the heap
// live before it (runtime/metrics, sampled every millisecond).
func measure(t *testing.T, f func() error) (time.Duration, uint64) {
	t.Helper()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	err := f()
	d := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	p := peak.Load()
	if p < base {
		return d, 0
	}
	return d, p - base
}

// newBucket is a fresh bucket: memory for the normal run, local files for
// CKPT_SCALE=1 (memblob sorts every key it holds for each listing page, so
// at a million objects it would measure itself), and a put that fills it.
func newBucket(t *testing.T) (*blob.Bucket, func(context.Context, string, []byte) error) {
	t.Helper()
	if !big() {
		b := memblob.OpenBucket(nil)
		return b, func(ctx context.Context, k string, d []byte) error { return b.WriteAll(ctx, k, d, nil) }
	}
	dir := t.TempDir()
	loc, err := storage.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b := loc.Narrow()
	t.Cleanup(func() { b.Close() })
	return b, func(_ context.Context, k string, d []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, d, 0o644)
	}
}

func synth(t *testing.T, job metadata.Job, shape testutil.SynthShape) (*blob.Bucket, testutil.SynthStats) {
	t.Helper()
	b, put := newBucket(t)
	st, err := testutil.WriteSynthJob(context.Background(), job, shape, put, 8)
	if err != nil {
		t.Fatal(err)
	}
	return b, st
}

type figure struct {
	op   string
	d    time.Duration
	heap uint64
}

// run measures inspect, gc plan, gc execute and relocate on one job.
func run(t *testing.T, shape testutil.SynthShape, retain int, all bool) []figure {
	ctx := context.Background()
	job := metadata.Job{Prefix: "jobs/a"}
	b, st := synth(t, job, shape)
	last := uint64(shape.Checkpoints)
	now := time.Now().Add(24 * time.Hour)
	var figs []figure
	add := func(op string, f func() error) {
		d, h := measure(t, f)
		figs = append(figs, figure{op, d, h})
	}
	if shape.Checkpoints == 1 || !all {
		add("inspect-verify", func() error {
			_, err := inspect.ReadCheckpoint(ctx, b, job, last, inspect.Options{Verify: true, Parallel: 8})
			return err
		})
	} else {
		add("inspect-job", func() error {
			_, err := inspect.ReadJob(ctx, b, job, inspect.Options{})
			return err
		})
	}
	dst, _ := newBucket(t)
	// On local files relocate fsyncs every copy (about 3 ms each here):
	// a million would take most of an hour.
	if big() && shape.Files > 100_000 {
		t.Logf("relocate of %d files skipped: about 3 ms a file on local files", shape.Files)
	} else {
		add("relocate", func() error {
			// The newest checkpoint only: relocating every checkpoint lists
			// each one's directory, and memblob sorts all its keys for every
			// listing, which would measure memblob.
			src := relocate.Source{Bucket: b, Job: job, IDs: []uint64{last}}
			p, err := relocate.NewPlan(ctx, src, relocate.Destination{Bucket: dst, Job: metadata.Job{Prefix: "jobs/b"}}, relocate.Options{Parallel: 8})
			if err != nil {
				return err
			}
			_, err = p.Execute(ctx, nil)
			return err
		})
	}
	var plan *gc.Plan
	opts := gc.Options{Policy: gc.Policy{Retain: retain}, MinAge: gc.DefaultMinAge, Now: func() time.Time { return now }, Parallel: 8}
	add("gc-plan", func() error {
		var err error
		plan, err = gc.NewPlan(ctx, b, []metadata.Job{job}, opts)
		return err
	})
	add("gc-execute", func() error {
		_, err := plan.Execute(ctx, nil)
		return err
	})
	for _, f := range figs {
		t.Logf("reliability: scale checkpoints=%d files=%d refs=%d objects=%d op=%s ms=%d peak_heap_mb=%.1f",
			shape.Checkpoints, shape.Files, st.Refs, st.Objects, f.op, f.d.Milliseconds(), float64(f.heap)/(1<<20))
	}
	return figs
}

// ratios logs how much longer each operation took on the bigger job: about
// the size ratio for linear work, its square for quadratic.
func ratios(t *testing.T, what string, size float64, small, large []figure) {
	for _, sf := range small {
		for _, lf := range large {
			if lf.op == sf.op {
				r := float64(lf.d) / float64(max(sf.d, time.Millisecond))
				t.Logf("reliability: scale-ratio %s x%.0f op=%s time_ratio=%.1f", what, size, sf.op, r)
			}
		}
	}
}

// A checkpoint of many files (1,000,000 with CKPT_SCALE=1, and 100,000 to
// compare): inspect --verify, relocate, gc plan and execute finish, with
// heap and time figures logged.
func TestScaleFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("large synthetic jobs")
	}
	sizes := []int{10_000}
	if big() {
		sizes = []int{100_000, 1_000_000}
	}
	var figs [][]figure
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			figs = append(figs, run(t, testutil.SynthShape{Checkpoints: 2, Files: n, Churn: n / 10}, 1, false))
		})
	}
	if len(figs) == 2 {
		ratios(t, "files", float64(sizes[1])/float64(sizes[0]), figs[0], figs[1])
	}
}

// A job of many checkpoints (10,000 with CKPT_SCALE=1, and 1,000 to
// compare): inspect of the job, relocate of the newest checkpoint, gc plan and
// execute with retain 10.
func TestScaleCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("large synthetic jobs")
	}
	sizes := []int{1_000}
	if big() {
		sizes = []int{1_000, 10_000}
	}
	var figs [][]figure
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			figs = append(figs, run(t, testutil.SynthShape{Checkpoints: n, Files: 10, Churn: 2}, 10, true))
		})
	}
	if len(figs) == 2 {
		ratios(t, "checkpoints", float64(sizes[1])/float64(sizes[0]), figs[0], figs[1])
	}
}
