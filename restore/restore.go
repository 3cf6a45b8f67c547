package restore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// sentinel is an error of this package that also matches a more general
// sentinel of another package (so the command line maps it to an exit code)
// without repeating that sentinel's text.
type sentinel struct {
	msg   string
	wraps error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.wraps }

// Errors returned by NewPlan and Execute, always wrapped with the object
// they concern. Each also matches the general sentinel given below.
var (
	// ErrTargetNotEmpty: the target holds files and neither Force nor
	// ReuseTarget was given. Matches storage.ErrExists.
	ErrTargetNotEmpty error = &sentinel{"restore: target directory is not empty", storage.ErrExists}
	// ErrBusy: another restore into the same target is running. Matches
	// storage.ErrExists.
	ErrBusy error = &sentinel{"restore: another restore into the target is running", storage.ErrExists}
	// ErrTargetInUse: a Pebble store in the target is open in another
	// process. Matches storage.ErrExists.
	ErrTargetInUse error = &sentinel{"restore: a store in the target is open in another process", storage.ErrExists}
	// ErrBadTarget: the target cannot be restored into (a symbolic link, a
	// file, a mount point, no parent directory, overlapping the source or
	// the local directory). Matches storage.ErrBadLocation.
	ErrBadTarget error = &sentinel{"restore: unusable target", storage.ErrBadLocation}
	// ErrVerifyFailed: a file is missing from storage or does not match the
	// checkpoint, or the restored store does not open or check with Pebble.
	// Matches inspect.ErrVerifyFailed.
	ErrVerifyFailed error = &sentinel{"restore: verification failed", inspect.ErrVerifyFailed}
	// ErrNoStore: Options.Store names no store of the checkpoint. Matches
	// metadata.ErrNotFound.
	ErrNoStore error = &sentinel{"restore: no such store in the checkpoint", metadata.ErrNotFound}
)

// DefaultParallel is the default number of concurrent transfers.
const DefaultParallel = 8

// DefaultRetries is how often a failed download is retried by default.
const DefaultRetries = 2

// Options tune a restore. Target is required; the zero value of every other
// field is usable.
type Options struct {
	// Target is the directory to restore into (relative to the working
	// directory or absolute). Its parent must exist.
	Target string
	// Store restores only the named store, directly into Target; "" restores
	// every store (see the package documentation for the layout).
	Store string
	// LocalDir is a directory kept by `ckpt create --local-dir`: its files
	// (of any checkpoint) are used instead of downloading when they match
	// the checkpoint. A missing or damaged local directory only adds a
	// warning.
	LocalDir string
	// TrustSize takes a local (LocalDir or ReuseTarget) sstable or blob
	// file whose size matches without reading it to check its SHA-256.
	// Those files are immutable and, in a local copy, hard links of the
	// store's own, so this is what makes a restore from a complete local
	// copy near-instant; but a local file damaged in place without a
	// change of size is then restored as it is (Pebble's block checksums
	// still report it when the block is read, and --check reads them all).
	// Other files are always checked.
	TrustSize bool
	// ReuseTarget keeps the target's files that match the checkpoint
	// (size and SHA-256) and replaces the target with the restored stores:
	// an incremental restore. Implies that a non-empty target may be
	// replaced.
	ReuseTarget bool
	// Force allows replacing a non-empty target.
	Force bool
	// Strict disables the fallback: when restoring a job's latest
	// checkpoint, an unreadable or unverifiable one is an error instead of
	// a reason to restore the previous one.
	Strict bool
	// Check reads every key of every level of the restored stores
	// (Pebble's CheckLevels) before they are put in place; without it they
	// are only opened (which checks the manifest and every table's size).
	Check bool
	// Claim is recorded in each restored store's origin file: checkpoints
	// taken from the store may reference the source checkpoint's shared
	// files (Flink's CLAIM mode). False is NO_CLAIM.
	Claim bool
	// Parallel is the number of concurrent transfers and hashes
	// (DefaultParallel if 0).
	Parallel int
	// Retries is how often a failed download is retried (DefaultRetries if
	// 0, none if negative). Only read errors are retried, not missing or
	// mismatching objects.
	Retries int
	// Locate turns an object key into a location string a user can open
	// again (credentials removed). It names the source checkpoint in the
	// origin file and objects in the plan. nil uses the key itself.
	Locate func(key string) string
	// SourceDir is the job's directory when the checkpoint is on the local
	// filesystem ("" otherwise): a target inside it, or containing it, is
	// refused.
	SourceDir string
	// Progress receives NewPlan's hashing of local candidates, in bytes
	// (nil: none).
	Progress progress.Reporter

	// noExchange makes Execute replace a target with two renames, as on
	// filesystems without an atomic exchange (for tests).
	noExchange bool
}

