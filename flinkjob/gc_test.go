package flinkjob_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// gcWorld builds a job with expired checkpoints, orphans, an aborted
// checkpoint and taskowned/ objects, all older than min-age.
func gcWorld(t *testing.T) *world {
	w := newWorld(t)
	w.checkpoint(spec{job: "job", id: 1, shared: []string{"a", "b"}, private: []string{"p1"}})
	w.checkpoint(spec{job: "job", id: 2, shared: []string{"b", "c"}, private: []string{"p2"}, segments: []string{"m1"}})
	w.checkpoint(spec{job: "job", id: 3, shared: []string{"c", "d"}, private: []string{"p3"}})
	w.ensure(w.key("job/chk-4/p4"), 10)
	w.ensure(w.key("job/shared/orphan"), 10)
	w.ensure(w.key("job/taskowned/t"), 10)
	w.offset = 7 * time.Hour
	return w
}

func (w *world) gcOptions(retain int) flinkjob.GCOptions {
	return flinkjob.GCOptions{Policy: flinkjob.Policy{Retain: retain}, MinAge: 6 * time.Hour, Now: w.now}
}

// checkIntact fails unless every complete checkpoint of the job decodes and
// every file it references exists with its size.
func (w *world) checkIntact(t *testing.T, s flinkjob.Store, what string) {
	t.Helper()
	r, err := flinkjob.ReadJob(w.ctx, s, flinkjob.Job{Prefix: w.key("job")}, flinkjob.Options{Verify: true})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.Latest < 0 {
		t.Fatalf("%s: no complete checkpoint left", what)
	}
}

