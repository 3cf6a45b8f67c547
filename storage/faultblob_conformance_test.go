package storage_test

import (
	"bytes"
	"errors"
	"testing"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// TestFaultblobPreservesSemantics runs the conformance checks (all but the
// big-object races) through a faultblob wrapper that injects nothing:
// wrapping must not change behaviour.
func TestFaultblobPreservesSemantics(t *testing.T) {
	for _, c := range conformanceChecks() {
		if c.name == "WriteIfAbsentRaceLargeSingle" || c.name == "WriteIfAbsentRaceMultipart" {
			continue // faultblob buffers writes: big races only cost memory here
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			inner := openMemblob()
			inj := new(faultblob.Injector)
			b := faultblob.Wrap(inner, inj)
			t.Cleanup(func() {
				b.Close()
				inner.Close()
			})
			c.run(t, b)
			if inj.Ops() == 0 {
				t.Error("no operations were counted")
			}
		})
	}
}

// TestFaultblobCrashStopsWrites: after CrashAt, neither pending nor new
// writes reach the bucket, including create-if-absent ones.
func TestFaultblobCrashStopsWrites(t *testing.T) {
	loc := storagetestOpen(t, "mem://faultblob-crash")
	inj := new(faultblob.Injector)
	b := faultblob.Wrap(loc.Bucket, inj)
	defer b.Close()
	ctx := t.Context()
	pending, err := b.NewWriter(ctx, "pending", nil)
	if err != nil {
		t.Fatal(err)
	}
	pending.Write([]byte("data"))
	inj.CrashAt(inj.Ops() + 1)
	if err := storage.WriteIfAbsent(ctx, b, "marker", bytes.NewReader([]byte("x")), nil); !errors.Is(err, faultblob.ErrCrashed) {
		t.Fatalf("WriteIfAbsent after crash: got %v", err)
	}
	if err := pending.Close(); !errors.Is(err, faultblob.ErrCrashed) {
		t.Fatalf("closing pending writer after crash: got %v", err)
	}
	// A fresh Open of the same location (the "restarted process") sees nothing.
	after := storagetestOpen(t, "mem://faultblob-crash")
	if got := listAll(t, after.Bucket, &blob.ListOptions{}); len(got) != 0 {
		t.Fatalf("objects written across the crash: %v", got)
	}
}

// TestUploadOnlyWriterDoesNotHang: when the inner upload fails without
// reading (here: a closed bucket), pending Writes return its error instead of
// blocking on the pipe.
func TestUploadOnlyWriterDoesNotHang(t *testing.T) {
	inner := openMemblob()
	inner.Close()
	b := storage.NewUploadOnlyBucket(inner)
	w, err := b.NewWriter(t.Context(), "k", &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write(make([]byte, 8<<20))
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("writing to a closed inner bucket succeeded")
	}
}
