package faultblob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"

	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/internal/relay"
)

// ErrCrashed is returned by every call after a crash (see Injector.CrashAt).
var ErrCrashed = errors.New("faultblob: crashed")

// ErrTransient is the failure Flaky, FlakyAfter and BreakReads inject: an
// HTTP 503 answer, which storage.IsTransient classifies as transient.
var ErrTransient error = transientError{}

type transientError struct{}

func (transientError) Error() string {
	return "faultblob: injected transient failure (503 Service Unavailable)"
}
func (transientError) HTTPStatusCode() int { return 503 }

// Operation kinds, the values of Op.Kind.
const (
	KindRead   = "read"
	KindWrite  = "write"
	KindList   = "list"
	KindAttrs  = "attrs"
	KindCopy   = "copy"
	KindDelete = "delete"
)

// Op describes one counted storage operation.
type Op struct {
	// N is the operation's 1-based position in the Injector's sequence.
	N int
	// Kind is one of KindRead, KindWrite, KindList, KindAttrs, KindCopy,
	// KindDelete.
	Kind string
	// Key is the object's key as the inner bucket sees it; for "list" the
	// listing prefix, for "copy" the destination.
	Key string
	// Src is the source key of a "copy", "" otherwise.
	Src string
}

// Injector counts operations and decides which ones fail. The zero value is
// ready to use and injects nothing. An Injector is safe for concurrent use and
// may be shared by several wrapped buckets, which then share one sequence.
type Injector struct {
	mu        sync.Mutex
	n         int
	failAt    map[int]error
	failAfter map[int]error
	crashAt   int
	crashed   bool
	matchers  []func(Op) error
	short     map[string]int64
	corrupt   map[string]bool
	rules     []*rule
	breaks    map[string]*readBreak
	hidden    map[string]bool
}

// rule is a fault of Flaky, FlakyAfter or Delay: it hits the first k
// operations (every one if k <= 0) of each kind and key that match.
type rule struct {
	match func(Op) bool
	k     int
	lost  bool          // the operation takes effect before it fails
	delay time.Duration // wait instead of failing
	seen  map[string]int
}

type readBreak struct {
	n    int64
	left int
}

// Ops returns the number of operations counted so far.
func (i *Injector) Ops() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.n
}

// FailAt makes the k-th operation (1-based) fail with err before it reaches
// the inner bucket. Later calls for the same k replace err.
func (i *Injector) FailAt(k int, err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failAt == nil {
		i.failAt = make(map[int]error)
	}
	i.failAt[k] = err
}

// FailAfter lets the k-th operation take effect on the inner bucket and then
// report err, like a request whose response was lost.
func (i *Injector) FailAfter(k int, err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failAfter == nil {
		i.failAfter = make(map[int]error)
	}
	i.failAfter[k] = err
}

// CrashAt simulates the process dying at the k-th operation: that operation
// and every later call fail with ErrCrashed, and writers not yet closed are
// discarded (their objects never appear). k <= 0 cancels a pending CrashAt.
func (i *Injector) CrashAt(k int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.crashAt = k
}

// Crash crashes now: every later call fails with ErrCrashed.
func (i *Injector) Crash() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.crashed = true
}

// Crashed reports whether a crash has happened.
func (i *Injector) Crashed() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.crashed
}

// FailMatching registers f, called for every operation (after crash and
// FailAt checks, outside the Injector's lock, possibly concurrently); a
// non-nil result fails the operation before it reaches the inner bucket.
// Matchers run in registration order and the first error wins. f must not
// call the Injector's other methods.
func (i *Injector) FailMatching(f func(Op) error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.matchers = append(i.matchers, f)
}

// ShortRead makes every reader later opened on key end early, with io.EOF,
// after delivering at most n bytes, while still reporting the object's full
// size: a truncated read that does not fail.
func (i *Injector) ShortRead(key string, n int64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.short == nil {
		i.short = make(map[string]int64)
	}
	i.short[key] = n
}

// Corrupt makes every reader later opened on key deliver each byte inverted
// (XOR 0xff), without any error: silent corruption.
func (i *Injector) Corrupt(key string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.corrupt == nil {
		i.corrupt = make(map[string]bool)
	}
	i.corrupt[key] = true
}

// Flaky makes the first k operations of each kind and key for which match
// returns true (every operation if match is nil) fail with ErrTransient
// before they reach the inner bucket; the (k+1)-th succeeds. match runs under
// the Injector's lock and must not call its methods.
func (i *Injector) Flaky(k int, match func(Op) bool) {
	i.addRule(&rule{match: match, k: k})
}

