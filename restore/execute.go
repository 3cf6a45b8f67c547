package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// Execute carries out the plan: it builds the stores in a temporary
// directory beside the target (hard-linking or copying verified local files,
// downloading the rest with Options.Parallel transfers, hashing every byte),
// writes each store's origin file, fsyncs everything, opens every store with
// Pebble v2 read-only (and with Options.Check reads every level), and only
// then puts the result in place of the target, atomically (see the package
// documentation). pr receives the bytes restored (nil: none).
//
// Before it starts, Execute removes what interrupted restores into the same
// target left behind, and puts back a target that an interrupted
// replacement left aside. On any error or cancellation it removes its
// temporary directory and leaves the target as it was.
//
// When the plan restores a job's latest checkpoint (and not Strict), a
// checkpoint that fails verification here (a file missing or corrupt in
// storage, a store Pebble cannot open) is recorded in Result.Skipped and
// the next older one is restored instead. A plan can be executed once.
func (p *Plan) Execute(ctx context.Context, pr progress.Reporter) (*Result, error) {
	if p.executed {
		return nil, errors.New("restore: the plan was already executed")
	}
	p.executed = true
	for {
		res, err := p.execute(ctx, pr)
		if err == nil {
			return res, nil
		}
		if p.opts.Strict || len(p.older) == 0 || !unusable(err) || ctx.Err() != nil {
			return nil, err
		}
		skipped := append(append([]Skipped(nil), p.Skipped...), Skipped{CheckpointID: p.CheckpointID, Reason: oneLine(err)})
		next, perr := planJob(ctx, p.b, p.job, p.older, p.opts, skipped, err)
		if perr != nil {
			return nil, perr
		}
		next.executed = true
		p = next
	}
}

// readError is a failure to read from storage, which is worth retrying.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

type executor struct {
	p   *Plan
	tmp string
	// root is the temporary directory; dirs its store directories.
	root *os.Root
	dirs map[string]*os.File
	pr   progress.Reporter

	mu       sync.Mutex
	srcRoots map[string]*os.Root // by path: the target, the local directory
	srcDirs  map[string]*os.File // by root path and directory
	totals   Totals
	warnings []string
	written  []*File // closed by finish, to fsync before the install
}

func (p *Plan) execute(ctx context.Context, pr progress.Reporter) (res *Result, err error) {
	o := p.opts
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	warnings, err := p.tgt.cleanStale()
	if err != nil {
		return nil, err
	}
	// The target may have changed since the plan was made.
	tgt, err := inspectTarget(o)
	if err != nil {
		return nil, err
	}
	if tgt.exists && !tgt.empty {
		release, err := lockStores(tgt.abs)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	tmp, err := os.MkdirTemp(tgt.parent, tgt.sibling(kindTmp)+"*")
	if err != nil {
		return nil, fmt.Errorf("creating a working directory beside %s: %w", tgt.abs, pathErr(err))
	}
	installed := false
	defer func() {
		if !installed {
			_ = os.RemoveAll(tmp)
		}
	}()
	lock, err := lockDir(tmp, true)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := tgt.othersRunning(tmp); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	x := &executor{p: p, tmp: tmp, root: root, dirs: map[string]*os.File{}, pr: pr,
		srcRoots: map[string]*os.Root{}, srcDirs: map[string]*os.File{}, warnings: warnings}
	defer x.close()
	for _, s := range p.Stores {
		if s.Dir != "." {
			if err := root.Mkdir(s.Dir, 0o755); err != nil {
				return nil, fmt.Errorf("creating %s in %s: %w", s.Dir, tmp, pathErr(err))
			}
		}
		d, err := root.Open(s.Dir)
		if err != nil {
			return nil, err
		}
		x.dirs[s.Dir] = d
	}

	// Biggest files first, so the parallel transfers end together.
	order := make([]*File, len(p.Files))
	for i := range p.Files {
		order[i] = &p.Files[i]
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].Size > order[j].Size })
	var total int64
	for _, f := range order {
		total += f.Size
	}
	progress.Start(pr, "restoring", total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	for _, f := range order {
		g.Go(func() error { return x.restoreFile(gctx, f) })
	}
	err = g.Wait()
	progress.Done(pr)
	if err == nil {
		err = x.syncFiles(ctx, o.Parallel)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}

	origin := &checkpoint.Origin{Location: p.Location, JobID: p.JobID, CheckpointID: p.CheckpointID, Claim: o.Claim}
	for _, s := range p.Stores {
		if err := checkpoint.WriteOrigin(filepath.Join(tmp, s.Dir), origin); err != nil {
			return nil, pathErr(err)
		}
		if err := root.Chmod(s.Dir, 0o755); err != nil {
			return nil, err
		}
		if err := x.dirs[s.Dir].Sync(); err != nil {
			return nil, fmt.Errorf("syncing %s: %w", filepath.Join(tmp, s.Dir), err)
		}
	}
	if err := root.Chmod(".", 0o755); err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	for _, s := range p.Stores {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := checkStore(ctx, filepath.Join(tmp, s.Dir), s, o.Check)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", storeName(s), p.Location, err)
		}
		if w != "" {
			x.warnings = append(x.warnings, w)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	old, unlock, err := tgt.install(tmp, tgt.exists && !tgt.empty, o.noExchange)
	defer unlock()
	if err != nil {
		return nil, err
	}
	installed = true
	if err := syncDir(tgt.parent); err != nil {
		x.warnings = append(x.warnings, err.Error())
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			x.warnings = append(x.warnings, fmt.Sprintf("the old contents of %s, now in %s, could not be removed: %v", tgt.abs, old, err))
		}
	}
	return &Result{
		CheckpointID: p.CheckpointID, JobID: p.JobID, Location: p.Location, Target: tgt.abs,
		Stores: p.Stores, Totals: x.totals, Checked: o.Check, Claim: o.Claim, Skipped: p.Skipped,
		Warnings: append(append([]string(nil), p.Warnings...), x.warnings...),
	}, nil
}

