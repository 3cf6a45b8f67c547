package relocate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/ckpt-dev/ckpt/internal/objcheck"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/progress"
	"github.com/ckpt-dev/ckpt/storage"
)

// maxSmall bounds the markers and `_metadata` objects read whole.
const maxSmall = metadata.MaxSize

// readSmall reads a `_metadata` or marker object whole; a missing one is
// (nil, nil).
func readSmall(ctx context.Context, b *blob.Bucket, key string) ([]byte, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxSmall+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, storage.Wrap(err))
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

func existsError(key, what string) error {
	return fmt.Errorf("%w: %s %s: %w", ErrDestinationExists, key, what, storage.ErrExists)
}

// object is what a listing says of an object.
type object struct {
	size int64
	mod  time.Time
}

// listObjects returns the objects of b among keys, listing each directory
// that holds one of them once (not one request per object).
func listObjects(ctx context.Context, b *blob.Bucket, keys []string, par int) (map[string]object, error) {
	want := map[string]bool{}
	dirs := map[string]bool{}
	for _, k := range keys {
		want[k] = true
		dirs[metadata.DirOf(k)] = true
	}
	out := map[string]object{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for d := range dirs {
		g.Go(func() error {
			prefix := d + "/"
			if d == "" {
				prefix = ""
			}
			it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
			for {
				obj, err := it.Next(gctx)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("listing %s: %w", displayKey(prefix), storage.Wrap(err))
				}
				if !obj.IsDir && want[obj.Key] {
					mu.Lock()
					out[obj.Key] = object{size: obj.Size, mod: obj.ModTime}
					mu.Unlock()
				}
			}
		})
	}
	return out, g.Wait()
}

// checksumAll reads the object key(c) of every copy and reports those whose
// content does not match c's size and checksum. Only a cancelled context or
// a failure to reach storage at all is an error; a failed read is a problem
// of the object.
func checksumAll(ctx context.Context, b *blob.Bucket, copies []Copy, key func(Copy) string, par int, phase string, pr progress.Reporter) ([]Problem, error) {
	var total int64
	for _, c := range copies {
		total += c.Size
	}
	progress.Start(pr, phase, total)
	defer progress.Done(pr)
	var mu sync.Mutex
	var problems []Problem
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, c := range copies {
		g.Go(func() error {
			problem, err := objcheck.Check(gctx, b, key(c), c.Size, c.SHA256, pr)
			if err != nil || problem == "" {
				return err
			}
			mu.Lock()
			problems = append(problems, Problem{key(c), problem})
			mu.Unlock()
			return nil
		})
	}
	return problems, g.Wait()
}

// errMismatch is what a streamed object that does not match its recorded
// size or checksum fails with.
var errMismatch = errors.New("content does not match the source _metadata")

// stream copies c.Src (in sb) to c.Dst (in db), replacing any object
// there, and checks on the way that the bytes have c's size and checksum;
// a mismatch or a read failure aborts the write before it commits, so no
// partial or wrong object is ever written. A write that fails transiently
// is started again from a fresh reader, by db's retry policy.
func stream(ctx context.Context, sb, db *blob.Bucket, c Copy, pr progress.Reporter) error {
	var sent int64
	return storage.Retry(ctx, storage.RetryPolicyOf(db), "", func() error {
		progress.Add(pr, -sent)
		var err error
		sent, err = streamOnce(ctx, sb, db, c, pr)
		return err
	})
}

func streamOnce(ctx context.Context, sb, db *blob.Bucket, c Copy, pr progress.Reporter) (sent int64, err error) {
	rd, err := sb.NewReader(ctx, c.Src, nil)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", c.Src, storage.Wrap(err))
	}
	defer rd.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	vr := &verifyingReader{r: rd, h: sha256.New(), c: c, cancel: cancel}
	err = db.Upload(wctx, c.Dst, progress.Reader(vr, pr), &blob.WriterOptions{ContentType: "application/octet-stream"})
	if vr.err != nil {
		return vr.n, vr.err
	}
	if err != nil {
		return vr.n, fmt.Errorf("writing %s: %w", c.Dst, storage.Wrap(err))
	}
	return vr.n, nil
}

// verifyingReader checks, at EOF, that the bytes read have c's size and
// checksum; a read error or a mismatch is recorded and cancels the write.
type verifyingReader struct {
	r      io.Reader
	h      hash.Hash
	c      Copy
	n      int64
	cancel func()
	err    error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.c.Size:
		err = fmt.Errorf("reading %s: %w: more than %d bytes", v.c.Src, errMismatch, v.c.Size)
	case err == io.EOF && v.n != v.c.Size:
		err = fmt.Errorf("reading %s: %w: %d bytes, expected %d", v.c.Src, errMismatch, v.n, v.c.Size)
	case err == io.EOF && v.c.SHA256 != "" && hex.EncodeToString(v.h.Sum(nil)) != v.c.SHA256:
		err = fmt.Errorf("reading %s: %w: checksum mismatch", v.c.Src, errMismatch)
	case err != nil && err != io.EOF:
		err = fmt.Errorf("reading %s: %w", v.c.Src, storage.Wrap(err))
	default:
		return n, err
	}
	v.err = err
	v.cancel()
	return n, err
}
