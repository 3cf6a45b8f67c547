package gc_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// world is the state a gc scenario acts on: real Pebble stores, one bucket,
// and a clock that can be moved forward past gc's min-age.
type world struct {
	t       testing.TB
	ctx     context.Context
	b       *blob.Bucket
	base    time.Time
	offset  time.Duration
	stores  map[string]*storeState
	digests map[string]string // "job/chk-N" → expected content
}

type storeState struct {
	dir    string
	spec   testpebble.Spec
	origin *checkpoint.OriginRef
}

func newWorld(t testing.TB) *world {
	return &world{
		t: t, ctx: context.Background(), b: memblob.OpenBucket(nil), base: time.Now(),
		stores: map[string]*storeState{}, digests: map[string]string{},
	}
}

func (w *world) now() time.Time { return time.Now().Add(w.offset) }

func (w *world) store(name string, keys int, seed uint64) {
	spec := testpebble.Spec{Keys: keys, ValueSize: 64, Seed: seed}
	dir := filepath.Join(w.t.TempDir(), name)
	if err := testpebble.Create(testpebble.V2, dir, spec); err != nil {
		w.t.Fatal(err)
	}
	w.stores[name] = &storeState{dir: dir, spec: spec}
}

func (w *world) churn(name string, fraction float64, seed uint64) {
	s := w.stores[name]
	if err := testpebble.Churn(testpebble.V2, s.dir, s.spec, fraction, seed); err != nil {
		w.t.Fatal(err)
	}
}

