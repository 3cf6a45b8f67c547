package relocate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
)

// Errors returned by NewPlan and Plan.Execute. They are wrapped with the
// objects concerned; test for them with errors.Is.
var (
	// ErrVerifyFailed means objects are missing or have the wrong size or
	// checksum: in the source (found before anything is written) or at the
	// destination after copying (then nothing is committed). The error is a
	// *VerifyError listing them. errors.Is(err, inspect.ErrVerifyFailed)
	// also holds: it is the same condition inspect reports.
	ErrVerifyFailed = errors.New("relocate: verification failed")
	// ErrDestinationExists means the destination already holds a different
	// checkpoint with the id to be written, or another writer has reserved
	// that id. errors.Is(err, storage.ErrExists) also holds.
	ErrDestinationExists = errors.New("relocate: the destination already holds that checkpoint id")
	// ErrOverlap means the destination job lies inside the source job's
	// directory in the same bucket (see Overlaps).
	ErrOverlap = errors.New("relocate: the destination is inside the source job")
	// ErrReservationLost means a reservation marker vanished or changed
	// hands while the relocation ran (gc took it for abandoned): the
	// checkpoint is not committed, since objects it needs may be gone.
	// Running the relocation again is safe.
	ErrReservationLost = errors.New("relocate: reservation lost")
)

// Defaults of Options.
const (
	// DefaultParallel is the default number of concurrent copies.
	DefaultParallel = 8
	// DefaultRefreshInterval is how often Execute rewrites its reservation
	// markers, so that gc sees the relocation alive (as
	// checkpoint.DefaultRefreshInterval; gc's min-age must be well above).
	DefaultRefreshInterval = 5 * time.Minute
)

// Source names what to relocate.
type Source struct {
	// Bucket holds the source job and every job its checkpoints reference;
	// keys are bucket-root keys.
	Bucket *blob.Bucket
	// Job is the source job.
	Job metadata.Job
	// IDs are the checkpoints of Job to relocate (order and duplicates do
	// not matter). Exactly one of IDs and All must be given.
	IDs []uint64
	// All relocates every committed checkpoint of Job; directories without
	// `_metadata` (checkpoints being written, or abandoned) are skipped and
	// reported in Result.Incomplete.
	All bool
}

// Destination names where to relocate to.
type Destination struct {
	// Bucket receives the relocated checkpoints. When it is the same
	// *blob.Bucket value as Source.Bucket, objects are copied server-side
	// (Bucket.Copy); otherwise they are streamed.
	Bucket *blob.Bucket
	// Job is the destination job.
	Job metadata.Job
	// ID, if not 0, is the id to give the relocated checkpoint; it needs
	// exactly one source checkpoint. By default every checkpoint keeps its
	// id.
	ID uint64
}

// Options tune NewPlan and Execute. The zero value is usable.
type Options struct {
	// ReadData reads every source object and checks its SHA-256 before
	// anything is written, checks the SHA-256 of objects already at the
	// destination before keeping them, and reads back every copied object
	// after copying. Without it only sizes are checked (streamed objects
	// are still hashed on the way and never written if they disagree).
	ReadData bool
	// Parallel is the number of concurrent storage requests and copies
	// (DefaultParallel if 0).
	Parallel int
	// Now is the clock for reservation markers and object ages (time.Now
	// if nil).
	Now func() time.Time
	// Progress receives the byte progress of NewPlan's source checksums
	// (with ReadData); Execute takes its own reporter. nil means none.
	Progress progress.Reporter
	// RefreshInterval is how often Execute rewrites its reservation
	// markers (DefaultRefreshInterval if 0).
	RefreshInterval time.Duration
}

