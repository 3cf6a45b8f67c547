package flinkjob

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// Policy says which complete checkpoints of a job are kept. The newest
// complete checkpoint is always kept; with neither Retain nor KeepWithin
// set, every checkpoint is kept and gc only removes garbage.
type Policy struct {
	// Retain keeps the newest Retain complete checkpoints (0: not set).
	Retain int
	// KeepWithin keeps checkpoints whose `_metadata` was written within
	// this duration before now (0: not set). Flink records no time in
	// `_metadata`: its modification time is the checkpoint's time.
	KeepWithin time.Duration
	// Keep pins checkpoint ids.
	Keep []int64
}

// GCOptions tune a plan.
type GCOptions struct {
	Policy Policy
	// MinAge protects young objects: no object younger than MinAge is
	// deleted, and a checkpoint directory holding one is neither expired
	// nor swept (it may be a checkpoint Flink is writing).
	MinAge time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Parallel bounds concurrent deletions (8 if 0).
	Parallel int
}

// GCObject is one object a plan deletes.
type GCObject struct {
	Key  string
	Size int64
	// Orphan: no checkpoint, kept or expired, references it.
	Orphan bool
}

// GCJob is what a plan does in one job directory.
type GCJob struct {
	Job     Job
	Kept    []int64
	Expired []int64
	// Young lists checkpoints the policy expires but whose directory holds
	// objects younger than MinAge: they are kept this time.
	Young []int64
	// Incomplete lists the stale incomplete chk-<N> directories deleted.
	Incomplete []int64
	// Objects to delete, by sweep step: the expired checkpoints'
	// `_metadata`, then the other objects of expired and stale incomplete
	// directories, then unreferenced shared/ objects.
	Metadata, Exclusive, Shared []GCObject
	// TaskOwned counts the taskowned/ objects, which are never touched.
	TaskOwned Count
}

// GCPlan is a computed garbage collection of Flink job directories;
// nothing is deleted until Execute.
type GCPlan struct {
	Jobs []*GCJob
	// Blocked lists why nothing is deleted (empty: not blocked).
	Blocked []string

	s        Store
	opts     GCOptions
	now      time.Time
	live     map[string]bool
	executed bool
}

// GCJobResult reports one job.
type GCJobResult struct {
	Job                              string
	Kept, Expired, Young, Incomplete []int64
	TaskOwned                        int
}

// GCResult counts what a plan deletes (before Execute: would delete).
type GCResult struct {
	DryRun         bool
	Jobs           []GCJobResult
	FilesDeleted   int
	BytesDeleted   int64
	OrphansDeleted int
	// TaskOwnedUntouched counts the taskowned/ objects left alone.
	TaskOwnedUntouched int
	Blocked            []string
	// Failed lists objects whose deletion failed (Execute only).
	Failed []string
}

