package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// The local-file driver. It replaces gocloud's fileblob, whose writes leave
// ".attrs" sidecar files and whose create-if-absent is check-then-rename.
//
// Layout: key "a/b/c" is the regular file <dir>/a/b/c. Nothing else is
// stored: no sidecars, so content type, metadata, cache control and MD5 are
// not persisted (Attributes reports "application/octet-stream").
//
// Writes go to a temporary file named ".ckpt-tmp-<random>" in the target
// directory; Close fsyncs it, renames it into place (or, for IfNotExist,
// hard-links it into place, which fails atomically if the key exists, and
// removes the temporary name), then fsyncs the directory, and the ones above
// it that the write had to create. Temporary files are never listed, so a
// crashed or cancelled write leaves no object behind, only an invisible
// temporary file. Under a SyncBatch (see WithSyncBatch) the directory fsyncs
// of writes, copies and deletes wait for the batch's Sync.
//
// Symlink policy: a symbolic link anywhere below the location directory is
// not an object. List skips symlinks and never descends into symlinked
// directories; reading, Attributes, Delete and the source of Copy report
// NotFound for a key whose path goes through a symlink; writing (and the
// destination of Copy) through one fails with PermissionDenied. All access
// goes through an os.Root, so nothing outside the location directory is ever
// touched even if the tree changes concurrently. Symlinks in the location
// directory's own path (above it) are followed normally.

const (
	fileContentType = "application/octet-stream"
	filePerm        = 0o644
	dirPerm         = 0o755
	defaultPageSize = 1000
	// mkdirAttempts bounds retries when a concurrent Delete removes a freshly
	// created, still empty directory before the temporary file lands in it.
	mkdirAttempts = 10
)

var (
	errSymlink = errors.New("path goes through a symbolic link")
	errNotFile = errors.New("not a regular file")
)

// codedError carries an explicit gcerrors code for fileBucket.ErrorCode.
type codedError struct {
	code gcerrors.ErrorCode
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code gcerrors.ErrorCode, err error) error { return &codedError{code: code, err: err} }

// fileBucket implements driver.Bucket over the directory dir. dir need not
// exist: reads then find nothing, and the first write creates it.
type fileBucket struct {
	dir string
	// floor is the key prefix ("" for none) of the opened location: empty
	// directories are pruned only strictly below it, so ckpt never removes
	// a directory it was not pointed into.
	floor string
	// dirs caches the sorted entries of large directories for the next
	// pages of a listing (see readDir).
	dirs dirCache
}

var _ driver.Bucket = (*fileBucket)(nil)

// openFileBucket returns a bucket whose keys are paths relative to the
// absolute directory dir; directories left empty are pruned only below the
// key prefix floor.
func openFileBucket(dir, floor string) *blob.Bucket {
	return blob.NewBucket(&fileBucket{dir: dir, floor: floor})
}

// root opens the location directory, creating it first if create is set.
func (b *fileBucket) root(create bool) (*os.Root, error) {
	r, err := os.OpenRoot(b.dir)
	if err == nil || !create || !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if err := os.MkdirAll(b.dir, dirPerm); err != nil {
		return nil, err
	}
	return os.OpenRoot(b.dir)
}

func checkKey(key string) error {
	if err := CheckKey(key); err != nil {
		return withCode(gcerrors.InvalidArgument, err)
	}
	return nil
}

func osPath(key string) string {
	if key == "" {
		return "."
	}
	return filepath.FromSlash(key)
}

// lstatKey returns the Lstat of key, checking every component on the way:
// a symlink or a non-directory parent means NotFound.
func lstatKey(root *os.Root, key string) (fs.FileInfo, error) {
	if fi, err, ok := lstatBeneath(root.Name(), key); ok {
		return fi, err
	}
	var fi fs.FileInfo
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			continue
		}
		p := key[:i]
		var err error
		fi, err = root.Lstat(osPath(p))
		if err != nil {
			if errors.Is(err, syscall.ENOTDIR) {
				return nil, withCode(gcerrors.NotFound, err)
			}
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, withCode(gcerrors.NotFound, fmt.Errorf("%s: %w", p, errSymlink))
		}
		if i < len(key) && !fi.IsDir() {
			return nil, withCode(gcerrors.NotFound, fmt.Errorf("%s: %w", p, syscall.ENOTDIR))
		}
	}
	return fi, nil
}

// statObject returns the FileInfo of the regular file holding key.
func statObject(root *os.Root, key string) (fs.FileInfo, error) {
	fi, err := lstatKey(root, key)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, withCode(gcerrors.NotFound, fmt.Errorf("%s: %w", key, errNotFile))
	}
	return fi, nil
}

