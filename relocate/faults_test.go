package relocate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// Tests of relocate against misbehaving storage (issue #8): buckets that
// retry (as storage.Open's do) over faultblob over memblob.

// faultWorld is B's chain in a source bucket and an empty destination
// bucket, both behind one injector (or one bucket for a same-bucket run).
type faultWorld struct {
	ch                 *chain
	srcInner, dstInner *blob.Bucket
	src, dst           *blob.Bucket
	dstJob             metadata.Job
	inj                *faultblob.Injector
	clock              *storagetest.Clock
}

func newFaultWorld(t *testing.T, tmpl *blob.Bucket, sameBucket bool) *faultWorld {
	w := &faultWorld{srcInner: memblob.OpenBucket(nil), inj: new(faultblob.Injector), clock: new(storagetest.Clock)}
	copyBucket(t, tmpl, w.srcInner)
	w.src = storage.WithRetry(faultblob.Wrap(w.srcInner, w.inj), w.clock.Policy())
	w.dstInner, w.dst, w.dstJob = memblob.OpenBucket(nil), nil, metadata.Job{Prefix: "other/c"}
	if sameBucket {
		w.dstInner, w.dst, w.dstJob = w.srcInner, w.src, metadata.Job{Prefix: "jobs/c"}
	} else {
		w.dst = storage.WithRetry(faultblob.Wrap(w.dstInner, w.inj), w.clock.Policy())
	}
	return w
}

func (w *faultWorld) relocate(opts relocate.Options) (*relocate.Result, error) {
	return relocateOnce(context.Background(), relocate.Source{Bucket: w.src, Job: w.ch.b, All: true},
		relocate.Destination{Bucket: w.dst, Job: w.dstJob}, opts)
}

func faultChain(t *testing.T) (*blob.Bucket, *chain) {
	tmpl := memblob.OpenBucket(nil)
	return tmpl, buildChain(t, tmpl, "jobs", small)
}

// (a) Every storage operation fails transiently twice, or loses its
// response once, before it succeeds: the relocation succeeds, streamed and
// server-side, and the destination holds what an undisturbed run leaves.
func TestRelocateRetriesTransientFailures(t *testing.T) {
	tmpl, ch := faultChain(t)
	for _, same := range []bool{false, true} {
		ref := newFaultWorld(t, tmpl, same)
		ref.ch = ch
		if _, err := ref.relocate(relocate.Options{}); err != nil {
			t.Fatal(err)
		}
		want := strings.Join(keys(t, ref.dstInner, ref.dstJob.Prefix+"/"), "\n")
		for _, mode := range []string{"flaky", "lost responses"} {
			t.Run(fmt.Sprintf("same-bucket=%v/%s", same, mode), func(t *testing.T) {
				w := newFaultWorld(t, tmpl, same)
				w.ch = ch
				if mode == "flaky" {
					w.inj.Flaky(2, nil)
				} else {
					w.inj.FlakyAfter(1, nil)
				}
				if _, err := w.relocate(relocate.Options{ReadData: true}); err != nil {
					t.Fatal(err)
				}
				if len(w.clock.Sleeps()) == 0 {
					t.Fatal("nothing was retried")
				}
				if got := strings.Join(keys(t, w.dstInner, w.dstJob.Prefix+"/"), "\n"); got != want {
					t.Errorf("destination differs from an undisturbed run:\n%s\nwant\n%s", got, want)
				}
				if n := checkCommitted(t, w.dstInner, w.dstJob); n != len(ch.bIDs) {
					t.Errorf("%d checkpoints committed, want %d", n, len(ch.bIDs))
				}
			})
		}
	}
}