// FlakyAfter is Flaky with lost responses: each failing operation takes
// effect on the inner bucket and then reports ErrTransient. A failing read
// opens nothing.
func (i *Injector) FlakyAfter(k int, match func(Op) bool) {
	i.addRule(&rule{match: match, k: k, lost: true})
}

// Delay makes the first k operations of each kind and key that match (every
// one if k <= 0; every operation if match is nil) wait d, in real time,
// before they reach the inner bucket: a slow response. If the operation's
// context ends first, it fails with the context's error instead.
func (i *Injector) Delay(d time.Duration, k int, match func(Op) bool) {
	i.addRule(&rule{match: match, k: k, delay: d})
}

func (i *Injector) addRule(r *rule) {
	if r.match == nil {
		r.match = func(Op) bool { return true }
	}
	r.seen = map[string]int{}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rules = append(i.rules, r)
}

// BreakReads makes the next k readers opened on key fail with ErrTransient
// after delivering n bytes: a connection that breaks mid-stream.
func (i *Injector) BreakReads(key string, n int64, k int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.breaks == nil {
		i.breaks = make(map[string]*readBreak)
	}
	i.breaks[key] = &readBreak{n: n, left: k}
}

// HideFromList makes listings omit the objects at keys (as the inner bucket
// names them), like an eventually consistent listing that has not caught up
// with a write yet. Reads, attributes and writes still see them.
func (i *Injector) HideFromList(keys ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.hidden == nil {
		i.hidden = make(map[string]bool)
	}
	for _, k := range keys {
		i.hidden[k] = true
	}
}

// Reset clears every fault, the crash and the operation count.
func (i *Injector) Reset() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.n, i.crashAt, i.crashed = 0, 0, false
	i.failAt, i.failAfter, i.matchers, i.short, i.corrupt = nil, nil, nil, nil, nil
	i.rules, i.breaks, i.hidden = nil, nil, nil
}

func (i *Injector) isCrashed() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.crashed
}

// begin counts an operation and returns the error to fail it with before it
// runs (before) or after it ran (after), having waited any injected delay.
func (i *Injector) begin(ctx context.Context, kind, key, src string) (before, after error) {
	i.mu.Lock()
	i.n++
	op := Op{N: i.n, Kind: kind, Key: key, Src: src}
	if i.crashAt > 0 && op.N >= i.crashAt {
		i.crashed = true
	}
	if i.crashed {
		i.mu.Unlock()
		return ErrCrashed, nil
	}
	if err := i.failAt[op.N]; err != nil {
		i.mu.Unlock()
		return err, nil
	}
	after = i.failAfter[op.N]
	var delay time.Duration
	for _, r := range i.rules {
		if !r.match(op) {
			continue
		}
		id := kind + "\x00" + key
		r.seen[id]++
		if r.k > 0 && r.seen[id] > r.k {
			continue
		}
		switch {
		case r.delay > 0:
			delay = max(delay, r.delay)
		case r.lost:
			after = ErrTransient
		default:
			i.mu.Unlock()
			return ErrTransient, nil
		}
	}
	matchers := i.matchers
	i.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err(), nil
		case <-t.C:
		}
	}
	for _, f := range matchers {
		if err := f(op); err != nil {
			return err, nil
		}
	}
	return nil, after
}

func (i *Injector) readFaults(key string) (limit int64, corrupt bool, brk int64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	limit, brk = -1, -1
	if n, ok := i.short[key]; ok {
		limit = n
	}
	if b := i.breaks[key]; b != nil && b.left > 0 {
		b.left--
		brk = b.n
	}
	return limit, i.corrupt[key], brk
}

func (i *Injector) isHidden(key string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hidden[key]
}

// Wrap returns a bucket that forwards every operation to inner under the
// control of inj (a nil inj injects nothing). Closing the returned bucket
// does not close inner, so a test can inspect inner after a crash.
func Wrap(inner *blob.Bucket, inj *Injector) *blob.Bucket {
	if inj == nil {
		inj = new(Injector)
	}
	return blob.NewBucket(&bucket{Bucket: relay.Bucket{Inner: inner}, inj: inj})
}

// bucket overrides the counted operations of relay.Bucket.
type bucket struct {
	relay.Bucket
	inj *Injector
}

var _ driver.Bucket = (*bucket)(nil)