// checkWritable refuses to write key through a symlink (in any existing
// parent, or as the key itself).
func checkWritable(root *os.Root, key string) error {
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			continue
		}
		p := key[:i]
		fi, err := root.Lstat(osPath(p))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the rest will be created
		}
		if err != nil {
			return fileOpError(err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return withCode(gcerrors.PermissionDenied, fmt.Errorf("writing %s: %s: %w", key, p, errSymlink))
		}
	}
	return nil
}

// fileOpError gives err an explicit code so that EEXIST or ENOTDIR from
// directory creation is not mistaken for a lost create-if-absent race.
func fileOpError(err error) error {
	code := gcerrors.Unknown
	if errors.Is(err, fs.ErrPermission) {
		code = gcerrors.PermissionDenied
	}
	return withCode(code, err)
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// newTemp creates the directory that will hold key and an empty temporary
// file in it. It returns the file, its path relative to root, and the
// directories whose entries the write changes: the one that will hold key,
// then every directory newTemp created for it and the existing one it was
// created in, deepest first. All of them must be fsynced for the object to
// be durable.
func newTemp(root *os.Root, key string) (*os.File, string, []string, error) {
	if err := checkWritable(root, key); err != nil {
		return nil, "", nil, err
	}
	parent := osPath(key[:max(strings.LastIndexByte(key, '/'), 0)])
	var lastErr error
	for range mkdirAttempts {
		dirs := []string{parent}
		if parent != "." {
			dirs = append(dirs, missingAncestors(root, parent)...)
			if err := root.MkdirAll(parent, dirPerm); err != nil {
				// A parent was pruned meanwhile, or made and pruned
				// between MkdirAll's mkdirat and its check: try again.
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
					lastErr = err
					continue
				}
				return nil, "", nil, fileOpError(fmt.Errorf("creating directory for %s: %w", key, err))
			}
		}
		tmp := filepath.Join(parent, tempPrefix+randomSuffix())
		f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if err == nil {
			return f, tmp, dirs, nil
		}
		lastErr = err
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return nil, "", nil, fileOpError(fmt.Errorf("creating temporary file for %s: %w", key, lastErr))
}

// missingAncestors returns, when dir does not exist yet, the directories
// above it up to the deepest one that exists, deepest first: creating dir
// adds an entry to each of them. It returns nil when dir exists.
func missingAncestors(root *os.Root, dir string) []string {
	var out []string
	for {
		if _, err := root.Lstat(dir); err == nil || dir == "." {
			return out
		}
		dir = filepath.Dir(dir)
		out = append(out, dir)
	}
}

// commit moves the closed temporary file tmp to key. With exclusive set it
// fails, leaving key untouched, when key already exists.
func commit(root *os.Root, tmp, key string, exclusive bool) error {
	final := osPath(key)
	if !exclusive {
		if err := root.Rename(tmp, final); err != nil {
			_ = root.Remove(tmp)
			return fileOpError(fmt.Errorf("renaming into %s: %w", key, err))
		}
		return nil
	}
	err := root.Link(tmp, final)
	_ = root.Remove(tmp)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		if fi, lerr := root.Lstat(final); lerr == nil && fi.Mode().IsRegular() {
			return withCode(gcerrors.FailedPrecondition, fmt.Errorf("writing %s: %w", key, fs.ErrExist))
		}
		return fileOpError(fmt.Errorf("writing %s: something other than a file is in the way", key))
	}
	return fileOpError(fmt.Errorf("linking into %s: %w", key, err))
}

func syncDir(root *os.Root, dir string) error { return syncClose(root.Open(dir)) }

func etag(fi fs.FileInfo) string {
	return fmt.Sprintf(`"%x-%x-%x"`, inode(fi), fi.ModTime().UnixNano(), fi.Size())
}

func noAs(any) bool { return false }

// ErrorCode implements driver.Bucket.
func (b *fileBucket) ErrorCode(err error) gcerrors.ErrorCode {
	var ce *codedError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	case errors.Is(err, fs.ErrNotExist):
		return gcerrors.NotFound
	case errors.Is(err, fs.ErrExist):
		return gcerrors.FailedPrecondition
	case errors.Is(err, fs.ErrPermission):
		return gcerrors.PermissionDenied
	}
	return gcerrors.Unknown
}

// As implements driver.Bucket; the file driver exposes no types, only
// answers to ckpt's own marker type.
func (b *fileBucket) As(i any) bool {
	p, ok := i.(*localFiles)
	if ok {
		*p = true
	}
	return ok
}