// Copy is one object the plan copies (or finds already in place).
type Copy struct {
	// Src and Dst are the source and destination keys.
	Src, Dst string
	// Size and SHA256 are the object's recorded size and lower-case hex
	// SHA-256 ("" if the format records none: then only sizes are checked).
	Size   int64
	SHA256 string
	// Shared is true for a content-named shared object at the destination.
	Shared bool
	// Skip is true when, at planning, the destination already held the
	// object with this size and gc cannot collect it while the relocation
	// runs (see Plan.Execute), so it is kept rather than copied. Execute
	// decides again once its reservations are in place.
	Skip bool
	// CheckpointID is the destination id of the first relocated checkpoint
	// still to commit that references the object (or, if all are done, of
	// the first); counts are attributed to it.
	CheckpointID uint64

	unit   int    // index of that checkpoint in Plan.units
	needed bool   // referenced by a checkpoint not already done
	name   string // the store file name (for an alternative shared name)
	to     string // where the plan expects to put it (Dst or another key)
}

func contentKey(size int64, sum string) string { return fmt.Sprintf("%d/%s", size, sum) }

// LinkKind says what kind of chain link a relocation cuts.
type LinkKind string

// Kinds of chain links.
const (
	// LinkLineage: the checkpoint's lineage path to the checkpoint its
	// stores were restored from is dropped (its job and checkpoint ids are
	// kept).
	LinkLineage LinkKind = "lineage"
	// LinkExternal: the checkpoint referenced files in another job's
	// shared/ directory (a restore with claim); they are copied in.
	LinkExternal LinkKind = "external"
)

// Link is one chain link a relocation cuts.
type Link struct {
	Kind LinkKind
	// Key is the source checkpoint's directory key (LinkLineage; "" if its
	// path was invalid) or the other job's prefix (LinkExternal).
	Key string
	// JobID and CheckpointID identify the lineage's source checkpoint.
	JobID        string
	CheckpointID uint64
	// Files and Bytes count the files referenced in the other job
	// (LinkExternal).
	Files int
	Bytes int64
}

// CheckpointResult describes one relocated checkpoint.
type CheckpointResult struct {
	// SourceID is the id in the source job; ID the id at the destination.
	SourceID, ID uint64
	// Dir and MetadataKey are the destination checkpoint's directory and
	// `_metadata` keys.
	Dir, MetadataKey string
	// Files and Bytes total the files the checkpoint references.
	Files int
	Bytes int64
	// Copied and skipped objects attributed to this checkpoint (a shared
	// object counts for the first checkpoint that references it).
	FilesCopied, FilesSkipped int
	BytesCopied, BytesSkipped int64
	// LinksCut are the chain links the relocation cuts.
	LinksCut []Link
	// Done is true when the destination already held this checkpoint,
	// committed with the same identity, before the run: nothing was done
	// for it.
	Done bool
}

// Result describes a relocation: what Execute did, or for Plan.Result what
// it would do.
type Result struct {
	// Checkpoints are sorted by destination id.
	Checkpoints []CheckpointResult
	// Totals over distinct objects.
	FilesCopied, FilesSkipped int
	BytesCopied, BytesSkipped int64
	// ServerSide is true when objects are copied with Bucket.Copy.
	ServerSide bool
	// Incomplete lists source checkpoint ids skipped for lack of a
	// `_metadata` (Source.All only).
	Incomplete []uint64
}

// Problem is one bad object found by verification.
type Problem struct {
	Key string
	// Problem says what is wrong: "missing", "size 3, expected 4",
	// "checksum mismatch", "unreadable: …".
	Problem string
}

// VerifyError lists the objects that failed verification. It matches
// ErrVerifyFailed and inspect.ErrVerifyFailed.
type VerifyError struct {
	// Where is "source" or "destination".
	Where string
	// Problems are sorted by key.
	Problems []Problem
	// Checked is the number of objects checked.
	Checked int
}

// maxListed bounds the objects an error message names.
const maxListed = 10

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d %s objects are bad:", ErrVerifyFailed, len(e.Problems), e.Checked, e.Where)
	for i, p := range e.Problems {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(e.Problems)-maxListed)
			break
		}
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %s (%s)", sep, p.Key, p.Problem)
	}
	return b.String()
}

