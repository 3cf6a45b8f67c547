package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/internal/objcheck"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// ErrBadBase means the job's latest checkpoint cannot be read, so an
// incremental checkpoint cannot be built on it.
var ErrBadBase = errors.New("checkpoint: the job's latest checkpoint is unreadable")

// ErrReservationLost means the checkpoint's `_pending` reservation vanished
// before the commit: a gc collected it (see gc's --min-age).
var ErrReservationLost = errors.New("checkpoint: reservation lost before commit (was gc run with a --min-age shorter than this checkpoint took?)")

// ErrChanged means a source file changed while it was being checkpointed.
var ErrChanged = errors.New("checkpoint: source file changed while reading")

// DefaultRefreshInterval is how often a creator rewrites its reservation.
// gc's --min-age must be well above it.
const DefaultRefreshInterval = 5 * time.Minute

// DefaultParallel is the default number of concurrent uploads.
const DefaultParallel = 8

// Options tune Create. The zero value is usable.
type Options struct {
	// Full makes a checkpoint that reuses no file of the job's latest
	// checkpoint; every shared object it references is uploaded or, if an
	// object of the same content name already exists, verified by checksum.
	Full bool
	// Parallel is the number of concurrent uploads (DefaultParallel if 0).
	Parallel int
	// LocalDir, if set, receives a local secondary copy of the checkpoint
	// (see WriteLocalCopy). Its failure only adds a warning. The previous
	// copy there also spares re-hashing the shared files it hard-links
	// (see knownSums): an incremental create then reads only new files.
	LocalDir string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Progress receives hashing and upload progress in bytes (nil: none).
	Progress progress.Reporter
	// RefreshInterval is how often the `_pending` reservation is rewritten
	// while uploads run, so that gc sees the creator alive
	// (DefaultRefreshInterval if 0).
	RefreshInterval time.Duration
	// Origin, if set, is the checkpoint the stores were restored from
	// (see Store.Origin); it is recorded as the checkpoint's lineage.
	Origin *OriginRef
}

// OriginRef is a restored store's source checkpoint as Create sees it.
type OriginRef struct {
	// Dir is the source checkpoint's directory key when it is in the same
	// bucket as the job ("" otherwise: then nothing of it can be
	// referenced).
	Dir          string
	JobID        string
	CheckpointID uint64
	// Claim lets the first checkpoint of a job reference the source
	// checkpoint's shared files in place instead of uploading them again.
	// Create then records a referrer marker in the source job, so that its
	// gc checks this job before deleting anything.
	Claim bool
}

// Result describes a committed checkpoint.
type Result struct {
	CheckpointID  uint64
	Kind          metadata.Kind
	BaseID        uint64
	MetadataKey   string
	FilesUploaded int
	BytesUploaded int64
	FilesReused   int
	BytesReused   int64
	TotalFiles    int
	TotalBytes    int64
	// LocalCopy is the directory of the local copy ("" if none was made).
	LocalCopy string
	// Warnings are non-fatal problems (a failed local copy).
	Warnings []string
}

