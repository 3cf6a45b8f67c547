package gc_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// synthBucket writes a synthetic job into a new memory bucket.
func synthBucket(t testing.TB, job metadata.Job, shape testutil.SynthShape) *blob.Bucket {
	t.Helper()
	b := memblob.OpenBucket(nil)
	put := func(ctx context.Context, k string, d []byte) error { return b.WriteAll(ctx, k, d, nil) }
	if _, err := testutil.WriteSynthJob(context.Background(), job, shape, put, 8); err != nil {
		t.Fatal(err)
	}
	return b
}

func copyBucket(t testing.TB, b *blob.Bucket) *blob.Bucket {
	t.Helper()
	ctx := context.Background()
	out := memblob.OpenBucket(nil)
	for _, k := range bucketKeys(t, b) {
		data, err := b.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.WriteAll(ctx, k, data, nil); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func bucketKeys(t testing.TB, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err != nil {
			break
		}
		out = append(out, o.Key)
	}
	sort.Strings(out)
	return out
}

func runGC(ctx context.Context, b *blob.Bucket, job metadata.Job, opts gc.Options) error {
	p, err := gc.NewPlan(ctx, b, []metadata.Job{job}, opts)
	if err != nil {
		return err
	}
	_, err = p.Execute(ctx, nil)
	return err
}

// Crash matrix (issue #8, item 2): gc of a job of 60 checkpoints (1,700
// objects, 50 expiring checkpoints) dies at N random storage operations
// (seeded: CKPT_CRASH_SEED replays, CKPT_CRASH_POINTS sets N, default 15).
// After each crash every committed checkpoint verifies, and a re-run leaves
// exactly the objects an uninterrupted gc leaves.
func TestCrashMatrixLargeGC(t *testing.T) {
	ctx := context.Background()
	job := metadata.Job{Prefix: "j"}
	tmpl := synthBucket(t, job, testutil.SynthShape{Checkpoints: 60, Files: 100, Churn: 20})
	now := time.Now().Add(24 * time.Hour)
	opts := gc.Options{Policy: gc.Policy{Retain: 10}, MinAge: gc.DefaultMinAge, Now: func() time.Time { return now }}
	ref := copyBucket(t, tmpl)
	inj := &faultblob.Injector{}
	if err := runGC(ctx, faultblob.Wrap(ref, inj), job, opts); err != nil {
		t.Fatal(err)
	}
	n := inj.Ops()
	want := bucketKeys(t, ref)
	if len(want) == len(bucketKeys(t, tmpl)) {
		t.Fatal("the uninterrupted gc deleted nothing")
	}
	seed, points := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	broken := 0
	for range points {
		k := 1 + rng.IntN(n)
		b := copyBucket(t, tmpl)
		inj := &faultblob.Injector{}
		inj.CrashAt(k)
		if err := runGC(ctx, faultblob.Wrap(b, inj), job, opts); err == nil && k < n {
			t.Fatalf("crash at op %d/%d went unnoticed", k, n)
		}
		entries, err := metadata.ListJob(ctx, b, job)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Committed {
				if _, err := testutil.VerifyCheckpoint(ctx, b, job, e.ID); err != nil {
					broken++
					t.Errorf("crash at op %d/%d: %v", k, n, err)
				}
			}
		}
		if err := runGC(ctx, b, job, opts); err != nil {
			t.Fatalf("re-run after crash at op %d: %v", k, err)
		}
		if got := bucketKeys(t, b); !slices.Equal(got, want) {
			t.Fatalf("crash at op %d/%d: %d objects after the re-run, an uninterrupted gc leaves %d", k, n, len(got), len(want))
		}
	}
	t.Logf("reliability: crash command=gc checkpoints=60 objects=%d ops=%d points=%d broken=%d seed=%d", len(bucketKeys(t, tmpl)), n, points, broken, seed)
}

// crashSeed returns the crash matrix's seed (logged) and number of points.
func crashSeed(t *testing.T) (uint64, int) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CKPT_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	points := 15
	if p, err := strconv.Atoi(os.Getenv("CKPT_CRASH_POINTS")); err == nil && p > 0 {
		points = p
	}
	t.Logf("CKPT_CRASH_SEED=%d CKPT_CRASH_POINTS=%d", seed, points)
	return seed, points
}
