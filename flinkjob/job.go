package flinkjob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/storage"
)

// State is the state of a chk-<N> directory.
type State string

// Checkpoint directory states.
const (
	// Complete: `_metadata` exists and decodes.
	Complete State = "complete"
	// Incomplete: no `_metadata` (a checkpoint being written, or one that
	// was aborted or half deleted).
	Incomplete State = "incomplete"
	// Corrupt: `_metadata` exists but cannot be decoded.
	Corrupt State = "corrupt"
)

// JobEntry is one chk-<N> directory of a job.
type JobEntry struct {
	ID    int64
	State State
	// Objects and Bytes count every object of the directory.
	Objects int
	Bytes   int64
	// Newest is the modification time of the directory's newest object.
	Newest time.Time
	// Report describes a complete checkpoint.
	Report *Report
	// Error says why a corrupt entry cannot be read.
	Error string
}

// JobReport describes a Flink job directory.
type JobReport struct {
	Job         Job
	Checkpoints []JobEntry
	// Latest is the newest complete checkpoint's id (-1 if none).
	Latest int64
	// Shared and TaskOwned count the objects (and bytes) in shared/ and
	// taskowned/.
	Shared, TaskOwned Count
	Verified          bool
	Problems          int
}

// jobListing is every object of a job directory, by part.
type jobListing struct {
	dirs      map[int64][]object
	shared    []object
	taskOwned []object
}

type object struct {
	key  string
	size int64
	mod  time.Time
}

// listJob lists every object under the job directory.
func listJob(ctx context.Context, b *blob.Bucket, job Job) (*jobListing, error) {
	l := &jobListing{dirs: map[int64][]object{}}
	it := b.List(&blob.ListOptions{Prefix: job.Dir()})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			return l, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", displayKey(job.Dir()), storage.Wrap(err))
		}
		if o.IsDir {
			continue
		}
		obj := object{key: o.Key, size: o.Size, mod: o.ModTime}
		top, name, ok := strings.Cut(o.Key[len(job.Dir()):], "/")
		if !ok || name == "" {
			continue
		}
		switch top {
		case SharedDir:
			l.shared = append(l.shared, obj)
		case TaskOwnedDir:
			l.taskOwned = append(l.taskOwned, obj)
		default:
			if id, ok := ParseCheckpointDirName(top); ok {
				l.dirs[id] = append(l.dirs[id], obj)
			}
		}
	}
}

func (l *jobListing) ids() []int64 {
	ids := make([]int64, 0, len(l.dirs))
	for id := range l.dirs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// metadataOf returns the `_metadata` object of checkpoint id, if listed.
func (l *jobListing) metadataOf(job Job, id int64) *object {
	key := job.MetadataKey(id)
	for i, o := range l.dirs[id] {
		if o.key == key {
			return &l.dirs[id][i]
		}
	}
	return nil
}

// ReadJob reports on every chk-<N> directory of a Flink job directory and
// counts its shared/ and taskowned/ objects, verifying each complete
// checkpoint as opts say (listing each directory once for all of them). A
// directory with no chk-<N>, shared/ or taskowned/ object wraps
// ErrNotFound. Corrupt checkpoints and bad files are problems: the report
// comes back with an error wrapping ErrVerifyFailed; other errors (storage
// unreachable) abort.
func ReadJob(ctx context.Context, s Store, job Job, opts Options) (*JobReport, error) {
	l, err := listJob(ctx, s.Bucket, job)
	if err != nil {
		return nil, err
	}
	if len(l.dirs) == 0 && len(l.shared) == 0 && len(l.taskOwned) == 0 {
		return nil, notFound("no chk-<N>, shared/ or taskowned/ in %s", displayKey(job.Dir()))
	}
	r := &JobReport{Job: job, Latest: -1, Verified: opts.Verify || opts.ReadData}
	for _, o := range l.shared {
		r.Shared.add(o.size)
	}
	for _, o := range l.taskOwned {
		r.TaskOwned.add(o.size)
	}
	ls := newLister(s.Bucket)
	for _, id := range l.ids() {
		e := JobEntry{ID: id, State: Incomplete}
		for _, o := range l.dirs[id] {
			e.Objects++
			e.Bytes += o.size
			if o.mod.After(e.Newest) {
				e.Newest = o.mod
			}
		}
		if l.metadataOf(job, id) != nil {
			snap, err := ReadMetadata(ctx, s.Bucket, job.MetadataKey(id))
			switch {
			case err == nil:
				e.State, e.Report = Complete, Describe(s, snap)
				r.Latest = id
				if r.Verified {
					if err := e.Report.verify(ctx, s.Bucket, ls, opts); err != nil {
						return nil, err
					}
					r.Problems += e.Report.Problems
				}
			case errors.Is(err, ErrCorrupt):
				e.State, e.Error = Corrupt, err.Error()
				r.Problems++
			case errors.Is(err, ErrNotFound):
				// Deleted since the listing (Flink subsumed it).
			default:
				return nil, err
			}
		}
		r.Checkpoints = append(r.Checkpoints, e)
	}
	if r.Problems > 0 {
		return r, fmt.Errorf("%w: %d problems in %s", ErrVerifyFailed, r.Problems, displayKey(job.Prefix))
	}
	return r, nil
}
