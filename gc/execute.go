package gc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// JobResult reports one named job.
type JobResult struct {
	Job     string
	Kept    []uint64
	Expired []uint64
	Blocked []string
}

// Result counts what a plan deletes (before Execute: would delete).
type Result struct {
	DryRun         bool
	Jobs           []JobResult
	FilesDeleted   int
	BytesDeleted   int64
	OrphansDeleted int
	LocalDeleted   int
	// TempsDeleted counts the storage's temporary files left by killed
	// writers; their bytes are in BytesDeleted.
	TempsDeleted int
	// Failed lists objects whose deletion failed (Execute only).
	Failed []string
}

// Result describes the plan as it stands: what Execute would delete if no
// reservation appears meanwhile.
func (p *Plan) Result() Result {
	r := Result{DryRun: true}
	for _, jp := range p.Jobs {
		r.Jobs = append(r.Jobs, JobResult{Job: jp.Job.Prefix, Kept: jp.Kept, Expired: jp.Expired, Blocked: jp.Blocked})
		for _, list := range [][]Object{jp.Metadata, jp.Private, jp.Shared, jp.Markers} {
			for _, o := range list {
				r.FilesDeleted++
				r.BytesDeleted += o.Size
				if o.Orphan {
					r.OrphansDeleted++
				}
			}
		}
		r.LocalDeleted += len(jp.Local)
		r.TempsDeleted += jp.Temps
		r.BytesDeleted += jp.TempBytes
	}
	return r
}

// Objects lists every object the plan would delete, in sweep order.
func (p *Plan) Objects() []Object {
	var out []Object
	for _, step := range p.steps() {
		out = append(out, step...)
	}
	return out
}

func (p *Plan) steps() [][]Object {
	var meta, priv, pend, shared, markers []Object
	for _, jp := range p.Jobs {
		meta = append(meta, jp.Metadata...)
		for _, o := range jp.Private {
			if strings.HasSuffix(o.Key, "/"+metadata.PendingName) {
				pend = append(pend, o)
			} else {
				priv = append(priv, o)
			}
		}
		shared = append(shared, jp.Shared...)
		markers = append(markers, jp.Markers...)
	}
	return [][]Object{meta, pend, priv, shared, markers}
}

// Execute deletes what the plan lists, in the sweep order of the package
// doc, re-reading referrer and reservation markers before deleting shared
// files. Failed deletions are collected, not fatal: the result lists them
// and the error wraps ErrPartial. A job the plan found blocked is left
// untouched and the error wraps ErrBlocked. Cancelling ctx stops between
// deletions; what was deleted so far leaves storage consistent.
func (p *Plan) Execute(ctx context.Context, pr progress.Reporter) (Result, error) {
	r := p.Result()
	r.DryRun = false
	r.FilesDeleted, r.BytesDeleted, r.OrphansDeleted, r.LocalDeleted, r.TempsDeleted = 0, 0, 0, 0, 0
	total := len(p.Objects())
	progress.Start(pr, "deleting", int64(total))
	defer progress.Done(pr)

	failed := map[string]bool{}
	steps := p.steps()
	for i, step := range steps {
		if i == 1 {
			// A checkpoint whose _metadata could not be deleted still
			// exists: keep the rest of its directory.
			var dirs []string
			for _, o := range steps[0] {
				if failed[o.Key] {
					dirs = append(dirs, metadata.DirOf(o.Key))
				}
			}
			step = withoutDirs(step, dirs)
			steps[2] = withoutDirs(steps[2], dirs)
		}
		if i == 3 {
			// Before shared files: see who started using what since the plan.
			var err error
			if step, err = p.recheck(ctx); err != nil {
				return r, err
			}
		}
		// Each step's deletions are made durable before the next step
		// starts (local files: one fsync per directory, not per object).
		bctx, batch := storage.WithSyncBatch(ctx)
		if err := p.deleteAll(bctx, step, &r, failed, pr); err != nil {
			return r, err
		}
		if err := batch.Sync(ctx); err != nil {
			return r, fmt.Errorf("%w: stopped before the next sweep step: %v", ErrPartial, err)
		}
	}
	for _, jp := range p.Jobs {
		if p.opts.SweepTemps == nil || len(jp.Blocked) > 0 || ctx.Err() != nil {
			continue
		}
		n, size, err := p.opts.SweepTemps(ctx, jp.Job.Prefix, p.now.Add(-p.opts.MinAge), false)
		r.TempsDeleted += n
		r.BytesDeleted += size
		if err != nil {
			r.Failed = append(r.Failed, err.Error())
		}
	}
	for _, jp := range p.Jobs {
		for _, dir := range jp.Local {
			if err := os.RemoveAll(dir); err != nil {
				r.Failed = append(r.Failed, fmt.Sprintf("%s: %v", dir, err))
				continue
			}
			r.LocalDeleted++
		}
	}
	var errs []error
	if len(r.Failed) > 0 {
		errs = append(errs, fmt.Errorf("%w: %d objects, first %s", ErrPartial, len(r.Failed), r.Failed[0]))
	}
	for _, jp := range p.Jobs {
		if len(jp.Blocked) > 0 {
			errs = append(errs, fmt.Errorf("%w: %s: %s", ErrBlocked, display(jp.Job.Prefix), strings.Join(jp.Blocked, "; ")))
		}
	}
	return r, errors.Join(errs...)
}

