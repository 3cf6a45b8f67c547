package faultblob_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

var errInjected = errors.New("injected")

func setup(t *testing.T) (inner, wrapped *blob.Bucket, inj *faultblob.Injector) {
	t.Helper()
	inner = memblob.OpenBucket(nil)
	inj = new(faultblob.Injector)
	wrapped = faultblob.Wrap(inner, inj)
	t.Cleanup(func() {
		wrapped.Close()
		inner.Close()
	})
	return inner, wrapped, inj
}

func TestOperationCounting(t *testing.T) {
	inner, b, inj := setup(t)
	ctx := t.Context()
	var kinds []string
	inj.FailMatching(func(op faultblob.Op) error {
		kinds = append(kinds, op.Kind+":"+op.Key+op.Src) // matchers run synchronously here
		return nil
	})

	w, err := b.NewWriter(ctx, "k", nil) // not counted
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := w.Write(bytes.Repeat([]byte("x"), 1000)); err != nil { // not counted
			t.Fatal(err)
		}
	}
	if n := inj.Ops(); n != 0 {
		t.Fatalf("after NewWriter and Write: %d ops, want 0", n)
	}
	if ok, _ := inner.Exists(ctx, "k"); ok {
		t.Fatal("object visible before Close")
	}
	if err := w.Close(); err != nil { // 1: write
		t.Fatal(err)
	}
	r, err := b.NewReader(ctx, "k", nil) // 2: read
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err != nil { // Reads not counted
		t.Fatal(err)
	}
	r.Close()
	if _, err := b.Attributes(ctx, "k"); err != nil { // 3: attrs
		t.Fatal(err)
	}
	if err := b.Copy(ctx, "k2", "k", nil); err != nil { // 4: copy
		t.Fatal(err)
	}
	for _, k := range []string{"p/a", "p/b", "p/c"} { // 5, 6, 7: write
		if err := b.WriteAll(ctx, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	it := b.List(&blob.ListOptions{Prefix: "p/"})
	for { // the iterator fetches one page: 8: list
		if _, err := it.Next(ctx); err != nil {
			break
		}
	}
	token := blob.FirstPageToken
	for len(token) > 0 { // pages of 2 over 3 keys: 9, 10: list
		_, token, err = b.ListPage(ctx, token, 2, &blob.ListOptions{Prefix: "p/"})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, "k2"); err != nil { // 11: delete
		t.Fatal(err)
	}
	if err := storage.WriteIfAbsent(ctx, b, "k", strings.NewReader("y"), nil); !errors.Is(err, storage.ErrExists) { // 12: write
		t.Fatalf("WriteIfAbsent through faultblob: got %v, want ErrExists", err)
	}
	want := []string{
		"write:k", "read:k", "attrs:k", "copy:k2k", "write:p/a", "write:p/b", "write:p/c",
		"list:p/", "list:p/", "list:p/", "delete:k2", "write:k",
	}
	if got := inj.Ops(); got != len(want) {
		t.Errorf("Ops() = %d, want %d", got, len(want))
	}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Errorf("operations\n got %v\nwant %v", kinds, want)
	}
}

func TestFailAt(t *testing.T) {
	inner, b, inj := setup(t)
	ctx := t.Context()
	inj.FailAt(2, errInjected)
	if err := b.WriteAll(ctx, "a", []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	err := b.WriteAll(ctx, "b", []byte("b"), nil)
	if !errors.Is(err, errInjected) {
		t.Fatalf("op 2: got %v, want the injected error", err)
	}
	if ok, _ := inner.Exists(ctx, "b"); ok {
		t.Fatal("a write failed before it ran still reached the inner bucket")
	}
	if err := b.WriteAll(ctx, "c", []byte("c"), nil); err != nil {
		t.Fatalf("op 3: %v", err)
	}
}

func TestFailAfter(t *testing.T) {
	inner, b, inj := setup(t)
	ctx := t.Context()
	inj.FailAfter(1, errInjected)
	if err := b.WriteAll(ctx, "a", []byte("a"), nil); !errors.Is(err, errInjected) {
		t.Fatalf("got %v, want the injected error", err)
	}
	if ok, _ := inner.Exists(ctx, "a"); !ok {
		t.Fatal("FailAfter: the operation did not take effect")
	}
}

func TestFailMatching(t *testing.T) {
	_, b, inj := setup(t)
	ctx := t.Context()
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == faultblob.KindRead && strings.HasSuffix(op.Key, ".sst") {
			return storage.ErrNotFound
		}
		return nil
	})
	for _, k := range []string{"x.sst", "y.log"} {
		if err := b.WriteAll(ctx, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.ReadAll(ctx, "x.sst")
	if !storage.IsNotFound(err) || gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("injected storage.ErrNotFound: got %v (code %v), want a NotFound", err, gcerrors.Code(err))
	}
	if _, err := b.ReadAll(ctx, "y.log"); err != nil {
		t.Fatal(err)
	}
	// Injected ErrExists on a conditional write behaves like a lost race.
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == faultblob.KindWrite && op.Key == "lock" {
			return storage.ErrExists
		}
		return nil
	})
	if err := storage.WriteIfAbsent(ctx, b, "lock", strings.NewReader("me"), nil); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("got %v, want ErrExists", err)
	}
}