// create checkpoints store into job through b (the world's bucket unless a
// fault-injecting one is given).
func (w *world) create(b *blob.Bucket, job, store string) (*checkpoint.Result, error) {
	s := w.stores[store]
	src, err := checkpoint.OpenDir("default", s.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	defer src.Close()
	r, err := checkpoint.Create(w.ctx, b, metadata.Job{Prefix: job}, []*checkpoint.Store{src},
		checkpoint.Options{Now: w.now, Origin: s.origin})
	if err != nil {
		return nil, err
	}
	d, err := testpebble.Digest(s.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	w.digests[fmt.Sprintf("%s/chk-%d", job, r.CheckpointID)] = d
	return r, nil
}

// restore materialises checkpoint id of job as a new store, remembering its
// origin (with or without claim) for the next create.
func (w *world) restore(job string, id uint64, into string, claim bool) {
	dir := filepath.Join(w.t.TempDir(), into)
	j := metadata.Job{Prefix: job}
	if err := testutil.Materialize(w.ctx, w.b, j, id, "default", dir); err != nil {
		w.t.Fatal(err)
	}
	c, err := metadata.Read(w.ctx, w.b, j.MetadataKey(id))
	if err != nil {
		w.t.Fatal(err)
	}
	w.stores[into] = &storeState{dir: dir, spec: testpebble.Spec{Keys: 3000, ValueSize: 64},
		origin: &checkpoint.OriginRef{Dir: j.CheckpointDir(id), JobID: c.JobID, CheckpointID: id, Claim: claim}}
}

func (w *world) gc(b *blob.Bucket, jobs []string, opts gc.Options, dryRun bool) (gc.Result, *gc.Plan, error) {
	opts.Now = w.now
	var js []metadata.Job
	for _, j := range jobs {
		js = append(js, metadata.Job{Prefix: j})
	}
	plan, err := gc.NewPlan(w.ctx, b, js, opts)
	if err != nil {
		return gc.Result{}, nil, err
	}
	if dryRun {
		return plan.Result(), plan, nil
	}
	r, err := plan.Execute(w.ctx, nil)
	return r, plan, err
}

// check verifies the invariants gc must keep: every committed checkpoint of
// every job verifies and holds the data it was taken from, and (unless
// young is allowed) no object older than minAge is unreachable.
func (w *world) check(minAge time.Duration) string {
	keys := w.allKeys()
	live := map[string]bool{}
	var out []string
	jobs := map[string]bool{}
	for k := range keys {
		if i := strings.Index(k, "/chk-"); i > 0 {
			jobs[k[:i]] = true
		}
		if i := strings.Index(k, "/shared/"); i > 0 {
			jobs[k[:i]] = true
		}
	}
	verified := 0
	for job := range jobs {
		j := metadata.Job{Prefix: job}
		entries, err := metadata.ListJob(w.ctx, w.b, j)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, e := range entries {
			if !e.Committed {
				continue
			}
			c, err := testutil.VerifyCheckpoint(w.ctx, w.b, j, e.ID)
			if err != nil {
				if strings.Contains(err.Error(), "corrupt") {
					continue // corrupted on purpose by the scenario
				}
				out = append(out, fmt.Sprintf("BROKEN %s/chk-%d: %v", job, e.ID, err))
				continue
			}
			verified++
			live[j.MetadataKey(e.ID)] = true
			live[j.PendingKey(e.ID)] = true
			for _, s := range c.Stores {
				for _, f := range s.Files {
					k, _ := metadata.Resolve(j.CheckpointDir(e.ID), f.Path)
					live[k] = true
				}
			}
			if want, ok := w.digests[fmt.Sprintf("%s/chk-%d", job, e.ID)]; ok {
				dir := filepath.Join(w.t.TempDir(), "check")
				if err := testutil.Materialize(w.ctx, w.b, j, e.ID, "default", dir); err != nil {
					w.t.Fatal(err)
				}
				if got, err := testpebble.Digest(dir); err != nil || got != want {
					out = append(out, fmt.Sprintf("WRONG DATA %s/chk-%d", job, e.ID))
				}
			}
		}
	}
	garbage := 0
	for k, mod := range keys {
		if live[k] || strings.Contains(k, "/"+metadata.ReferrersDir+"/") || mod.After(w.now().Add(-minAge)) {
			continue
		}
		if strings.HasSuffix(k, "/"+metadata.MetadataName) {
			continue // a corrupt checkpoint, kept on purpose
		}
		garbage++
	}
	out = append(out, fmt.Sprintf("%d checkpoints verified", verified))
	if garbage > 0 {
		out = append(out, fmt.Sprintf("%d unreachable objects older than min-age", garbage))
	}
	return strings.Join(out, "\n")
}

func (w *world) allKeys() map[string]time.Time {
	out := map[string]time.Time{}
	it := w.b.List(nil)
	for {
		o, err := it.Next(w.ctx)
		if err == io.EOF {
			return out
		}
		if err != nil {
			w.t.Fatal(err)
		}
		out[o.Key] = o.ModTime
	}
}

// ls shows a job's checkpoint directories and referrers.
func (w *world) ls(job string) string {
	j := metadata.Job{Prefix: job}
	entries, err := metadata.ListJob(w.ctx, w.b, j)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		state := "complete"
		if !e.Committed {
			state = "incomplete"
		}
		out = append(out, fmt.Sprintf("chk-%d %s", e.ID, state))
	}
	var refs []string
	for k := range w.allKeys() {
		if r, ok := strings.CutPrefix(k, j.ReferrersDirKey()); ok {
			refs = append(refs, r[:4]+"…")
		}
	}
	sort.Strings(refs)
	if len(refs) > 0 {
		out = append(out, fmt.Sprintf("referrers: %d", len(refs)))
	}
	if len(out) == 0 {
		return "empty"
	}
	return strings.Join(out, "\n")
}

// crashCreate runs a create that dies at its k-th storage operation.
func (w *world) crashCreate(job, store string, k int) {
	inj := &faultblob.Injector{}
	inj.CrashAt(k)
	if _, err := w.create(faultblob.Wrap(w.b, inj), job, store); err == nil {
		w.t.Fatalf("create survived a crash at op %d", k)
	}
}

func (w *world) corrupt(job string, id uint64) {
	key := metadata.Job{Prefix: job}.MetadataKey(id)
	data, err := w.b.ReadAll(w.ctx, key)
	if err != nil {
		w.t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := w.b.WriteAll(w.ctx, key, data, nil); err != nil {
		w.t.Fatal(err)
	}
}

func formatResult(r gc.Result, err error) string {
	var out []string
	for _, j := range r.Jobs {
		out = append(out, fmt.Sprintf("%s: kept %v expired %v", j.Job, j.Kept, j.Expired))
		for _, b := range j.Blocked {
			out = append(out, "  blocked: "+normalize(b))
		}
	}
	if r.DryRun {
		out = append(out, "dry run")
	}
	if err != nil {
		out = append(out, "error: "+normalize(err.Error()))
	}
	return strings.Join(out, "\n")
}

// normalize hides random job ids in messages.
func normalize(s string) string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ' ' || r == ':' })
	for _, f := range fields {
		if len(f) == 32 && strings.Trim(f, "0123456789abcdef") == "" {
			s = strings.ReplaceAll(s, f, "<job-id>")
		}
	}
	return s
}