// Source says where a restored file comes from.
type Source string

// File sources.
const (
	// FromTarget: the file already in the target (ReuseTarget).
	FromTarget Source = "target"
	// FromLocal: a verified file in the local directory.
	FromLocal Source = "local"
	// FromRemote: downloaded from the checkpoint's storage.
	FromRemote Source = "remote"
)

// File is one file of the plan.
type File struct {
	// Store is the store's name, Name the file's name in its directory.
	Store  string
	Name   string
	Size   int64
	SHA256 string
	// Source is where the file comes from.
	Source Source
	// Link is true when the file is hard-linked from its local or target
	// copy rather than copied.
	Link bool
	// From names the source: a local path, or the object's location.
	From string
	// Key is the object's key in the bucket (the fallback for local and
	// target files).
	Key string

	src *localFile // FromLocal and FromTarget
	dir string     // the store's directory inside the target
}

// Store is one store of the plan.
type Store struct {
	Name               string
	FormatMajorVersion uint64
	// Dir is the store's directory relative to the target: "." for the
	// target itself, or the store's name.
	Dir   string
	Files int
	Bytes int64
}

// Skipped is a newer checkpoint a job restore passed over.
type Skipped struct {
	CheckpointID uint64
	// Reason is why it could not be restored (one line).
	Reason string
}

// Totals counts a plan's or a result's files by source.
type Totals struct {
	FilesFromLocal  int
	BytesFromLocal  int64
	FilesLinked     int // of FilesFromLocal and FilesReused
	FilesFromRemote int
	BytesFromRemote int64
	FilesReused     int // from the target
	BytesReused     int64
	TotalFiles      int
	TotalBytes      int64
}

// Plan is a restore worked out and not yet executed: NewPlan reads and
// hashes, it never writes.
type Plan struct {
	CheckpointID uint64
	JobID        string
	CreatedAt    time.Time
	// Location is the source checkpoint directory as Options.Locate names
	// it; it is what the origin files record.
	Location string
	// Target is the absolute target directory.
	Target string
	// Replace is true when the target holds files that the restore replaces.
	Replace bool
	Stores  []Store
	// Files are sorted by store and name.
	Files []File
	// Skipped lists the newer checkpoints passed over, newest first.
	Skipped []Skipped
	// Interrupted is set when the target is missing because an earlier
	// restore was interrupted while replacing it: the old contents are in
	// this directory, and Execute puts them back before anything else.
	Interrupted string
	// Warnings are non-fatal problems found while planning.
	Warnings []string

	b     *blob.Bucket
	job   metadata.Job
	opts  Options
	older []uint64 // fallback candidates, newest first (job restores only)
	tgt   *target
	bufs  *bufPool
	// executed is set once Execute ran.
	executed bool
}

// Totals counts the plan's files by source.
func (p *Plan) Totals() Totals {
	var t Totals
	for _, f := range p.Files {
		t.add(f.Source, f.Link, f.Size)
	}
	return t
}

func (t *Totals) add(src Source, link bool, size int64) {
	t.TotalFiles++
	t.TotalBytes += size
	if link {
		t.FilesLinked++
	}
	switch src {
	case FromLocal:
		t.FilesFromLocal++
		t.BytesFromLocal += size
	case FromTarget:
		t.FilesReused++
		t.BytesReused += size
	default:
		t.FilesFromRemote++
		t.BytesFromRemote += size
	}
}

