package checkpoint_test

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// Tests of create against misbehaving storage (issue #8): a bucket that
// retries (as storage.Open's do) over faultblob over memblob.

func smallStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, testpebble.Spec{Keys: 3000, ValueSize: 50, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func createOn(b *blob.Bucket, job metadata.Job, dir string) (*checkpoint.Result, error) {
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return checkpoint.Create(context.Background(), b, job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock})
}

// keys lists every object of b with its size (markers' and _metadata's
// sizes vary with random ids, so only their names count).
func keys(t *testing.T, b *blob.Bucket) string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err != nil {
			break
		}
		if strings.Contains(o.Key, "/shared/") || strings.HasSuffix(o.Key, ".sst") {
			out = append(out, o.Key+" "+strconv.FormatInt(o.Size, 10))
		} else {
			out = append(out, o.Key)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func verifyAll(t *testing.T, b *blob.Bucket, job metadata.Job) {
	t.Helper()
	entries, err := metadata.ListJob(context.Background(), b, job)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Committed {
			if _, err := testutil.VerifyCheckpoint(context.Background(), b, job, e.ID); err != nil {
				t.Fatalf("chk-%d: %v", e.ID, err)
			}
		}
	}
}

// (a) Every storage operation of two creates (full, then incremental)
// fails transiently twice before it succeeds, or loses its response once
// (for the create-if-absent commits and reservations): both creates succeed
// and the job holds exactly what an undisturbed run leaves.
func TestCreateRetriesTransientFailures(t *testing.T) {
	dir := smallStore(t)
	job := metadata.Job{Prefix: "j"}
	clean := memblob.OpenBucket(nil)
	for range 2 {
		if _, err := createOn(clean, job, dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range []string{"flaky", "lost responses"} {
		t.Run(mode, func(t *testing.T) {
			inner := memblob.OpenBucket(nil)
			inj, clock := new(faultblob.Injector), new(storagetest.Clock)
			if mode == "flaky" {
				inj.Flaky(2, nil)
			} else {
				inj.FlakyAfter(1, func(op faultblob.Op) bool {
					return op.Kind == faultblob.KindWrite && !strings.Contains(op.Key, "/shared/")
				})
			}
			b := storage.WithRetry(faultblob.Wrap(inner, inj), clock.Policy())
			for i := range 2 {
				r, err := createOn(b, job, dir)
				if err != nil {
					t.Fatalf("create %d: %v", i+1, err)
				}
				if r.CheckpointID != uint64(i+1) {
					t.Fatalf("create %d made chk-%d", i+1, r.CheckpointID)
				}
			}
			if len(clock.Sleeps()) == 0 {
				t.Fatal("nothing was retried")
			}
			if got, want := keys(t, inner), keys(t, clean); got != want {
				t.Errorf("objects differ from an undisturbed run:\n%s\nwant\n%s", got, want)
			}
			verifyAll(t, inner, job)
		})
	}
}

// (b) A shared file whose upload keeps failing: create gives up after the
// policy's attempts with an error naming the object, commits nothing, and
// a later run succeeds.
func TestCreateGivesUpOnPermanentFailure(t *testing.T) {
	dir := smallStore(t)
	job := metadata.Job{Prefix: "j"}
	inner := memblob.OpenBucket(nil)
	inj, clock := new(faultblob.Injector), new(storagetest.Clock)
	b := storage.WithRetry(faultblob.Wrap(inner, inj), clock.Policy())
	var victim string
	inj.Flaky(1000, func(op faultblob.Op) bool {
		if op.Kind == faultblob.KindWrite && strings.HasSuffix(op.Key, ".sst") && (victim == "" || victim == op.Key) {
			victim = op.Key
			return true
		}
		return false
	})
	_, err := createOn(b, job, dir)
	if err == nil {
		t.Fatal("create succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, victim) || !strings.Contains(msg, "giving up after 5 attempts") || strings.Contains(msg, "\n") {
		t.Errorf("error does not name %s and the attempts on one line: %v", victim, err)
	}
	if entries, _ := metadata.ListJob(context.Background(), inner, job); len(entries) != 1 || entries[0].Committed {
		t.Errorf("entries %+v, want one uncommitted reservation", entries)
	}
	inj.Reset()
	if r, err := createOn(b, job, dir); err != nil || r.CheckpointID != 2 {
		t.Fatalf("re-run: %+v, %v", r, err)
	}
	verifyAll(t, inner, job)
}

// (c) A base `_metadata` read short or corrupt is detected (it does not
// decode) and refused as a bad base: nothing is committed.
func TestCreateRefusesMisreadBase(t *testing.T) {
	dir := smallStore(t)
	job := metadata.Job{Prefix: "j"}
	for _, fault := range []string{"short", "corrupt"} {
		t.Run(fault, func(t *testing.T) {
			inner := memblob.OpenBucket(nil)
			if _, err := createOn(inner, job, dir); err != nil {
				t.Fatal(err)
			}
			inj := new(faultblob.Injector)
			if fault == "short" {
				inj.ShortRead(job.MetadataKey(1), 100)
			} else {
				inj.Corrupt(job.MetadataKey(1))
			}
			_, err := createOn(storage.WithRetry(faultblob.Wrap(inner, inj), new(storagetest.Clock).Policy()), job, dir)
			if !errors.Is(err, checkpoint.ErrBadBase) || !errors.Is(err, metadata.ErrCorrupt) {
				t.Fatalf("got %v, want ErrBadBase and ErrCorrupt", err)
			}
			if entries, _ := metadata.ListJob(context.Background(), inner, job); len(entries) != 1 {
				t.Errorf("entries %+v, want only chk-1", entries)
			}
		})
	}
}

// (d) A listing that misses the newest checkpoint (an eventually
// consistent store that has not caught up): create cannot know it exists,
// so it takes a full checkpoint with a new job id; its reservation of the
// next id finds chk-1 taken (create-if-absent) and steps on to chk-2.
// Nothing existing is overwritten or reused unseen.
func TestCreateWithListingThatMissesACheckpoint(t *testing.T) {
	dir := smallStore(t)
	job := metadata.Job{Prefix: "j"}
	inner := memblob.OpenBucket(nil)
	first, err := createOn(inner, job, dir)
	if err != nil {
		t.Fatal(err)
	}
	inj := new(faultblob.Injector)
	inj.HideFromList(job.MetadataKey(1), job.PendingKey(1))
	r, err := createOn(storage.WithRetry(faultblob.Wrap(inner, inj), new(storagetest.Clock).Policy()), job, dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.CheckpointID != 2 || r.Kind != metadata.KindFull {
		t.Fatalf("got chk-%d %s, want a full chk-2", r.CheckpointID, r.Kind)
	}
	c1, err := metadata.Read(context.Background(), inner, first.MetadataKey)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := metadata.Read(context.Background(), inner, r.MetadataKey)
	if err != nil {
		t.Fatal(err)
	}
	if c1.JobID == c2.JobID {
		t.Errorf("same job id %s: the hidden checkpoint was read", c1.JobID)
	}
	verifyAll(t, inner, job)
}
