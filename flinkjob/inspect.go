package flinkjob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/flink"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// Options select how deep inspection goes.
type Options struct {
	// Verify checks that every referenced file exists with its recorded
	// size (a segment file: at least as long as its last segment's end).
	Verify bool
	// ReadData also reads every file to its end (implies Verify). Flink
	// records no checksums: this finds unreadable objects, not changed
	// bytes.
	ReadData bool
	// Parallel bounds concurrent storage requests (8 if 0).
	Parallel int
	// Progress receives byte progress of ReadData; nil means none.
	Progress progress.Reporter
}

func (o Options) parallel() int {
	if o.Parallel <= 0 {
		return 8
	}
	return o.Parallel
}

// File is one file a checkpoint references, however many handles name it
// (channel state handles of one file, segments of one merged file).
type File struct {
	// Path is the path as written in the first handle naming the file.
	Path string
	// Key is the object key; "" when Where is Outside or Invalid.
	Key   string
	Where Where
	// Relative is true when the first handle naming the file is a
	// RelativeFileStateHandle.
	Relative bool
	// Kind and Location are those of the first handle naming the file.
	Kind     flink.HandleKind
	Location flink.Location
	// Size is the recorded size; for a file named only by segment
	// handles, the end of its last segment (a lower bound of its size).
	Size int64
	// Segment is true for a file named only by SegmentFileStateHandles.
	Segment bool
	// Handles counts the handles naming the file.
	Handles int
	// Problem is "" for a good (or unverified) file, otherwise what is
	// wrong: the resolution error, "missing", "size …", "unreadable: …".
	Problem string
}

// collectFiles groups refs (the FileRefs of the `_metadata` in dir) by the
// file they name and returns the files, in order of first reference, and
// for each ref the index of its file.
func collectFiles(s Store, dir string, refs []flink.FileRef) ([]File, []int) {
	var files []File
	byID := map[string]int{}
	refFile := make([]int, len(refs))
	for i := range refs {
		r := &refs[i]
		key, err := s.Resolve(dir, r.Path, r.Relative)
		id := "k:" + key
		if err != nil {
			id = "p:" + r.Path
		}
		end := r.Size
		if r.Kind == flink.KindSegmentFile {
			end = r.SegmentStart + r.Size
		}
		n, seen := byID[id]
		if !seen {
			f := File{Path: r.Path, Key: key, Relative: r.Relative, Kind: r.Kind, Location: r.Location,
				Size: end, Segment: r.Kind == flink.KindSegmentFile}
			switch {
			case errors.Is(err, ErrOutsideBucket):
				f.Where, f.Problem = Outside, "outside the opened bucket"
			case err != nil:
				f.Where, f.Problem = Invalid, err.Error()
			default:
				f.Where = classify(dir, key)
			}
			n = len(files)
			byID[id] = n
			files = append(files, f)
		}
		f := &files[n]
		f.Handles++
		switch {
		case r.Kind != flink.KindSegmentFile && f.Segment:
			f.Segment, f.Size = false, r.Size
		case r.Kind != flink.KindSegmentFile:
			f.Size = max(f.Size, r.Size)
		case f.Segment:
			f.Size = max(f.Size, end)
		}
		refFile[i] = n
	}
	return files, refFile
}

// Count is a number of handles and the bytes they stand for.
type Count struct {
	Handles int
	Bytes   int64
}

func (c *Count) add(n int64) { c.Handles++; c.Bytes += n }

// HandleStats describes a checkpoint's state handles in human terms.
type HandleStats struct {
	// Inline: state stored in `_metadata` itself (byte stream handles,
	// in-memory changelog).
	Inline Count
	// RelativeFiles: RelativeFileStateHandles (exclusive files next to
	// `_metadata`).
	RelativeFiles Count
	// AbsoluteFiles: FileStateHandles (absolute URIs), of which
	// SharedFiles are the shared files of incremental RocksDB snapshots.
	AbsoluteFiles Count
	SharedFiles   Count
	// Segments: file-merging SegmentFileStateHandles (bytes: the
	// segments' lengths).
	Segments Count
	// Changelog: changelog state backend handles (materialized parts and
	// increments).
	Changelog Count
	// ChannelState: in-flight data of unaligned checkpoints.
	ChannelState Count
	// ByKind counts every handle, nested ones included, by kind.
	ByKind map[flink.HandleKind]int
}

func handleStats(m *flink.Metadata) HandleStats {
	st := HandleStats{ByKind: map[flink.HandleKind]int{}}
	m.Walk(func(loc *flink.Location, h flink.Handle) {
		st.ByKind[h.Kind()]++
		switch h := h.(type) {
		case *flink.ByteStreamHandle:
			st.Inline.add(int64(len(h.Data)))
		case *flink.ChangelogByteIncrementHandle:
			st.Inline.add(h.StateSize())
			st.Changelog.add(h.StateSize())
		case *flink.FileHandle:
			if h.Relative {
				st.RelativeFiles.add(h.Size)
			} else {
				st.AbsoluteFiles.add(h.Size)
			}
			if loc.Role() == flink.RoleShared {
				st.SharedFiles.add(h.Size)
			}
		case *flink.SegmentFileHandle:
			st.Segments.add(h.Size)
		case *flink.ChangelogHandle, *flink.ChangelogFileIncrementHandle:
			st.Changelog.add(h.StateSize())
		case *flink.ChannelStateHandle:
			st.ChannelState.add(h.Size)
		}
	})
	return st
}

