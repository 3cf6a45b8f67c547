package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"

	"github.com/ckpt-dev/ckpt/storage/internal/relay"
)

// WithRetry returns a bucket that forwards every call to b and retries, by
// policy p, those that are safe to repeat when they fail transiently:
//
//   - Attributes, each listing page, Copy and Delete (a Delete whose retry
//     finds the object gone has succeeded);
//   - opening a reader, and a read that breaks mid-stream, which resumes
//     where it broke with a range read of the same object (same size and
//     modification time; otherwise the read fails);
//   - writes whose bytes can be sent again: an Upload from an io.Seeker, and
//     writes through a Writer of up to 1 MiB (buffered). An Upload from any
//     other reader is one attempt: its caller re-opens the source and calls
//     Retry itself (see RetryPolicyOf).
//
// A create-if-absent write (WriterOptions.IfNotExist) retried after an
// ambiguous failure may find the object it wrote itself: it then reads the
// object back and succeeds if it holds exactly the bytes sent, and reports
// the conflict otherwise.
//
// Listing pages, attribute lookups, deletes and reader opens that get no
// answer within p.AttemptTimeout are abandoned and retried. Closing the
// returned bucket closes b. The retrying layer is a driver, so the result is
// an ordinary *blob.Bucket; b.As and b.ErrorAs reach b's driver.
func WithRetry(b *blob.Bucket, p RetryPolicy) *blob.Bucket {
	return blob.NewBucket(&retryBucket{Bucket: relay.Bucket{Inner: b, OwnsInner: true}, p: p, q: p.withDefaults()})
}

// RetryPolicyOf returns the policy of a bucket made by WithRetry (or Open,
// or a view of one such as Location.Narrow), nil if it has none. Callers
// that must repeat a whole operation (re-open a file and upload it again)
// pass it to Retry.
func RetryPolicyOf(b *blob.Bucket) *RetryPolicy {
	var p *RetryPolicy
	if b.As(&p) {
		return p
	}
	return nil
}

// writeBuffer is how much of a Writer's output is kept to send it again.
const writeBuffer = 1 << 20

type retryBucket struct {
	relay.Bucket
	p RetryPolicy // as given, for RetryPolicyOf
	q RetryPolicy // with defaults
}

func (b *retryBucket) As(i any) bool {
	if p, ok := i.(**RetryPolicy); ok {
		*p = &b.p
		return true
	}
	return b.Bucket.As(i)
}

func (b *retryBucket) retry(ctx context.Context, fn func() error) error {
	return Retry(ctx, &b.q, "", fn)
}

