package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
)

// DefaultMinAge is the default age below which gc leaves orphans and
// incomplete checkpoints alone: far above the interval at which creators
// refresh their reservation, and longer than any sane upload.
const DefaultMinAge = 6 * time.Hour

// Errors.
var (
	// ErrBadPolicy means the retention policy or options are invalid.
	ErrBadPolicy = errors.New("gc: invalid policy")
	// ErrBlocked means gc deleted nothing in some job because a checkpoint
	// it (or a job referring to it) holds could not be read.
	ErrBlocked = errors.New("gc: some jobs were left untouched")
	// ErrPartial means some deletions failed; re-running is safe.
	ErrPartial = errors.New("gc: some deletions failed")
)

// Policy says which complete checkpoints a job keeps. The newest complete
// checkpoint is always kept. With neither Retain nor KeepWithin set, every
// checkpoint is kept and gc only removes orphans.
type Policy struct {
	// Retain keeps the newest Retain complete checkpoints (0: not set).
	Retain int
	// KeepWithin keeps checkpoints created within this duration before now
	// (0: not set).
	KeepWithin time.Duration
	// Keep pins checkpoint ids.
	Keep []uint64
}

// Validate rejects negative values.
func (p Policy) Validate() error {
	if p.Retain < 0 {
		return fmt.Errorf("%w: retain %d", ErrBadPolicy, p.Retain)
	}
	if p.KeepWithin < 0 {
		return fmt.Errorf("%w: keep-within %s", ErrBadPolicy, p.KeepWithin)
	}
	return nil
}

// Options tune a plan.
type Options struct {
	Policy Policy
	// MinAge protects young objects (see the package doc). Zero protects
	// nothing by age; the command line defaults to DefaultMinAge.
	MinAge time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Parallel bounds concurrent deletions (8 if 0).
	Parallel int
	// ClockSkew is how far creators' clocks may be off gc's: a live
	// reservation made at time T protects the job's shared objects written
	// after T-ClockSkew, however long the creator has been running.
	ClockSkew time.Duration
	// LocalDir, with exactly one job, is the job's local copy directory
	// (`create --local-dir`): copies of checkpoints that are not kept are
	// removed.
	LocalDir string
	// SweepTemps, if set, removes (with dryRun: counts) the storage's own
	// temporary files below a job's prefix last modified before a time,
	// which killed writers leave and which are never objects
	// (storage.SweepTemps for local files). The cut-off is MinAge ago.
	SweepTemps func(ctx context.Context, prefix string, before time.Time, dryRun bool) (files int, bytes int64, err error)
}

// Object is one object a plan deletes.
type Object struct {
	Key  string
	Size int64
	mod  time.Time
	// Orphan is true when no checkpoint, kept or expired, references it.
	Orphan bool
}

// JobPlan is what a plan does in one job.
type JobPlan struct {
	Job     metadata.Job
	Kept    []uint64
	Expired []uint64
	// Blocked lists why nothing is deleted in this job (empty: not
	// blocked).
	Blocked []string
	// Objects to delete, by sweep step.
	Metadata []Object
	Private  []Object
	Shared   []Object
	Markers  []Object
	// Local lists local copy directories to remove.
	Local []string
	// Temps and TempBytes count the storage's temporary files left by
	// killed writers (see Options.SweepTemps).
	Temps     int
	TempBytes int64

	// reservedSince is when the oldest live reservation of the job was
	// made (zero: none); the job's newer shared objects may be its uploads.
	reservedSince time.Time
}

// Plan is a computed garbage collection; nothing is deleted until Execute.
type Plan struct {
	Jobs []*JobPlan

	b     *blob.Bucket
	opts  Options
	now   time.Time
	live  map[string]bool
	jobs  map[string]*jobState // every job read: named and referrers
	named map[string]*JobPlan
}

type object struct {
	key  string
	size int64
	mod  time.Time
}

// jobState is what gc read of one job.
type jobState struct {
	job         metadata.Job
	dirs        map[uint64]*dirState
	shared      []object
	markers     []object
	checkpoints map[uint64]*metadata.Checkpoint
	problems    []string
}

type dirState struct {
	meta    *object
	pending *object
	objects []object // all objects of the directory, including the two above
}

