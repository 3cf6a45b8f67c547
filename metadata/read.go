package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ErrNotFound means the checkpoint (its `_metadata`) or job does not exist.
var ErrNotFound = errors.New("metadata: checkpoint not found")

// Read reads and decodes the `_metadata` object at key. A missing object is
// ErrNotFound; an invalid one wraps ErrCorrupt or ErrNewerVersion. Every file
// path is resolved against key's directory, so a path escaping the storage
// root is rejected here.
func Read(ctx context.Context, b *blob.Bucket, key string) (*Checkpoint, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	defer r.Close()
	if r.Size() > MaxSize {
		return nil, fmt.Errorf("reading %s: %w: %d bytes is over the %d-byte limit", key, ErrCorrupt, r.Size(), MaxSize)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	c, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	dir := DirOf(key)
	for _, s := range c.Stores {
		for _, f := range s.Files {
			if _, err := Resolve(dir, f.Path); err != nil {
				return nil, fmt.Errorf("reading %s: store %q file %q: %w", key, s.Name, f.Name, err)
			}
		}
	}
	return c, nil
}

// DirOf returns the directory key of an object key ("a/b/_metadata" → "a/b").
func DirOf(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return ""
}

// Entry is one `chk-<N>` directory of a job as found by ListJob.
type Entry struct {
	// ID is N.
	ID uint64
	// Committed is true if `_metadata` exists (the checkpoint is complete,
	// though it may still fail to decode).
	Committed bool
	// Pending is true if a creator's reservation marker exists.
	Pending bool
}

// ListJob lists the checkpoint directories of a job, sorted by id, in one
// paginated listing of the keys under `chk-` (shared/ is not listed).
func ListJob(ctx context.Context, b *blob.Bucket, j Job) ([]Entry, error) {
	byID := map[uint64]*Entry{}
	prefix := j.Dir() + checkpointPrefix
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", displayDir(j.Dir()), err)
		}
		rest := obj.Key[len(j.Dir()):]
		dir, name, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		id, ok := ParseCheckpointDirName(dir)
		if !ok {
			continue
		}
		e := byID[id]
		if e == nil {
			e = &Entry{ID: id}
			byID[id] = e
		}
		switch name {
		case MetadataName:
			e.Committed = true
		case PendingName:
			e.Pending = true
		}
	}
	out := make([]Entry, 0, len(byID))
	for _, e := range byID {
		out = append(out, *e)
	}
	sort.Slice(out, func(a, c int) bool { return out[a].ID < out[c].ID })
	return out, nil
}

func displayDir(d string) string {
	if d == "" {
		return "the bucket root"
	}
	return d
}