func storeName(s Store) string { return fmt.Sprintf("store %q", s.Name) }

func (x *executor) close() {
	for _, d := range x.dirs {
		d.Close()
	}
	for _, d := range x.srcDirs {
		d.Close()
	}
	for _, r := range x.srcRoots {
		r.Close()
	}
}

func (x *executor) warn(format string, args ...any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.warnings = append(x.warnings, fmt.Sprintf(format, args...))
}

func (x *executor) count(src Source, link bool, size int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.totals.add(src, link, size)
}

// restoreFile puts f into the temporary directory: from its verified local
// copy if it has one and that is unchanged, from storage otherwise.
func (x *executor) restoreFile(ctx context.Context, f *File) error {
	// errgroup keeps starting queued files after a cancellation; a driver
	// that ignores ctx (local files) would fetch each of them in full.
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.src != nil {
		linked, ok, err := x.fromLocal(ctx, f)
		if err != nil {
			return err
		}
		if ok {
			x.count(f.Source, linked, f.Size)
			return nil
		}
		x.warn("%s changed after it was verified; fetched from storage instead", f.src.path())
	}
	if err := x.download(ctx, f); err != nil {
		return err
	}
	x.count(FromRemote, false, f.Size)
	return nil
}

// srcRoot opens (once) the directory a local file was found under.
func (x *executor) srcRoot(dir string) (*os.Root, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if r, ok := x.srcRoots[dir]; ok {
		return r, nil
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	x.srcRoots[dir] = r
	return r, nil
}

// srcDir opens (once) the directory holding a local file, through its root.
func (x *executor) srcDir(root *os.Root, l *localFile) (*os.File, error) {
	key := l.root + "\x00" + l.dir
	x.mu.Lock()
	defer x.mu.Unlock()
	if d, ok := x.srcDirs[key]; ok {
		return d, nil
	}
	d, err := root.Open(l.dir)
	if err != nil {
		return nil, err
	}
	x.srcDirs[key] = d
	return d, nil
}

// fromLocal hard-links or copies f's local copy. ok is false (and err nil)
// when the local copy can no longer be used; err is set only for failures to
// write the temporary directory.
func (x *executor) fromLocal(ctx context.Context, f *File) (linked, ok bool, err error) {
	root, err := x.srcRoot(f.src.root)
	if err != nil {
		return false, false, nil
	}
	if f.Link {
		linked, err := x.link(f, root)
		if err != nil || linked {
			if linked {
				progress.Add(x.pr, f.Size)
			}
			return linked, linked, err
		}
	}
	ok, err = x.copy(ctx, f, root)
	return false, ok, err
}

// link hard-links f's local copy into the temporary directory, and keeps
// the link only if it is the very file that was verified, unchanged, with
// mode 0644.
func (x *executor) link(f *File, root *os.Root) (bool, error) {
	sd, err := x.srcDir(root, f.src)
	if err != nil {
		return false, nil
	}
	dd := int(x.dirs[f.dir].Fd())
	if err := unix.Linkat(int(sd.Fd()), f.src.name, dd, f.Name, 0); err != nil {
		return false, nil
	}
	var st unix.Stat_t
	err = unix.Fstatat(dd, f.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != 0o644 ||
		!f.src.sameAs(uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim.Nano()) {
		_ = unix.Unlinkat(dd, f.Name, 0)
		return false, nil
	}
	fd, err := unix.Openat(dd, f.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("opening %s in %s: %w", f.rel(), x.tmp, err)
	}
	err = unix.Fsync(fd)
	unix.Close(fd)
	if err != nil {
		return false, fmt.Errorf("syncing %s in %s: %w", f.rel(), x.tmp, err)
	}
	return true, nil
}

// copy copies f's local copy, hashing it on the way. ok is false when the
// copy does not match (it is then removed).
func (x *executor) copy(ctx context.Context, f *File, root *os.Root) (bool, error) {
	in, err := f.src.open(root)
	if err != nil {
		return false, nil
	}
	defer in.Close()
	out, err := x.create(f)
	if err != nil {
		return false, err
	}
	n, sum, rerr, werr := x.stream(ctx, in, out, f.Size, x.pr)
	if werr != nil {
		out.Close()
		return false, x.writeErr(f, werr)
	}
	if rerr != nil || n != f.Size || sum != f.SHA256 {
		out.Close()
		x.remove(f)
		return false, nil
	}
	return true, x.finish(f, out)
}

// download fetches f from storage, retrying read errors, except those the
// bucket's own retry policy already gave up on (storage.RetryError).
func (x *executor) download(ctx context.Context, f *File) error {
	for attempt := 0; ; attempt++ {
		err := x.downloadOnce(ctx, f)
		var re *readError
		var given *storage.RetryError
		if err == nil || !errors.As(err, &re) || errors.As(err, &given) || ctx.Err() != nil || attempt >= x.p.opts.Retries {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
}

func (x *executor) downloadOnce(ctx context.Context, f *File) error {
	where := x.p.opts.locate(f.Key)
	rd, err := x.p.b.NewReader(ctx, f.Key, nil)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if storage.IsNotFound(err) {
			return fmt.Errorf("%w: %s (%s/%s) is missing", ErrVerifyFailed, where, f.Store, f.Name)
		}
		return &readError{fmt.Errorf("reading %s: %w", where, storage.Wrap(err))}
	}
	defer rd.Close()
	if rd.Size() != f.Size {
		return fmt.Errorf("%w: %s (%s/%s) is %d bytes, expected %d", ErrVerifyFailed, where, f.Store, f.Name, rd.Size(), f.Size)
	}
	out, err := x.create(f)
	if err != nil {
		return err
	}
	var n int64
	var sum string
	var rerr, werr error
	if src, ok := storage.LocalFile(rd); ok {
		n, sum, rerr, werr = x.copyLocal(ctx, src, out, f)
	} else {
		n, sum, rerr, werr = x.stream(ctx, rd, out, f.Size, x.pr)
	}
	switch {
	case werr != nil:
		out.Close()
		return x.writeErr(f, werr)
	case rerr != nil:
		out.Close()
		x.remove(f)
		return &readError{fmt.Errorf("reading %s: %w", where, storage.Wrap(rerr))}
	case n != f.Size:
		out.Close()
		x.remove(f)
		return fmt.Errorf("%w: %s (%s/%s) gave %d bytes, expected %d", ErrVerifyFailed, where, f.Store, f.Name, n, f.Size)
	case sum != f.SHA256:
		out.Close()
		x.remove(f)
		return fmt.Errorf("%w: %s (%s/%s) does not match its checksum", ErrVerifyFailed, where, f.Store, f.Name)
	}
	return x.finish(f, out)
}

func (f *File) rel() string { return path.Join(f.dir, f.Name) }

// create creates f in the temporary directory with mode 0644 (whatever the
// umask), replacing what an earlier attempt left.
func (x *executor) create(f *File) (*os.File, error) {
	x.remove(f)
	out, err := x.root.OpenFile(f.rel(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, x.writeErr(f, err)
	}
	if err := out.Chmod(0o644); err != nil {
		out.Close()
		return nil, x.writeErr(f, err)
	}
	return out, nil
}

func (x *executor) remove(f *File) {
	_ = x.root.Remove(f.rel())
}

// finish starts writing f to disk and closes it; syncFiles waits for it.
func (x *executor) finish(f *File, out *os.File) error {
	startWriteback(out)
	if err := out.Close(); err != nil {
		return x.writeErr(f, err)
	}
	x.mu.Lock()
	x.written = append(x.written, f)
	x.mu.Unlock()
	return nil
}

// syncFiles fsyncs every file finish closed, par at a time. One fsync per
// file at the end, rather than as each file lands, lets the kernel write
// the files back while later ones are fetched (see startWriteback) and
// lets the filesystem commit many files in one journal transaction.
func (x *executor) syncFiles(ctx context.Context, par int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, f := range x.written {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			out, err := x.root.Open(f.rel())
			if err != nil {
				return x.writeErr(f, err)
			}
			err = out.Sync()
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return x.writeErr(f, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (x *executor) writeErr(f *File, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("writing %s in %s: %w", f.rel(), x.tmp, pathErr(err))
}

// pathErr strips the path from a *fs.PathError (the caller names the file
// itself).
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// copyLocal copies f from the local file src to out inside the kernel
// (copy_file_range), then hashes what landed by reading it back from the
// target, which the copy has just put in the page cache: one copy through
// user space instead of two, and the hash is of the very bytes restored.
// It stops after f.Size+1 bytes. Errors are as for stream.
func (x *executor) copyLocal(ctx context.Context, src, out *os.File, f *File) (n int64, sum string, rerr, werr error) {
	n, err := io.Copy(out, io.LimitReader(src, f.Size+1))
	if err != nil {
		if isWriteErr(err) {
			return n, "", nil, err
		}
		return n, "", err, nil
	}
	progress.Add(x.pr, n)
	if n != f.Size {
		return n, "", nil, nil
	}
	in, err := x.root.Open(f.rel())
	if err != nil {
		return n, "", nil, err
	}
	defer in.Close()
	m, sum, rerr, werr := x.stream(ctx, in, io.Discard, f.Size, nil)
	if werr == nil && rerr != nil {
		werr, rerr = rerr, nil // reading our own target back is the write side
	}
	if m != n {
		return m, "", nil, werr
	}
	return n, sum, nil, werr
}

// isWriteErr reports whether a copy failed on the writing side: the target
// filesystem is full, read-only or over quota.
func isWriteErr(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// stream copies in to out, hashing and counting (into pr), and stops after size+1
// bytes. rerr is a failure to read, werr a failure to write (or a
// cancellation).
func (x *executor) stream(ctx context.Context, in io.Reader, out io.Writer, size int64, pr progress.Reporter) (n int64, sum string, rerr, werr error) {
	h := sha256.New()
	buf := x.p.bufs.get()
	defer x.p.bufs.put(buf)
	for {
		if err := ctx.Err(); err != nil {
			return n, "", nil, err
		}
		m, err := in.Read(*buf)
		if m > 0 {
			h.Write((*buf)[:m])
			if _, werr := out.Write((*buf)[:m]); werr != nil {
				return n, "", nil, werr
			}
			n += int64(m)
			progress.Add(pr, int64(m))
			if n > size {
				return n, "", nil, nil
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, "", err, nil
		}
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil, nil
}