// ErrorAs implements driver.Bucket for *fs.PathError, *os.LinkError and
// syscall.Errno.
func (b *fileBucket) ErrorAs(err error, i any) bool {
	switch p := i.(type) {
	case **fs.PathError:
		return errors.As(err, p)
	case **os.LinkError:
		return errors.As(err, p)
	case *syscall.Errno:
		return errors.As(err, p)
	}
	return false
}

// Attributes implements driver.Bucket.
func (b *fileBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	root, err := b.root(false)
	if err != nil {
		return nil, err
	}
	if including(ctx) {
		if err := b.syncDirs(ctx, root, false, append([]string{osPath(parentKey(key))}, ancestors(parentKey(key), b.floor)...)...); err != nil {
			return nil, err
		}
	}
	defer root.Close()
	fi, err := statObject(root, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{
		ContentType: fileContentType,
		ModTime:     fi.ModTime(),
		Size:        fi.Size(),
		ETag:        etag(fi),
	}, nil
}

// NewRangeReader implements driver.Bucket.
func (b *fileBucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	root, err := b.root(false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if _, err := statObject(root, key); err != nil {
		return nil, err
	}
	f, err := root.Open(osPath(key))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = withCode(gcerrors.NotFound, fmt.Errorf("%s: %w", key, errNotFile))
	}
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err == nil && opts.BeforeRead != nil {
		err = opts.BeforeRead(noAs)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	var r io.Reader = f
	if length >= 0 {
		r = io.LimitReader(f, length)
	}
	return &fileReader{
		ctx:   ctx,
		f:     f,
		r:     r,
		whole: offset == 0 && length < 0,
		attrs: driver.ReaderAttributes{
			ContentType: fileContentType,
			ModTime:     fi.ModTime(),
			Size:        fi.Size(),
		},
	}, nil
}

type fileReader struct {
	ctx   context.Context
	f     *os.File
	r     io.Reader
	attrs driver.ReaderAttributes
	whole bool // from offset 0 to the end
	used  bool // Read was called
}

func (r *fileReader) Read(p []byte) (int, error) {
	r.used = true
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *fileReader) Close() error                         { return r.f.Close() }
func (r *fileReader) Attributes() *driver.ReaderAttributes { return &r.attrs }

// As exposes the open file of a whole-object reader that has not been read
// yet (see LocalFile).
func (r *fileReader) As(i any) bool {
	p, ok := i.(**os.File)
	if !ok || !r.whole || r.used {
		return false
	}
	*p = r.f
	return true
}

// LocalFile returns the open file behind r when r reads a whole object of
// a local location from its start and nothing has been read through r yet,
// so that the caller can copy it inside the kernel (io.Copy to an
// *os.File uses copy_file_range). The file belongs to r: it is closed with
// r, and r must not be read after the file is used.
func LocalFile(r *blob.Reader) (*os.File, bool) {
	var f *os.File
	return f, r.As(&f)
}

// NewTypedWriter implements driver.Bucket. contentType and the metadata
// options are accepted and not stored.
func (b *fileBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root, err := b.root(true)
	if err != nil {
		return nil, fileOpError(err)
	}
	f, tmp, dirs, err := newTemp(root, key)
	if err == nil && opts.BeforeWrite != nil {
		if err = opts.BeforeWrite(noAs); err != nil {
			f.Close()
			_ = root.Remove(tmp)
		}
	}
	if err != nil {
		root.Close()
		return nil, err
	}
	return &fileWriter{
		ctx:        ctx,
		root:       root,
		f:          f,
		tmp:        tmp,
		dirs:       dirs,
		sync:       b.syncDirs,
		key:        key,
		floor:      b.floor,
		ifNotExist: opts.IfNotExist,
	}, nil
}

type fileWriter struct {
	ctx        context.Context
	root       *os.Root
	f          *os.File
	tmp        string
	dirs       []string // to fsync once the object is in place
	sync       func(ctx context.Context, root *os.Root, deleted bool, dirs ...string) error
	key        string
	floor      string
	ifNotExist bool
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.Write(p)
}

// Close makes the object visible, unless the context was cancelled, in which
// case it removes the temporary file and returns the context's error.
func (w *fileWriter) Close() error {
	defer w.root.Close()
	err := w.ctx.Err()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = w.root.Remove(w.tmp)
		pruneEmptyDirs(w.root, w.key, w.floor)
		return err
	}
	if err := commit(w.root, w.tmp, w.key, w.ifNotExist); err != nil {
		pruneEmptyDirs(w.root, w.key, w.floor)
		return err
	}
	return w.sync(w.ctx, w.root, false, w.dirs...)
}

// Copy implements driver.Bucket with a real copy of the bytes (which lets the
// kernel use copy_file_range) into a temporary file renamed over dstKey.
func (b *fileBucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if err := checkKey(srcKey); err != nil {
		return err
	}
	if err := checkKey(dstKey); err != nil {
		return err
	}
	root, err := b.root(false)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := statObject(root, srcKey); err != nil {
		return err
	}
	src, err := root.Open(osPath(srcKey))
	if err != nil {
		return err
	}
	defer src.Close()
	if opts.BeforeCopy != nil {
		if err := opts.BeforeCopy(noAs); err != nil {
			return err
		}
	}
	dst, tmp, dirs, err := newTemp(root, dstKey)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(tmp)
		return err
	}
	if err := commit(root, tmp, dstKey, false); err != nil {
		return err
	}
	return b.syncDirs(ctx, root, false, dirs...)
}

