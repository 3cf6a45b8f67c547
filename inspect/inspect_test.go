package inspect_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
)

func TestInspectVerifyAndChain(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	dir := filepath.Join(t.TempDir(), "db")
	spec := testpebble.Spec{Keys: 20000, ValueSize: 64, Seed: 1}
	if err := testpebble.Create(testpebble.V2, dir, spec); err != nil {
		t.Fatal(err)
	}
	a, bj := metadata.Job{Prefix: "jobs/a"}, metadata.Job{Prefix: "jobs/b"}
	take := func(job metadata.Job, dir string, origin *checkpoint.OriginRef) uint64 {
		s, err := checkpoint.OpenDir("default", dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		r, err := checkpoint.Create(ctx, b, job, []*checkpoint.Store{s}, checkpoint.Options{Origin: origin})
		if err != nil {
			t.Fatal(err)
		}
		return r.CheckpointID
	}
	take(a, dir, nil)
	restored := filepath.Join(t.TempDir(), "r")
	if err := testutil.Materialize(ctx, b, a, 1, "default", restored); err != nil {
		t.Fatal(err)
	}
	take(bj, restored, &checkpoint.OriginRef{Dir: a.CheckpointDir(1), JobID: "00112233445566778899aabbccddeeff", CheckpointID: 1, Claim: true})

	r, err := inspect.ReadCheckpoint(ctx, b, bj, 1, inspect.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.SelfContained || len(r.ExternalJobs) != 1 || r.ExternalJobs[0] != "jobs/a" {
		t.Fatalf("claimed checkpoint: self-contained=%v external=%v", r.SelfContained, r.ExternalJobs)
	}
	if len(r.Chain) != 1 || !r.Chain[0].Exists || r.Chain[0].Key != "jobs/a/chk-1" || !r.Chain[0].Claim {
		t.Fatalf("chain: %+v", r.Chain)
	}
	if !r.Verified || !r.DataChecked || r.Problems != 0 {
		t.Fatalf("%+v", r)
	}
	// Break one file of each kind: a missing one and a corrupt one.
	var missing, corrupt string
	for _, f := range r.Files {
		switch {
		case f.Where == inspect.External && missing == "":
			missing = f.Key
			b.Delete(ctx, f.Key)
		case f.Where == inspect.InCheckpoint && corrupt == "":
			corrupt = f.Key
			data, _ := b.ReadAll(ctx, f.Key)
			if len(data) == 0 {
				corrupt = ""
				continue
			}
			data[0] ^= 1
			b.WriteAll(ctx, f.Key, data, nil)
		}
	}
	r, err = inspect.ReadCheckpoint(ctx, b, bj, 1, inspect.Options{ReadData: true})
	if !errors.Is(err, inspect.ErrVerifyFailed) || r.Problems != 2 {
		t.Fatalf("got %v with %d problems, want 2", err, r.Problems)
	}
	for _, f := range r.Files {
		switch f.Key {
		case missing:
			if f.Problem != "missing" {
				t.Fatalf("%s: %q", f.Key, f.Problem)
			}
		case corrupt:
			if f.Problem != "checksum mismatch" {
				t.Fatalf("%s: %q", f.Key, f.Problem)
			}
		}
	}
	// Sizes only: the corrupt file (same size) passes, the missing one not.
	r, _ = inspect.ReadCheckpoint(ctx, b, bj, 1, inspect.Options{Verify: true})
	if r.Problems != 1 {
		t.Fatalf("--verify found %d problems, want 1", r.Problems)
	}
	// A job report flags corrupt metadata and incomplete directories.
	data, _ := b.ReadAll(ctx, a.MetadataKey(1))
	b.WriteAll(ctx, a.MetadataKey(1), data[:len(data)-3], nil)
	b.WriteAll(ctx, a.PendingKey(2), []byte("{}"), nil)
	jr, err := inspect.ReadJob(ctx, b, a, inspect.Options{})
	if !errors.Is(err, inspect.ErrVerifyFailed) || len(jr.Checkpoints) != 2 {
		t.Fatalf("job: %v %+v", err, jr)
	}
	if jr.Checkpoints[0].State != inspect.Corrupt || !strings.Contains(jr.Checkpoints[0].Error, "corrupt") ||
		jr.Checkpoints[1].State != inspect.Incomplete || !jr.Checkpoints[1].Pending || jr.Latest != 0 {
		t.Fatalf("job entries: %+v", jr.Checkpoints)
	}
	if _, err := inspect.ReadJob(ctx, b, metadata.Job{Prefix: "nope"}, inspect.Options{}); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("empty job: %v", err)
	}
}
