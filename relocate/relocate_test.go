package relocate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// The chain: A → B (restored from A with claim) → relocate B's
// checkpoint to C → delete A and B → C's checkpoint verifies and holds
// exactly B's data, in the same bucket (server-side copy) and across
// buckets (streamed).
func TestChain(t *testing.T) {
	for _, sameBucket := range []bool{true, false} {
		t.Run(fmt.Sprintf("same-bucket=%v", sameBucket), func(t *testing.T) {
			ctx := context.Background()
			srcInner := memblob.OpenBucket(nil)
			inj := &faultblob.Injector{}
			src := faultblob.Wrap(srcInner, inj)
			ch := buildChain(t, src, "jobs", spec)
			dst, cJob := memblob.OpenBucket(nil), metadata.Job{Prefix: "other/c"}
			if sameBucket {
				dst, cJob = src, metadata.Job{Prefix: "jobs/c"}
			}
			id := ch.bIDs[1]
			copies := 0
			inj.FailMatching(func(op faultblob.Op) error {
				if op.Kind == faultblob.KindCopy {
					copies++ // matchers run under no lock; Copy calls are few
				}
				return nil
			})
			res := mustRelocate(t, relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}},
				relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{Parallel: 1})
			if res.ServerSide != sameBucket || len(res.Checkpoints) != 1 {
				t.Fatalf("result: %+v", res)
			}
			cr := res.Checkpoints[0]
			if cr.ID != id || cr.FilesCopied != cr.Files || cr.FilesSkipped != 0 || cr.BytesCopied != cr.Bytes {
				t.Fatalf("checkpoint result: %+v", cr)
			}
			if sameBucket && copies != cr.Files || !sameBucket && copies != 0 {
				t.Fatalf("%d server-side copies for %d files (same bucket %v)", copies, cr.Files, sameBucket)
			}
			var kinds []string
			for _, l := range cr.LinksCut {
				kinds = append(kinds, fmt.Sprintf("%s:%s", l.Kind, l.Key))
			}
			if got := strings.Join(kinds, " "); got != "lineage:jobs/a/chk-2 external:jobs/a" {
				t.Fatalf("links cut: %s", got)
			}

			// Delete A and B entirely.
			deleteAll(t, srcInner, "jobs/a/")
			deleteAll(t, srcInner, "jobs/b/")

			c := checkSelfContained(t, dst, cJob, id)
			if c.Lineage == nil || c.Lineage.Path != "" || c.Lineage.CheckpointID != 2 || !c.Lineage.Claim {
				t.Fatalf("lineage: %+v", c.Lineage)
			}
			for _, f := range c.Stores[0].Files {
				if !f.New {
					t.Fatalf("%s not marked new in a single relocated checkpoint", f.Name)
				}
			}
			if c.Kind != metadata.KindFull || c.BaseID != 0 {
				t.Fatalf("kind %s base %d", c.Kind, c.BaseID)
			}
			r, err := inspect.ReadCheckpoint(ctx, dst, cJob, id, inspect.Options{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			if !r.SelfContained || r.Problems != 0 {
				t.Fatalf("inspect: self-contained %v, %d problems", r.SelfContained, r.Problems)
			}
			out := filepath.Join(t.TempDir(), "out")
			if err := testutil.Materialize(ctx, dst, cJob, id, "default", out); err != nil {
				t.Fatal(err)
			}
			if got := digest(t, out); got != ch.digest[id] {
				t.Fatalf("relocated data %s, want %s", got, ch.digest[id])
			}
		})
	}
}

