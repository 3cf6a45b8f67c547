package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// retrying returns a memblob behind faultblob behind the retrying layer,
// with a fake clock.
func retrying(t *testing.T) (b, inner *blob.Bucket, inj *faultblob.Injector, clock *storagetest.Clock) {
	inner = openMemblob()
	inj, clock = new(faultblob.Injector), new(storagetest.Clock)
	b = storage.WithRetry(faultblob.Wrap(inner, inj), clock.Policy())
	t.Cleanup(func() { b.Close(); inner.Close() })
	return b, inner, inj, clock
}

// Backoff doubles from Initial, each delay in the upper half of its range,
// up to Max; the bound is Attempts; the error names what and the count.
func TestRetryBacksOffAndGivesUp(t *testing.T) {
	clock := new(storagetest.Clock)
	p := clock.Policy()
	p.Attempts, p.Initial, p.Max, p.MaxElapsed = 6, 100*time.Millisecond, 500*time.Millisecond, time.Hour
	calls := 0
	err := storage.Retry(t.Context(), &p, "reading s3://b/job/chk-3/_metadata", func() error {
		calls++
		return faultblob.ErrTransient
	})
	var re *storage.RetryError
	if !errors.As(err, &re) || calls != 6 || re.Attempts != 6 {
		t.Fatalf("got %v after %d calls", err, calls)
	}
	if !errors.Is(err, faultblob.ErrTransient) {
		t.Errorf("the last failure is not reachable: %v", err)
	}
	want := "reading s3://b/job/chk-3/_metadata: giving up after 6 attempts over 1.275s: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
	// Middle of the jitter range: 3/4 of 100, 200, 400, 500, 500 ms.
	wantSleeps := []time.Duration{75, 150, 300, 375, 375}
	got := clock.Sleeps()
	if len(got) != len(wantSleeps) {
		t.Fatalf("slept %v", got)
	}
	for i, w := range wantSleeps {
		if got[i] != w*time.Millisecond {
			t.Errorf("sleep %d: %v, want %v", i, got[i], w*time.Millisecond)
		}
	}
}