// NewGCPlan reads the named Flink job directories and computes what to
// delete: the checkpoints the policy expires in each job, the objects of
// stale incomplete chk-<N> directories, and the shared/ objects that no
// kept checkpoint of any named job references. A file is live if a kept
// checkpoint of any named job references it: name together every job
// whose checkpoints reference another's files (a job restored from
// another's checkpoint in CLAIM or LEGACY mode).
//
// If any `_metadata` of the named jobs cannot be decoded, or names a path
// that cannot be resolved safely, the plan is blocked: it lists the causes
// in Blocked and deletes nothing. NewGCPlan writes nothing. A location
// holding no chk-<N>, shared/ or taskowned/ object wraps ErrNotFound.
func NewGCPlan(ctx context.Context, s Store, jobs []Job, opts GCOptions) (*GCPlan, error) {
	pol := opts.Policy
	if pol.Retain < 0 || pol.KeepWithin < 0 || opts.MinAge < 0 {
		return nil, fmt.Errorf("%w: retain, keep-within and min-age must not be negative", ErrBadPolicy)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := &GCPlan{s: s, opts: opts, now: now(), live: map[string]bool{}}
	seen := map[string]bool{}
	type jobState struct {
		plan    *GCJob
		listing *jobListing
		snaps   map[int64]*Snapshot
	}
	var states []jobState
	for _, j := range jobs {
		if seen[j.Prefix] {
			continue
		}
		seen[j.Prefix] = true
		l, err := listJob(ctx, s.Bucket, j)
		if err != nil {
			return nil, err
		}
		if len(l.dirs) == 0 && len(l.shared) == 0 && len(l.taskOwned) == 0 {
			return nil, notFound("no chk-<N>, shared/ or taskowned/ in %s (not a Flink job directory?)", displayKey(j.Prefix))
		}
		snaps, blocked, err := p.readCheckpoints(ctx, j, l)
		if err != nil {
			return nil, err
		}
		p.Blocked = append(p.Blocked, blocked...)
		jp := &GCJob{Job: j}
		for _, o := range l.taskOwned {
			jp.TaskOwned.add(o.size)
		}
		p.Jobs = append(p.Jobs, jp)
		states = append(states, jobState{jp, l, snaps})
		p.decide(jp, l, snaps)
	}
	for _, st := range states {
		for _, ids := range [][]int64{st.plan.Kept, st.plan.Young} {
			for _, id := range ids {
				p.markLive(st.snaps[id])
			}
		}
	}
	if len(p.Blocked) > 0 {
		return p, nil
	}
	for _, st := range states {
		p.sweep(st.plan, st.listing, st.snaps)
	}
	return p, nil
}

// readCheckpoints reads every listed `_metadata` of job; what cannot be
// read or resolved is returned as reasons to block.
func (p *GCPlan) readCheckpoints(ctx context.Context, j Job, l *jobListing) (map[int64]*Snapshot, []string, error) {
	snaps := map[int64]*Snapshot{}
	var blocked []string
	for _, id := range l.ids() {
		if l.metadataOf(j, id) == nil {
			continue
		}
		snap, err := ReadMetadata(ctx, p.s.Bucket, j.MetadataKey(id))
		switch {
		case err == nil:
			snaps[id] = snap
		case errors.Is(err, ErrNotFound):
			// Deleted since the listing: now an incomplete directory.
		case errors.Is(err, ErrCorrupt):
			blocked = append(blocked, err.Error())
			continue
		default:
			return nil, nil, err
		}
		if snap != nil {
			for _, ref := range snap.Metadata.FileRefs() {
				if _, err := p.s.Resolve(snap.Dir, ref.Path, ref.Relative); err != nil && !errors.Is(err, ErrOutsideBucket) {
					blocked = append(blocked, fmt.Sprintf("%s: %v", snap.Key, err))
					break
				}
			}
		}
	}
	return snaps, blocked, nil
}

func (p *GCPlan) fresh(mod time.Time) bool {
	return mod.After(p.now.Add(-p.opts.MinAge))
}

func (p *GCPlan) freshDir(objs []object) bool {
	for _, o := range objs {
		if p.fresh(o.mod) {
			return true
		}
	}
	return false
}

// decide applies the policy to a job's complete checkpoints.
func (p *GCPlan) decide(jp *GCJob, l *jobListing, snaps map[int64]*Snapshot) {
	ids := make([]int64, 0, len(snaps))
	for id := range snaps {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] > ids[b] }) // newest first
	pol := p.opts.Policy
	pinned := map[int64]bool{}
	for _, id := range pol.Keep {
		pinned[id] = true
	}
	expireSome := pol.Retain > 0 || pol.KeepWithin > 0
	for i, id := range ids {
		keep := i == 0 || !expireSome || pinned[id] ||
			(pol.Retain > 0 && i < pol.Retain) ||
			(pol.KeepWithin > 0 && !snaps[id].ModTime.Before(p.now.Add(-pol.KeepWithin)))
		switch {
		case keep:
			jp.Kept = append(jp.Kept, id)
		case p.freshDir(l.dirs[id]):
			jp.Young = append(jp.Young, id)
		default:
			jp.Expired = append(jp.Expired, id)
		}
	}
	for _, v := range [][]int64{jp.Kept, jp.Young, jp.Expired} {
		sort.Slice(v, func(a, b int) bool { return v[a] < v[b] })
	}
}

