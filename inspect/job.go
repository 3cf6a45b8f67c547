package inspect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/metadata"
)

// State is the state of a `chk-<N>` directory.
type State string

// Checkpoint directory states.
const (
	// Complete: `_metadata` exists and decodes.
	Complete State = "complete"
	// Incomplete: no `_metadata` (a create in progress, or one that
	// crashed).
	Incomplete State = "incomplete"
	// Corrupt: `_metadata` exists but cannot be read or decoded.
	Corrupt State = "corrupt"
)

// JobEntry is one `chk-<N>` directory of a job.
type JobEntry struct {
	ID    uint64
	State State
	// Pending is true while a creator's reservation marker is present.
	Pending bool
	// The fields below are set for complete checkpoints.
	CreatedAt     time.Time
	Kind          metadata.Kind
	Files         int
	TotalBytes    int64
	NewBytes      int64
	SelfContained bool
	// Problems counts bad files (with Verify) or 1 for a corrupt entry.
	Problems int
	// Error describes why a corrupt entry could not be read.
	Error string
}

// Job is the report on a job location.
type Job struct {
	Key         string
	Checkpoints []JobEntry
	// Latest is the newest complete checkpoint's id (0 if none).
	Latest   uint64
	Verified bool
	Problems int
}

// ReadJob reports on every checkpoint directory of job, verifying each
// complete checkpoint as opts say. A job with no checkpoint directory at all
// is metadata.ErrNotFound. Problems (corrupt metadata, bad files) come back
// in the report together with an error wrapping ErrVerifyFailed; other
// errors (storage unreachable) abort.
func ReadJob(ctx context.Context, b *blob.Bucket, job metadata.Job, opts Options) (*Job, error) {
	entries, err := metadata.ListJob(ctx, b, job)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: no chk-<N> directories in %s", metadata.ErrNotFound, displayKey(job.Prefix))
	}
	r := &Job{Key: job.Prefix, Verified: opts.Verify || opts.ReadData}
	for _, e := range entries {
		je := JobEntry{ID: e.ID, Pending: e.Pending && !e.Committed}
		if !e.Committed {
			je.State = Incomplete
			r.Checkpoints = append(r.Checkpoints, je)
			continue
		}
		c, err := ReadCheckpoint(ctx, b, job, e.ID, opts)
		switch {
		case c != nil:
			je.State = Complete
			je.CreatedAt, je.Kind, je.Files = c.CreatedAt, c.Kind, len(c.Files)
			je.TotalBytes, je.NewBytes, je.SelfContained = c.TotalBytes, c.NewBytes, c.SelfContained
			je.Problems = c.Problems
			r.Latest = e.ID
			if err != nil && !errors.Is(err, ErrVerifyFailed) {
				return nil, err
			}
		case errors.Is(err, metadata.ErrCorrupt) || errors.Is(err, metadata.ErrNewerVersion):
			je.State, je.Problems, je.Error = Corrupt, 1, err.Error()
		default:
			return nil, err
		}
		r.Problems += je.Problems
		r.Checkpoints = append(r.Checkpoints, je)
	}
	if r.Problems > 0 {
		return r, fmt.Errorf("%w: %d problems in %s", ErrVerifyFailed, r.Problems, displayKey(job.Prefix))
	}
	return r, nil
}

func displayKey(k string) string {
	if k == "" {
		return "the bucket root"
	}
	return k
}
