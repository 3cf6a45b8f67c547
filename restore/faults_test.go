package restore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// Tests of restore against misbehaving storage (issue #8): a bucket that
// retries (as storage.Open's do) over faultblob over the fixture's bucket.
// No local copy: every file comes from storage.

func misbehaving(f *fixture) (*blob.Bucket, *faultblob.Injector, *storagetest.Clock) {
	inj, clock := new(faultblob.Injector), new(storagetest.Clock)
	return storage.WithRetry(faultblob.Wrap(f.b, inj), clock.Policy()), inj, clock
}

// dataKeys returns the storage keys of checkpoint id's files.
func dataKeys(t *testing.T, f *fixture, id uint64) map[string]int64 {
	out := map[string]int64{}
	for _, s := range f.meta(t, id).Stores {
		for _, file := range s.Files {
			k, err := metadata.Resolve(f.job.CheckpointDir(id), file.Path)
			if err != nil {
				t.Fatal(err)
			}
			out[k] = file.Size
		}
	}
	return out
}

// nothingLeft fails unless the target is absent and its parent holds
// nothing else (no temporary directory left behind).
func nothingLeft(t *testing.T, target string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(target))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// (a) Every storage operation fails transiently twice (or loses its
// response once), and every file's read breaks mid-stream twice: the
// restore succeeds and the store is exactly the checkpoint's.
func TestRestoreRetriesTransientFailures(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	id := f.take(t)
	for _, mode := range []string{"flaky", "lost responses"} {
		t.Run(mode, func(t *testing.T) {
			b, inj, clock := misbehaving(f)
			if mode == "flaky" {
				inj.Flaky(2, nil)
			} else {
				inj.FlakyAfter(1, nil)
			}
			for k, size := range dataKeys(t, f, id) {
				if size > 1 {
					inj.BreakReads(k, size/2, 2)
				}
			}
			target := filepath.Join(t.TempDir(), "r")
			// Retries -1: the bucket alone must cope.
			if _, _, err := run(t, b, f.job, id, restore.Options{Target: target, Retries: -1}); err != nil {
				t.Fatal(err)
			}
			if len(clock.Sleeps()) == 0 {
				t.Fatal("nothing was retried")
			}
			checkStoreDir(t, target, f.meta(t, id), "default", f.digests[id]["default"])
		})
	}
}

// (b) One file's reads keep failing: the restore gives up after the
// bucket's attempts (not restore's Retries times as many), with an error
// naming the file, and leaves no target and no temporary directory.
func TestRestoreGivesUpOnPermanentFailure(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	id := f.take(t)
	var victim string
	for k := range dataKeys(t, f, id) {
		if strings.HasSuffix(k, ".sst") {
			victim = k
			break
		}
	}
	b, inj, _ := misbehaving(f)
	reads := 0
	inj.Flaky(1000, func(op faultblob.Op) bool {
		if op.Key == victim && op.Kind == faultblob.KindRead {
			reads++
			return true
		}
		return false
	})
	target := filepath.Join(t.TempDir(), "r")
	_, _, err := run(t, b, f.job, id, restore.Options{Target: target})
	if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "giving up after 5 attempts") {
		t.Fatalf("got %v, want an error naming %s and the attempts", err, victim)
	}
	if reads != 5 {
		t.Errorf("%s was read %d times, want 5", victim, reads)
	}
	nothingLeft(t, target)
}

// (c) A file read short or corrupt is detected by its size or checksum and
// never lands in a target: verification failure (exit status 5), no target.
func TestRestoreNeverRestoresMisreadFiles(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	id := f.take(t)
	var victim string
	for k, size := range dataKeys(t, f, id) {
		if strings.HasSuffix(k, ".sst") && size > 1000 {
			victim = k
			break
		}
	}
	for _, fault := range []string{"short", "corrupt"} {
		t.Run(fault, func(t *testing.T) {
			b, inj, _ := misbehaving(f)
			if fault == "short" {
				inj.ShortRead(victim, 500)
			} else {
				inj.Corrupt(victim)
			}
			target := filepath.Join(t.TempDir(), "r")
			_, _, err := run(t, b, f.job, id, restore.Options{Target: target})
			if !errors.Is(err, restore.ErrVerifyFailed) || !strings.Contains(err.Error(), victim) {
				t.Fatalf("got %v, want ErrVerifyFailed naming %s", err, victim)
			}
			nothingLeft(t, target)
		})
	}
}

// (d) A listing that misses the newest checkpoint: restoring the latest
// restores the newest checkpoint the listing shows, and says which (the
// result's CheckpointID); an explicit id reads its `_metadata` directly and
// is unaffected.
func TestRestoreWithListingThatMissesACheckpoint(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	first := f.take(t)
	f.churn(t, 7)
	newest := f.take(t)
	b, inj, _ := misbehaving(f)
	inj.HideFromList(f.job.MetadataKey(newest), f.job.PendingKey(newest))
	target := filepath.Join(t.TempDir(), "latest")
	_, r, err := run(t, b, f.job, 0, restore.Options{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if r.CheckpointID != first {
		t.Fatalf("restored chk-%d, want chk-%d (the newest listed)", r.CheckpointID, first)
	}
	checkStoreDir(t, target, f.meta(t, first), "default", f.digests[first]["default"])
	target = filepath.Join(t.TempDir(), "explicit")
	if _, _, err := run(t, b, f.job, newest, restore.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	checkStoreDir(t, target, f.meta(t, newest), "default", f.digests[newest]["default"])
}