// markLive marks live every object snap references.
func (p *GCPlan) markLive(snap *Snapshot) {
	if snap == nil {
		return
	}
	for _, ref := range snap.Metadata.FileRefs() {
		if key, err := p.s.Resolve(snap.Dir, ref.Path, ref.Relative); err == nil {
			p.live[key] = true
		}
	}
}

// sweep lists what to delete in a job.
func (p *GCPlan) sweep(jp *GCJob, l *jobListing, snaps map[int64]*Snapshot) {
	expiredRefs := map[string]bool{}
	for _, id := range jp.Expired {
		meta := l.metadataOf(jp.Job, id)
		jp.Metadata = append(jp.Metadata, GCObject{Key: meta.key, Size: meta.size})
		for _, o := range l.dirs[id] {
			if o.key != meta.key && !p.live[o.key] {
				jp.Exclusive = append(jp.Exclusive, GCObject{Key: o.key, Size: o.size})
			}
		}
		for _, ref := range snaps[id].Metadata.FileRefs() {
			if key, err := p.s.Resolve(snaps[id].Dir, ref.Path, ref.Relative); err == nil {
				expiredRefs[key] = true
			}
		}
	}
	for _, id := range l.ids() {
		if snaps[id] != nil || p.freshDir(l.dirs[id]) {
			continue
		}
		n := len(jp.Exclusive)
		for _, o := range l.dirs[id] {
			if !p.live[o.key] {
				jp.Exclusive = append(jp.Exclusive, GCObject{Key: o.key, Size: o.size, Orphan: true})
			}
		}
		if len(jp.Exclusive) > n {
			jp.Incomplete = append(jp.Incomplete, id)
		}
	}
	for _, o := range l.shared {
		if !p.live[o.key] && !p.fresh(o.mod) {
			jp.Shared = append(jp.Shared, GCObject{Key: o.key, Size: o.size, Orphan: !expiredRefs[o.key]})
		}
	}
}

// Result describes the plan as it stands.
func (p *GCPlan) Result() GCResult {
	r := GCResult{DryRun: true, Blocked: p.Blocked}
	for _, jp := range p.Jobs {
		r.Jobs = append(r.Jobs, GCJobResult{Job: jp.Job.Prefix, Kept: jp.Kept, Expired: jp.Expired,
			Young: jp.Young, Incomplete: jp.Incomplete, TaskOwned: jp.TaskOwned.Handles})
		r.TaskOwnedUntouched += jp.TaskOwned.Handles
		for _, step := range [][]GCObject{jp.Metadata, jp.Exclusive, jp.Shared} {
			for _, o := range step {
				r.count(o)
			}
		}
	}
	return r
}

func (r *GCResult) count(o GCObject) {
	r.FilesDeleted++
	r.BytesDeleted += o.Size
	if o.Orphan {
		r.OrphansDeleted++
	}
}

// Objects lists every object the plan deletes, in deletion order.
func (p *GCPlan) Objects() []GCObject {
	var out []GCObject
	for _, step := range p.steps() {
		out = append(out, step...)
	}
	return out
}

func (p *GCPlan) steps() [3][]GCObject {
	var s [3][]GCObject
	for _, jp := range p.Jobs {
		s[0] = append(s[0], jp.Metadata...)
		s[1] = append(s[1], jp.Exclusive...)
		s[2] = append(s[2], jp.Shared...)
	}
	return s
}