// SlotState is one top-level handle of a subtask.
type SlotState struct {
	Slot      flink.Slot
	Kind      flink.HandleKind
	StateSize int64
}

// Subtask is one subtask of an operator.
type Subtask struct {
	Index     int32
	Finished  bool
	StateSize int64
	Handles   []SlotState
}

// Operator is one operator of a checkpoint.
type Operator struct {
	ID flink.OperatorID
	// Name and UID are recorded from metadata version 5 (Flink 2.0) on;
	// "" when absent.
	Name, UID      string
	Parallelism    int32
	MaxParallelism int32
	FullyFinished  bool
	// CoordinatorBytes is the size of the operator coordinator's state.
	CoordinatorBytes int64
	StateSize        int64
	Subtasks         []Subtask
}

func operators(m *flink.Metadata) []Operator {
	var ops []Operator
	for _, op := range m.Operators {
		o := Operator{ID: op.ID, Name: op.Name, UID: op.UID, Parallelism: op.Parallelism,
			MaxParallelism: op.MaxParallelism, FullyFinished: op.FullyFinished}
		if op.CoordinatorState != nil {
			o.CoordinatorBytes = int64(len(op.CoordinatorState.Data))
			o.StateSize += o.CoordinatorBytes
		}
		for _, s := range op.Subtasks {
			st := Subtask{Index: s.Index, Finished: s.Finished}
			add := func(slot flink.Slot, h flink.Handle) {
				st.Handles = append(st.Handles, SlotState{Slot: slot, Kind: h.Kind(), StateSize: h.StateSize()})
				st.StateSize += h.StateSize()
			}
			if s.ManagedOperatorState != nil {
				add(flink.SlotManagedOperator, s.ManagedOperatorState)
			}
			if s.RawOperatorState != nil {
				add(flink.SlotRawOperator, s.RawOperatorState)
			}
			if s.ManagedKeyedState != nil {
				add(flink.SlotManagedKeyed, s.ManagedKeyedState)
			}
			if s.RawKeyedState != nil {
				add(flink.SlotRawKeyed, s.RawKeyedState)
			}
			for _, c := range s.InputChannelState {
				if c != nil {
					add(flink.SlotInputChannel, c)
				}
			}
			for _, c := range s.ResultSubpartitionState {
				if c != nil {
					add(flink.SlotResultSubpartition, c)
				}
			}
			o.StateSize += st.StateSize
			o.Subtasks = append(o.Subtasks, st)
		}
		ops = append(ops, o)
	}
	return ops
}

// Report is the description of one Flink checkpoint (or savepoint).
type Report struct {
	Snapshot *Snapshot
	// Job is the job directory when the checkpoint's directory is
	// `<job>/chk-<N>`.
	Job       *Job
	Operators []Operator
	Handles   HandleStats
	Files     []File
	// FileBytes sums the sizes of Files.
	FileBytes   int64
	InlineBytes int64
	// StateSize is what Flink reports as the checkpoint's state size.
	StateSize int64
	// SelfContained: every file reference is relative or names a file
	// inside the checkpoint's own directory, so that the directory can be
	// moved or copied as a whole.
	SelfContained bool
	Verified      bool
	DataChecked   bool
	Problems      int
}

// Describe reports on a decoded checkpoint without touching storage: s
// resolves its paths.
func Describe(s Store, snap *Snapshot) *Report {
	m := snap.Metadata
	files, _ := collectFiles(s, snap.Dir, m.FileRefs())
	sum := m.Summary()
	r := &Report{Snapshot: snap, Operators: operators(m), Handles: handleStats(m), Files: files,
		InlineBytes: sum.InlineBytes, StateSize: sum.StateSize, SelfContained: true}
	if job, _, ok := JobOf(snap.Dir); ok {
		r.Job = &job
	}
	for _, f := range files {
		r.FileBytes += f.Size
		if f.Where != InCheckpoint {
			r.SelfContained = false
		}
	}
	return r
}

// ReadCheckpoint reads the Flink `_metadata` at metadataKey and reports on
// it, verifying its files as opts say. A report with problems comes with an
// error wrapping ErrVerifyFailed that names the first bad files. A missing
// `_metadata` wraps ErrNotFound, an unreadable one ErrCorrupt.
func ReadCheckpoint(ctx context.Context, s Store, metadataKey string, opts Options) (*Report, error) {
	snap, err := ReadMetadata(ctx, s.Bucket, metadataKey)
	if err != nil {
		return nil, err
	}
	r := Describe(s, snap)
	if !opts.Verify && !opts.ReadData {
		return r, nil
	}
	if err := r.verify(ctx, s.Bucket, newLister(s.Bucket), opts); err != nil {
		return r, err
	}
	return r, r.verifyError()
}

