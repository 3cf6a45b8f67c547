package flinkjob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/flink"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// RelocateOptions tune a relocation.
type RelocateOptions struct {
	// ReadData also reads every source file before copying (to its end),
	// and compares the SHA-256 of every destination object with its
	// source's after copying. Flink records no checksums; without
	// ReadData objects are checked by size.
	ReadData bool
	// Parallel bounds concurrent copies and requests (8 if 0).
	Parallel int
}

// Copy is one object a relocation copies.
type Copy struct {
	Src, Dst string
	// Size is the source object's size.
	Size int64
	// Skip is true when the object is already at the destination with
	// that size (a re-run of an interrupted relocation).
	Skip bool
}

// RelocateResult describes a relocation (before Execute: the plan).
type RelocateResult struct {
	// SourceKey is the source `_metadata`; Dir the destination directory.
	SourceKey, Dir string
	CheckpointID   int64
	// Files and Bytes count the distinct files the checkpoint references.
	Files int
	Bytes int64
	// Handles counts the handles whose path changed; Relative counts the
	// file handles (all relative at the destination), Segments the
	// segment handles (given an absolute URI in the destination
	// directory).
	Handles, Relative, Segments int
	FilesCopied, FilesSkipped   int
	BytesCopied, BytesSkipped   int64
	ServerSide                  bool
	// Done: the destination already holds this very `_metadata`.
	Done bool
	// Warnings are things the caller should tell the user.
	Warnings []string
}

// RelocatePlan is a relocation computed by NewRelocatePlan; nothing is
// written until Execute.
type RelocatePlan struct {
	src, dst   Store
	srcKey     string
	dir        string
	opts       RelocateOptions
	copies     []Copy
	newMeta    []byte
	res        RelocateResult
	serverSide bool
	executed   bool
}