// Result describes a completed restore.
type Result struct {
	CheckpointID uint64
	JobID        string
	// Location is the restored checkpoint's directory (Options.Locate).
	Location string
	Target   string
	Stores   []Store
	Totals
	// Checked is true when every level was read and checked (Options.Check).
	Checked bool
	// Claim is what the origin files record.
	Claim bool
	// Skipped lists the newer checkpoints passed over, newest first: the
	// restore fell back from Skipped[0].
	Skipped []Skipped
	// Warnings are non-fatal problems (local copies not usable, a fallback,
	// leftovers that could not be removed).
	Warnings []string
}

func (o Options) normalized() Options {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	return o
}

func (o Options) locate(key string) string {
	if o.Locate != nil {
		return o.Locate(key)
	}
	return key
}

// NewPlan reads checkpoint id of job (or, with id 0, the job's newest
// committed checkpoint) and decides where each file comes from: the target's
// own matching files (ReuseTarget), then verified local copies (LocalDir),
// then storage. Files needed from storage are checked to exist with their
// recorded size.
//
// For a job (id 0) whose newest checkpoint is unreadable, or lacks files,
// NewPlan falls back to the next older committed one, and so on, recording
// each one passed over in Plan.Skipped; Strict makes that an error. A
// missing checkpoint wraps metadata.ErrNotFound; an unreadable one
// metadata.ErrCorrupt (or ErrNewerVersion); missing files ErrVerifyFailed.
//
// NewPlan never writes anything. It reads (and hashes) local candidates and
// target files; the plan may be executed once.
func NewPlan(ctx context.Context, b *blob.Bucket, job metadata.Job, id uint64, opts Options) (*Plan, error) {
	o := opts.normalized()
	if o.Target == "" {
		return nil, fmt.Errorf("%w: no target directory given", ErrBadTarget)
	}
	if o.Store != "" {
		if err := metadata.ValidStoreName(o.Store); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoStore, err)
		}
	}
	if id != 0 {
		return planCheckpoint(ctx, b, job, id, o)
	}
	entries, err := metadata.ListJob(ctx, b, job)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Committed {
			ids = append(ids, entries[i].ID)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no committed checkpoint in %s", metadata.ErrNotFound, o.locate(job.Prefix))
	}
	return planJob(ctx, b, job, ids, o, nil, nil)
}

// planJob plans the first usable checkpoint of ids (newest first).
func planJob(ctx context.Context, b *blob.Bucket, job metadata.Job, ids []uint64, o Options, skipped []Skipped, first error) (*Plan, error) {
	for i, id := range ids {
		p, err := planCheckpoint(ctx, b, job, id, o)
		if err == nil {
			p.Skipped = skipped
			for _, s := range skipped {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s is unusable (%s); falling back", metadata.CheckpointDirName(s.CheckpointID), s.Reason))
			}
			if !o.Strict {
				p.older = ids[i+1:]
			}
			return p, nil
		}
		if first == nil {
			first = err
		}
		if o.Strict || !unusable(err) || ctx.Err() != nil {
			return nil, err
		}
		skipped = append(skipped, Skipped{CheckpointID: id, Reason: oneLine(err)})
	}
	if len(skipped) > 1 {
		return nil, fmt.Errorf("%w (no older checkpoint is usable either)", first)
	}
	return nil, first
}

// unusable reports whether err means the checkpoint itself is bad, so that
// an older one may be restored instead.
func unusable(err error) bool {
	return errors.Is(err, metadata.ErrCorrupt) || errors.Is(err, metadata.ErrNewerVersion) ||
		errors.Is(err, ErrVerifyFailed) || (errors.Is(err, metadata.ErrNotFound) && !errors.Is(err, ErrNoStore))
}