func (r *Report) verify(ctx context.Context, b *blob.Bucket, l *lister, opts Options) error {
	r.Verified, r.DataChecked = true, opts.ReadData
	problems, err := checkFiles(ctx, b, l, r.Files, opts)
	r.Problems = problems
	return err
}

func (r *Report) verifyError() error {
	if r.Problems == 0 {
		return nil
	}
	return newVerifyError(r.Snapshot.Key, r.Files, r.Problems)
}

// maxNamed bounds the files an error message names.
const maxNamed = 5

func newVerifyError(what string, files []File, problems int) error {
	var named []string
	for _, f := range files {
		if f.Problem != "" && len(named) < maxNamed {
			name := f.Key
			if name == "" {
				name = f.Path
			}
			named = append(named, name+" ("+f.Problem+")")
		}
	}
	more := ""
	if problems > len(named) {
		more = fmt.Sprintf(" and %d more", problems-len(named))
	}
	return fmt.Errorf("%w: %d of %d files of %s are bad: %s%s", ErrVerifyFailed, problems, len(files), what, strings.Join(named, ", "), more)
}

// checkFiles sets the Problem of every bad file and returns how many there
// are. Files already carrying a problem (unresolvable) count as bad. Only
// a failure to list (storage unreachable) or a cancelled context is an
// error.
func checkFiles(ctx context.Context, b *blob.Bucket, l *lister, files []File, opts Options) (int, error) {
	var keys []string
	for _, f := range files {
		if f.Problem == "" {
			keys = append(keys, f.Key)
		}
	}
	sizes, err := l.sizes(ctx, keys, opts.parallel())
	if err != nil {
		return 0, err
	}
	var total int64
	for i := range files {
		f := &files[i]
		if f.Problem != "" {
			continue
		}
		size, ok := sizes[f.Key]
		switch {
		case !ok:
			f.Problem = "missing"
		case f.Segment && size < f.Size:
			f.Problem = fmt.Sprintf("size %d, shorter than the end of its last segment at %d", size, f.Size)
		case !f.Segment && size != f.Size:
			f.Problem = fmt.Sprintf("size %d, expected %d", size, f.Size)
		default:
			total += size
		}
	}
	if opts.ReadData {
		if err := readAll(ctx, b, files, sizes, total, opts); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, f := range files {
		if f.Problem != "" {
			n++
		}
	}
	return n, nil
}

// readAll reads every good file to its end.
func readAll(ctx context.Context, b *blob.Bucket, files []File, sizes map[string]int64, total int64, opts Options) error {
	progress.Start(opts.Progress, "reading", total)
	defer progress.Done(opts.Progress)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.parallel())
	for i := range files {
		f := &files[i]
		if f.Problem != "" {
			continue
		}
		g.Go(func() error {
			n, err := countBytes(gctx, b, f.Key, opts.Progress)
			switch {
			case gctx.Err() != nil:
				return gctx.Err()
			case err != nil:
				f.Problem = "unreadable: " + oneLine(err)
			case n != sizes[f.Key]:
				f.Problem = fmt.Sprintf("read %d bytes, listed as %d", n, sizes[f.Key])
			}
			return nil
		})
	}
	return g.Wait()
}

func countBytes(ctx context.Context, b *blob.Bucket, key string, pr progress.Reporter) (int64, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return 0, storage.Wrap(err)
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, progress.Reader(r, pr))
	if err != nil {
		return n, storage.Wrap(err)
	}
	return n, nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// lister lists directories once each (one delimited listing, not one
// request per object) and remembers what it found.
type lister struct {
	b    *blob.Bucket
	mu   sync.Mutex
	dirs map[string]map[string]int64
}

func newLister(b *blob.Bucket) *lister {
	return &lister{b: b, dirs: map[string]map[string]int64{}}
}

// sizes returns the size of each of keys that exists.
func (l *lister) sizes(ctx context.Context, keys []string, par int) (map[string]int64, error) {
	var todo []string
	seen := map[string]bool{}
	l.mu.Lock()
	for _, k := range keys {
		d := DirOf(k)
		if _, ok := l.dirs[d]; !ok && !seen[d] {
			seen[d] = true
			todo = append(todo, d)
		}
	}
	l.mu.Unlock()
	sort.Strings(todo)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, d := range todo {
		g.Go(func() error {
			m, err := listDir(gctx, l.b, d)
			if err != nil {
				return err
			}
			l.mu.Lock()
			l.dirs[d] = m
			l.mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if n, ok := l.dirs[DirOf(k)][k]; ok {
			out[k] = n
		}
	}
	return out, nil
}

// listDir returns the size of every object directly in directory d.
func listDir(ctx context.Context, b *blob.Bucket, d string) (map[string]int64, error) {
	prefix := d + "/"
	if d == "" {
		prefix = ""
	}
	out := map[string]int64{}
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", displayKey(prefix), storage.Wrap(err))
		}
		if !obj.IsDir {
			out[obj.Key] = obj.Size
		}
	}
}