func TestRetryStops(t *testing.T) {
	clock := new(storagetest.Clock)
	p := clock.Policy()
	t.Run("permanent error", func(t *testing.T) {
		calls := 0
		perm := errors.New("access denied")
		if err := storage.Retry(t.Context(), &p, "x", func() error { calls++; return perm }); err != perm || calls != 1 {
			t.Fatalf("got %v after %d calls", err, calls)
		}
	})
	t.Run("success after transient errors", func(t *testing.T) {
		calls := 0
		err := storage.Retry(t.Context(), &p, "x", func() error {
			if calls++; calls < 3 {
				return faultblob.ErrTransient
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("got %v after %d calls", err, calls)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := storage.Retry(ctx, &p, "x", func() error { calls++; cancel(); return faultblob.ErrTransient })
		if err != faultblob.ErrTransient || calls != 1 {
			t.Fatalf("got %v after %d calls", err, calls)
		}
	})
	t.Run("total time", func(t *testing.T) {
		q := p
		q.Attempts, q.MaxElapsed = 100, 2*time.Second
		calls := 0
		err := storage.Retry(t.Context(), &q, "x", func() error { calls++; return faultblob.ErrTransient })
		var re *storage.RetryError
		// 187.5 + 375 + 750 ms slept; the next 1.5 s would pass 2 s.
		if !errors.As(err, &re) || re.Attempts != 4 || re.Elapsed != 1312500*time.Microsecond {
			t.Fatalf("got %v after %d calls", err, calls)
		}
	})
	t.Run("nil policy", func(t *testing.T) {
		calls := 0
		if err := storage.Retry(t.Context(), nil, "x", func() error { calls++; return faultblob.ErrTransient }); err != faultblob.ErrTransient || calls != 1 {
			t.Fatalf("got %v after %d calls", err, calls)
		}
	})
}

func TestIsTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{faultblob.ErrTransient, true},
		{fmt.Errorf("reading x: %w", io.ErrUnexpectedEOF), true},
		{syscall.EPIPE, true},
		{context.DeadlineExceeded, true},
		{&smithy.GenericAPIError{Code: "SlowDown"}, true},
		{&smithy.GenericAPIError{Code: "AccessDenied"}, false},
		{context.Canceled, false},
		{syscall.ECONNREFUSED, false},
		{storage.ErrNotFound, false},
		{errors.New("boom"), false},
		{&storage.RetryError{Err: faultblob.ErrTransient}, false},
		{http.ErrHandlerTimeout, false},
	} {
		if got := storage.IsTransient(c.err); got != c.want {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Every kind of operation fails transiently twice, then succeeds: through
// the retrying layer each call succeeds and the bucket ends as without
// faults.
func TestWithRetryEveryOperation(t *testing.T) {
	b, inner, inj, clock := retrying(t)
	ctx := t.Context()
	inj.Flaky(2, nil)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("WriteAll", b.WriteAll(ctx, "a", []byte("alpha"), nil))
	must("Upload", b.Upload(ctx, "b", bytes.NewReader([]byte("beta")), &blob.WriterOptions{ContentType: "text/plain"}))
	must("WriteIfAbsent", storage.WriteIfAbsent(ctx, b, "c", bytes.NewReader([]byte("gamma")), nil))
	data, err := b.ReadAll(ctx, "a")
	must("ReadAll", err)
	if string(data) != "alpha" {
		t.Fatalf("read %q", data)
	}
	_, err = b.Attributes(ctx, "b")
	must("Attributes", err)
	must("Copy", b.Copy(ctx, "d", "c", nil))
	must("Delete", b.Delete(ctx, "b"))
	objs, _, err := b.ListPage(ctx, blob.FirstPageToken, 10, nil)
	must("ListPage", err)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if got := strings.Join(keys, " "); got != "a c d" {
		t.Errorf("listed %q, want %q", got, "a c d")
	}
	if d, _ := inner.ReadAll(ctx, "d"); string(d) != "gamma" {
		t.Errorf("d holds %q", d)
	}
	if n := len(clock.Sleeps()); n != 16 { // 2 per operation
		t.Errorf("slept %d times, want 16", n)
	}
}

// A failure that outlasts the policy is one line naming the object and the
// attempts, keeps the cause's code, and is not retried again by a caller.
func TestWithRetryGivesUp(t *testing.T) {
	b, _, inj, clock := retrying(t)
	ctx := t.Context()
	if err := b.WriteAll(ctx, "job/chk-3/_metadata", []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	inj.Flaky(100, nil)
	_, err := b.ReadAll(ctx, "job/chk-3/_metadata")
	msg := fmt.Sprintf("%v", storage.Wrap(err))
	if !strings.Contains(msg, `"job/chk-3/_metadata"`) || !strings.Contains(msg, "giving up after 5 attempts over") || strings.Contains(msg, "\n") {
		t.Errorf("message: %s", msg)
	}
	t.Log(msg)
	if storage.IsTransient(err) || storage.IsNotFound(err) {
		t.Errorf("IsTransient or IsNotFound: %v", err)
	}
	if n := len(clock.Sleeps()); n != 4 {
		t.Errorf("slept %d times, want 4", n)
	}
}

// A read that breaks mid-stream resumes where it broke.
func TestWithRetryResumesBrokenRead(t *testing.T) {
	b, _, inj, _ := retrying(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := b.WriteAll(ctx, "big", data, nil); err != nil {
		t.Fatal(err)
	}
	inj.BreakReads("big", 3000, 3)
	before := inj.Ops()
	got, err := b.ReadAll(ctx, "big")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if n := inj.Ops() - before; n != 4 {
		t.Errorf("%d reads, want 4 (one open, three resumptions)", n)
	}
}

// A create-if-absent write whose response was lost is retried; the retry
// finds the object: the same bytes are a success, other bytes the conflict.
func TestWithRetryResolvesAmbiguousCreate(t *testing.T) {
	t.Run("own write", func(t *testing.T) {
		b, inner, inj, _ := retrying(t)
		inj.FlakyAfter(1, func(op faultblob.Op) bool { return op.Kind == faultblob.KindWrite })
		if err := storage.WriteIfAbsent(t.Context(), b, "m", bytes.NewReader([]byte("mine")), nil); err != nil {
			t.Fatal(err)
		}
		if d, _ := inner.ReadAll(t.Context(), "m"); string(d) != "mine" {
			t.Fatalf("holds %q", d)
		}
	})
	t.Run("someone else's", func(t *testing.T) {
		b, inner, inj, _ := retrying(t)
		competed := false
		inj.FailMatching(func(op faultblob.Op) error {
			if op.Kind == faultblob.KindWrite && !competed {
				competed = true
				inner.WriteAll(context.Background(), "m", []byte("theirs"), nil)
				return faultblob.ErrTransient
			}
			return nil
		})
		err := storage.WriteIfAbsent(t.Context(), b, "m", bytes.NewReader([]byte("mine")), nil)
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("got %v, want ErrExists", err)
		}
		if d, _ := inner.ReadAll(t.Context(), "m"); string(d) != "theirs" {
			t.Fatalf("holds %q", d)
		}
	})
	t.Run("no retry, plain conflict", func(t *testing.T) {
		b, inner, _, _ := retrying(t)
		inner.WriteAll(t.Context(), "m", []byte("mine"), nil)
		err := storage.WriteIfAbsent(t.Context(), b, "m", bytes.NewReader([]byte("mine")), nil)
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("got %v, want ErrExists: without an interrupted attempt an existing object is a conflict", err)
		}
	})
}

// A delete whose response was lost is retried and finds nothing: done.
func TestWithRetryDeleteLostResponse(t *testing.T) {
	b, inner, inj, _ := retrying(t)
	inner.WriteAll(t.Context(), "x", []byte("x"), nil)
	inj.FlakyAfter(1, nil)
	if err := b.Delete(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := inner.Exists(t.Context(), "x"); ok {
		t.Fatal("not deleted")
	}
	if err := b.Delete(t.Context(), "x"); !storage.IsNotFound(err) {
		t.Fatalf("deleting a missing object: %v, want not found", err)
	}
}

// A call slower than the attempt timeout is abandoned and retried; a slow
// one within it just takes longer.
func TestWithRetrySlowResponses(t *testing.T) {
	b, inner, inj, clock := retrying(t)
	p := clock.Policy()
	p.AttemptTimeout = 50 * time.Millisecond
	b = storage.WithRetry(faultblob.Wrap(inner, inj), p)
	ctx := t.Context()
	inner.WriteAll(ctx, "x", []byte("x"), nil)
	inj.Delay(time.Second, 1, func(op faultblob.Op) bool { return op.Kind != faultblob.KindDelete })
	inj.Delay(10*time.Millisecond, 0, func(op faultblob.Op) bool { return op.Kind == faultblob.KindDelete })
	start := time.Now()
	if _, err := b.Attributes(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if d, err := b.ReadAll(ctx, "x"); err != nil || string(d) != "x" {
		t.Fatalf("read %q, %v", d, err)
	}
	if _, _, err := b.ListPage(ctx, blob.FirstPageToken, 10, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(clock.Sleeps()); n != 3 {
		t.Errorf("retried %d times, want 3", n)
	}
	if err := b.Delete(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if n := len(clock.Sleeps()); n != 3 {
		t.Errorf("a slow delete within the timeout was retried")
	}
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Errorf("took %v: slow calls were waited for", el)
	}
}

// Open's buckets and views of them carry the policy; plain buckets none.
func TestRetryPolicyOf(t *testing.T) {
	l, err := storage.Open(t.Context(), "mem://retry-policy-of/p")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := l.Narrow()
	if storage.RetryPolicyOf(l.Bucket) == nil || storage.RetryPolicyOf(n) == nil {
		t.Error("no policy on an opened bucket or its view")
	}
	plain := openMemblob()
	defer plain.Close()
	if storage.RetryPolicyOf(plain) != nil {
		t.Error("a policy on a plain bucket")
	}
}

// A Writer's output beyond the 1 MiB kept for resending is streamed: it
// arrives whole, and a failure is not retried (the caller re-sends).
func TestWithRetryLargeWriterStreams(t *testing.T) {
	b, inner, inj, _ := retrying(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("x"), 3<<20)
	if err := b.WriteAll(ctx, "big", data, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := inner.ReadAll(ctx, "big"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(data))
	}
	inj.Flaky(1, nil)
	before := inj.Ops()
	if err := b.WriteAll(ctx, "big2", data, nil); !errors.Is(err, faultblob.ErrTransient) {
		t.Fatalf("got %v, want the transient failure itself", err)
	}
	if n := inj.Ops() - before; n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}
