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
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// localFile is a regular file in the local directory or the target, as
// found (with Lstat) and then opened and verified.
type localFile struct {
	root string // the directory it was found under (an os.Root)
	dir  string // its directory, relative to root ("." for root itself)
	name string
	// Identity when found; a file that is used later must still match.
	size     int64
	dev, ino uint64
	mtime    int64
	perm     fs.FileMode
}

func (l *localFile) path() string { return filepath.Join(l.root, l.dir, l.name) }

func (l *localFile) rel() string { return path.Join(l.dir, l.name) }

// sameAs reports whether a regular file with this identity is the file l
// was when it was found.
func (l *localFile) sameAs(dev, ino uint64, size, mtime int64) bool {
	return dev == l.dev && ino == l.ino && size == l.size && mtime == l.mtime
}

func newLocalFile(root, dir, name string, fi fs.FileInfo) *localFile {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return nil
	}
	return &localFile{root: root, dir: dir, name: name, size: fi.Size(),
		dev: uint64(st.Dev), ino: uint64(st.Ino), mtime: st.Mtim.Nano(), perm: fi.Mode().Perm()}
}

var errChanged = errors.New("changed since it was found")

// open opens l through root (never following a link out of it) and checks
// that it is still the same file.
func (l *localFile) open(root *os.Root) (*os.File, error) {
	f, err := root.Open(l.rel())
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() || !l.sameAs(uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim.Nano()) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", l.path(), errChanged)
	}
	return f, nil
}

// present reports whether l is still there, the same file as when found.
func (l *localFile) present(root *os.Root) bool {
	f, err := l.open(root)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// verify reads l and reports whether it has the given size and SHA-256.
func (l *localFile) verify(ctx context.Context, root *os.Root, size int64, sum string, bufs *bufPool, pr progress.Reporter) (bool, error) {
	if l.size != size {
		return false, nil
	}
	f, err := l.open(root)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	buf := bufs.get()
	defer bufs.put(buf)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		m, err := f.Read(*buf)
		h.Write((*buf)[:m])
		n += int64(m)
		progress.Add(pr, int64(m))
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
		if n > size {
			return false, nil
		}
	}
	return n == size && hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// immutable reports whether a store file is never modified after Pebble
// wrote it (sstables and blob files), so that it may be hard-linked.
func immutable(name string) bool {
	for _, ext := range []string{".sst", ".blob"} {
		if stem, ok := strings.CutSuffix(name, ext); ok {
			_, err := strconv.ParseUint(stem, 10, 64)
			return err == nil
		}
	}
	return false
}

// listDir returns the regular files of dir (relative to root), by name.
// A missing directory, or one reached through a symbolic link as its last
// element, has none.
func listDir(root *os.Root, rootPath, dir string) (map[string]*localFile, error) {
	fi, err := root.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return nil, nil
	}
	d, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	out := map[string]*localFile{}
	for _, n := range names {
		if metadata.ValidFileName(n) != nil {
			continue
		}
		fi, err := root.Lstat(path.Join(dir, n))
		if err != nil {
			continue
		}
		if l := newLocalFile(rootPath, dir, n, fi); l != nil {
			out[n] = l
		}
	}
	return out, nil
}