// Create takes a checkpoint of stores into job and commits it. It uploads
// the stores' private files into the new `chk-<N>/` directory and their
// shared files into the job's `shared/` directory, skipping those the job's
// latest checkpoint already holds (unless opts.Full), then writes
// `_metadata` create-only-if-absent as the commit point.
//
// Checkpoint ids increase: N is one more than every `chk-<N>` directory in
// the job, committed or not, and it is reserved with a create-if-absent
// `_pending` marker (kept after the commit), so concurrent creators never
// share an id or a private file. A failure or cancellation before the commit leaves no checkpoint,
// only objects that no checkpoint references (gc removes them). Existing
// objects are never overwritten.
//
// Create reads the stores but never modifies them; the caller closes them.
func Create(ctx context.Context, b *blob.Bucket, job metadata.Job, stores []*Store, opts Options) (*Result, error) {
	if len(stores) == 0 {
		return nil, errors.New("checkpoint: no stores")
	}
	seen := map[string]bool{}
	for _, s := range stores {
		if seen[s.Name] {
			return nil, fmt.Errorf("checkpoint: store name %q given twice", s.Name)
		}
		seen[s.Name] = true
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	par := opts.Parallel
	if par <= 0 {
		par = DefaultParallel
	}

	// A concurrent gc may expire the checkpoint we find newest between the
	// listing and the read (a newer one exists then): list again.
	var entries []metadata.Entry
	var base *metadata.Checkpoint
	var jobID string
	for attempt := 0; ; attempt++ {
		var err error
		if entries, err = metadata.ListJob(ctx, b, job); err != nil {
			return nil, err
		}
		base, jobID, err = findBase(ctx, b, job, entries, opts.Full)
		if err == nil {
			break
		}
		if !errors.Is(err, metadata.ErrNotFound) || attempt == 4 {
			return nil, err
		}
	}

	sums, err := hashStores(ctx, stores, knownSums(opts.LocalDir, stores), min(par, runtime.NumCPU()), opts.Progress)
	if err != nil {
		return nil, err
	}

	// Reuse the base checkpoint's files; a store restored with claim into
	// a job without checkpoints reuses its source checkpoint's files.
	var reuseFrom *metadata.Checkpoint
	var reuseDir string
	switch o := opts.Origin; {
	case base != nil:
		reuseFrom, reuseDir = base, job.CheckpointDir(base.ID)
	case o != nil && o.Claim && o.Dir != "" && !opts.Full:
		src, err := metadata.Read(ctx, b, o.Dir+"/"+metadata.MetadataName)
		if err != nil {
			return nil, fmt.Errorf("reading the claimed source checkpoint: %w", err)
		}
		reuseFrom, reuseDir = src, o.Dir
	}

	token, err := NewJobID()
	if err != nil {
		return nil, err
	}
	p := metadata.Pending{Token: token, CreatedAt: now().UTC(), BaseID: baseID(base)}
	if reuseFrom != nil && base == nil {
		p.ClaimPath = metadata.RelDir(job.Prefix, reuseDir)
	}
	id, err := reserve(ctx, b, job, entries, p)
	if err != nil {
		return nil, err
	}
	chkDir := job.CheckpointDir(id)

	// The gc protocol (see package gc): gc deletes an expired checkpoint's
	// _metadata before its files, and re-reads referrer and reservation
	// markers after that and before deleting shared files. So, once our
	// markers are visible, either gc sees them and keeps what they name, or
	// the source of reuse is already gone and must not be used.
	if reuseFrom != nil {
		if err := markReferrers(ctx, b, job, jobID, reuseFrom, reuseDir); err != nil {
			return nil, err
		}
		ok, err := b.Exists(ctx, reuseDir+"/"+metadata.MetadataName)
		if err != nil {
			return nil, fmt.Errorf("checking %s: %w", reuseDir, storage.Wrap(err))
		}
		if !ok {
			reuseFrom, base = nil, nil
		}
	}
	reuse := map[string]string{} // sha256/size → resolved key
	if reuseFrom != nil {
		for _, s := range reuseFrom.Stores {
			for _, f := range s.Files {
				if key, err := metadata.Resolve(reuseDir, f.Path); err == nil && isShared(f.Name) {
					reuse[contentKey(f.SHA256, f.Size)] = key
				}
			}
		}
	}

	res := &Result{CheckpointID: id, Kind: metadata.KindFull, MetadataKey: job.MetadataKey(id)}
	if reuseFrom != nil {
		res.Kind = metadata.KindIncremental
	}
	if base != nil {
		res.BaseID = base.ID
	}
	c := &metadata.Checkpoint{
		ID: id, JobID: jobID, CreatedAt: now().UTC(), Kind: res.Kind, BaseID: res.BaseID,
	}
	if o := opts.Origin; o != nil {
		c.Lineage = &metadata.Lineage{JobID: o.JobID, CheckpointID: o.CheckpointID, Claim: o.Claim}
		if o.Dir != "" {
			c.Lineage.Path = metadata.Rel(chkDir, o.Dir)
		}
	}

	// Files to upload; out points into c.Stores' file arrays, which never
	// move once made.
	type upload struct {
		store *Store
		file  SourceFile
		sum   string
		key   string
		alt   string // shared: where to write if key exists already
		out   *metadata.File
	}
	var todo []upload
	var toUpload int64
	for _, s := range stores {
		ms := metadata.Store{Name: s.Name, FormatMajorVersion: s.FormatMajorVersion, Files: make([]metadata.File, len(s.Files))}
		for i, f := range s.Files {
			sum := sums[s.Name][f.Name]
			ms.Files[i] = metadata.File{Name: f.Name, Size: f.Size, SHA256: sum}
			if f.Shared {
				if key, ok := reuse[contentKey(sum, f.Size)]; ok {
					ms.Files[i].Path = metadata.Rel(chkDir, key)
					res.FilesReused++
					res.BytesReused += f.Size
					continue
				}
			}
			u := upload{store: s, file: f, sum: sum, key: job.PrivateKey(id, s.Name, f.Name), out: &ms.Files[i]}
			if f.Shared {
				u.key = job.SharedKey(metadata.SharedName(f.Name, sum))
				u.alt = job.SharedKey(metadata.SharedNameFor(f.Name, sum, id))
			}
			todo = append(todo, u)
			toUpload += f.Size
		}
		c.Stores = append(c.Stores, ms)
	}

	stopRefresh := refreshPending(ctx, b, job.PendingKey(id), p, opts.RefreshInterval)
	progress.Start(opts.Progress, "uploading", toUpload)
	var mu sync.Mutex
	// The uploads' directory fsyncs (local files) wait for one barrier
	// before the commit instead of following every object.
	bctx, batch := storage.WithSyncBatch(ctx)
	g, gctx := errgroup.WithContext(bctx)
	g.SetLimit(par)
	for _, t := range todo {
		g.Go(func() error {
			key, err := uploadFile(gctx, b, t.key, t.alt, t.store.Path(t.file), t.file.Size, t.sum, opts.Progress)
			if err != nil {
				return err
			}
			t.out.Path = metadata.Rel(chkDir, key)
			t.out.New = true
			mu.Lock()
			defer mu.Unlock()
			res.FilesUploaded++
			res.BytesUploaded += t.file.Size
			return nil
		})
	}
	err = g.Wait()
	progress.Done(opts.Progress)
	if serr := stopRefresh(); err == nil {
		err = serr
	}
	if err == nil {
		if err = batch.Sync(ctx); err != nil {
			err = fmt.Errorf("making the uploads to %s durable: %w", chkDir, err)
		}
	}
	if err != nil {
		return nil, err
	}

	data, err := metadata.Encode(c)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A reservation that vanished was collected by a gc that took this
	// creator for dead (it ran longer than gc's --min-age): its uploads may
	// be gone, so it must not commit.
	if err := checkReservation(ctx, b, job.PendingKey(id), token); err != nil {
		return nil, fmt.Errorf("checking the reservation of %s: %w", chkDir, err)
	}
	if err := storage.WriteIfAbsent(ctx, b, res.MetadataKey, bytes.NewReader(data), metaOpts()); err != nil {
		return nil, fmt.Errorf("committing %s: %w", res.MetadataKey, err)
	}
	// Committed. The reservation marker stays: were it removed, another
	// creator that listed the job before this commit could reserve the same
	// id again. gc deletes it with the checkpoint's other objects.

	res.TotalFiles, res.TotalBytes = c.FileCount(), c.TotalBytes()
	if opts.LocalDir != "" {
		dir, err := WriteLocalCopy(opts.LocalDir, id, stores, data)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("local copy not kept: %v", err))
		} else {
			res.LocalCopy = dir
		}
	}
	return res, nil
}