// NewRelocatePlan reads the Flink `_metadata` at srcKey in src and plans
// copying the checkpoint into the directory dstDir of dst (for a job
// directory DST, DST/chk-<N>), so that it is self-contained there: every
// file it references, wherever it lies in the source bucket (the job's
// shared/, its own directory, another job's directories, entropy-injected
// paths), is copied into dstDir itself, flat, under its base name (made
// unique with a "-2", "-3", ... suffix when two files share one), and the
// rewritten `_metadata` names each by a relative path, as Flink writes
// files that sit beside `_metadata`. File-merging segment files are copied
// once, whatever the number of segments in them, and keep their offsets;
// since Flink has no relative form for segment handles, they are given
// the absolute URI of the copy (Store.URI), which fails for Azure
// destinations (ErrUnsupported).
//
// Pass the same *blob.Bucket in src and dst to copy server-side.
//
// NewRelocatePlan writes nothing. It fails, wrapping ErrVerifyFailed and
// naming the files, if a file cannot be resolved in the source bucket
// (outside it, or an invalid path), is missing or has the wrong size (with
// ReadData: cannot be read to its end); wrapping ErrOverlap if dstDir and
// the source directory contain one another; wrapping ErrDestinationExists
// if dstDir holds a different `_metadata`, or objects the relocation would
// not write. A destination holding this
// very `_metadata` is done already (RelocateResult.Done); one holding some
// of the objects with their sizes (an interrupted run) is resumed.
func NewRelocatePlan(ctx context.Context, src Store, srcKey string, dst Store, dstDir string, opts RelocateOptions) (*RelocatePlan, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	srcDir := DirOf(srcKey)
	if dstDir == "" || checkPath(dstDir) != nil {
		return nil, fmt.Errorf("%w: destination directory %q", ErrBadPath, dstDir)
	}
	if src.SameBucket(dst) && (dstDir == srcDir || strings.HasPrefix(dstDir+"/", srcDir+"/") || strings.HasPrefix(srcDir+"/", dstDir+"/")) {
		return nil, fmt.Errorf("%w: %s and %s", ErrOverlap, dstDir, displayKey(srcDir))
	}
	snap, err := ReadMetadata(ctx, src.Bucket, srcKey)
	if err != nil {
		return nil, err
	}
	p := &RelocatePlan{src: src, dst: dst, srcKey: srcKey, dir: dstDir, opts: opts, serverSide: src.Bucket == dst.Bucket}
	p.res = RelocateResult{SourceKey: srcKey, Dir: dstDir, CheckpointID: snap.Metadata.CheckpointID, ServerSide: p.serverSide}

	m := snap.Metadata
	refs := m.FileRefs()
	files, refFile := collectFiles(src, srcDir, refs)
	l := newLister(src.Bucket)
	if err := p.checkSource(ctx, l, files); err != nil {
		return nil, err
	}
	sizes, err := l.sizes(ctx, keysOf(files), opts.Parallel) // listed by checkSource
	if err != nil {
		return nil, err
	}
	names := uniqueNames(files)
	for i, f := range files {
		p.copies = append(p.copies, Copy{Src: f.Key, Dst: dstDir + "/" + names[i], Size: sizes[f.Key]})
		p.res.Files++
		p.res.Bytes += sizes[f.Key]
	}
	for i := range refs {
		r := &refs[i]
		oldPath, oldRel := r.Path, r.Relative
		dstKey := p.copies[refFile[i]].Dst
		if r.Kind == flink.KindSegmentFile {
			uri, err := dst.URI(dstKey, r.Path)
			if err != nil {
				return nil, fmt.Errorf("relocating the file-merging segments of %s: %w", srcKey, err)
			}
			err = r.SetPath(uri, false)
			if err != nil {
				return nil, fmt.Errorf("rewriting %s: %w", r.Location.String(), err)
			}
			p.res.Segments++
		} else {
			if err := r.SetPath(names[refFile[i]], true); err != nil {
				return nil, fmt.Errorf("rewriting %s: %w", r.Location.String(), err)
			}
			p.res.Relative++
		}
		if r.Path != oldPath || r.Relative != oldRel {
			p.res.Handles++
		}
	}
	if p.newMeta, err = m.Encode(); err != nil {
		return nil, fmt.Errorf("encoding the relocated %s: %w", srcKey, err)
	}
	p.res.Warnings = warnings(m)
	if err := p.inspectDestination(ctx); err != nil {
		return nil, err
	}
	for _, c := range p.copies {
		if c.Skip {
			p.res.FilesSkipped++
			p.res.BytesSkipped += c.Size
		} else {
			p.res.FilesCopied++
			p.res.BytesCopied += c.Size
		}
	}
	return p, nil
}

func keysOf(files []File) []string {
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.Key
	}
	return keys
}

// checkSource checks that every file resolves in the source bucket and
// exists with its size (and, with ReadData, can be read).
func (p *RelocatePlan) checkSource(ctx context.Context, l *lister, files []File) error {
	n, err := checkFiles(ctx, p.src.Bucket, l, files,
		Options{Verify: true, ReadData: p.opts.ReadData, Parallel: p.opts.Parallel})
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("checking the source before writing anything: %w", newVerifyError(p.srcKey, files, n))
	}
	return nil
}

// uniqueNames gives every file a name in the destination directory: its
// base name, unless an earlier file took it (or it is reserved), then the
// base name with the first free "-<n>" suffix. Names depend only on the
// order of the files, so a re-run plans the same names.
func uniqueNames(files []File) []string {
	names := make([]string, len(files))
	taken := map[string]bool{MetadataName: true}
	for i, f := range files {
		base := path.Base(f.Key)
		if !taken[base] && storage.CheckKey(base) == nil {
			names[i] = base
			taken[base] = true
		}
	}
	for i, f := range files {
		if names[i] != "" {
			continue
		}
		base := strings.TrimPrefix(path.Base(f.Key), ".")
		for n := 2; ; n++ {
			name := base + "-" + strconv.Itoa(n)
			if !taken[name] && storage.CheckKey(name) == nil {
				names[i] = name
				taken[name] = true
				break
			}
		}
	}
	return names
}