// NewPlan reads the named jobs and their referrers and computes what to
// delete. It writes nothing.
func NewPlan(ctx context.Context, b *blob.Bucket, jobs []metadata.Job, opts Options) (*Plan, error) {
	if err := opts.Policy.Validate(); err != nil {
		return nil, err
	}
	if opts.MinAge < 0 {
		return nil, fmt.Errorf("%w: negative min-age", ErrBadPolicy)
	}
	if opts.LocalDir != "" && len(jobs) != 1 {
		return nil, fmt.Errorf("%w: a local directory belongs to one job, and %d jobs were given", ErrBadPolicy, len(jobs))
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := &Plan{b: b, opts: opts, now: now(), live: map[string]bool{}, jobs: map[string]*jobState{}, named: map[string]*JobPlan{}}
	for _, j := range jobs {
		if _, dup := p.named[j.Prefix]; dup {
			continue
		}
		st, err := readJob(ctx, b, j)
		if err != nil {
			return nil, err
		}
		if len(st.dirs) == 0 && len(st.shared) == 0 && len(st.markers) == 0 {
			return nil, fmt.Errorf("%w: no checkpoints in %s (not a job location?)", metadata.ErrNotFound, display(j.Prefix))
		}
		p.jobs[j.Prefix] = st
		jp := &JobPlan{Job: j, Blocked: st.problems}
		p.named[j.Prefix] = jp
		p.Jobs = append(p.Jobs, jp)
		p.decide(jp, st)
	}
	// Live files of the named jobs' kept checkpoints and reservations.
	for _, jp := range p.Jobs {
		st := p.jobs[jp.Job.Prefix]
		for _, id := range jp.Kept {
			p.markLive(st.job, st.checkpoints[id])
		}
		if err := p.protectReservations(ctx, st, jp); err != nil {
			return nil, err
		}
	}
	// Referrers: every job that recorded a marker in a named job.
	for _, jp := range p.Jobs {
		st := p.jobs[jp.Job.Prefix]
		for _, m := range st.markers {
			if err := p.addReferrer(ctx, jp, m, false); err != nil {
				return nil, err
			}
		}
	}
	for _, jp := range p.Jobs {
		p.sweep(jp)
		if opts.SweepTemps != nil && len(jp.Blocked) == 0 {
			n, size, err := opts.SweepTemps(ctx, jp.Job.Prefix, p.now.Add(-opts.MinAge), true)
			if err != nil {
				return nil, err
			}
			jp.Temps, jp.TempBytes = n, size
		}
	}
	if p.opts.LocalDir != "" {
		if err := p.planLocal(p.Jobs[0]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// readJob lists a job and reads every committed checkpoint's _metadata.
func readJob(ctx context.Context, b *blob.Bucket, j metadata.Job) (*jobState, error) {
	st := &jobState{job: j, dirs: map[uint64]*dirState{}, checkpoints: map[uint64]*metadata.Checkpoint{}}
	it := b.List(&blob.ListOptions{Prefix: j.Dir()})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", display(j.Prefix), storage.Wrap(err))
		}
		obj := object{key: o.Key, size: o.Size, mod: o.ModTime}
		rest := o.Key[len(j.Dir()):]
		top, name, _ := strings.Cut(rest, "/")
		switch {
		case top == metadata.SharedDir && name != "":
			st.shared = append(st.shared, obj)
		case top == metadata.ReferrersDir && name != "" && !strings.Contains(name, "/"):
			st.markers = append(st.markers, obj)
		default:
			id, ok := metadata.ParseCheckpointDirName(top)
			if !ok || name == "" {
				continue // not ckpt's: never touched
			}
			d := st.dirs[id]
			if d == nil {
				d = &dirState{}
				st.dirs[id] = d
			}
			d.objects = append(d.objects, obj)
		}
	}
	// Point at the two markers once the slices are complete.
	for id, d := range st.dirs {
		for i := range d.objects {
			switch d.objects[i].key {
			case j.MetadataKey(id):
				d.meta = &d.objects[i]
			case j.PendingKey(id):
				d.pending = &d.objects[i]
			}
		}
	}
	for id, d := range st.dirs {
		if d.meta == nil {
			continue
		}
		c, err := metadata.Read(ctx, b, j.MetadataKey(id))
		switch {
		case err == nil:
			st.checkpoints[id] = c
		case errors.Is(err, metadata.ErrNotFound):
			delete(st.dirs, id) // vanished since the listing (a concurrent gc)
		case errors.Is(err, metadata.ErrCorrupt), errors.Is(err, metadata.ErrNewerVersion):
			st.problems = append(st.problems, fmt.Sprintf("%s: %v", j.CheckpointDir(id), err))
		default:
			return nil, err
		}
	}
	sort.Strings(st.problems)
	return st, nil
}

// decide applies the policy to a named job's complete checkpoints.
func (p *Plan) decide(jp *JobPlan, st *jobState) {
	var ids []uint64
	for id := range st.checkpoints {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, c int) bool { return ids[a] > ids[c] }) // newest first
	pol := p.opts.Policy
	pinned := map[uint64]bool{}
	for _, id := range pol.Keep {
		pinned[id] = true
	}
	expireSome := pol.Retain > 0 || pol.KeepWithin > 0
	for i, id := range ids {
		keep := i == 0 || !expireSome || pinned[id] ||
			(pol.Retain > 0 && i < pol.Retain) ||
			(pol.KeepWithin > 0 && !st.checkpoints[id].CreatedAt.Before(p.now.Add(-pol.KeepWithin)))
		if keep {
			jp.Kept = append(jp.Kept, id)
		} else {
			jp.Expired = append(jp.Expired, id)
		}
	}
	sort.Slice(jp.Kept, func(a, c int) bool { return jp.Kept[a] < jp.Kept[c] })
	sort.Slice(jp.Expired, func(a, c int) bool { return jp.Expired[a] < jp.Expired[c] })
}

func (p *Plan) markLive(j metadata.Job, c *metadata.Checkpoint) {
	if c == nil {
		return
	}
	dir := j.CheckpointDir(c.ID)
	for _, s := range c.Stores {
		for _, f := range s.Files {
			if key, err := metadata.Resolve(dir, f.Path); err == nil {
				p.live[key] = true
			}
		}
	}
}

func (p *Plan) fresh(o *object) bool {
	return o != nil && o.mod.After(p.now.Add(-p.opts.MinAge))
}

// protectReservations marks live what every fresh reservation of st may
// reference: its base checkpoint and its claimed source. A reservation that
// cannot be read, or whose claimed source cannot be read, blocks jp (the
// named job whose safety depends on it).
func (p *Plan) protectReservations(ctx context.Context, st *jobState, jp *JobPlan) error {
	for id, d := range st.dirs {
		if d.meta != nil || !p.fresh(d.pending) {
			continue
		}
		since, err := p.protectPending(ctx, st, d.pending.key)
		if err == nil && st.job == jp.Job && !since.IsZero() && (jp.reservedSince.IsZero() || since.Before(jp.reservedSince)) {
			jp.reservedSince = since
		}
		if err != nil {
			if errors.Is(err, errUnreadable) {
				jp.Blocked = append(jp.Blocked, fmt.Sprintf("%s: %v", st.job.CheckpointDir(id), err))
				continue
			}
			return err
		}
	}
	return nil
}

var errUnreadable = errors.New("unreadable")

// protectPending marks live what the reservation at key may reuse and
// returns when it was made.
func (p *Plan) protectPending(ctx context.Context, st *jobState, key string) (time.Time, error) {
	data, err := p.b.ReadAll(ctx, key)
	if err != nil {
		if storage.IsNotFound(err) {
			return time.Time{}, nil // committed or abandoned meanwhile
		}
		return time.Time{}, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	var pend metadata.Pending
	if err := json.Unmarshal(data, &pend); err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %v", errUnreadable, key, err)
	}
	if pend.CreatedAt.IsZero() {
		return time.Time{}, fmt.Errorf("%w: %s: no creation time", errUnreadable, key)
	}
	if pend.BaseID != 0 {
		p.markLive(st.job, st.checkpoints[pend.BaseID])
	}
	if pend.ClaimPath != "" {
		dir, err := metadata.Resolve(st.job.Prefix, pend.ClaimPath)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %v", errUnreadable, key, err)
		}
		c, err := metadata.Read(ctx, p.b, dir+"/"+metadata.MetadataName)
		switch {
		case err == nil:
			_, srcJob, _ := metadata.ParseLocation(dir)
			p.markLive(srcJob, c)
		case errors.Is(err, metadata.ErrNotFound):
			// The creator will see it gone and reuse nothing.
		case errors.Is(err, metadata.ErrCorrupt), errors.Is(err, metadata.ErrNewerVersion):
			return time.Time{}, fmt.Errorf("%w: %v", errUnreadable, err)
		default:
			return time.Time{}, err
		}
	}
	return pend.CreatedAt, nil
}