// ErrorCode keeps the inner bucket's codes and maps storage's sentinels, so
// that an injected storage.ErrNotFound behaves like a real NotFound and an
// injected storage.ErrExists like a lost create-if-absent race.
func (b *bucket) ErrorCode(err error) gcerrors.ErrorCode {
	if c := gcerrors.Code(err); c != gcerrors.Unknown {
		return c
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return gcerrors.NotFound
	case errors.Is(err, storage.ErrExists):
		return gcerrors.FailedPrecondition
	}
	return gcerrors.Unknown
}

func (b *bucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	before, after := b.inj.begin(ctx, KindAttrs, key, "")
	if before != nil {
		return nil, before
	}
	a, err := b.Bucket.Attributes(ctx, key)
	if err == nil && after != nil {
		return nil, after
	}
	return a, err
}

func (b *bucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	before, after := b.inj.begin(ctx, KindList, opts.Prefix, "")
	if before != nil {
		return nil, before
	}
	p, err := b.Bucket.ListPaged(ctx, opts)
	if err == nil && after != nil {
		return nil, after
	}
	if err == nil {
		kept := p.Objects[:0:0]
		for _, o := range p.Objects {
			if !b.inj.isHidden(o.Key) {
				kept = append(kept, o)
			}
		}
		p.Objects = kept
	}
	return p, err
}

func (b *bucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	before, after := b.inj.begin(ctx, KindCopy, dstKey, srcKey)
	if before != nil {
		return before
	}
	if err := b.Bucket.Copy(ctx, dstKey, srcKey, opts); err != nil {
		return err
	}
	return after
}

func (b *bucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	before, after := b.inj.begin(ctx, KindDelete, key, "")
	if before != nil {
		return before
	}
	if err := b.Bucket.Delete(ctx, key, opts); err != nil {
		return err
	}
	return after
}

func (b *bucket) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	if b.inj.isCrashed() {
		return "", ErrCrashed
	}
	return b.Bucket.SignedURL(ctx, key, opts)
}

func (b *bucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	before, after := b.inj.begin(ctx, KindRead, key, "")
	if before != nil {
		return nil, before
	}
	r, err := b.Bucket.NewRangeReader(ctx, key, offset, length, opts)
	if err != nil {
		return nil, err
	}
	if after != nil {
		r.Close()
		return nil, after
	}
	limit, corrupt, brk := b.inj.readFaults(key)
	return &reader{Reader: r, inj: b.inj, left: limit, corrupt: corrupt, brk: brk}, nil
}

// reader applies crash, short-read and corruption faults to an inner reader.
type reader struct {
	driver.Reader
	inj     *Injector
	left    int64 // bytes still deliverable; < 0 means no limit
	corrupt bool
	brk     int64 // bytes to deliver before failing with ErrTransient; < 0 means never
}

func (r *reader) Read(p []byte) (int, error) {
	if r.inj.isCrashed() {
		return 0, ErrCrashed
	}
	if r.brk == 0 {
		return 0, ErrTransient
	}
	if r.brk > 0 && int64(len(p)) > r.brk {
		p = p[:r.brk]
	}
	if r.left == 0 {
		return 0, io.EOF
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.Reader.Read(p)
	if r.left > 0 {
		r.left -= int64(n)
	}
	if r.brk > 0 {
		r.brk -= int64(n)
	}
	if r.corrupt {
		for j := range p[:n] {
			p[j] ^= 0xff
		}
	}
	return n, err
}

func (b *bucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if b.inj.isCrashed() {
		return nil, ErrCrashed
	}
	o := relay.WriterOptions(contentType, opts)
	if o.ContentType == "" { // Upload requires one
		o.ContentType, o.DisableContentTypeDetection = "application/octet-stream", false
	}
	return &writer{ctx: ctx, b: b, key: key, opts: o}, nil
}

// writer buffers everything and uploads it in one call at Close.
type writer struct {
	ctx  context.Context
	b    *bucket
	key  string
	opts *blob.WriterOptions
	buf  bytes.Buffer
}

func (w *writer) Write(p []byte) (int, error) {
	if w.b.inj.isCrashed() {
		return 0, ErrCrashed
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.buf.Write(p)
}

func (w *writer) Close() error {
	if err := w.ctx.Err(); err != nil {
		return err // aborted: discard without counting
	}
	before, after := w.b.inj.begin(w.ctx, KindWrite, w.key, "")
	if before != nil {
		return before
	}
	if err := w.b.Inner.Upload(w.ctx, w.key, bytes.NewReader(w.buf.Bytes()), w.opts); err != nil {
		return err
	}
	return after
}