// timed runs fn with the attempt timeout.
func (b *retryBucket) timed(ctx context.Context, fn func(context.Context) error) error {
	if b.q.AttemptTimeout < 0 {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeoutCause(ctx, b.q.AttemptTimeout, errNoAnswer)
	defer cancel()
	return noAnswer(ctx, actx, fn(actx), b.q.AttemptTimeout)
}

var errNoAnswer = errors.New("no answer")

// noAnswer turns the failure of a call whose attempt context (not ctx)
// timed out into a transient timeout error.
func noAnswer(ctx, actx context.Context, err error, d time.Duration) error {
	if err != nil && ctx.Err() == nil && context.Cause(actx) == errNoAnswer {
		return fmt.Errorf("no answer within %v: %w", d, context.DeadlineExceeded)
	}
	return err
}

func (b *retryBucket) Attributes(ctx context.Context, key string) (a *driver.Attributes, err error) {
	err = b.retry(ctx, func() error {
		return b.timed(ctx, func(ctx context.Context) (err error) {
			a, err = b.Bucket.Attributes(ctx, key)
			return err
		})
	})
	return a, err
}

func (b *retryBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (p *driver.ListPage, err error) {
	err = b.retry(ctx, func() error {
		return b.timed(ctx, func(ctx context.Context) (err error) {
			p, err = b.Bucket.ListPaged(ctx, opts)
			return err
		})
	})
	return p, err
}

func (b *retryBucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	return b.retry(ctx, func() error { return b.Bucket.Copy(ctx, dstKey, srcKey, opts) })
}

func (b *retryBucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	retried := false
	return b.retry(ctx, func() error {
		err := b.timed(ctx, func(ctx context.Context) error { return b.Bucket.Delete(ctx, key, opts) })
		if retried && gcerrors.Code(err) == gcerrors.NotFound {
			return nil // an earlier attempt deleted it
		}
		retried = true
		return err
	})
}

func (b *retryBucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	r := &retryReader{b: b, ctx: ctx, key: key, off: offset, length: length, opts: opts}
	if err := b.retry(ctx, func() error { return r.open(false) }); err != nil {
		return nil, err
	}
	return r, nil
}

// retryReader resumes a read that broke with a range read from where it
// stopped.
type retryReader struct {
	b      *retryBucket
	ctx    context.Context
	key    string
	off    int64 // of the first byte asked for
	length int64 // asked for, < 0 for the rest of the object
	opts   *driver.ReaderOptions

	r      driver.Reader
	cancel context.CancelFunc
	attrs  driver.ReaderAttributes // of the first open
	n      int64                   // bytes delivered
	err    error                   // why r is nil after a break
}

// open opens the reader at r.off+r.n (after a break, resume is set and the
// object must be unchanged).
func (r *retryReader) open(resume bool) error {
	length := r.length
	if length >= 0 {
		length -= r.n
	}
	actx, cancel := context.WithCancelCause(r.ctx)
	var stop func() bool
	if d := r.b.q.AttemptTimeout; d > 0 {
		t := time.AfterFunc(d, func() { cancel(errNoAnswer) })
		stop = t.Stop
	}
	dr, err := r.b.Bucket.NewRangeReader(actx, r.key, r.off+r.n, length, r.opts)
	if stop != nil && !stop() && err == nil {
		dr.Close() // answered, but too late: the timer cancelled it
		err = context.Canceled
	}
	if err != nil {
		cancel(nil)
		return noAnswer(r.ctx, actx, err, r.b.q.AttemptTimeout)
	}
	a := dr.Attributes()
	if resume && (a.Size != r.attrs.Size || !a.ModTime.Equal(r.attrs.ModTime)) {
		dr.Close()
		cancel(nil)
		return fmt.Errorf("resuming the read of %s at byte %d: the object changed meanwhile", r.key, r.off+r.n)
	}
	if !resume {
		r.attrs = *a
	}
	r.r, r.cancel = dr, func() { cancel(nil) }
	return nil
}

func (r *retryReader) Read(p []byte) (int, error) {
	if r.r == nil {
		return 0, r.err
	}
	n, err := r.r.Read(p)
	r.n += int64(n)
	if err == nil || err == io.EOF || r.ctx.Err() != nil || !IsTransient(err) {
		return n, err
	}
	r.Close()
	r.r = nil
	if r.err = r.b.retry(r.ctx, func() error { return r.open(true) }); r.err != nil {
		return n, r.err
	}
	return n, nil
}

func (r *retryReader) Close() error {
	if r.r == nil {
		return nil
	}
	err := r.r.Close()
	r.cancel()
	return err
}

func (r *retryReader) Attributes() *driver.ReaderAttributes { return &r.attrs }

func (r *retryReader) As(i any) bool { return r.r != nil && r.r.As(i) }

func (b *retryBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	o := relay.WriterOptions(contentType, opts)
	if o.ContentType == "" { // Upload requires one
		o.ContentType, o.DisableContentTypeDetection = "application/octet-stream", false
	}
	return &retryWriter{b: b, ctx: ctx, key: key, opts: o}, nil
}

// retryWriter buffers up to writeBuffer bytes to send them again; past
// that it streams to an inner writer (one attempt).
type retryWriter struct {
	b    *retryBucket
	ctx  context.Context
	key  string
	opts *blob.WriterOptions
	buf  bytes.Buffer
	w    *blob.Writer // streaming, once buf overflowed
	done bool         // Upload was called
}

func (w *retryWriter) Write(p []byte) (int, error) {
	if w.w != nil {
		return w.w.Write(p)
	}
	if w.buf.Len()+len(p) <= writeBuffer {
		return w.buf.Write(p)
	}
	iw, err := w.b.Inner.NewWriter(w.ctx, w.key, w.opts)
	if err != nil {
		return 0, err
	}
	w.w = iw
	if _, err := iw.Write(w.buf.Bytes()); err != nil {
		return 0, err
	}
	w.buf = bytes.Buffer{}
	return iw.Write(p)
}

// Upload implements driver.Uploader, which (*blob.Bucket).Upload uses.
func (w *retryWriter) Upload(r io.Reader) error {
	w.done = true
	return w.b.upload(w.ctx, w.key, r, w.opts)
}

func (w *retryWriter) Close() error {
	switch {
	case w.done:
		return nil
	case w.w != nil:
		return w.w.Close()
	}
	if err := w.ctx.Err(); err != nil {
		return err // aborted
	}
	return w.b.upload(w.ctx, w.key, bytes.NewReader(w.buf.Bytes()), w.opts)
}

// upload sends r to key, again after a transient failure if r is an
// io.Seeker (see WithRetry for create-if-absent).
func (b *retryBucket) upload(ctx context.Context, key string, r io.Reader, opts *blob.WriterOptions) error {
	s, ok := r.(io.Seeker)
	start := int64(0)
	if ok {
		var err error
		start, err = s.Seek(0, io.SeekCurrent)
		ok = err == nil
	}
	if !ok {
		return b.Inner.Upload(ctx, key, r, opts)
	}
	attempted := false // an attempt failed and may have written
	return b.retry(ctx, func() error {
		if attempted {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return err
			}
		}
		err := b.Inner.Upload(ctx, key, r, opts)
		if err != nil && opts.IfNotExist && attempted && isExistsError(err) {
			same, cerr := b.holds(ctx, key, r, s, start)
			switch {
			case cerr != nil:
				return fmt.Errorf("%s exists after an interrupted create-if-absent write, and comparing it failed: %w", key, cerr)
			case same:
				return nil // the interrupted attempt wrote it
			}
		}
		attempted = attempted || IsTransient(err)
		return err
	})
}

// holds reports whether the object at key has exactly the bytes of r from
// start on.
func (b *retryBucket) holds(ctx context.Context, key string, r io.Reader, s io.Seeker, start int64) (bool, error) {
	if _, err := s.Seek(start, io.SeekStart); err != nil {
		return false, err
	}
	var rd *blob.Reader
	err := b.retry(ctx, func() (err error) {
		rd, err = b.Inner.NewReader(ctx, key, nil)
		return err
	})
	if err != nil {
		return false, err
	}
	defer rd.Close()
	want, got := bufio.NewReader(r), bufio.NewReader(rd)
	for {
		c1, err1 := want.ReadByte()
		c2, err2 := got.ReadByte()
		switch {
		case err2 != nil && err2 != io.EOF:
			return false, err2
		case err1 != nil && err1 != io.EOF:
			return false, err1
		case err1 == io.EOF || err2 == io.EOF:
			return err1 == err2, nil
		case c1 != c2:
			return false, nil
		}
	}
}