// addReferrer reads the job a marker in named job jp names, and marks live
// what that job's checkpoints and reservations reference (all of its
// checkpoints, whatever its own policy, unless it is a named job too, whose
// plan then applies). If it cannot be read, jp is blocked. With reread, a
// job read before is read again (recheck before deleting shared files).
func (p *Plan) addReferrer(ctx context.Context, jp *JobPlan, m object, reread bool) error {
	block := func(format string, args ...any) {
		jp.Blocked = append(jp.Blocked, fmt.Sprintf("referrer %s: ", m.key)+fmt.Sprintf(format, args...))
	}
	data, err := p.b.ReadAll(ctx, m.key)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading %s: %w", m.key, storage.Wrap(err))
	}
	var ref metadata.Referrer
	if err := json.Unmarshal(data, &ref); err != nil {
		block("%v", err)
		return nil
	}
	rp, err := metadata.Resolve(jp.Job.Prefix, ref.Path)
	if err != nil {
		block("%v", err)
		return nil
	}
	st, known := p.jobs[rp]
	if p.named[rp] == nil && (!known || reread) {
		if st, err = readJob(ctx, p.b, metadata.Job{Prefix: rp}); err != nil {
			return err
		}
		p.jobs[rp] = st
		for _, c := range st.checkpoints {
			p.markLive(st.job, c)
		}
		if err := p.protectReservations(ctx, st, jp); err != nil {
			return err
		}
	}
	for _, prob := range st.problems {
		block("%s", prob)
	}
	if !reread && len(st.dirs) == 0 && !p.fresh(&m) {
		// The referring job is gone: the marker is stale.
		jp.Markers = append(jp.Markers, Object{Key: m.key, Size: m.size, Orphan: true})
	}
	return nil
}