// warnings lists what the relocated checkpoint keeps from its source.
func warnings(m *flink.Metadata) []string {
	var out []string
	seen := false
	m.Walk(func(_ *flink.Location, h flink.Handle) {
		if o, ok := h.(*flink.OperatorStateHandle); ok && o.FileMerging && !seen && (o.TaskOwnedDir != "" || o.SharedDir != "") {
			seen = true
			out = append(out, "file-merging operator state keeps the source job's taskowned/ and shared/ directory names as written (Flink only uses them to clean up)")
		}
	})
	return out
}

// inspectDestination refuses a destination holding another checkpoint or
// foreign objects, recognises a finished relocation, and marks the objects
// an interrupted run already copied.
func (p *RelocatePlan) inspectDestination(ctx context.Context) error {
	metaKey := p.dir + "/" + MetadataName
	existing, err := readSmall(ctx, p.dst.Bucket, metaKey)
	if err != nil {
		return err
	}
	if existing != nil {
		if bytes.Equal(existing, p.newMeta) {
			p.res.Done = true
			for i := range p.copies {
				p.copies[i].Skip = true
			}
			return nil
		}
		return fmt.Errorf("%w: %s holds another checkpoint", ErrDestinationExists, metaKey)
	}
	ours := map[string]int{}
	for i, c := range p.copies {
		ours[c.Dst] = i
	}
	it := p.dst.Bucket.List(&blob.ListOptions{Prefix: p.dir + "/", Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", p.dir, storage.Wrap(err))
		}
		i, ok := ours[obj.Key]
		if !ok || obj.IsDir {
			return fmt.Errorf("%w: %s holds objects this relocation would not write, e.g. %s", ErrDestinationExists, p.dir, obj.Key)
		}
		p.copies[i].Skip = obj.Size == p.copies[i].Size
	}
}

// readSmall reads a `_metadata` whole; a missing one is (nil, nil).
func readSmall(ctx context.Context, b *blob.Bucket, key string) ([]byte, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// Result returns what the plan does.
func (p *RelocatePlan) Result() RelocateResult { return p.res }

// Copies lists the objects the plan copies (Skip: already there).
func (p *RelocatePlan) Copies() []Copy { return append([]Copy(nil), p.copies...) }

// Metadata returns the `_metadata` the plan writes.
func (p *RelocatePlan) Metadata() []byte { return bytes.Clone(p.newMeta) }

// Execute copies every object not already in place (server-side within one
// bucket, streamed otherwise, in parallel), verifies every object at the
// destination (size; with ReadData, SHA-256 against the source), and only
// then writes `_metadata`, create-if-absent. An interrupted or failed
// Execute leaves no `_metadata`; running the same relocation again resumes
// it. pr receives byte progress; nil means none. Execute may be called
// once.
func (p *RelocatePlan) Execute(ctx context.Context, pr progress.Reporter) (RelocateResult, error) {
	if p.executed {
		return p.res, errors.New("flinkjob: relocation already executed")
	}
	p.executed = true
	if p.res.Done {
		return p.res, nil
	}
	if err := p.copyAll(ctx, pr); err != nil {
		return p.res, err
	}
	if err := p.verifyDestination(ctx, pr); err != nil {
		return p.res, err
	}
	metaKey := p.dir + "/" + MetadataName
	err := storage.WriteIfAbsent(ctx, p.dst.Bucket, metaKey, bytes.NewReader(p.newMeta), nil)
	if errors.Is(err, storage.ErrExists) {
		existing, rerr := readSmall(ctx, p.dst.Bucket, metaKey)
		if rerr != nil {
			return p.res, rerr
		}
		if !bytes.Equal(existing, p.newMeta) {
			return p.res, fmt.Errorf("%w: %s was written by someone else meanwhile", ErrDestinationExists, metaKey)
		}
		err = nil
	}
	return p.res, err
}

func (p *RelocatePlan) copyAll(ctx context.Context, pr progress.Reporter) error {
	var total int64
	for _, c := range p.copies {
		if !c.Skip {
			total += c.Size
		}
	}
	progress.Start(pr, "copying", total)
	defer progress.Done(pr)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Parallel)
	for _, c := range p.copies {
		if c.Skip {
			continue
		}
		g.Go(func() error {
			if p.serverSide {
				if err := p.dst.Bucket.Copy(gctx, c.Dst, c.Src, nil); err != nil {
					return fmt.Errorf("copying %s to %s: %w", c.Src, c.Dst, storage.Wrap(err))
				}
				progress.Add(pr, c.Size)
				return nil
			}
			return stream(gctx, p.src.Bucket, p.dst.Bucket, c, pr)
		})
	}
	return g.Wait()
}