func planCheckpoint(ctx context.Context, b *blob.Bucket, job metadata.Job, id uint64, o Options) (*Plan, error) {
	tgt, err := inspectTarget(o)
	if err != nil {
		return nil, err
	}
	chkDir := job.CheckpointDir(id)
	c, err := metadata.Read(ctx, b, job.MetadataKey(id))
	if err != nil {
		if errors.Is(err, metadata.ErrOutsideRoot) && !errors.Is(err, metadata.ErrCorrupt) {
			// A path that climbs out of the storage root is corrupt metadata.
			err = fmt.Errorf("%w: %w", metadata.ErrCorrupt, err)
		}
		return nil, err
	}
	p := &Plan{
		CheckpointID: c.ID, JobID: c.JobID, CreatedAt: c.CreatedAt,
		Location: o.locate(chkDir), Target: tgt.abs, Replace: tgt.exists && !tgt.empty,
		b: b, job: job, opts: o, tgt: tgt, bufs: newBufPool(),
	}
	if c.ID != id {
		return nil, fmt.Errorf("reading %s: %w: it says it is checkpoint %d", job.MetadataKey(id), metadata.ErrCorrupt, c.ID)
	}
	stores := c.Stores
	if o.Store != "" {
		stores = nil
		var names []string
		for _, s := range c.Stores {
			names = append(names, s.Name)
			if s.Name == o.Store {
				stores = []metadata.Store{s}
			}
		}
		if stores == nil {
			return nil, fmt.Errorf("%w: %q is not in %s (it has %s)", ErrNoStore, o.Store, p.Location, strings.Join(names, ", "))
		}
	}
	if err := checkNames(chkDir, stores); err != nil {
		return nil, fmt.Errorf("reading %s: %w", job.MetadataKey(id), err)
	}
	for _, s := range stores {
		dir := "."
		if len(stores) > 1 {
			dir = s.Name
		}
		ps := Store{Name: s.Name, FormatMajorVersion: s.FormatMajorVersion, Dir: dir, Files: len(s.Files)}
		for _, f := range s.Files {
			key, err := metadata.Resolve(chkDir, f.Path)
			if err != nil {
				return nil, fmt.Errorf("reading %s: store %q file %q: %w", job.MetadataKey(id), s.Name, f.Name, err)
			}
			ps.Bytes += f.Size
			p.Files = append(p.Files, File{
				Store: s.Name, Name: f.Name, Size: f.Size, SHA256: f.SHA256,
				Source: FromRemote, Key: key, From: o.locate(key), dir: dir,
			})
		}
		p.Stores = append(p.Stores, ps)
	}
	p.Interrupted = tgt.aside
	if err := p.findLocal(ctx); err != nil {
		return nil, err
	}
	if err := p.checkRemote(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// checkNames checks again what metadata.Decode checked, because a restore
// writes files under these names: store and file names are single path
// elements, unique even under case folding, and no file takes the name of
// the origin file.
func checkNames(chkDir string, stores []metadata.Store) error {
	storeSeen := map[string]string{}
	for _, s := range stores {
		if err := metadata.ValidStoreName(s.Name); err != nil || s.Name != path.Base(s.Name) {
			return fmt.Errorf("%w: invalid store name %q", metadata.ErrCorrupt, s.Name)
		}
		fold := strings.ToLower(s.Name)
		if prev, ok := storeSeen[fold]; ok {
			return fmt.Errorf("%w: stores %q and %q would share a directory", metadata.ErrCorrupt, prev, s.Name)
		}
		storeSeen[fold] = s.Name
		seen := map[string]string{}
		for _, f := range s.Files {
			if err := metadata.ValidFileName(f.Name); err != nil || strings.ContainsAny(f.Name, "/\\\x00") || f.Name != path.Base(f.Name) {
				return fmt.Errorf("%w: store %q: unsafe file name %q", metadata.ErrCorrupt, s.Name, f.Name)
			}
			fold := strings.ToLower(f.Name)
			if fold == strings.ToLower(checkpoint.OriginFile) {
				return fmt.Errorf("%w: store %q lists a file named %q, which ckpt reserves", metadata.ErrCorrupt, s.Name, f.Name)
			}
			if prev, ok := seen[fold]; ok {
				return fmt.Errorf("%w: store %q lists %q and %q, the same name under case folding", metadata.ErrCorrupt, s.Name, prev, f.Name)
			}
			seen[fold] = f.Name
			if f.Size < 0 {
				return fmt.Errorf("%w: store %q file %q: negative size", metadata.ErrCorrupt, s.Name, f.Name)
			}
			if _, err := metadata.Resolve(chkDir, f.Path); err != nil {
				if !errors.Is(err, metadata.ErrCorrupt) {
					err = fmt.Errorf("%w: %w", metadata.ErrCorrupt, err)
				}
				return fmt.Errorf("store %q file %q: %w", s.Name, f.Name, err)
			}
		}
	}
	return nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