func TestCrashAt(t *testing.T) {
	inner, b, inj := setup(t)
	ctx := t.Context()
	if err := b.WriteAll(ctx, "before", []byte("x"), nil); err != nil { // 1
		t.Fatal(err)
	}
	// A writer opened before the crash and closed after it.
	w, err := b.NewWriter(ctx, "pending", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half of it")); err != nil {
		t.Fatal(err)
	}
	r, err := b.NewReader(ctx, "before", nil) // 2
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	inj.CrashAt(3)
	if err := b.WriteAll(ctx, "at-crash", []byte("x"), nil); !errors.Is(err, faultblob.ErrCrashed) { // 3
		t.Fatalf("op 3: got %v, want ErrCrashed", err)
	}
	if !inj.Crashed() {
		t.Fatal("Crashed() = false after the crash point")
	}
	if err := w.Close(); !errors.Is(err, faultblob.ErrCrashed) {
		t.Fatalf("closing a writer after the crash: got %v, want ErrCrashed", err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, faultblob.ErrCrashed) {
		t.Fatalf("reading after the crash: got %v, want ErrCrashed", err)
	}
	calls := map[string]func() error{
		"write":  func() error { return b.WriteAll(ctx, "after", []byte("x"), nil) },
		"ifabs":  func() error { return storage.WriteIfAbsent(ctx, b, "after2", strings.NewReader("x"), nil) },
		"read":   func() error { _, err := b.ReadAll(ctx, "before"); return err },
		"attrs":  func() error { _, err := b.Attributes(ctx, "before"); return err },
		"list":   func() error { _, _, err := b.ListPage(ctx, blob.FirstPageToken, 10, nil); return err },
		"copy":   func() error { return b.Copy(ctx, "c", "before", nil) },
		"delete": func() error { return b.Delete(ctx, "before") },
		"writer": func() error { _, err := b.NewWriter(ctx, "w", &blob.WriterOptions{ContentType: "a/b"}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, faultblob.ErrCrashed) {
			t.Errorf("%s after crash: got %v, want ErrCrashed", name, err)
		}
	}
	for _, k := range []string{"pending", "at-crash", "after", "after2", "c"} {
		if ok, _ := inner.Exists(ctx, k); ok {
			t.Errorf("%s reached the inner bucket despite the crash", k)
		}
	}
	if ok, _ := inner.Exists(ctx, "before"); !ok {
		t.Error("the object written before the crash is gone")
	}
	inj.Reset()
	if err := b.WriteAll(ctx, "restarted", []byte("x"), nil); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	if inj.Ops() != 1 {
		t.Fatalf("after Reset and one write, Ops() = %d", inj.Ops())
	}
}

func TestMisbehavingReads(t *testing.T) {
	_, b, inj := setup(t)
	ctx := t.Context()
	data := []byte("0123456789abcdef")
	for _, k := range []string{"short", "corrupt"} {
		if err := b.WriteAll(ctx, k, data, nil); err != nil {
			t.Fatal(err)
		}
	}
	inj.ShortRead("short", 5)
	inj.Corrupt("corrupt")

	r, err := b.NewReader(ctx, "short", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "01234" {
		t.Fatalf("short read: got %q, %v; want %q and no error", got, err, "01234")
	}
	if r.Size() != int64(len(data)) {
		t.Fatalf("short read reports size %d, want the full %d", r.Size(), len(data))
	}

	got, err = b.ReadAll(ctx, "corrupt")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(data) || bytes.Equal(got, data) {
		t.Fatalf("corrupt read returned %q", got)
	}
	for i := range got {
		if got[i] != data[i]^0xff {
			t.Fatalf("byte %d = %#x, want %#x", i, got[i], data[i]^0xff)
		}
	}
}

func TestErrorCodesSurvive(t *testing.T) {
	_, b, _ := setup(t)
	ctx := t.Context()
	_, err := b.ReadAll(ctx, "missing")
	if gcerrors.Code(err) != gcerrors.NotFound || !errors.Is(storage.Wrap(err), storage.ErrNotFound) {
		t.Fatalf("missing key through faultblob: got %v (code %v)", err, gcerrors.Code(err))
	}
	if err := b.Delete(ctx, "missing"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("deleting missing key: code %v", gcerrors.Code(err))
	}
	if err := b.WriteAll(ctx, "k", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	w, err := b.NewWriter(ctx, "k", &blob.WriterOptions{IfNotExist: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("y"))
	if err := w.Close(); gcerrors.Code(err) != gcerrors.FailedPrecondition {
		t.Fatalf("IfNotExist over an existing key: got %v (code %v), want FailedPrecondition", err, gcerrors.Code(err))
	}
}

func TestConcurrentUse(t *testing.T) {
	_, b, inj := setup(t)
	ctx := t.Context()
	inj.FailAt(50, errInjected)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for i := range 20 {
		wg.Go(func() {
			for j := range 5 {
				key := string(rune('a'+i)) + "/" + string(rune('0'+j))
				if err := b.WriteAll(ctx, key, []byte(key), nil); err != nil {
					if !errors.Is(err, errInjected) {
						t.Error(err)
					}
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if inj.Ops() != 100 || failures != 1 {
		t.Fatalf("Ops() = %d, failures = %d; want 100 and 1", inj.Ops(), failures)
	}
}