// markReferrers records, in every other job whose shared files checkpoint
// src (at directory key dir) references and which a new checkpoint of job
// may therefore reuse, a marker naming job, so that gc of that job checks
// this one before deleting anything.
func markReferrers(ctx context.Context, b *blob.Bucket, job metadata.Job, jobID string, src *metadata.Checkpoint, dir string) error {
	owners := map[string]bool{}
	for _, s := range src.Stores {
		for _, f := range s.Files {
			key, err := metadata.Resolve(dir, f.Path)
			if err != nil {
				return err
			}
			if owner, ok := metadata.JobOfSharedKey(key); ok && owner != job.Prefix {
				owners[owner] = true
			}
		}
	}
	for owner := range owners {
		data, err := json.Marshal(metadata.Referrer{Path: metadata.RelDir(owner, job.Prefix), JobID: jobID})
		if err != nil {
			return err
		}
		key := metadata.Job{Prefix: owner}.ReferrerKey(jobID)
		err = storage.WriteIfAbsent(ctx, b, key, bytes.NewReader(data), metaOpts())
		if err != nil && !errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("recording referrer %s: %w", key, err)
		}
	}
	return nil
}

// isShared reports whether a store file is an immutable data file.
func isShared(name string) bool {
	k, _ := classify(name)
	return k == fileTable || k == fileBlob
}