// Is reports whether target is ErrVerifyFailed or inspect.ErrVerifyFailed.
func (e *VerifyError) Is(target error) bool {
	return target == ErrVerifyFailed || target == inspect.ErrVerifyFailed
}

func newVerifyError(where string, checked int, problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
	return &VerifyError{Where: where, Problems: problems, Checked: checked}
}

// Overlaps reports whether job dst lies strictly inside job src's directory
// (src "jobs/b" contains "jobs/b/copy"; the bucket-root job contains every
// other), which a relocation within one bucket refuses: the destination's
// objects would be mistaken for the source job's own. The same job is not
// an overlap (relocating a checkpoint under another id within its job makes
// it self-contained).
func Overlaps(src, dst metadata.Job) bool {
	return dst.Prefix != src.Prefix && strings.HasPrefix(dst.Dir(), src.Dir())
}

// Plan is a relocation ready to execute. It is built by NewPlan, which has
// read and checked everything and written nothing. A Plan is not safe for
// concurrent use, and Execute may be called once.
type Plan struct {
	src        Source
	dst        Destination
	opts       Options
	serverSide bool
	units      []*unit
	copies     []Copy // sorted by Dst
	incomplete []uint64
	// base is the committed destination checkpoint the reservations name
	// (0: none): gc keeps its files while they are live, so the objects it
	// references (vouched) can be kept whatever their age. byContent maps
	// size and checksum to the vouched objects in the destination's
	// shared/, under whatever name.
	base      uint64
	vouched   map[string]bool
	byContent map[string]string
	executed  bool
}

// unit is one checkpoint the plan commits, whatever its format.
type unit struct {
	srcID, id           uint64
	dir                 string // destination checkpoint directory key
	metaKey, pendingKey string
	// render returns the `_metadata` to write once every object in refs
	// verifies, given where each object (by Copy.Dst) was finally put.
	render func(keyOf func(string) string) ([]byte, error)
	// token names the relocation in the reservation marker: it is derived
	// from the destination checkpoint's identity, so a re-run of the same
	// relocation recognises its own marker.
	token string
	// matches reports whether an existing `_metadata` is this checkpoint.
	matches  func([]byte) bool
	refs     []Copy // every object it references
	links    []Link
	files    int
	bytes    int64
	done     bool // already committed at the destination
	leftover bool // done, but its marker is still there
	// reserved is when its reservation was made (zero: not yet). Objects
	// written since then, while the reservation is fresh, are safe from
	// gc, as are the objects of its reserved directory.
	reserved time.Time
}