// On file storage, after relocation a plain `cp -r` of the destination job
// to anywhere else is still a valid checkpoint: nothing in its `_metadata`
// names the old location.
func TestCopyOfDestinationIsValid(t *testing.T) {
	ctx := context.Background()
	loc, err := storage.Open(ctx, "file:///")
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	root := t.TempDir()
	prefix := strings.TrimPrefix(filepath.ToSlash(root), "/")
	ch := buildChain(t, loc.Bucket, prefix, spec)
	cJob := metadata.Job{Prefix: prefix + "/c"}
	id := ch.bIDs[1]
	mustRelocate(t, relocate.Source{Bucket: loc.Bucket, Job: ch.b, IDs: []uint64{id}},
		relocate.Destination{Bucket: loc.Bucket, Job: cJob, ID: 7}, relocate.Options{ReadData: true})

	elsewhere := filepath.Join(t.TempDir(), "deep", "elsewhere")
	if err := os.MkdirAll(filepath.Dir(elsewhere), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "c"), elsewhere).CombinedOutput(); err != nil {
		t.Fatalf("cp -r: %v: %s", err, out)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	moved := metadata.Job{Prefix: strings.TrimPrefix(filepath.ToSlash(elsewhere), "/")}
	if _, err := testutil.VerifyCheckpoint(ctx, loc.Bucket, moved, 7); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := testutil.Materialize(ctx, loc.Bucket, moved, 7, "default", out); err != nil {
		t.Fatal(err)
	}
	if got := digest(t, out); got != ch.digest[id] {
		t.Fatalf("data %s, want %s", got, ch.digest[id])
	}
}