func baseID(c *metadata.Checkpoint) uint64 {
	if c == nil {
		return 0
	}
	return c.ID
}

func contentKey(sum string, size int64) string { return fmt.Sprintf("%s/%d", sum, size) }

// findBase reads the job's newest committed checkpoint. An unreadable one is
// an error unless full is set, in which case the job id is taken from the
// newest readable checkpoint (or made anew) and no base is used.
func findBase(ctx context.Context, b *blob.Bucket, job metadata.Job, entries []metadata.Entry, full bool) (*metadata.Checkpoint, string, error) {
	first := true
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if !e.Committed {
			continue
		}
		c, err := metadata.Read(ctx, b, job.MetadataKey(e.ID))
		if err != nil {
			if first && !full {
				return nil, "", fmt.Errorf("%w: %w", ErrBadBase, err)
			}
			first = false
			continue
		}
		if full || !first {
			return nil, c.JobID, nil
		}
		return c, c.JobID, nil
	}
	id, err := NewJobID()
	return nil, id, err
}

// NewJobID returns a random 128-bit job id in hex.
func NewJobID() (string, error) {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf[:]), nil
}

// refreshPending rewrites the reservation marker every interval until the
// returned stop function is called, so that its modification time shows gc
// that the creator is alive. stop returns the first refresh error.
func refreshPending(ctx context.Context, b *blob.Bucket, key string, p metadata.Pending, interval time.Duration) (stop func() error) {
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	data, _ := json.Marshal(p)
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				errc <- nil
				return
			case <-ctx.Done():
				errc <- nil
				return
			case <-t.C:
				if err := b.WriteAll(ctx, key, data, metaOpts()); err != nil && ctx.Err() == nil {
					errc <- fmt.Errorf("refreshing %s: %w", key, storage.Wrap(err))
					return
				}
			}
		}
	}()
	return func() error {
		close(done)
		return <-errc
	}
}

// checkReservation confirms that the marker at key is still the one this
// creator wrote (a collected reservation may have been taken by another
// creator since).
func checkReservation(ctx context.Context, b *blob.Bucket, key, token string) error {
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		if storage.IsNotFound(err) {
			return ErrReservationLost
		}
		return storage.Wrap(err)
	}
	var p metadata.Pending
	if json.Unmarshal(data, &p) != nil || p.Token != token {
		return ErrReservationLost
	}
	return nil
}

// reserve claims the next checkpoint id with a create-if-absent `_pending`
// marker, stepping past ids that another creator claimed first.
func reserve(ctx context.Context, b *blob.Bucket, job metadata.Job, entries []metadata.Entry, p metadata.Pending) (uint64, error) {
	var id uint64 = 1
	if n := len(entries); n > 0 {
		id = entries[n-1].ID + 1
	}
	data, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	for tries := 0; tries < 1000; tries++ {
		err := storage.WriteIfAbsent(ctx, b, job.PendingKey(id), bytes.NewReader(data), metaOpts())
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return 0, fmt.Errorf("reserving %s: %w", job.CheckpointDir(id), err)
		}
		id++
	}
	return 0, fmt.Errorf("reserving a checkpoint id in %s: too many concurrent creators", job.Prefix)
}

// hashStores computes the SHA-256 of every source file, in parallel, but
// for those whose digest is known (see knownSums).
func hashStores(ctx context.Context, stores []*Store, known map[string]map[string]string, par int, pr progress.Reporter) (map[string]map[string]string, error) {
	var total int64
	for _, s := range stores {
		for _, f := range s.Files {
			total += f.Size
		}
	}
	progress.Start(pr, "hashing", total)
	defer progress.Done(pr)
	out := map[string]map[string]string{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(par, 1))
	for _, s := range stores {
		out[s.Name] = map[string]string{}
	}
	for _, s := range stores {
		for _, f := range s.Files {
			if sum, ok := known[s.Name][f.Name]; ok {
				out[s.Name][f.Name] = sum
				progress.Add(pr, f.Size)
				continue
			}
			g.Go(func() error {
				sum, err := hashFile(gctx, s.Path(f), f.Size, pr)
				if err != nil {
					return err
				}
				mu.Lock()
				out[s.Name][f.Name] = sum
				mu.Unlock()
				return nil
			})
		}
	}
	return out, g.Wait()
}