// sweep lists what to delete in a named job that is not blocked.
func (p *Plan) sweep(jp *JobPlan) {
	if len(jp.Blocked) > 0 {
		jp.Markers = nil
		return
	}
	st := p.jobs[jp.Job.Prefix]
	expiredRefs := map[string]bool{}
	for _, id := range jp.Expired {
		d := st.dirs[id]
		jp.Metadata = append(jp.Metadata, Object{Key: d.meta.key, Size: d.meta.size})
		for _, o := range d.objects {
			if o.key != d.meta.key && !p.live[o.key] {
				jp.Private = append(jp.Private, Object{Key: o.key, Size: o.size})
			}
		}
		c := st.checkpoints[id]
		dir := jp.Job.CheckpointDir(id)
		for _, s := range c.Stores {
			for _, f := range s.Files {
				if key, err := metadata.Resolve(dir, f.Path); err == nil {
					expiredRefs[key] = true
				}
			}
		}
	}
	ids := make([]uint64, 0, len(st.dirs))
	for id := range st.dirs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, c int) bool { return ids[a] < ids[c] })
	for _, id := range ids {
		d := st.dirs[id]
		if d.meta != nil || p.fresh(d.pending) {
			continue
		}
		young := false
		for _, o := range d.objects {
			young = young || p.fresh(&o)
		}
		if young {
			continue
		}
		// A stale incomplete checkpoint: reservation first.
		if d.pending != nil {
			jp.Private = append(jp.Private, Object{Key: d.pending.key, Size: d.pending.size, Orphan: true})
		}
		for _, o := range d.objects {
			if (d.pending == nil || o.key != d.pending.key) && !p.live[o.key] {
				jp.Private = append(jp.Private, Object{Key: o.key, Size: o.size, Orphan: true})
			}
		}
	}
	for _, o := range st.shared {
		if p.live[o.key] || p.fresh(&o) || p.mayBeUpload(jp, o) {
			continue
		}
		jp.Shared = append(jp.Shared, Object{Key: o.key, Size: o.size, mod: o.mod, Orphan: !expiredRefs[o.key]})
	}
}

// mayBeUpload reports whether o may have been written by a live creator of
// jp's job: it is no older than the oldest live reservation (less the clock
// skew allowance).
func (p *Plan) mayBeUpload(jp *JobPlan, o object) bool {
	return !jp.reservedSince.IsZero() && !o.mod.Before(jp.reservedSince.Add(-p.opts.ClockSkew))
}

// planLocal lists local copies of checkpoints the job does not keep.
func (p *Plan) planLocal(jp *JobPlan) error {
	ents, err := os.ReadDir(p.opts.LocalDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading local directory %s: %w", p.opts.LocalDir, err)
	}
	kept := map[uint64]bool{}
	for _, id := range jp.Kept {
		kept[id] = true
	}
	for _, e := range ents {
		n := e.Name()
		path := filepath.Join(p.opts.LocalDir, n)
		if id, ok := metadata.ParseCheckpointDirName(n); ok && !kept[id] {
			jp.Local = append(jp.Local, path)
			continue
		}
		if strings.HasPrefix(n, ".tmp-chk-") {
			if info, err := e.Info(); err == nil && !info.ModTime().After(p.now.Add(-p.opts.MinAge)) {
				jp.Local = append(jp.Local, path)
			}
		}
	}
	return nil
}

func display(prefix string) string {
	if prefix == "" {
		return "the bucket root"
	}
	return prefix
}