// A whole job: every checkpoint, sharing files at the destination instead
// of duplicating them; ids, kinds and bases kept; an incomplete directory
// skipped.
func TestAll(t *testing.T) {
	ctx := context.Background()
	src := memblob.OpenBucket(nil)
	ch := buildChain(t, src, "", spec)
	// An abandoned reservation in B is not a checkpoint.
	if err := src.WriteAll(ctx, ch.b.PendingKey(9), []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	dst := memblob.OpenBucket(nil)
	cJob := metadata.Job{Prefix: "c"}
	res := mustRelocate(t, relocate.Source{Bucket: src, Job: ch.b, All: true},
		relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{})
	if len(res.Checkpoints) != 2 || len(res.Incomplete) != 1 || res.Incomplete[0] != 9 {
		t.Fatalf("result: %+v", res)
	}
	// Each distinct object is copied once.
	objects := keys(t, dst, "c/")
	data := 0
	for _, k := range objects {
		if !strings.HasSuffix(k, "/_metadata") {
			data++
		}
	}
	if res.FilesCopied != data || res.FilesSkipped != 0 {
		t.Fatalf("copied %d files, the destination holds %d: %v", res.FilesCopied, data, objects)
	}
	sum := 0
	for _, cr := range res.Checkpoints {
		sum += cr.Files
	}
	if res.FilesCopied >= sum {
		t.Fatalf("no sharing: %d copies for %d references", res.FilesCopied, sum)
	}
	if n := checkCommitted(t, dst, cJob); n != 2 {
		t.Fatalf("%d checkpoints at the destination", n)
	}
	c1 := checkSelfContained(t, dst, cJob, ch.bIDs[0])
	c2 := checkSelfContained(t, dst, cJob, ch.bIDs[1])
	if c1.Kind != metadata.KindFull || c2.Kind != metadata.KindIncremental || c2.BaseID != ch.bIDs[0] {
		t.Fatalf("kinds %s, %s (base %d)", c1.Kind, c2.Kind, c2.BaseID)
	}
	reused := 0
	for _, f := range c2.Stores[0].Files {
		if !f.New {
			reused++
			if !strings.HasPrefix(f.Path, "../shared/") {
				t.Fatalf("reused private file %+v", f)
			}
		}
	}
	if reused == 0 {
		t.Fatal("the second checkpoint reuses nothing of the first")
	}
	deleteAll(t, src, "")
	for _, id := range ch.bIDs {
		out := filepath.Join(t.TempDir(), "out")
		if err := testutil.Materialize(ctx, dst, cJob, id, "default", out); err != nil {
			t.Fatal(err)
		}
		if got := digest(t, out); got != ch.digest[id] {
			t.Fatalf("chk-%d: %s, want %s", id, got, ch.digest[id])
		}
	}

	// Onward within the destination bucket (server-side), then the same
	// relocation again: it has nothing left to do.
	next := relocate.Source{Bucket: dst, Job: cJob, All: true}
	to := relocate.Destination{Bucket: dst, Job: metadata.Job{Prefix: "d"}}
	first := mustRelocate(t, next, to, relocate.Options{})
	again := mustRelocate(t, next, to, relocate.Options{ReadData: true})
	if !first.ServerSide || again.FilesCopied != 0 || again.FilesSkipped != first.FilesCopied {
		t.Fatalf("second run: %+v after %+v", again, first)
	}
	for _, cr := range again.Checkpoints {
		if !cr.Done {
			t.Fatalf("second run redid chk-%d", cr.ID)
		}
	}
}

// Interrupted at every storage operation of the destination (a crash, a
// lost response, or Ctrl-C), the destination never holds a `_metadata`
// that references a missing object, and a re-run with the same arguments
// finishes, skipping what was already copied.
func TestInterruptAtEveryOperation(t *testing.T) {
	tmpl := memblob.OpenBucket(nil)
	ch := buildChain(t, tmpl, "jobs", small)
	for _, mode := range []string{"crash", "lost-response", "cancel"} {
		for _, sameBucket := range []bool{false, true} {
			for _, all := range []bool{false, true} {
				name := fmt.Sprintf("%s/same-bucket=%v/all=%v", mode, sameBucket, all)
				t.Run(name, func(t *testing.T) { interruptEvery(t, tmpl, ch, mode, sameBucket, all) })
			}
		}
	}
}

func interruptEvery(t *testing.T, tmpl *blob.Bucket, ch *chain, mode string, sameBucket, all bool) {
	bg := context.Background()
	cJob := metadata.Job{Prefix: "jobs/c"}
	setup := func() (srcB, dstInner *blob.Bucket, wrap func(*faultblob.Injector) (*blob.Bucket, *blob.Bucket)) {
		srcB = memblob.OpenBucket(nil)
		copyBucket(t, tmpl, srcB)
		if sameBucket {
			return srcB, srcB, func(inj *faultblob.Injector) (*blob.Bucket, *blob.Bucket) {
				w := faultblob.Wrap(srcB, inj)
				return w, w
			}
		}
		dstInner = memblob.OpenBucket(nil)
		return srcB, dstInner, func(inj *faultblob.Injector) (*blob.Bucket, *blob.Bucket) {
			return srcB, faultblob.Wrap(dstInner, inj)
		}
	}
	source := func(b *blob.Bucket) relocate.Source {
		if all {
			return relocate.Source{Bucket: b, Job: ch.b, All: true}
		}
		return relocate.Source{Bucket: b, Job: ch.b, IDs: []uint64{ch.bIDs[1]}}
	}
	// Count the operations of an undisturbed run.
	_, _, wrap := setup()
	inj := &faultblob.Injector{}
	s, d := wrap(inj)
	full := mustRelocate(t, source(s), relocate.Destination{Bucket: d, Job: cJob}, relocate.Options{})
	n := inj.Ops()
	if n < 5 {
		t.Fatalf("only %d operations", n)
	}
	resumedSkips := 0
	for k := 1; k <= n; k++ {
		_, dstInner, wrap := setup()
		inj := &faultblob.Injector{}
		ctx, cancel := context.WithCancel(bg)
		switch mode {
		case "crash":
			inj.CrashAt(k)
		case "lost-response":
			inj.FailAfter(k, errors.New("connection reset"))
		case "cancel":
			var mu sync.Mutex
			seen := 0
			inj.FailMatching(func(faultblob.Op) error {
				mu.Lock()
				defer mu.Unlock()
				if seen++; seen == k {
					cancel()
				}
				return nil
			})
		}
		s, d := wrap(inj)
		_, err := relocateOnce(ctx, source(s), relocate.Destination{Bucket: d, Job: cJob}, relocate.Options{Parallel: 3})
		cancel()
		if mode == "cancel" && err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("op %d: %v, want context.Canceled", k, err)
		}
		// Never a `_metadata` referencing a missing object.
		checkCommitted(t, dstInner, cJob)

		// Re-run with the same arguments, undisturbed.
		s, d = wrap(nil)
		res, err := relocateOnce(bg, source(s), relocate.Destination{Bucket: d, Job: cJob}, relocate.Options{Parallel: 3})
		if err != nil {
			t.Fatalf("re-run after op %d: %v", k, err)
		}
		resumedSkips += res.FilesSkipped
		if res.FilesCopied+res.FilesSkipped != full.FilesCopied {
			t.Fatalf("re-run after op %d: copied %d + skipped %d, want %d objects", k, res.FilesCopied, res.FilesSkipped, full.FilesCopied)
		}
		if got := checkCommitted(t, dstInner, cJob); got != len(full.Checkpoints) {
			t.Fatalf("re-run after op %d: %d checkpoints committed", k, got)
		}
		if left := keys(t, dstInner, cJob.Dir()); strings.Contains(strings.Join(left, " "), "_pending") {
			t.Fatalf("re-run after op %d left markers: %v", k, left)
		}
	}
	if resumedSkips == 0 {
		t.Fatal("no re-run skipped anything")
	}
	t.Logf("interrupted at each of %d operations", n)
}