// withoutDirs drops from objs those under any of the directories dirs.
func withoutDirs(objs []Object, dirs []string) []Object {
	if len(dirs) == 0 {
		return objs
	}
	var keep []Object
	for _, o := range objs {
		under := false
		for _, d := range dirs {
			under = under || strings.HasPrefix(o.Key, d+"/")
		}
		if !under {
			keep = append(keep, o)
		}
	}
	return keep
}

// recheck re-reads the named jobs' checkpoints, reservations and referrer
// markers, and returns the shared objects that are still safe to delete.
func (p *Plan) recheck(ctx context.Context) ([]Object, error) {
	for _, jp := range p.Jobs {
		if len(jp.Blocked) > 0 {
			continue
		}
		jp.reservedSince = time.Time{}
		fresh, err := readJob(ctx, p.b, jp.Job)
		if err != nil {
			return nil, err
		}
		// A checkpoint committed since the plan may reference anything
		// its base did: keep what it names; if it cannot be read, keep
		// all of this job's shared files this time.
		jp.Blocked = append(jp.Blocked, fresh.problems...)
		for _, c := range fresh.checkpoints {
			p.markLive(fresh.job, c)
		}
		if err := p.protectReservations(ctx, fresh, jp); err != nil {
			return nil, err
		}
		for _, m := range fresh.markers {
			if err := p.addReferrer(ctx, jp, m, true); err != nil {
				return nil, err
			}
		}
	}
	var out []Object
	for _, jp := range p.Jobs {
		if len(jp.Blocked) > 0 {
			jp.Shared = nil
			continue
		}
		kept := jp.Shared[:0]
		for _, o := range jp.Shared {
			if !p.live[o.Key] && !p.mayBeUpload(jp, object{key: o.Key, mod: o.mod}) {
				kept = append(kept, o)
			}
		}
		jp.Shared = kept
		out = append(out, kept...)
	}
	return out, nil
}

// deleteAll deletes objs in parallel, counting into r and recording in
// failed the keys whose deletion failed.
func (p *Plan) deleteAll(ctx context.Context, objs []Object, r *Result, failed map[string]bool, pr progress.Reporter) error {
	par := p.opts.Parallel
	if par <= 0 {
		par = 8
	}
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, o := range objs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := p.b.Delete(ctx, o.Key)
			progress.Add(pr, 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil, storage.IsNotFound(err):
				r.FilesDeleted++
				r.BytesDeleted += o.Size
				if o.Orphan {
					r.OrphansDeleted++
				}
			case ctx.Err() != nil:
			default:
				failed[o.Key] = true
				r.Failed = append(r.Failed, fmt.Sprintf("%s: %v", o.Key, storage.Wrap(err)))
			}
		}()
	}
	wg.Wait()
	sort.Strings(r.Failed)
	return ctx.Err()
}
