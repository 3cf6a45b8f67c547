package relocate_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
)

var clock = func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }

var spec = testpebble.Spec{Keys: 20000, ValueSize: 100, Seed: 1}

// small is a store with few, small files, for tests that loop over every
// storage operation.
var small = testpebble.Spec{Keys: 3000, ValueSize: 50, Seed: 5, TargetFileSize: 16 << 10}

func take(t testing.TB, b *blob.Bucket, job metadata.Job, dir string, origin *checkpoint.OriginRef) *checkpoint.Result {
	t.Helper()
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := checkpoint.Create(context.Background(), b, job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func digest(t testing.TB, dir string) string {
	t.Helper()
	d, err := testpebble.Digest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// chain is job A (two checkpoints) and job B, whose store was restored from
// A's chk-2 with claim: B's checkpoints reference A's shared files.
type chain struct {
	a, b   metadata.Job
	bIDs   []uint64
	digest map[uint64]string // of B's checkpoints
}

// buildChain builds A and B under prefix in bucket bkt from a store of s.
func buildChain(t testing.TB, bkt *blob.Bucket, prefix string, s testpebble.Spec) *chain {
	t.Helper()
	ctx := context.Background()
	ch := &chain{
		a:      metadata.Job{Prefix: join(prefix, "a")},
		b:      metadata.Job{Prefix: join(prefix, "b")},
		digest: map[uint64]string{},
	}
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, s); err != nil {
		t.Fatal(err)
	}
	take(t, bkt, ch.a, dir, nil)
	if err := testpebble.Churn(testpebble.V2, dir, s, 0.1, 2); err != nil {
		t.Fatal(err)
	}
	ra := take(t, bkt, ch.a, dir, nil)
	ca, err := metadata.Read(ctx, bkt, ch.a.MetadataKey(ra.CheckpointID))
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if err := testutil.Materialize(ctx, bkt, ch.a, ra.CheckpointID, "default", restored); err != nil {
		t.Fatal(err)
	}
	origin := &checkpoint.OriginRef{Dir: ch.a.CheckpointDir(ra.CheckpointID), JobID: ca.JobID, CheckpointID: ra.CheckpointID, Claim: true}
	for i := range 2 {
		if i > 0 {
			if err := testpebble.Churn(testpebble.V2, restored, s, 0.05, uint64(10+i)); err != nil {
				t.Fatal(err)
			}
		}
		r := take(t, bkt, ch.b, restored, origin)
		ch.bIDs = append(ch.bIDs, r.CheckpointID)
		ch.digest[r.CheckpointID] = digest(t, restored)
	}
	// B really depends on A.
	c, err := metadata.Read(ctx, bkt, ch.b.MetadataKey(ch.bIDs[1]))
	if err != nil {
		t.Fatal(err)
	}
	ext := 0
	for _, f := range c.Stores[0].Files {
		if strings.HasPrefix(f.Path, "../../a/shared/") {
			ext++
		}
	}
	if ext == 0 {
		t.Fatalf("B's checkpoint references nothing of A: %+v", c.Stores[0].Files)
	}
	return ch
}

func join(prefix, elem string) string {
	if prefix == "" {
		return elem
	}
	return prefix + "/" + elem
}

// relocateOnce plans and executes.
func relocateOnce(ctx context.Context, src relocate.Source, dst relocate.Destination, opts relocate.Options) (*relocate.Result, error) {
	p, err := relocate.NewPlan(ctx, src, dst, opts)
	if err != nil {
		return nil, err
	}
	return p.Execute(ctx, nil)
}

func mustRelocate(t testing.TB, src relocate.Source, dst relocate.Destination, opts relocate.Options) *relocate.Result {
	t.Helper()
	res, err := relocateOnce(context.Background(), src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// keys lists every key under prefix.
func keys(t testing.TB, b *blob.Bucket, prefix string) []string {
	t.Helper()
	var out []string
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, obj.Key)
	}
	sort.Strings(out)
	return out
}

// deleteAll deletes every object under prefix.
func deleteAll(t testing.TB, b *blob.Bucket, prefix string) {
	t.Helper()
	for _, k := range keys(t, b, prefix) {
		if err := b.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
}

// copyBucket copies every object of from into to.
func copyBucket(t testing.TB, from, to *blob.Bucket) {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys(t, from, "") {
		data, err := from.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.WriteAll(ctx, k, data, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCommitted verifies every committed checkpoint of job: a `_metadata`
// never references a missing or wrong object.
func checkCommitted(t testing.TB, b *blob.Bucket, job metadata.Job) int {
	t.Helper()
	ctx := context.Background()
	entries, err := metadata.ListJob(ctx, b, job)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Committed {
			n++
			if _, err := testutil.VerifyCheckpoint(ctx, b, job, e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}

// checkSelfContained fails unless every path of checkpoint id of job stays
// inside the job and the lineage names no place.
func checkSelfContained(t testing.TB, b *blob.Bucket, job metadata.Job, id uint64) *metadata.Checkpoint {
	t.Helper()
	c, err := metadata.Read(context.Background(), b, job.MetadataKey(id))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Stores {
		for _, f := range s.Files {
			if !strings.HasPrefix(f.Path, s.Name+"/") && !strings.HasPrefix(f.Path, "../shared/") || strings.Count(f.Path, "..") > 1 {
				t.Fatalf("chk-%d: %s/%s has path %q, outside the job's layout", id, s.Name, f.Name, f.Path)
			}
		}
	}
	if c.Lineage != nil && c.Lineage.Path != "" && !strings.HasPrefix(c.Lineage.Path, "../chk-") {
		t.Fatalf("chk-%d: lineage path %q leaves the job", id, c.Lineage.Path)
	}
	return c
}