// Bad sources fail before anything is written to the destination, naming
// every bad object.
func TestBadSource(t *testing.T) {
	ctx := context.Background()
	tmpl := memblob.OpenBucket(nil)
	ch := buildChain(t, tmpl, "jobs", small)
	id := ch.bIDs[1]
	c, err := metadata.Read(ctx, tmpl, ch.b.MetadataKey(id))
	if err != nil {
		t.Fatal(err)
	}
	var external, own string
	for _, f := range c.Stores[0].Files {
		key, _ := metadata.Resolve(ch.b.CheckpointDir(id), f.Path)
		if strings.HasPrefix(key, "jobs/a/shared/") && external == "" {
			external = key
		}
		if strings.HasPrefix(f.Name, "MANIFEST") {
			own = key
		}
	}
	cases := []struct {
		name     string
		damage   func(b *blob.Bucket)
		readData bool
		want     error
		say      []string
	}{
		{"missing", func(b *blob.Bucket) { b.Delete(ctx, external); b.Delete(ctx, own) }, false,
			relocate.ErrVerifyFailed, []string{"2 of", external + " (missing)", own + " (missing)"}},
		{"truncated", func(b *blob.Bucket) { b.WriteAll(ctx, own, []byte("short"), nil) }, false,
			relocate.ErrVerifyFailed, []string{own + " (size 5, expected"}},
		{"altered", func(b *blob.Bucket) { flip(t, b, external) }, true,
			relocate.ErrVerifyFailed, []string{external + " (checksum mismatch)"}},
		{"corrupt metadata", func(b *blob.Bucket) { flip(t, b, ch.b.MetadataKey(id)) }, false,
			metadata.ErrCorrupt, []string{"checksum mismatch"}},
		{"no checkpoint", func(b *blob.Bucket) { b.Delete(ctx, ch.b.MetadataKey(id)) }, false,
			metadata.ErrNotFound, []string{ch.b.MetadataKey(id)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := memblob.OpenBucket(nil)
			copyBucket(t, tmpl, src)
			tc.damage(src)
			dst := memblob.OpenBucket(nil)
			_, err := relocate.NewPlan(ctx, relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}},
				relocate.Destination{Bucket: dst, Job: metadata.Job{Prefix: "c"}}, relocate.Options{ReadData: tc.readData})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if errors.Is(tc.want, relocate.ErrVerifyFailed) && !errors.Is(err, inspect.ErrVerifyFailed) {
				t.Fatalf("%v does not match inspect.ErrVerifyFailed", err)
			}
			for _, s := range tc.say {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error does not say %q: %v", s, err)
				}
			}
			if left := keys(t, dst, ""); len(left) != 0 {
				t.Fatalf("wrote %v", left)
			}
		})
	}

	// Altered content of the same size, without ReadData: caught while
	// streaming, never committed, named.
	src := memblob.OpenBucket(nil)
	copyBucket(t, tmpl, src)
	flip(t, src, external)
	dst := memblob.OpenBucket(nil)
	cJob := metadata.Job{Prefix: "c"}
	_, err = relocateOnce(ctx, relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}},
		relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{})
	if !errors.Is(err, relocate.ErrVerifyFailed) || !strings.Contains(err.Error(), external) {
		t.Fatalf("got %v", err)
	}
	if ok, _ := dst.Exists(ctx, cJob.MetadataKey(id)); ok {
		t.Fatal("committed a checkpoint with a bad object")
	}
	if ok, _ := dst.Exists(ctx, "c/shared/"+filepath.Base(external)); ok {
		t.Fatal("bad object written")
	}
}

