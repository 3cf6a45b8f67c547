package relocate_test

// The relocation's side of gc's protocol: reservation markers that gc can
// read (token, base), refreshed while copying; objects kept only when gc
// cannot collect them; no commit once the reservation is lost.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// A re-run renews the interrupted run's reservation with the time it was
// made, so it keeps everything that run copied, however late it comes. If
// gc collected the reservation meanwhile, nothing the earlier run wrote is
// trusted: private objects are replaced, and shared ones, which may be in
// use, are not overwritten but copied under names unique to the reserved
// directory.
func TestResume(t *testing.T) {
	ctx := context.Background()
	src := memblob.OpenBucket(nil)
	ch := buildChain(t, src, "jobs", small)
	id := ch.bIDs[1]
	source := relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}}
	for _, collected := range []bool{false, true} {
		t.Run(fmt.Sprintf("collected=%v", collected), func(t *testing.T) {
			inner := memblob.OpenBucket(nil)
			inj := &faultblob.Injector{}
			// Stop before the commit: fail the `_metadata` write.
			inj.FailMatching(func(op faultblob.Op) error {
				if strings.HasSuffix(op.Key, "/_metadata") && op.Kind == faultblob.KindWrite {
					return errors.New("crash")
				}
				return nil
			})
			cJob := metadata.Job{Prefix: "c"}
			if _, err := relocateOnce(ctx, source, relocate.Destination{Bucket: faultblob.Wrap(inner, inj), Job: cJob}, relocate.Options{}); err == nil {
				t.Fatal("first run committed")
			}
			if collected {
				inner.Delete(ctx, cJob.PendingKey(id))
			}
			month := func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
			res := mustRelocate(t, source, relocate.Destination{Bucket: inner, Job: cJob}, relocate.Options{Now: month})
			cr := res.Checkpoints[0]
			c := checkSelfContained(t, inner, cJob, id)
			alt := 0
			for _, f := range c.Stores[0].Files {
				if strings.Contains(f.Path, fmt.Sprintf("-c%d.", id)) {
					alt++
				}
			}
			if !collected && (cr.FilesSkipped != cr.Files || alt != 0) {
				t.Fatalf("re-run: %+v, %d alternative names", cr, alt)
			}
			if collected && (cr.FilesCopied != cr.Files || alt == 0) {
				t.Fatalf("re-run after gc: %+v, %d alternative names", cr, alt)
			}
			checkCommitted(t, inner, cJob)
		})
	}
}

// A shared object at the destination that nothing protects from gc (an
// orphan, here also damaged) is neither kept nor overwritten: the copy goes
// under a name unique to the reserved directory.
func TestUnprotectedSharedObject(t *testing.T) {
	ctx := context.Background()
	src := memblob.OpenBucket(nil)
	ch := buildChain(t, src, "jobs", small)
	id := ch.bIDs[1]
	source := relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}}
	dst := memblob.OpenBucket(nil)
	cJob := metadata.Job{Prefix: "c"}
	p, err := relocate.NewPlan(ctx, source, relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var orphans []string
	for _, c := range p.Copies() {
		if c.Shared && len(orphans) < 2 {
			data, _ := src.ReadAll(ctx, c.Src)
			if len(orphans) == 1 {
				data = data[1:] // damaged
			}
			dst.WriteAll(ctx, c.Dst, data, nil)
			orphans = append(orphans, c.Dst)
		}
	}
	for _, readData := range []bool{false, true} {
		res := mustRelocate(t, source, relocate.Destination{Bucket: dst, Job: cJob, ID: id + uint64(map[bool]int{false: 0, true: 1}[readData])},
			relocate.Options{ReadData: readData})
		cr := res.Checkpoints[0]
		// The first run has nothing to keep; the second keeps what the
		// first committed (its base).
		if !readData && cr.FilesCopied != cr.Files || readData && cr.FilesSkipped == 0 {
			t.Fatalf("run %d: %+v", cr.ID, cr)
		}
		c := checkSelfContained(t, dst, cJob, cr.ID)
		for _, f := range c.Stores[0].Files {
			key, _ := metadata.Resolve(cJob.CheckpointDir(cr.ID), f.Path)
			for _, o := range orphans {
				if key == o {
					t.Fatalf("chk-%d references the unprotected %s", cr.ID, o)
				}
			}
		}
	}
	checkCommitted(t, dst, cJob)
}