func hashFile(ctx context.Context, path string, size int64, pr progress.Reporter) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, progress.Reader(ctxReader{ctx, f}, pr))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if n != size {
		return "", fmt.Errorf("%w: %s was %d bytes, now %d", ErrChanged, path, size, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// uploadFile writes the local file at path to key, create-if-absent,
// verifying on the way that its bytes still hash to sum, and returns the key
// written. If a shared file's key (alt != "") exists already (left by a
// crashed or concurrent creator, or another history) it is neither trusted
// nor reused, since nothing protects it from gc: the file goes to alt, a
// name unique to this checkpoint, instead. A private file never exists
// already unless another creator took over the reserved id.
func uploadFile(ctx context.Context, b *blob.Bucket, key, alt, path string, size int64, sum string, pr progress.Reporter) (string, error) {
	for _, k := range []string{key, alt} {
		if k == "" {
			break
		}
		// The bucket cannot send a stream twice: a transient failure
		// re-opens the file. If an interrupted attempt stored the object
		// after all, the next one finds k taken: a shared file then goes to
		// alt as above; a private file of our reserved directory that holds
		// exactly our bytes is ours.
		var sent int64
		interrupted := false
		err := storage.Retry(ctx, storage.RetryPolicyOf(b), "", func() error {
			progress.Add(pr, -sent)
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("reading %s: %w", path, err)
			}
			defer f.Close()
			r := &verifyingReader{r: progress.Reader(f, pr), h: sha256.New(), want: sum, size: size, path: path}
			defer func() { sent = r.n }()
			err = put(ctx, b, k, r)
			if interrupted && alt == "" && errors.Is(err, storage.ErrExists) {
				if problem, cerr := objcheck.Check(ctx, b, k, size, sum, nil); cerr == nil && problem == "" {
					return nil
				}
			}
			interrupted = interrupted || storage.IsTransient(err)
			return err
		})
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return "", err
		}
		progress.Add(pr, -sent)
	}
	if alt == "" {
		// A private file of our reserved directory exists: another creator
		// holds the same id (ours was collected by gc meanwhile).
		return "", fmt.Errorf("writing %s: %w", key, ErrReservationLost)
	}
	return "", fmt.Errorf("writing %s: %w", alt, storage.ErrExists)
}

// put uploads r to key, create-if-absent. If reading r fails, the write is aborted (its
// context cancelled before the writer closes), so no partial object is ever
// committed.
func put(ctx context.Context, b *blob.Bucket, key string, r io.Reader) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ar := &abortingReader{r: r, cancel: cancel}
	opts := &blob.WriterOptions{ContentType: "application/octet-stream"}
	err := storage.WriteIfAbsent(wctx, b, key, ar, opts)
	if ar.err != nil {
		return ar.err
	}
	if err != nil {
		if errors.Is(err, storage.ErrExists) {
			return err
		}
		return fmt.Errorf("writing %s: %w", key, storage.Wrap(err))
	}
	return nil
}

type abortingReader struct {
	r      io.Reader
	cancel func()
	err    error
}

func (a *abortingReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		a.err = err
		a.cancel()
	}
	return n, err
}

// verifyingReader checks, at EOF, that the bytes read have the expected size
// and SHA-256, and fails the read otherwise.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	size int64
	n    int64
	path string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		return n, fmt.Errorf("%w: %s grew past %d bytes", ErrChanged, v.path, v.size)
	}
	if err == io.EOF {
		if v.n != v.size || hex.EncodeToString(v.h.Sum(nil)) != v.want {
			return n, fmt.Errorf("%w: %s", ErrChanged, v.path)
		}
	}
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func metaOpts() *blob.WriterOptions {
	return &blob.WriterOptions{ContentType: "application/octet-stream"}
}
