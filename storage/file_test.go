//go:build unix

package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	"github.com/ckpt-dev/ckpt/storage"
)

// Tests specific to the local-file driver.

func openDir(t *testing.T, dir string) *storage.Location {
	t.Helper()
	return storagetestOpen(t, dir)
}

// tree returns every path under dir, relative, with "/" for directories.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFileNoSidecars(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	ctx := t.Context()
	err := l.Bucket.WriteAll(ctx, "a/obj", []byte("x"), &blob.WriterOptions{
		ContentType: "text/plain", CacheControl: "no-cache", Metadata: map[string]string{"k": "v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.WriteIfAbsent(ctx, l.Bucket, "b/once", strings.NewReader("y"), nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Bucket.Copy(ctx, "c/copy", "a/obj", nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/", "a/obj", "b/", "b/once", "c/", "c/copy"}
	if got := tree(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files on disk = %v, want exactly %v", got, want)
	}
	a, err := l.Bucket.Attributes(ctx, "a/obj")
	if err != nil {
		t.Fatal(err)
	}
	if a.ContentType != "application/octet-stream" || len(a.Metadata) != 0 {
		t.Errorf("attributes kept content type %q / metadata %v; the file driver stores neither", a.ContentType, a.Metadata)
	}
}

func TestFileTempFilesNeverListed(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	ctx := t.Context()
	// Stale temporaries from a crashed writer.
	for _, p := range []string{".ckpt-tmp-stale", "sub/.ckpt-tmp-stale2"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A writer in progress.
	w, err := l.Bucket.NewWriter(ctx, "sub/obj", &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, l.Bucket, &blob.ListOptions{}); len(got) != 0 {
		t.Fatalf("listing shows %v; temporary files must never be listed", got)
	}
	if got := listAll(t, l.Bucket, &blob.ListOptions{Delimiter: "/"}); len(got) != 0 {
		t.Fatalf("listing with delimiter shows %v (a directory holding only temporaries is empty)", got)
	}
	if ok, _ := l.Bucket.Exists(ctx, "sub/obj"); ok {
		t.Fatal("object visible before Close")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, l.Bucket, &blob.ListOptions{}); !slices.Equal(got, files("sub/obj")) {
		t.Fatalf("after Close listing = %v", got)
	}
	_, err = l.Bucket.Attributes(ctx, ".ckpt-tmp-stale")
	if gcerrors.Code(err) != gcerrors.InvalidArgument {
		t.Fatalf("addressing a temporary file: got %v, want InvalidArgument", err)
	}
}

func TestFileRejectsBadKeys(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	l := openDir(t, dir)
	ctx := t.Context()
	for _, key := range []string{
		"../escape", "a/../../escape", "a/..", "..", ".", "./a", "a/./b",
		"a//b", "/abs", "trailing/", "", "back\\slash", "nul\x00byte", "a/.ckpt-tmp-x",
	} {
		err := l.Bucket.WriteAll(ctx, key, []byte("x"), nil)
		if err == nil {
			t.Errorf("writing %q succeeded", key)
		} else if key != "" && gcerrors.Code(err) != gcerrors.InvalidArgument {
			t.Errorf("writing %q: got %v, want InvalidArgument", key, err)
		}
		if storage.CheckKey(key) == nil {
			t.Errorf("CheckKey(%q) accepted it", key)
		}
		if _, err := l.Bucket.Attributes(ctx, key); err == nil {
			t.Errorf("attributes of %q succeeded", key)
		}
		if err := l.Bucket.Delete(ctx, key); err == nil {
			t.Errorf("deleting %q succeeded", key)
		}
		if err := l.Bucket.Copy(ctx, key, "src", nil); err == nil {
			t.Errorf("copying to %q succeeded", key)
		}
	}
	if got := tree(t, parent); len(got) > 1 || (len(got) == 1 && got[0] != "store/") {
		t.Fatalf("bad keys created files: %v", got)
	}
	for _, key := range []string{"a", "a/b", "a.b/c..d/.e", "ünïcode/k", "a b/c"} {
		if err := storage.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%q): %v", key, err)
		}
	}
}