// flip inverts the first byte of key (keeping its size).
func flip(t testing.TB, b *blob.Bucket, key string) {
	t.Helper()
	ctx := context.Background()
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := b.WriteAll(ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
}

// The destination's existing checkpoints are never overwritten; a finished
// relocation re-run is done; other writers' reservations are respected.
func TestDestinationConflicts(t *testing.T) {
	ctx := context.Background()
	src := memblob.OpenBucket(nil)
	ch := buildChain(t, src, "jobs", small)
	id := ch.bIDs[1]
	source := relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{id}}

	t.Run("different checkpoint", func(t *testing.T) {
		dst := memblob.OpenBucket(nil)
		cJob := metadata.Job{Prefix: "c"}
		// The destination holds B's first checkpoint under the id.
		mustRelocate(t, relocate.Source{Bucket: src, Job: ch.b, IDs: []uint64{ch.bIDs[0]}},
			relocate.Destination{Bucket: dst, Job: cJob, ID: id}, relocate.Options{})
		before := keys(t, dst, "")
		_, err := relocate.NewPlan(ctx, source, relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{})
		if !errors.Is(err, relocate.ErrDestinationExists) || !errors.Is(err, storage.ErrExists) || !strings.Contains(err.Error(), cJob.MetadataKey(id)) {
			t.Fatalf("got %v", err)
		}
		if after := keys(t, dst, ""); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Fatalf("wrote to the destination: %v", after)
		}
	})
	t.Run("reserved by a creator", func(t *testing.T) {
		dst := memblob.OpenBucket(nil)
		cJob := metadata.Job{Prefix: "c"}
		dst.WriteAll(ctx, cJob.PendingKey(id), []byte(`{"created_at":"2026-11-22T12:00:00Z"}`), nil)
		_, err := relocate.NewPlan(ctx, source, relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{})
		if !errors.Is(err, relocate.ErrDestinationExists) || !strings.Contains(err.Error(), "reserved by another writer") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("done", func(t *testing.T) {
		dst := memblob.OpenBucket(nil)
		cJob := metadata.Job{Prefix: "c"}
		first := mustRelocate(t, source, relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{})
		again := mustRelocate(t, source, relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{})
		cr := again.Checkpoints[0]
		if !cr.Done || again.FilesCopied != 0 || again.FilesSkipped != first.FilesCopied {
			t.Fatalf("re-run: %+v", again)
		}
		// Done even once the source is gone.
		deleteAll(t, src, "jobs/a/")
		if again = mustRelocate(t, source, relocate.Destination{Bucket: dst, Job: cJob}, relocate.Options{}); !again.Checkpoints[0].Done {
			t.Fatalf("%+v", again)
		}
	})
}

// Within one bucket the destination may not lie inside the source job.
func TestOverlap(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	for _, tc := range []struct {
		src, dst string
		overlap  bool
	}{
		{"jobs/b", "jobs/b/copy", true},
		{"jobs/b", "jobs/b/chk-1/x", true},
		{"", "c", true},
		{"jobs/b", "jobs/bb", false},
		{"jobs/b", "jobs/b", false},
		{"jobs/b", "jobs", false},
	} {
		if got := relocate.Overlaps(metadata.Job{Prefix: tc.src}, metadata.Job{Prefix: tc.dst}); got != tc.overlap {
			t.Errorf("Overlaps(%q, %q) = %v", tc.src, tc.dst, got)
		}
	}
	_, err := relocate.NewPlan(ctx, relocate.Source{Bucket: b, Job: metadata.Job{Prefix: "jobs/b"}, IDs: []uint64{1}},
		relocate.Destination{Bucket: b, Job: metadata.Job{Prefix: "jobs/b/c"}}, relocate.Options{})
	if !errors.Is(err, relocate.ErrOverlap) {
		t.Fatalf("got %v", err)
	}
	// In another bucket the same prefixes are unrelated.
	_, err = relocate.NewPlan(ctx, relocate.Source{Bucket: b, Job: metadata.Job{Prefix: "jobs/b"}, IDs: []uint64{1}},
		relocate.Destination{Bucket: memblob.OpenBucket(nil), Job: metadata.Job{Prefix: "jobs/b/c"}}, relocate.Options{})
	if !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}

// A dry run (NewPlan alone) describes the work and writes nothing.
func TestPlanWritesNothing(t *testing.T) {
	ctx := context.Background()
	inner := memblob.OpenBucket(nil)
	ch := buildChain(t, inner, "jobs", small)
	inj := &faultblob.Injector{}
	inj.FailMatching(func(op faultblob.Op) error {
		switch op.Kind {
		case faultblob.KindWrite, faultblob.KindCopy, faultblob.KindDelete:
			return fmt.Errorf("planning %s %s", op.Kind, op.Key)
		}
		return nil
	})
	b := faultblob.Wrap(inner, inj)
	p, err := relocate.NewPlan(ctx, relocate.Source{Bucket: b, Job: ch.b, All: true},
		relocate.Destination{Bucket: b, Job: metadata.Job{Prefix: "jobs/c"}}, relocate.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	r := p.Result()
	if r.FilesCopied != len(p.Copies()) || r.FilesSkipped != 0 || !r.ServerSide || len(r.Checkpoints) != 2 {
		t.Fatalf("plan: %+v, %d copies", r, len(p.Copies()))
	}
	for _, c := range p.Copies() {
		if !strings.HasPrefix(c.Dst, "jobs/c/") || c.SHA256 == "" || c.Skip {
			t.Fatalf("copy %+v", c)
		}
	}
}

// A relocated checkpoint under a new id, then the next checkpoint created
// on top of it at the destination reuses its shared files.
func TestNewIDAndCreateOnTop(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, small); err != nil {
		t.Fatal(err)
	}
	a := metadata.Job{Prefix: "a"}
	r := take(t, b, a, dir, nil)
	c := metadata.Job{Prefix: "c"}
	mustRelocate(t, relocate.Source{Bucket: b, Job: a, IDs: []uint64{r.CheckpointID}},
		relocate.Destination{Bucket: b, Job: c, ID: 5}, relocate.Options{})
	if err := testpebble.Churn(testpebble.V2, dir, small, 0.05, 3); err != nil {
		t.Fatal(err)
	}
	next := take(t, b, c, dir, nil)
	if next.CheckpointID != 6 || next.BaseID != 5 || next.FilesReused == 0 {
		t.Fatalf("create on top of a relocated checkpoint: %+v", next)
	}
	if _, err := testutil.VerifyCheckpoint(ctx, b, c, 6); err != nil {
		t.Fatal(err)
	}
}

// Relocating a checkpoint within its own job under another id makes it
// self-contained: its own job's shared files are kept in place, the other
// job's are copied in.
func TestWithinJob(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	ch := buildChain(t, b, "jobs", small)
	id := ch.bIDs[1]
	res := mustRelocate(t, relocate.Source{Bucket: b, Job: ch.b, IDs: []uint64{id}},
		relocate.Destination{Bucket: b, Job: ch.b, ID: 9}, relocate.Options{})
	cr := res.Checkpoints[0]
	if cr.FilesSkipped == 0 || cr.FilesCopied == 0 || !res.ServerSide {
		t.Fatalf("%+v", cr)
	}
	deleteAll(t, b, "jobs/a/")
	checkSelfContained(t, b, ch.b, 9)
	if _, err := testutil.VerifyCheckpoint(ctx, b, ch.b, 9); err != nil {
		t.Fatal(err)
	}
	// The original is untouched.
	c, err := metadata.Read(ctx, b, ch.b.MetadataKey(id))
	if err != nil || !strings.HasPrefix(c.Lineage.Path, "../../a/") {
		t.Fatalf("%v %+v", err, c)
	}
}