// verifyDestination checks that every object is at the destination with
// its size and, with ReadData, the content of its source.
func (p *RelocatePlan) verifyDestination(ctx context.Context, pr progress.Reporter) error {
	present, err := listDir(ctx, p.dst.Bucket, p.dir)
	if err != nil {
		return err
	}
	var bad []string
	for _, c := range p.copies {
		if n, ok := present[c.Dst]; !ok || n != c.Size {
			bad = append(bad, fmt.Sprintf("%s (size %d, expected %d)", c.Dst, n, c.Size))
		}
	}
	if len(bad) == 0 && p.opts.ReadData {
		var total int64
		for _, c := range p.copies {
			total += 2 * c.Size
		}
		progress.Start(pr, "verifying", total)
		defer progress.Done(pr)
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(p.opts.Parallel)
		for _, c := range p.copies {
			g.Go(func() error {
				a, err := hashObject(gctx, p.src.Bucket, c.Src, pr)
				if err != nil {
					return err
				}
				b, err := hashObject(gctx, p.dst.Bucket, c.Dst, pr)
				if err != nil {
					return err
				}
				if a != b {
					mu.Lock()
					bad = append(bad, c.Dst+" (content differs from "+c.Src+")")
					mu.Unlock()
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: %d objects at the destination do not match their source, e.g. %s; nothing was committed, run again", ErrVerifyFailed, len(bad), bad[0])
	}
	return nil
}

func hashObject(ctx context.Context, b *blob.Bucket, key string, pr progress.Reporter) (string, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, progress.Reader(r, pr)); err != nil {
		return "", fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	return string(h.Sum(nil)), nil
}

// errShortCopy is what a streamed object that does not have the size the
// source listing gave fails with.
var errShortCopy = errors.New("size changed while copying")

// stream copies c.Src (in sb) to c.Dst (in db); a read error or a size
// other than c.Size cancels the upload before it commits, so no partial
// object is ever written.
func stream(ctx context.Context, sb, db *blob.Bucket, c Copy, pr progress.Reporter) error {
	rd, err := sb.NewReader(ctx, c.Src, nil)
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.Src, storage.Wrap(err))
	}
	defer rd.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cr := &countingReader{r: rd, c: c, cancel: cancel}
	err = db.Upload(wctx, c.Dst, progress.Reader(cr, pr), &blob.WriterOptions{ContentType: "application/octet-stream"})
	if cr.err != nil {
		return cr.err
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", c.Dst, storage.Wrap(err))
	}
	return nil
}

type countingReader struct {
	r      io.Reader
	c      Copy
	n      int64
	cancel func()
	err    error
}

func (v *countingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	switch {
	case v.n > v.c.Size:
		err = fmt.Errorf("reading %s: %w: more than %d bytes", v.c.Src, errShortCopy, v.c.Size)
	case err == io.EOF && v.n != v.c.Size:
		err = fmt.Errorf("reading %s: %w: %d bytes, expected %d", v.c.Src, errShortCopy, v.n, v.c.Size)
	case err != nil && err != io.EOF:
		err = fmt.Errorf("reading %s: %w", v.c.Src, storage.Wrap(err))
	default:
		return n, err
	}
	v.err = err
	v.cancel()
	return n, err
}