// Delete implements driver.Bucket. Directories left empty by the deletion are
// removed, up to but not including the location directory.
func (b *fileBucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	root, err := b.root(false)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := statObject(root, key); err != nil {
		return err
	}
	if opts.BeforeDelete != nil {
		if err := opts.BeforeDelete(noAs); err != nil {
			return err
		}
	}
	if err := root.Remove(osPath(key)); err != nil {
		return err
	}
	// Best effort: the object is gone either way.
	_ = b.syncDirs(ctx, root, true, pruneEmptyDirs(root, key, b.floor))
	return nil
}

// pruneEmptyDirs removes the directories holding key that are now empty,
// deepest first, up to but not including the location directory (key
// prefix floor; keys outside it prune nothing). It returns the directory it
// stopped at. A concurrent writer that loses its fresh directory this way
// retries (see newTemp).
func pruneEmptyDirs(root *os.Root, key, floor string) string {
	if floor != "" && !strings.HasPrefix(key, floor+"/") {
		return osPath(parentKey(key))
	}
	dir := key
	for {
		i := strings.LastIndexByte(dir, '/')
		if i < 0 || dir[:i] == floor {
			if i < 0 {
				return "."
			}
			return osPath(dir[:i])
		}
		dir = dir[:i]
		if root.Remove(osPath(dir)) != nil { // not empty (or gone): stop here
			return osPath(dir)
		}
	}
}

func parentKey(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return "."
}

// SignedURL implements driver.Bucket; local files have no URLs to sign.
func (b *fileBucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", withCode(gcerrors.Unimplemented, errors.New("signed URLs are not supported for local files"))
}

// Close implements driver.Bucket; the driver holds no resources.
func (b *fileBucket) Close() error { return nil }

// ListPaged implements driver.Bucket. Keys come in lexical order; a page
// token is the last key (or directory) of the previous page.
func (b *fileBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if opts.BeforeList != nil {
		if err := opts.BeforeList(noAs); err != nil {
			return nil, err
		}
	}
	page := &driver.ListPage{}
	root, err := b.root(false)
	if errors.Is(err, fs.ErrNotExist) {
		return page, nil // nothing written yet
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()

	// Start at the deepest directory the prefix names completely.
	start := opts.Prefix[:strings.LastIndexByte(opts.Prefix, '/')+1]
	if start != "" {
		dir := strings.TrimSuffix(start, "/")
		if CheckKey(dir) != nil {
			return page, nil // no valid key can match
		}
		fi, err := lstatKey(root, dir)
		if b.ErrorCode(err) == gcerrors.NotFound || (err == nil && !fi.IsDir()) {
			return page, nil
		}
		if err != nil {
			return nil, err
		}
	}
	l := &fileLister{
		ctx:    ctx,
		root:   root,
		cache:  &b.dirs,
		prefix: opts.Prefix,
		delim:  opts.Delimiter,
		token:  string(opts.PageToken),
		limit:  opts.PageSize,
	}
	if l.limit <= 0 {
		l.limit = defaultPageSize
	}
	if err := l.walk(start); err != nil {
		return nil, err
	}
	page.Objects = l.objs
	if len(l.objs) > l.limit {
		page.Objects = l.objs[:l.limit]
		page.NextPageToken = []byte(page.Objects[l.limit-1].Key)
	}
	return page, nil
}

// fileLister walks the tree in key order, collecting up to limit+1 entries
// after token (the extra one tells whether another page follows).
type fileLister struct {
	ctx     context.Context
	root    *os.Root
	prefix  string
	delim   string
	token   string
	limit   int
	objs    []*driver.ListObject
	lastDir string // last collapsed "directory" added (generic delimiter)
	cache   *dirCache
}

type dirEntry struct {
	name  string
	isDir bool
	entry fs.DirEntry
}

// readDir returns the listable entries of rel ("" or "a/b/"), sorted so that
// walking them yields keys in lexical order: a directory sorts as name+"/".
// The pages after the first of a listing take a large directory's entries
// from the cache while the directory is unchanged, so that listing a
// directory of n objects costs O(n), not O(n) per page.
func (l *fileLister) readDir(rel string) ([]dirEntry, error) {
	f, err := l.root.Open(osPath(strings.TrimSuffix(rel, "/")))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if l.token != "" {
		if out, ok := l.cache.get(fi); ok {
			return out, nil
		}
	}
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]dirEntry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		t := de.Type()
		if strings.HasPrefix(name, tempPrefix) || strings.ContainsAny(name, "\\\x00") || !utf8.ValidString(name) {
			continue
		}
		switch {
		case t.IsDir():
			out = append(out, dirEntry{name: name, isDir: true, entry: de})
		case t.IsRegular():
			out = append(out, dirEntry{name: name, entry: de})
		}
		// Symlinks, devices, sockets and pipes are not objects.
	}
	slices.SortFunc(out, func(a, b dirEntry) int { return strings.Compare(a.sortKey(), b.sortKey()) })
	l.cache.put(fi, out)
	return out, nil
}