// Execute deletes what the plan lists: first the `_metadata` of every
// expired checkpoint (it stops being a checkpoint), then the other objects
// of expired and stale incomplete directories, then, after listing the
// jobs and reading every `_metadata` again (a checkpoint Flink completed
// meanwhile keeps what it references; one that cannot be read stops the
// sweep), the unreferenced shared/ objects. A blocked plan deletes nothing
// and returns ErrBlocked. Failed deletions are collected: the result lists
// them and the error wraps ErrPartial. Cancelling ctx stops between
// deletions, leaving storage consistent. Execute may be called once.
func (p *GCPlan) Execute(ctx context.Context, pr progress.Reporter) (GCResult, error) {
	r := p.Result()
	r.DryRun = false
	r.FilesDeleted, r.BytesDeleted, r.OrphansDeleted = 0, 0, 0
	if p.executed {
		return r, errors.New("flinkjob: gc plan already executed")
	}
	p.executed = true
	if len(p.Blocked) > 0 {
		return r, p.blockedError()
	}
	steps := p.steps()
	progress.Start(pr, "deleting", int64(len(steps[0])+len(steps[1])+len(steps[2])))
	defer progress.Done(pr)
	failed := map[string]bool{}
	for i, step := range steps {
		switch i {
		case 1:
			// A checkpoint whose _metadata could not be deleted is still
			// a checkpoint: keep its files.
			kept := step[:0]
			for _, o := range step {
				if !failed[DirOf(o.Key)+"/"+MetadataName] {
					kept = append(kept, o)
				}
			}
			step = kept
		case 2:
			var err error
			if step, err = p.recheck(ctx); err != nil {
				return r, err
			}
			if len(p.Blocked) > 0 {
				r.Blocked = p.Blocked
				return r, p.blockedError()
			}
		}
		if err := p.deleteAll(ctx, step, &r, failed, pr); err != nil {
			return r, err
		}
	}
	if len(r.Failed) > 0 {
		return r, fmt.Errorf("%w: %d objects, first %s", ErrPartial, len(r.Failed), r.Failed[0])
	}
	return r, nil
}

func (p *GCPlan) blockedError() error {
	return fmt.Errorf("%w: nothing was deleted because a _metadata cannot be read: %s", ErrBlocked, strings.Join(p.Blocked, "; "))
}

// recheck lists the jobs and reads their checkpoints again, marks live what
// any of them references, and returns the planned shared objects that are
// still unreferenced and old.
func (p *GCPlan) recheck(ctx context.Context) ([]GCObject, error) {
	mods := map[string]time.Time{}
	for _, jp := range p.Jobs {
		l, err := listJob(ctx, p.s.Bucket, jp.Job)
		if err != nil {
			return nil, err
		}
		snaps, blocked, err := p.readCheckpoints(ctx, jp.Job, l)
		if err != nil {
			return nil, err
		}
		p.Blocked = append(p.Blocked, blocked...)
		for _, snap := range snaps {
			p.markLive(snap)
		}
		for _, o := range l.shared {
			mods[o.key] = o.mod
		}
	}
	var out []GCObject
	for _, jp := range p.Jobs {
		kept := jp.Shared[:0]
		for _, o := range jp.Shared {
			mod, ok := mods[o.Key]
			if ok && !p.live[o.Key] && !p.fresh(mod) {
				kept = append(kept, o)
			}
		}
		jp.Shared = kept
		out = append(out, kept...)
	}
	return out, nil
}

// deleteAll deletes objs in parallel, counting them in r; the keys whose
// deletion failed are added to failed and listed in r.Failed.
func (p *GCPlan) deleteAll(ctx context.Context, objs []GCObject, r *GCResult, failed map[string]bool, pr progress.Reporter) error {
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
			err := p.s.Bucket.Delete(ctx, o.Key)
			progress.Add(pr, 1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil, storage.IsNotFound(err):
				r.count(o)
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