// (b) Writes of one destination object keep failing: relocate gives up
// after the policy's attempts with an error naming the object, commits no
// checkpoint that references a missing object, and a re-run finishes.
func TestRelocateGivesUpOnPermanentFailure(t *testing.T) {
	tmpl, ch := faultChain(t)
	w := newFaultWorld(t, tmpl, false)
	w.ch = ch
	var victim string
	w.inj.Flaky(1000, func(op faultblob.Op) bool {
		if op.Kind == faultblob.KindWrite && strings.HasPrefix(op.Key, "other/c/shared/") && (victim == "" || victim == op.Key) {
			victim = op.Key
			return true
		}
		return false
	})
	_, err := w.relocate(relocate.Options{})
	if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "giving up after 5 attempts") {
		t.Fatalf("got %v, want an error naming %s and the attempts", err, victim)
	}
	checkCommitted(t, w.dstInner, w.dstJob)
	w.inj.Reset()
	if _, err := w.relocate(relocate.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := checkCommitted(t, w.dstInner, w.dstJob); n != len(ch.bIDs) {
		t.Errorf("%d checkpoints committed after the re-run, want %d", n, len(ch.bIDs))
	}
}

// (c) A source object read short or corrupt while streaming is detected by
// its size or checksum, never written to the destination, and reported as
// a verification failure; no checkpoint is committed.
func TestRelocateNeverCopiesMisreadObjects(t *testing.T) {
	tmpl, ch := faultChain(t)
	c, err := metadata.Read(context.Background(), tmpl, ch.b.MetadataKey(ch.bIDs[0]))
	if err != nil {
		t.Fatal(err)
	}
	var src string // a private file of B's first checkpoint, of some size
	var name string
	for _, f := range c.Stores[0].Files {
		if f.Size > 100 && !strings.HasPrefix(f.Path, "..") {
			src, _ = metadata.Resolve(ch.b.CheckpointDir(ch.bIDs[0]), f.Path)
			name = f.Name
			break
		}
	}
	if src == "" {
		t.Fatal("no private file to misread")
	}
	for _, fault := range []string{"short", "corrupt"} {
		t.Run(fault, func(t *testing.T) {
			w := newFaultWorld(t, tmpl, false)
			w.ch = ch
			if fault == "short" {
				w.inj.ShortRead(src, 50)
			} else {
				w.inj.Corrupt(src)
			}
			_, err := w.relocate(relocate.Options{})
			if !errors.Is(err, relocate.ErrVerifyFailed) || !strings.Contains(err.Error(), src) {
				t.Fatalf("got %v, want ErrVerifyFailed naming %s", err, src)
			}
			for _, k := range keys(t, w.dstInner, "") {
				if strings.HasSuffix(k, "/"+name) {
					t.Errorf("%s was written to the destination as %s", src, k)
				}
			}
			if n := checkCommitted(t, w.dstInner, w.dstJob); n != 0 {
				t.Errorf("%d checkpoints committed", n)
			}
		})
	}
}

// (d) A destination listing that misses a just-copied object: relocate
// checks by listing that every object a checkpoint references is in place
// before it commits, so it refuses to commit (verification failure, no
// `_metadata` written); a re-run once the listing has caught up keeps
// what was copied and finishes.
func TestRelocateWithListingThatMissesACopy(t *testing.T) {
	tmpl, ch := faultChain(t)
	ref := newFaultWorld(t, tmpl, false)
	ref.ch = ch
	if _, err := ref.relocate(relocate.Options{}); err != nil {
		t.Fatal(err)
	}
	var hidden string
	for _, k := range keys(t, ref.dstInner, "other/c/shared/") {
		hidden = k
		break
	}
	w := newFaultWorld(t, tmpl, false)
	w.ch = ch
	w.inj.HideFromList(hidden)
	_, err := w.relocate(relocate.Options{})
	if !errors.Is(err, relocate.ErrVerifyFailed) || !strings.Contains(err.Error(), hidden) {
		t.Fatalf("got %v, want ErrVerifyFailed naming %s", err, hidden)
	}
	if n := checkCommitted(t, w.dstInner, w.dstJob); n != 0 {
		t.Errorf("%d checkpoints committed", n)
	}
	w.inj.Reset()
	res, err := w.relocate(relocate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := checkCommitted(t, w.dstInner, w.dstJob); n != len(ch.bIDs) {
		t.Errorf("%d checkpoints committed after the re-run, want %d", n, len(ch.bIDs))
	}
	skipped := 0
	for _, c := range res.Checkpoints {
		skipped += c.FilesSkipped
	}
	if skipped == 0 {
		t.Error("the re-run copied everything again")
	}
}
