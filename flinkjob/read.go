package flinkjob

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/flink"
	"github.com/ckpt-dev/ckpt/storage"
)

// MaxMetadataSize bounds the `_metadata` objects read.
const MaxMetadataSize = 1 << 30

// corruptError names the `_metadata` at fault and keeps the decoder's
// message, which names the byte offset.
type corruptError struct {
	key string
	err error
}

func (e *corruptError) Error() string     { return fmt.Sprintf("reading %s: %v", e.key, e.err) }
func (e *corruptError) Unwrap() []error   { return []error{ErrCorrupt, e.err} }
func corrupt(key string, err error) error { return &corruptError{key: key, err: err} }
func notFound(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotFound}, a...)...)
}

// Snapshot is a decoded `_metadata` with what storage says of it.
type Snapshot struct {
	// Key is the `_metadata` object's key; Dir its directory.
	Key, Dir string
	// ModTime is the object's modification time: Flink records no time in
	// `_metadata`, so this is when the checkpoint completed.
	ModTime time.Time
	// Size is the object's size in bytes.
	Size int64
	// Metadata is the decoded file; Raw its bytes.
	Metadata *flink.Metadata
	Raw      []byte
}

// ReadMetadata reads and decodes the Flink `_metadata` at key. A missing
// object wraps ErrNotFound; one that is not a valid Flink `_metadata` (or
// is larger than MaxMetadataSize) wraps ErrCorrupt, with the decoder's
// message naming the byte offset at fault.
func ReadMetadata(ctx context.Context, b *blob.Bucket, key string) (*Snapshot, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, notFound("no _metadata at %s", key)
		}
		return nil, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	defer r.Close()
	if r.Size() > MaxMetadataSize {
		return nil, corrupt(key, fmt.Errorf("%d bytes is over the %d-byte limit", r.Size(), MaxMetadataSize))
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	m, err := flink.Decode(data)
	if err != nil {
		return nil, corrupt(key, err)
	}
	return &Snapshot{Key: key, Dir: DirOf(key), ModTime: r.ModTime(), Size: int64(len(data)), Metadata: m, Raw: data}, nil
}

// Kind is what Detect found.
type Kind int

// Detection results.
const (
	// NotFlink: no sign of Flink at the location (it may be ckpt's, or
	// nothing at all).
	NotFlink Kind = iota
	// Checkpoint: a Flink `_metadata` (the location is the file or its
	// directory: a chk-<N>, a savepoint, ...).
	Checkpoint
	// JobDir: a Flink job directory holding chk-<N>/ directories.
	JobDir
)

// Detection is the result of Detect.
type Detection struct {
	Kind Kind
	// MetadataKey is the `_metadata` (Checkpoint only).
	MetadataKey string
	// Job is the job directory (JobDir only).
	Job Job
}

// maxProbes bounds the chk-<N>/_metadata files Detect reads in a job.
const maxProbes = 8

// Detect tells whether the key prefix names a Flink checkpoint or job
// directory, by reading the first four bytes of at most a few objects (the
// magic number, flink.IsMetadata) and one delimited listing:
//
//   - the object prefix itself, or prefix/_metadata, starting with Flink's
//     magic number is a Checkpoint (any other content there: NotFlink);
//   - otherwise a directory holding chk-<N>/ directories is a JobDir if the
//     newest `_metadata` found in them (up to 8 are tried) is Flink's;
//   - a directory without any such `_metadata` is a JobDir if it holds
//     taskowned/ (which only Flink writes).
//
// A truncated or corrupt `_metadata` that still starts with the magic
// number counts as Flink's. Errors other than objects not found are
// returned; Detect writes nothing.
func Detect(ctx context.Context, b *blob.Bucket, prefix string) (Detection, error) {
	d, _, err := detect(ctx, b, prefix)
	return d, err
}

// Assume is Detect for a location the user says is Flink's: where Detect
// finds a `_metadata` that is not Flink's it returns a Checkpoint anyway
// (reading it then fails naming the bad magic number), and where it finds
// nothing it returns a JobDir (reading it then reports what is missing).
func Assume(ctx context.Context, b *blob.Bucket, prefix string) (Detection, error) {
	d, metaKey, err := detect(ctx, b, prefix)
	switch {
	case err != nil || d.Kind != NotFlink:
	case metaKey != "":
		d = Detection{Kind: Checkpoint, MetadataKey: metaKey}
	case path.Base(prefix) == MetadataName:
		d = Detection{Kind: Checkpoint, MetadataKey: prefix}
	default:
		if _, _, ok := JobOf(prefix); ok {
			d = Detection{Kind: Checkpoint, MetadataKey: join(prefix, MetadataName)}
		} else {
			d = Detection{Kind: JobDir, Job: Job{Prefix: prefix}}
		}
	}
	return d, err
}

// detect implements Detect; for a location holding a `_metadata` that is
// not Flink's it also returns that object's key.
func detect(ctx context.Context, b *blob.Bucket, prefix string) (Detection, string, error) {
	if prefix != "" {
		for _, key := range []string{prefix, join(prefix, MetadataName)} {
			head, ok, err := readHead(ctx, b, key)
			if err != nil {
				return Detection{}, "", err
			}
			if ok {
				if flink.IsMetadata(head) {
					return Detection{Kind: Checkpoint, MetadataKey: key}, "", nil
				}
				return Detection{}, key, nil
			}
		}
	}
	job := Job{Prefix: prefix}
	var ids []int64
	taskOwned := false
	it := b.List(&blob.ListOptions{Prefix: job.Dir(), Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Detection{}, "", fmt.Errorf("listing %s: %w", displayKey(job.Dir()), storage.Wrap(err))
		}
		if !obj.IsDir {
			continue
		}
		name := strings.TrimSuffix(obj.Key[len(job.Dir()):], "/")
		if id, ok := ParseCheckpointDirName(name); ok {
			ids = append(ids, id)
		}
		taskOwned = taskOwned || name == TaskOwnedDir
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	for i, id := range ids {
		if i == maxProbes {
			break
		}
		head, ok, err := readHead(ctx, b, job.MetadataKey(id))
		if err != nil {
			return Detection{}, "", err
		}
		if ok {
			if flink.IsMetadata(head) {
				return Detection{Kind: JobDir, Job: job}, "", nil
			}
			return Detection{}, "", nil
		}
	}
	if taskOwned {
		return Detection{Kind: JobDir, Job: job}, "", nil
	}
	return Detection{}, "", nil
}

// readHead reads the first four bytes of key; ok is false if there is no
// such object.
func readHead(ctx context.Context, b *blob.Bucket, key string) (head []byte, ok bool, err error) {
	if storage.CheckKey(key) != nil {
		return nil, false, nil
	}
	r, err := b.NewRangeReader(ctx, key, 0, 4, nil)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	defer r.Close()
	head, err = io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	return head, true, nil
}

func displayKey(k string) string {
	if k == "" {
		return "the bucket root"
	}
	return k
}