// Objects referenced by the destination's newest committed checkpoint are
// kept whatever their age: the reservation names it as base, so gc keeps
// its files even if it expires meanwhile.
func TestBaseVouches(t *testing.T) {
	ctx := context.Background()
	src := memblob.OpenBucket(nil)
	ch := buildChain(t, src, "jobs", small)
	inner := memblob.OpenBucket(nil)
	cJob := metadata.Job{Prefix: "c"}
	mustRelocate(t, relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{ch.bIDs[0]}},
		relocate.Destination{Bucket: inner, Job: cJob}, relocate.Options{})
	inj := &faultblob.Injector{}
	var mu sync.Mutex
	var pending []metadata.Pending
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == faultblob.KindCopy || op.Kind == faultblob.KindWrite && strings.Contains(op.Key, "/shared/") {
			data, _ := inner.ReadAll(ctx, cJob.PendingKey(ch.bIDs[1]))
			var p metadata.Pending
			json.Unmarshal(data, &p)
			mu.Lock()
			pending = append(pending, p)
			mu.Unlock()
		}
		return nil
	})
	later := func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
	res := mustRelocate(t, relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{ch.bIDs[1]}},
		relocate.Destination{Bucket: faultblob.Wrap(inner, inj), Job: cJob}, relocate.Options{Now: later})
	cr := res.Checkpoints[0]
	if cr.FilesSkipped == 0 || cr.FilesCopied == 0 {
		t.Fatalf("nothing kept on the base's account: %+v", cr)
	}
	if len(pending) == 0 || pending[0].BaseID != ch.bIDs[0] || !strings.HasPrefix(pending[0].Token, "relocation-") || pending[0].ClaimPath != "" {
		t.Fatalf("reservation while copying: %+v", pending)
	}
	checkCommitted(t, inner, cJob)
}

// A reservation collected while the relocation runs (gc took it for
// abandoned) forbids the commit; running again finishes.
func TestReservationLost(t *testing.T) {
	ctx := context.Background()
	src := memblob.OpenBucket(nil)
	ch := buildChain(t, src, "jobs", small)
	id := ch.bIDs[1]
	source := relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}}
	inner := memblob.OpenBucket(nil)
	cJob := metadata.Job{Prefix: "c"}
	inj := &faultblob.Injector{}
	var once sync.Once
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == faultblob.KindWrite && strings.Contains(op.Key, "/shared/") {
			once.Do(func() { inner.Delete(ctx, cJob.PendingKey(id)) })
		}
		return nil
	})
	_, err := relocateOnce(ctx, source, relocate.Destination{Bucket: faultblob.Wrap(inner, inj), Job: cJob}, relocate.Options{})
	if !errors.Is(err, relocate.ErrReservationLost) {
		t.Fatalf("got %v", err)
	}
	if ok, _ := inner.Exists(ctx, cJob.MetadataKey(id)); ok {
		t.Fatal("committed without its reservation")
	}
	mustRelocate(t, source, relocate.Destination{Bucket: inner, Job: cJob}, relocate.Options{})
	checkCommitted(t, inner, cJob)
}

// Reservations are rewritten while objects are copied.
func TestRefresh(t *testing.T) {
	src := memblob.OpenBucket(nil)
	ch := buildChain(t, src, "jobs", small)
	id := ch.bIDs[1]
	inner := memblob.OpenBucket(nil)
	cJob := metadata.Job{Prefix: "c"}
	inj := &faultblob.Injector{}
	var mu sync.Mutex
	writes := 0
	inj.FailMatching(func(op faultblob.Op) error {
		switch {
		case op.Kind == faultblob.KindWrite && op.Key == cJob.PendingKey(id):
			mu.Lock()
			writes++
			mu.Unlock()
		case op.Kind == faultblob.KindWrite:
			time.Sleep(5 * time.Millisecond) // slow copies
		}
		return nil
	})
	mustRelocate(t, relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}},
		relocate.Destination{Bucket: faultblob.Wrap(inner, inj), Job: cJob}, relocate.Options{Parallel: 1, RefreshInterval: time.Millisecond})
	if writes < 3 {
		t.Fatalf("reservation written %d times", writes)
	}
	checkCommitted(t, inner, cJob)
}