func TestFilePermissions(t *testing.T) {
	old := syscall.Umask(0) // process-wide: this test must not run in parallel
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "store")
	l := openDir(t, dir)
	ctx := t.Context()
	put(t, l.Bucket, "d1/d2/obj", []byte("x"))
	if err := storage.WriteIfAbsent(ctx, l.Bucket, "d1/once", strings.NewReader("y"), nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Bucket.Copy(ctx, "d3/copy", "d1/once", nil); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{
		"":          0o755,
		"d1":        0o755,
		"d1/d2":     0o755,
		"d1/d2/obj": 0o644,
		"d1/once":   0o644,
		"d3/copy":   0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%q has mode %v, want %v", p, got, want)
		}
		if fi.Mode().Perm()&0o002 != 0 {
			t.Errorf("%q is world-writable", p)
		}
	}
}

// TestFileCancelMidWrite: a write cancelled half-way never leaves a final
// file, partial or not, nor a temporary one.
func TestFileCancelMidWrite(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	put(t, l.Bucket, "obj", []byte("old content"))
	ctx, cancel := context.WithCancel(t.Context())
	w, err := l.Bucket.NewWriter(ctx, "obj", &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := l.Bucket.NewWriter(ctx, "new/obj", &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []*blob.Writer{w, w2} {
		if _, err := w.Write(bytes.Repeat([]byte("n"), 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	for _, w := range []*blob.Writer{w, w2} {
		if _, err := w.Write([]byte("more")); err == nil {
			t.Error("Write after cancel succeeded")
		}
		if err := w.Close(); !errors.Is(err, context.Canceled) {
			t.Errorf("Close after cancel: got %v, want context.Canceled", err)
		}
	}
	if got := get(t, l.Bucket, "obj"); string(got) != "old content" {
		t.Fatalf("cancelled overwrite changed the object to %d bytes", len(got))
	}
	if got := tree(t, dir); !slices.Equal(got, []string{"obj"}) {
		t.Fatalf("files on disk after cancelled writes: %v", got)
	}
}

func TestFileSymlinks(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l := openDir(t, dir)
	ctx := t.Context()
	put(t, l.Bucket, "real/obj", []byte("inside"))
	for link, target := range map[string]string{
		"filelink":      filepath.Join(outside, "secret"),
		"dirlink":       outside,
		"real/inlink":   "obj", // stays inside the root
		"real/dirlink2": "..",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if got := listAll(t, l.Bucket, &blob.ListOptions{}); !slices.Equal(got, files("real/obj")) {
		t.Errorf("listing = %v; symlinks are not objects", got)
	}
	if got := listAll(t, l.Bucket, &blob.ListOptions{Delimiter: "/"}); !slices.Equal(got, files("real/")) {
		t.Errorf("listing with delimiter = %v", got)
	}
	for _, key := range []string{"filelink", "dirlink/secret", "real/inlink", "real/dirlink2/real/obj"} {
		if _, err := l.Bucket.ReadAll(ctx, key); !storage.IsNotFound(err) {
			t.Errorf("reading %s: got %v, want not found", key, err)
		}
		if _, err := l.Bucket.Attributes(ctx, key); !storage.IsNotFound(err) {
			t.Errorf("attributes of %s: got %v, want not found", key, err)
		}
		if err := l.Bucket.Copy(ctx, "copied", key, nil); !storage.IsNotFound(err) {
			t.Errorf("copying from %s: got %v, want not found", key, err)
		}
		if err := l.Bucket.Delete(ctx, key); !storage.IsNotFound(err) {
			t.Errorf("deleting %s: got %v, want not found", key, err)
		}
	}
	for _, key := range []string{"dirlink/new", "filelink", "real/inlink"} {
		err := l.Bucket.WriteAll(ctx, key, []byte("x"), nil)
		if gcerrors.Code(err) != gcerrors.PermissionDenied {
			t.Errorf("writing %s: got %v, want PermissionDenied", key, err)
		}
	}
	if got := tree(t, outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside directory changed: %v", got)
	}
	if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "outside" {
		t.Errorf("outside file changed: %q", data)
	}
	// The location's own path may go through a symlink.
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(dir, alias); err != nil {
		t.Fatal(err)
	}
	if got := get(t, openDir(t, alias).Bucket, "real/obj"); string(got) != "inside" {
		t.Errorf("reading through a symlinked location path: %q", got)
	}
}

func TestFileDeleteRemovesEmptyDirectories(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	ctx := t.Context()
	put(t, l.Bucket, "a/b/c/obj", []byte("x"))
	put(t, l.Bucket, "a/keep", []byte("y"))
	if err := l.Bucket.Delete(ctx, "a/b/c/obj"); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir); !slices.Equal(got, []string{"a/", "a/keep"}) {
		t.Fatalf("after delete: %v", got)
	}
	if err := l.Bucket.Delete(ctx, "a/keep"); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir); len(got) != 0 {
		t.Fatalf("after deleting everything: %v", got)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the location directory itself was removed: %v", err)
	}
}

func TestFileMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	l := openDir(t, dir)
	ctx := t.Context()
	if got := listAll(t, l.Bucket, &blob.ListOptions{}); len(got) != 0 {
		t.Fatalf("listing a missing directory: %v", got)
	}
	if _, err := l.Bucket.ReadAll(ctx, "k"); !storage.IsNotFound(err) {
		t.Fatalf("reading from a missing directory: %v", err)
	}
	if err := l.Bucket.Delete(ctx, "k"); !storage.IsNotFound(err) {
		t.Fatalf("deleting from a missing directory: %v", err)
	}
	put(t, l.Bucket, "k", []byte("v"))
	if _, err := os.Stat(filepath.Join(dir, "k")); err != nil {
		t.Fatal(err)
	}
}

func TestFileETag(t *testing.T) {
	l := openDir(t, t.TempDir())
	ctx := t.Context()
	put(t, l.Bucket, "k", []byte("one"))
	a1, err := l.Bucket.Attributes(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	a1again, _ := l.Bucket.Attributes(ctx, "k")
	put(t, l.Bucket, "k", []byte("two"))
	a2, err := l.Bucket.Attributes(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if a1.ETag == "" || a1.ETag != a1again.ETag || a1.ETag == a2.ETag {
		t.Fatalf("ETags %q, %q, %q: want stable for one version and different after a rewrite", a1.ETag, a1again.ETag, a2.ETag)
	}
}

// TestFileWriteIfAbsentObstacles: a directory where the object should be is
// not reported as a lost race, and a file where a directory should be fails.
func TestFileWriteIfAbsentObstacles(t *testing.T) {
	l := openDir(t, t.TempDir())
	ctx := t.Context()
	put(t, l.Bucket, "dir/child", []byte("x"))
	err := storage.WriteIfAbsent(ctx, l.Bucket, "dir", strings.NewReader("y"), nil)
	if err == nil || errors.Is(err, storage.ErrExists) {
		t.Fatalf("WriteIfAbsent over a directory: got %v, want a non-ErrExists error", err)
	}
	err = storage.WriteIfAbsent(ctx, l.Bucket, "dir/child/below", strings.NewReader("y"), nil)
	if err == nil || errors.Is(err, storage.ErrExists) {
		t.Fatalf("WriteIfAbsent below a file: got %v, want a non-ErrExists error", err)
	}
}

func TestFileLargeCopyAndRangeRead(t *testing.T) {
	l := openDir(t, t.TempDir())
	ctx := t.Context()
	data := pattern(3<<20+17, 9)
	put(t, l.Bucket, "big", data)
	if err := l.Bucket.Copy(ctx, "copies/big", "big", nil); err != nil {
		t.Fatal(err)
	}
	r, err := l.Bucket.NewRangeReader(ctx, "copies/big", 1<<20, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[1<<20:2<<20]) {
		t.Fatal("range of the copy differs")
	}
}

// TestFileConcurrentWriteAndPrune: deletes that remove emptied directories
// never make a concurrent write into the same directory fail.
func TestFileConcurrentWriteAndPrune(t *testing.T) {
	l := openDir(t, t.TempDir())
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 150 {
				key := fmt.Sprintf("d/x/y/w%d-%d", w, i)
				if err := l.Bucket.WriteAll(ctx, key, []byte("v"), nil); err != nil {
					t.Errorf("writing %s: %v", key, err)
					return
				}
				if err := l.Bucket.Delete(ctx, key); err != nil {
					t.Errorf("deleting %s: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A listing's later pages come from a cached copy of a large directory
// while it is unchanged; a change between pages must show up.
func TestFileListPagesSeeChangesToALargeDirectory(t *testing.T) {
	dir := t.TempDir()
	b := openDir(t, dir).Bucket
	ctx := t.Context()
	const n = 2500 // above the size the driver caches
	sub := filepath.Join(dir, "shared")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Unchanged for a while, as a job's shared/ usually is: cacheable.
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(sub, old, old); err != nil {
		t.Fatal(err)
	}
	page := func(token []byte) ([]string, []byte) {
		objs, next, err := b.ListPage(ctx, token, 1000, &blob.ListOptions{Prefix: "shared/"})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		return keys, next
	}
	first, next := page(blob.FirstPageToken)
	if len(first) != 1000 || first[999] != "shared/f00999" {
		t.Fatalf("first page: %d keys, last %q", len(first), first[len(first)-1])
	}
	// Between pages: add one key after the token, delete one.
	if err := b.WriteAll(ctx, "shared/f01500x", []byte("new"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "shared/f02000"); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for next != nil {
		var keys []string
		keys, next = page(next)
		rest = append(rest, keys...)
	}
	if !slices.Contains(rest, "shared/f01500x") || slices.Contains(rest, "shared/f02000") {
		t.Fatalf("later pages missed a change: new key listed %v, deleted key listed %v",
			slices.Contains(rest, "shared/f01500x"), slices.Contains(rest, "shared/f02000"))
	}
	if len(first)+len(rest) != n || !slices.IsSorted(rest) || rest[0] != "shared/f01000" {
		t.Fatalf("listing after the change: %d keys in all, sorted %v, first %q", len(first)+len(rest), slices.IsSorted(rest), rest[0])
	}
}

// LocalFile hands out the open file of an unread whole-object reader of a
// local location only.
func TestLocalFileOnlyForUnreadWholeReads(t *testing.T) {
	ctx := t.Context()
	b := openDir(t, t.TempDir()).Bucket
	if err := b.WriteAll(ctx, "k", []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	r, err := b.NewReader(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := storage.LocalFile(r)
	if !ok {
		t.Fatal("no local file for a whole read")
	}
	data, err := io.ReadAll(f)
	if err != nil || string(data) != "hello" {
		t.Fatalf("read %q, %v", data, err)
	}
	r.Close()

	r, _ = b.NewRangeReader(ctx, "k", 1, 2, nil)
	if _, ok := storage.LocalFile(r); ok {
		t.Fatal("local file for a range read")
	}
	r.Close()
	r, _ = b.NewReader(ctx, "k", nil)
	buf := make([]byte, 1)
	r.Read(buf)
	if _, ok := storage.LocalFile(r); ok {
		t.Fatal("local file for a reader already read from")
	}
	r.Close()

	mem := memblob.OpenBucket(nil)
	defer mem.Close()
	mem.WriteAll(ctx, "k", []byte("x"), nil)
	r, _ = mem.NewReader(ctx, "k", nil)
	if _, ok := storage.LocalFile(r); ok {
		t.Fatal("local file for a memory bucket")
	}
	r.Close()
}