// TestGCCrashAnywhere stops gc at every storage operation and checks that
// no checkpoint is ever broken, taskowned/ is untouched, and a re-run ends
// where an uninterrupted run does.
func TestGCCrashAnywhere(t *testing.T) {
	ref := gcWorld(t)
	inj := &faultblob.Injector{}
	s := ref.s
	s.Bucket = faultblob.Wrap(ref.loc.Bucket, inj)
	job := []flinkjob.Job{{Prefix: ref.key("job")}}
	plan, err := flinkjob.NewGCPlan(ref.ctx, s, job, ref.gcOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Execute(ref.ctx, nil)
	if err != nil || res.FilesDeleted == 0 {
		t.Fatalf("uninterrupted gc: %+v %v", res, err)
	}
	want := ref.ls("")
	total := inj.Ops()
	t.Logf("an uninterrupted gc takes %d storage operations", total)
	if !strings.Contains(want, "job/taskowned/t") || strings.Contains(want, "job/shared/orphan") || strings.Contains(want, "chk-1") {
		t.Fatalf("end state:\n%s", want)
	}
	for k := 1; k <= total; k++ {
		w := gcWorld(t)
		inj := &faultblob.Injector{}
		inj.CrashAt(k)
		s := w.s
		s.Bucket = faultblob.Wrap(w.loc.Bucket, inj)
		job := []flinkjob.Job{{Prefix: w.key("job")}}
		if plan, err := flinkjob.NewGCPlan(w.ctx, s, job, w.gcOptions(1)); err == nil {
			_, _ = plan.Execute(w.ctx, nil)
		}
		w.checkIntact(t, w.s, "after a crash at operation "+strconv.Itoa(k))
		plan, err := flinkjob.NewGCPlan(w.ctx, w.s, job, w.gcOptions(1))
		if err != nil {
			t.Fatalf("re-run after a crash at %d: %v", k, err)
		}
		if _, err := plan.Execute(w.ctx, nil); err != nil {
			t.Fatalf("re-run after a crash at %d: %v", k, err)
		}
		if got := w.ls(""); got != want {
			t.Fatalf("crash at %d, then re-run:\n%s\nwant\n%s", k, got, want)
		}
	}
}

// TestGCRecheck: a checkpoint Flink completes between the plan and the
// deletion of shared files keeps what it references; one that cannot be
// read stops the sweep of shared files.
func TestGCRecheck(t *testing.T) {
	w := gcWorld(t)
	job := []flinkjob.Job{{Prefix: w.key("job")}}
	plan, err := flinkjob.NewGCPlan(w.ctx, w.s, job, w.gcOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]bool{}
	for _, o := range plan.Objects() {
		planned[w.rel(o.Key)] = true
	}
	if !planned["job/shared/orphan"] || !planned["job/shared/a"] {
		t.Fatalf("plan: %v", planned)
	}
	// Flink completes chk-5, which (oddly, but possibly after a restore)
	// references the orphan and a.
	w.checkpoint(spec{job: "job", id: 5, shared: []string{"orphan", "a"}})
	if _, err := plan.Execute(w.ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"job/shared/orphan", "job/shared/a"} {
		if !w.exists(w.key(k)) {
			t.Errorf("%s was deleted although chk-5 references it", k)
		}
	}
	w.checkIntact(t, w.s, "after gc")

	w = gcWorld(t)
	plan, err = flinkjob.NewGCPlan(w.ctx, w.s, []flinkjob.Job{{Prefix: w.key("job")}}, w.gcOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	w.put(w.key("job/chk-6/_metadata"), []byte{0x49, 0x60, 0x67, 0x2d, 0, 0, 0})
	res, err := plan.Execute(w.ctx, nil)
	if !errors.Is(err, flinkjob.ErrBlocked) || !strings.Contains(err.Error(), "chk-6/_metadata") {
		t.Fatalf("want a blocked sweep naming chk-6, got %v", err)
	}
	if !w.exists(w.key("job/shared/orphan")) || w.exists(w.key("job/chk-1/_metadata")) {
		t.Fatalf("steps 1-2 should run, step 3 not: %+v\n%s", res, w.ls(""))
	}
}

// TestGCFailedMetadataDeletion: when an expired checkpoint's _metadata
// cannot be deleted, it is still a checkpoint, so its files are kept.
func TestGCFailedMetadataDeletion(t *testing.T) {
	w := gcWorld(t)
	inj := &faultblob.Injector{}
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == faultblob.KindDelete && strings.HasSuffix(op.Key, "chk-1/_metadata") {
			return errors.New("injected")
		}
		return nil
	})
	s := w.s
	s.Bucket = faultblob.Wrap(w.loc.Bucket, inj)
	plan, err := flinkjob.NewGCPlan(w.ctx, s, []flinkjob.Job{{Prefix: w.key("job")}}, w.gcOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Execute(w.ctx, nil)
	if !errors.Is(err, flinkjob.ErrPartial) || len(res.Failed) != 1 {
		t.Fatalf("want one failure, got %+v %v", res, err)
	}
	w.checkIntact(t, w.s, "after a failed deletion")
	for _, k := range []string{"job/chk-1/p1", "job/shared/a"} {
		if !w.exists(w.key(k)) {
			t.Errorf("%s of the still-complete chk-1 was deleted", k)
		}
	}
}

func TestGCBadInput(t *testing.T) {
	w := gcWorld(t)
	_, err := flinkjob.NewGCPlan(w.ctx, w.s, []flinkjob.Job{{Prefix: w.key("job")}},
		flinkjob.GCOptions{Policy: flinkjob.Policy{Retain: -1}})
	if !errors.Is(err, flinkjob.ErrBadPolicy) {
		t.Errorf("negative retain: %v", err)
	}
	_, err = flinkjob.NewGCPlan(w.ctx, w.s, []flinkjob.Job{{Prefix: w.key("nothing")}}, w.gcOptions(1))
	if !errors.Is(err, flinkjob.ErrNotFound) {
		t.Errorf("empty location: %v", err)
	}
	// A _metadata naming a path that climbs out of its directory blocks gc.
	m := w.metadataFor(spec{job: "job", id: 7})
	refs := m.FileRefs()
	if err := refs[0].SetPath("a/../../../../etc", true); err != nil {
		t.Fatal(err)
	}
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	w.put(w.key("job/chk-7/_metadata"), data)
	plan, err := flinkjob.NewGCPlan(w.ctx, w.s, []flinkjob.Job{{Prefix: w.key("job")}}, w.gcOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Blocked) != 1 || len(plan.Objects()) != 0 || !strings.Contains(plan.Blocked[0], `".." segment`) {
		t.Fatalf("blocked %q, objects %d", plan.Blocked, len(plan.Objects()))
	}
}