// localChkDirs lists the checkpoint directories of a local directory kept
// by `create --local-dir`, newest first.
func localChkDirs(root *os.Root) ([]string, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	type chk struct {
		name string
		id   uint64
	}
	var out []chk
	for _, n := range names {
		if id, ok := metadata.ParseCheckpointDirName(n); ok {
			if fi, err := root.Lstat(n); err == nil && fi.IsDir() {
				out = append(out, chk{n, id})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id > out[j].id })
	dirs := make([]string, len(out))
	for i, c := range out {
		dirs[i] = c.name
	}
	return dirs, nil
}

// findLocal picks, for every file, a verified copy in the target (with
// ReuseTarget) or the local directory, in that order of preference.
func (p *Plan) findLocal(ctx context.Context) error {
	o := p.opts
	type source struct {
		root *os.Root
		path string
		kind Source
	}
	var sources []source
	if o.ReuseTarget && p.tgt.exists && !p.tgt.empty {
		r, err := os.OpenRoot(p.tgt.abs)
		if err != nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("files in %s not reused: %v", p.tgt.abs, err))
		} else {
			defer r.Close()
			sources = append(sources, source{r, p.tgt.abs, FromTarget})
		}
	}
	if o.LocalDir != "" {
		abs, err := filepath.Abs(o.LocalDir)
		var r *os.Root
		if err == nil {
			r, err = os.OpenRoot(abs)
		}
		if err != nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("local directory %s not used: %v", o.LocalDir, oneLine(err)))
		} else {
			defer r.Close()
			sources = append(sources, source{r, abs, FromLocal})
		}
	}
	if len(sources) == 0 {
		return nil
	}

	// Index: for each store, the candidates by name, best first.
	type cand struct {
		l    *localFile
		kind Source
		root *os.Root
	}
	index := map[string]map[string][]cand{}
	for _, s := range p.Stores {
		idx := map[string][]cand{}
		index[s.Name] = idx
		for _, src := range sources {
			var dirs []string
			if src.kind == FromTarget {
				dirs = []string{s.Dir}
			} else {
				chks, err := localChkDirs(src.root)
				if err != nil {
					p.Warnings = append(p.Warnings, fmt.Sprintf("local directory %s not used: %v", src.path, oneLine(err)))
					continue
				}
				for _, c := range chks {
					dirs = append(dirs, path.Join(c, s.Name))
				}
			}
			for _, d := range dirs {
				files, err := listDir(src.root, src.path, d)
				if err != nil {
					p.Warnings = append(p.Warnings, fmt.Sprintf("reading %s: %v", filepath.Join(src.path, d), oneLine(err)))
					continue
				}
				for n, l := range files {
					idx[n] = append(idx[n], cand{l, src.kind, src.root})
				}
			}
		}
	}

	var total int64
	found := 0
	cands := make([][]cand, len(p.Files))
	for i, f := range p.Files {
		for _, c := range index[f.Store][f.Name] {
			if c.l.size == f.Size {
				cands[i] = append(cands[i], c)
			}
		}
		if len(cands[i]) > 0 {
			total += f.Size
			found++
		}
	}
	if found == 0 {
		return nil
	}
	progress.Start(o.Progress, "verifying local files", total)
	defer progress.Done(o.Progress)
	var mu sync.Mutex
	bad := map[Source]int{}
	crossFS := false
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(o.Parallel, 2*runtime.NumCPU())))
	for i := range p.Files {
		if len(cands[i]) == 0 {
			continue
		}
		f := &p.Files[i]
		g.Go(func() error {
			for _, c := range cands[i] {
				var ok bool
				var err error
				if o.TrustSize && immutable(f.Name) {
					ok, err = c.l.present(c.root), nil
					progress.Add(o.Progress, f.Size)
				} else {
					ok, err = c.l.verify(gctx, c.root, f.Size, f.SHA256, p.bufs, o.Progress)
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !ok || err != nil {
					mu.Lock()
					bad[c.kind]++
					mu.Unlock()
					continue
				}
				f.Source, f.src, f.From = c.kind, c.l, c.l.path()
				f.Link = immutable(f.Name) && c.l.perm == 0o644 && c.l.dev == p.tgt.dev
				if c.kind == FromLocal && c.l.dev != p.tgt.dev {
					mu.Lock()
					crossFS = true
					mu.Unlock()
				}
				return nil
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n := bad[FromLocal]; n > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d files in the local directory %s do not match the checkpoint; they are fetched from storage", n, o.LocalDir))
	}
	if n := bad[FromTarget]; n > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d files in %s do not match the checkpoint and are replaced", n, p.tgt.abs))
	}
	if crossFS {
		p.Warnings = append(p.Warnings, fmt.Sprintf("the local directory %s is on another filesystem than %s: its files are copied, not hard-linked", o.LocalDir, p.tgt.abs))
	}
	return nil
}

// listThreshold is the number of files needed from one storage directory
// above which it is listed once rather than asked about file by file.
const listThreshold = 32

// checkRemote checks that every file to download exists in storage with its
// recorded size. Missing or wrong-sized files are named in an error wrapping
// ErrVerifyFailed; other storage errors are returned as they are.
func (p *Plan) checkRemote(ctx context.Context) error {
	byDir := map[string][]*File{}
	for i := range p.Files {
		f := &p.Files[i]
		if f.Source == FromRemote {
			d := metadata.DirOf(f.Key)
			byDir[d] = append(byDir[d], f)
		}
	}
	var mu sync.Mutex
	var problems []string
	bad := func(f *File, what string) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf("%s/%s (%s) %s", f.Store, f.Name, f.From, what))
		mu.Unlock()
	}
	check := func(f *File, size int64) {
		if size != f.Size {
			bad(f, fmt.Sprintf("is %d bytes, expected %d", size, f.Size))
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Parallel)
	for dir, files := range byDir {
		if len(files) > listThreshold {
			g.Go(func() error {
				sizes, err := listSizes(gctx, p.b, dir)
				if err != nil {
					return err
				}
				for _, f := range files {
					size, ok := sizes[f.Key]
					if !ok {
						bad(f, "is missing")
						continue
					}
					check(f, size)
				}
				return nil
			})
			continue
		}
		for _, f := range files {
			g.Go(func() error {
				a, err := p.b.Attributes(gctx, f.Key)
				if storage.IsNotFound(err) {
					bad(f, "is missing")
					return nil
				}
				if err != nil {
					return fmt.Errorf("checking %s: %w", f.From, storage.Wrap(err))
				}
				check(f, a.Size)
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	n := len(problems)
	if n > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", n-5))
	}
	return fmt.Errorf("%w: %s: %d files cannot be restored: %s", ErrVerifyFailed, p.Location, n, strings.Join(problems, "; "))
}

func listSizes(ctx context.Context, b *blob.Bucket, dir string) (map[string]int64, error) {
	prefix := dir + "/"
	if dir == "" {
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
			return nil, fmt.Errorf("listing %s: %w", prefix, storage.Wrap(err))
		}
		if !obj.IsDir {
			out[obj.Key] = obj.Size
		}
	}
}

// bufSize is the size of each transfer buffer; at most Parallel are in use.
const bufSize = 1 << 20

// bufPool recycles transfer buffers.
type bufPool struct{ p sync.Pool }

func newBufPool() *bufPool {
	return &bufPool{p: sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}}
}

func (b *bufPool) get() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufPool) put(x *[]byte) { b.p.Put(x) }