func (e dirEntry) sortKey() string {
	if e.isDir {
		return e.name + "/"
	}
	return e.name
}

func (l *fileLister) full() bool { return len(l.objs) > l.limit }

func (l *fileLister) walk(rel string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	entries, err := l.readDir(rel)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // removed while we were listing
	}
	if err != nil {
		return err
	}
	for _, e := range entries[l.firstAfterToken(rel, entries):] {
		if l.full() {
			return nil
		}
		if !e.isDir {
			if err := l.addFile(rel+e.name, e.entry); err != nil {
				return err
			}
			continue
		}
		dk := rel + e.name + "/"
		if !strings.HasPrefix(dk, l.prefix) && !strings.HasPrefix(l.prefix, dk) {
			continue // nothing below can match the prefix
		}
		if l.token != "" && dk < l.token && !strings.HasPrefix(l.token, dk) {
			continue // everything below sorts before the page token
		}
		if l.delim == "/" && strings.HasPrefix(dk, l.prefix) {
			// The whole subtree collapses into dk; don't descend, but
			// report it only if it holds at least one object.
			if l.token != "" && dk <= l.token {
				continue
			}
			has, err := l.hasObject(dk)
			if err != nil {
				return err
			}
			if has {
				l.objs = append(l.objs, &driver.ListObject{Key: dk, IsDir: true})
			}
			continue
		}
		if err := l.walk(dk); err != nil {
			return err
		}
	}
	return nil
}

// firstAfterToken returns the index of the first of rel's sorted entries
// that may hold keys after the page token: entries before it are files at
// or before the token, or directories wholly before it. (Only a directory
// can be a proper prefix of the token, since names hold no "/", which keeps
// the predicate monotonic.)
func (l *fileLister) firstAfterToken(rel string, entries []dirEntry) int {
	if l.token == "" || !strings.HasPrefix(l.token, rel) {
		return 0
	}
	return sort.Search(len(entries), func(i int) bool {
		k := rel + entries[i].sortKey()
		return k > l.token || (entries[i].isDir && strings.HasPrefix(l.token, k))
	})
}

func (l *fileLister) addFile(key string, de fs.DirEntry) error {
	if !strings.HasPrefix(key, l.prefix) {
		return nil
	}
	if l.delim != "" {
		rest := key[len(l.prefix):]
		if i := strings.Index(rest, l.delim); i >= 0 {
			dir := l.prefix + rest[:i+len(l.delim)]
			if dir == l.lastDir || (l.token != "" && dir <= l.token) {
				return nil
			}
			l.lastDir = dir
			l.objs = append(l.objs, &driver.ListObject{Key: dir, IsDir: true})
			return nil
		}
	}
	if l.token != "" && key <= l.token {
		return nil
	}
	fi, err := de.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted while listing
	}
	if err != nil {
		return err
	}
	l.objs = append(l.objs, &driver.ListObject{Key: key, ModTime: fi.ModTime(), Size: fi.Size()})
	return nil
}

// hasObject reports whether the directory rel holds a listable object at any
// depth, so that empty directories never show up as "directories".
func (l *fileLister) hasObject(rel string) (bool, error) {
	entries, err := l.readDir(rel)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !e.isDir {
			return true, nil
		}
	}
	for _, e := range entries {
		if has, err := l.hasObject(rel + e.name + "/"); has || err != nil {
			return has, err
		}
	}
	return false, nil
}
