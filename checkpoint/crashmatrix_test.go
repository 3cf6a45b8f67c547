package checkpoint_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// cloneBucket copies every object of b into a new memory bucket.
func cloneBucket(t *testing.T, b *blob.Bucket) *blob.Bucket {
	t.Helper()
	ctx := context.Background()
	out := memblob.OpenBucket(nil)
	it := b.List(nil)
	for {
		o, err := it.Next(ctx)
		if err != nil {
			break
		}
		data, err := b.ReadAll(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.WriteAll(ctx, o.Key, data, nil); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Crash matrix (issue #8, item 2): a full create of a store of a few hundred
// sstables, most of them already in the job (checked, not uploaded), dies at N random storage operations (seeded:
// CKPT_CRASH_SEED replays, CKPT_CRASH_POINTS sets N, default 15). After each
// crash every committed checkpoint verifies, and the next create commits.
func TestCrashMatrixLargeCreate(t *testing.T) {
	ctx := context.Background()
	spec := testpebble.Spec{Keys: 40000, ValueSize: 100, Seed: 11, TargetFileSize: 16 << 10}
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, spec); err != nil {
		t.Fatal(err)
	}
	job := metadata.Job{Prefix: "j"}
	tmpl := memblob.OpenBucket(nil)
	take(t, tmpl, job, dir, checkpoint.Options{})
	if err := testpebble.Churn(testpebble.V2, dir, spec, 0.1, 1); err != nil {
		t.Fatal(err)
	}
	inj := &faultblob.Injector{}
	r := take(t, faultblob.Wrap(cloneBucket(t, tmpl), inj), job, dir, checkpoint.Options{Full: true})
	n := inj.Ops()
	if r.FilesUploaded+r.FilesReused < 200 {
		t.Fatalf("only %d files; the matrix would prove little", r.FilesUploaded+r.FilesReused)
	}
	seed, points := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	ks := make([]int, points)
	for i := range ks {
		ks[i] = 1 + rng.IntN(n)
	}
	sort.Ints(ks)
	broken := 0
	for _, k := range ks {
		b := cloneBucket(t, tmpl)
		inj := &faultblob.Injector{}
		inj.CrashAt(k)
		s, err := checkpoint.OpenDir("default", dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkpoint.Create(ctx, faultblob.Wrap(b, inj), job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock, Full: true})
		s.Close()
		if err == nil && k < n {
			t.Fatalf("crash at op %d/%d: create succeeded", k, n)
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
		r := take(t, b, job, dir, checkpoint.Options{})
		if _, err := testutil.VerifyCheckpoint(ctx, b, job, r.CheckpointID); err != nil {
			t.Fatalf("re-run after crash at op %d: %v", k, err)
		}
	}
	t.Logf("reliability: crash command=create files=%d ops=%d points=%d broken=%d seed=%d", r.FilesUploaded+r.FilesReused, n, len(ks), broken, seed)
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