// NewPlan reads the source checkpoints and the destination, and plans the
// relocation. It writes nothing. It fails, listing them, if any object the
// relocation needs is missing or has the wrong size (or, with
// opts.ReadData, checksum) in the source (ErrVerifyFailed); if a source
// `_metadata` is missing (metadata.ErrNotFound) or unreadable
// (metadata.ErrCorrupt); if the destination already holds a different
// checkpoint with a destination id or another writer reserved it
// (ErrDestinationExists); or if both are in the same bucket and the
// destination job lies inside the source job (ErrOverlap).
func NewPlan(ctx context.Context, src Source, dst Destination, opts Options) (*Plan, error) {
	if src.Bucket == nil || dst.Bucket == nil {
		return nil, errors.New("relocate: nil bucket")
	}
	if src.All == (len(src.IDs) > 0) {
		return nil, errors.New("relocate: give either source checkpoint ids or All")
	}
	if dst.ID != 0 && (src.All || len(uniq(src.IDs)) != 1) {
		return nil, errors.New("relocate: a destination id needs exactly one source checkpoint")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	p := &Plan{src: src, dst: dst, opts: opts, serverSide: src.Bucket == dst.Bucket}
	if p.serverSide && Overlaps(src.Job, dst.Job) {
		return nil, fmt.Errorf("%w: %s is inside %s", ErrOverlap, displayKey(dst.Job.Prefix), displayKey(src.Job.Prefix))
	}

	ids := uniq(src.IDs)
	if src.All {
		entries, err := metadata.ListJob(ctx, src.Bucket, src.Job)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Committed {
				ids = append(ids, e.ID)
			} else {
				p.incomplete = append(p.incomplete, e.ID)
			}
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: no committed checkpoint in %s", metadata.ErrNotFound, displayKey(src.Job.Prefix))
		}
	}
	cps, err := readAll(ctx, src.Bucket, src.Job, ids, opts.Parallel)
	if err != nil {
		return nil, err
	}
	dstID := func(id uint64) uint64 { return id }
	if dst.ID != 0 {
		dstID = func(uint64) uint64 { return dst.ID }
	}
	p.units, err = planCkpt(src.Job, cps, dst.Job, dstID)
	if err != nil {
		return nil, err
	}
	if err := p.inspectDestination(ctx); err != nil {
		return nil, err
	}
	if err := p.checkSource(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func uniq(ids []uint64) []uint64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// readAll reads the source checkpoints' metadata, in parallel, failing on
// the first that cannot be read.
func readAll(ctx context.Context, b *blob.Bucket, job metadata.Job, ids []uint64, par int) ([]*metadata.Checkpoint, error) {
	out := make([]*metadata.Checkpoint, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for i, id := range ids {
		g.Go(func() error {
			c, err := metadata.Read(gctx, b, job.MetadataKey(id))
			if err != nil {
				return err
			}
			if c.ID != id {
				return fmt.Errorf("reading %s: %w: it says it is checkpoint %d", job.MetadataKey(id), metadata.ErrCorrupt, c.ID)
			}
			out[i] = c
			return nil
		})
	}
	return out, g.Wait()
}

// inspectDestination finds which checkpoints are already committed at the
// destination (done) and which were reserved by an earlier run,
// chooses the base the reservations will name, merges the units'
// references into the copy list and notes which objects are in place.
func (p *Plan) inspectDestination(ctx context.Context) error {
	b := p.dst.Bucket
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Parallel)
	for _, u := range p.units {
		g.Go(func() error {
			data, err := readSmall(gctx, b, u.metaKey)
			if err != nil {
				return err
			}
			if data != nil {
				if !u.matches(data) {
					return existsError(u.metaKey, "holds a different checkpoint")
				}
				u.done = true
				// A marker left by a run that committed and stopped
				// before removing it: Execute removes it.
				data, err = readSmall(gctx, b, u.pendingKey)
				u.leftover, _ = ownReservation(data, u.token)
				u.leftover = u.leftover && err == nil
				return nil
			}
			data, err = readSmall(gctx, b, u.pendingKey)
			if err != nil {
				return err
			}
			if data != nil {
				ours, created := ownReservation(data, u.token)
				if !ours {
					return existsError(u.dir, "is reserved by another writer (it has a _pending marker and no _metadata)")
				}
				u.reserved = created
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := p.chooseBase(ctx); err != nil {
		return err
	}

	// Merge the references, in destination id order; the first checkpoint
	// still to commit that references an object owns it (else the first
	// one).
	byDst := map[string]int{}
	for ui, u := range p.units {
		for _, c := range u.refs {
			if i, ok := byDst[c.Dst]; ok {
				have := &p.copies[i]
				if have.Size != c.Size || have.SHA256 != c.SHA256 {
					return fmt.Errorf("%w: %s is needed with two different contents (%d bytes %s and %d bytes %s)",
						metadata.ErrCorrupt, c.Dst, have.Size, have.SHA256, c.Size, c.SHA256)
				}
				if !have.needed && !u.done {
					have.unit, have.CheckpointID, have.needed = ui, u.id, true
				}
				continue
			}
			c.unit, c.CheckpointID, c.needed = ui, u.id, !u.done
			byDst[c.Dst] = len(p.copies)
			p.copies = append(p.copies, c)
		}
	}
	sort.Slice(p.copies, func(i, j int) bool { return p.copies[i].Dst < p.copies[j].Dst })

	// What the destination already holds (Execute decides again).
	present, err := listObjects(ctx, b, p.candidateKeys(), p.opts.Parallel)
	if err != nil {
		return err
	}
	for i := range p.copies {
		c := &p.copies[i]
		c.to, c.Skip = c.Dst, true
		if c.needed {
			c.to, c.Skip = p.place(*c, present)
		}
	}
	return nil
}

// chooseBase picks the committed destination checkpoint that the
// reservations name as their base: the source checkpoint itself when
// relocating within its own job, otherwise the destination's newest
// committed checkpoint. gc keeps the files of a live reservation's base,
// so the objects it references may be kept whatever their age.
func (p *Plan) chooseBase(ctx context.Context) error {
	b, job := p.dst.Bucket, p.dst.Job
	var id uint64
	if p.serverSide && p.src.Job == job {
		id = p.units[len(p.units)-1].srcID
	} else {
		entries, err := metadata.ListJob(ctx, b, job)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Committed {
				id = e.ID
			}
		}
	}
	if id == 0 {
		return nil
	}
	c, err := metadata.Read(ctx, b, job.MetadataKey(id))
	if err != nil {
		// Not usable as a base: keep nothing on its account.
		if errors.Is(err, metadata.ErrCorrupt) || errors.Is(err, metadata.ErrNewerVersion) || errors.Is(err, metadata.ErrNotFound) {
			return nil
		}
		return err
	}
	p.base, p.vouched, p.byContent = id, map[string]bool{}, map[string]string{}
	for _, s := range c.Stores {
		for _, f := range s.Files {
			if key, err := metadata.Resolve(job.CheckpointDir(id), f.Path); err == nil {
				p.vouched[key] = true
				if strings.HasPrefix(key, job.SharedDirKey()) {
					p.byContent[contentKey(f.Size, f.SHA256)] = key
				}
			}
		}
	}
	return nil
}

// candidateKeys lists every destination key a needed copy may end up at.
func (p *Plan) candidateKeys() []string {
	var keys []string
	for _, c := range p.copies {
		if !c.needed {
			continue
		}
		keys = append(keys, c.Dst)
		if c.Shared {
			keys = append(keys, p.altKey(c))
			if k, ok := p.byContent[contentKey(c.Size, c.SHA256)]; ok {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// place decides where copy c goes, given the objects present at the
// destination, and whether the object already there is kept. In order:
// the planned key if the object there may be kept (see keep); for a shared
// object, an object of the base with the same content, under whatever
// name; the planned key if nothing is there; otherwise a name unique to
// the reserved directory (altKey), kept if an earlier run of this
// relocation wrote it. An object that may be collected by gc, or is
// damaged, is thus never kept nor overwritten.
func (p *Plan) place(c Copy, present map[string]object) (key string, keep bool) {
	if p.keep(c, c.Dst, present) {
		return c.Dst, true
	}
	if !c.Shared {
		return c.Dst, false
	}
	if k, ok := p.byContent[contentKey(c.Size, c.SHA256)]; ok && p.keep(c, k, present) {
		return k, true
	}
	if _, ok := present[c.Dst]; !ok {
		return c.Dst, false
	}
	alt := p.altKey(c)
	return alt, p.keep(c, alt, present)
}

// keep reports whether copy c may keep the object present at key instead
// of writing it: the object has the right size and gc cannot collect it
// before the checkpoint commits, because it was written since the
// reservation of c's first checkpoint was made (gc keeps a job's shared
// objects written since its oldest fresh reservation, and the objects of a
// freshly reserved directory), or because the base references it. An
// object that is its own source (relocating within a job) is always kept.
func (p *Plan) keep(c Copy, key string, present map[string]object) bool {
	if p.serverSide && c.Src == key {
		return true
	}
	o, ok := present[key]
	if !ok || o.size != c.Size {
		return false
	}
	if c.Shared && p.vouched[key] {
		return true
	}
	r := p.units[c.unit].reserved
	return !r.IsZero() && !o.mod.Before(r)
}

// altKey is where shared copy c goes when an object it may not keep holds
// its planned key: a name unique to the reserved directory of c's first
// checkpoint (metadata.SharedNameFor), written by this relocation only.
func (p *Plan) altKey(c Copy) string {
	return p.dst.Job.SharedKey(metadata.SharedNameFor(c.name, c.SHA256, p.units[c.unit].id))
}

// checkSource checks that every object still to copy exists in the source
// with its size and, with ReadData, its checksum.
func (p *Plan) checkSource(ctx context.Context) error {
	var todo []Copy
	seen := map[string]bool{}
	for _, c := range p.copies {
		if c.needed && !seen[c.Src] {
			seen[c.Src] = true
			todo = append(todo, c)
		}
	}
	keys := make([]string, len(todo))
	for i, c := range todo {
		keys[i] = c.Src
	}
	present, err := listObjects(ctx, p.src.Bucket, keys, p.opts.Parallel)
	if err != nil {
		return err
	}
	var problems []Problem
	var good []Copy
	for _, c := range todo {
		o, ok := present[c.Src]
		switch {
		case !ok:
			problems = append(problems, Problem{c.Src, "missing"})
		case o.size != c.Size:
			problems = append(problems, Problem{c.Src, fmt.Sprintf("size %d, expected %d", o.size, c.Size)})
		default:
			good = append(good, c)
		}
	}
	if p.opts.ReadData {
		more, err := checksumAll(ctx, p.src.Bucket, good, func(c Copy) string { return c.Src }, p.opts.Parallel, "checking the source", p.opts.Progress)
		if err != nil {
			return err
		}
		problems = append(problems, more...)
	}
	return newVerifyError("source", len(todo), problems)
}

// Result returns what Execute would do, as planned: objects marked Skip
// count as skipped, every other needed object as copied.
func (p *Plan) Result() *Result {
	skipped := map[string]bool{}
	for _, c := range p.copies {
		skipped[c.Dst] = c.Skip
	}
	return p.result(func(c Copy) bool { return skipped[c.Dst] })
}

// Copies returns the objects the plan needs at the destination, including
// those it expects to keep, sorted by their planned destination key. Dst is
// where the plan expects each to go: its planned key, or, for a shared
// object whose key holds an object that may not be kept, the name Execute
// uses instead. Objects referenced only by checkpoints already done are
// left out.
func (p *Plan) Copies() []Copy {
	var out []Copy
	for _, c := range p.copies {
		if c.needed {
			c.Dst = c.to
			out = append(out, c)
		}
	}
	return out
}

// ServerSide reports whether objects are copied with Bucket.Copy.
func (p *Plan) ServerSide() bool { return p.serverSide }

// result totals the plan, with skipped(c) saying whether copy c was (or
// would be) skipped.
func (p *Plan) result(skipped func(Copy) bool) *Result {
	r := &Result{ServerSide: p.serverSide, Incomplete: slices.Clone(p.incomplete)}
	for _, u := range p.units {
		r.Checkpoints = append(r.Checkpoints, CheckpointResult{
			SourceID: u.srcID, ID: u.id, Dir: u.dir, MetadataKey: u.metaKey,
			Files: u.files, Bytes: u.bytes, LinksCut: u.links, Done: u.done,
		})
	}
	for _, c := range p.copies {
		cr := &r.Checkpoints[c.unit]
		if skipped(c) {
			cr.FilesSkipped++
			cr.BytesSkipped += c.Size
			r.FilesSkipped++
			r.BytesSkipped += c.Size
		} else {
			cr.FilesCopied++
			cr.BytesCopied += c.Size
			r.FilesCopied++
			r.BytesCopied += c.Size
		}
	}
	return r
}

func displayKey(k string) string {
	if k == "" {
		return "the bucket root"
	}
	return k
}

// keySet is a set of keys safe for concurrent use.
type keySet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *keySet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	s.m[k] = true
}

func (s *keySet) has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}
