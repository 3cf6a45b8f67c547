package flinkjob_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/flink"
	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// relocationSource writes, in a fresh directory, an incremental checkpoint
// job/chk-3 whose files lie everywhere Flink puts them: relative files in
// chk-3/, absolute ones in the job's shared/, in another job's shared/ and
// chk-1/ (a restore in LEGACY mode), under an entropy-injected prefix, and
// segments of file-merging files; two of them share a base name with a
// relative file.
func relocationSource(t *testing.T, segments bool) (*world, spec) {
	w := newFileWorld(t)
	s := spec{job: "ck/job", id: 3,
		shared:  []string{"s1", "s2", "p1"},
		private: []string{"p1", "p2"},
		abs:     []string{"ck/old/shared/s1", "ck/old/chk-1/o1", "7f3a/ck/job/shared/e1"},
	}
	if segments {
		s.segments = []string{"merged"}
	}
	w.checkpoint(s)
	return w, s
}

// sameExceptPaths checks that relocated differs from orig only in the paths
// of its file handles: applying the relocated paths to orig gives exactly
// relocated's bytes, the trailer is untouched, and every path is now a
// relative name or an absolute URI (segments) inside dir.
func sameExceptPaths(t *testing.T, orig, relocated []byte, dst flinkjob.Store, dir string) {
	t.Helper()
	a, err := flink.Decode(orig)
	if err != nil {
		t.Fatal(err)
	}
	b, err := flink.Decode(relocated)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Trailer, b.Trailer) || len(a.Trailer) == 0 {
		t.Fatalf("trailer changed: % x -> % x", a.Trailer, b.Trailer)
	}
	ra, rb := a.FileRefs(), b.FileRefs()
	if len(ra) != len(rb) {
		t.Fatalf("%d file handles, relocated %d", len(ra), len(rb))
	}
	for i := range ra {
		x, y := &ra[i], &rb[i]
		if !reflect.DeepEqual(x.Location, y.Location) || x.Size != y.Size || x.SegmentStart != y.SegmentStart || x.SegmentScope != y.SegmentScope {
			t.Fatalf("handle %d changed beyond its path: %v -> %v", i, x, y)
		}
		key, err := dst.Resolve(dir, y.Path, y.Relative)
		if err != nil || flinkjob.DirOf(key) != dir {
			t.Fatalf("handle %d names %q (%q, %v), not a file of %s", i, y.Path, key, err, dir)
		}
		if y.Kind != flink.KindSegmentFile && (!y.Relative || strings.Contains(y.Path, "/")) {
			t.Fatalf("handle %d is not a relative name: %v", i, y)
		}
		if err := x.SetPath(y.Path, y.Relative); err != nil {
			t.Fatal(err)
		}
	}
	patched, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(patched, relocated) {
		t.Fatalf("relocated _metadata differs from the source beyond the rewritten paths")
	}
}

func TestRelocateEverywhere(t *testing.T) {
	for _, be := range storagetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			src, _ := relocationSource(t, be.Name != "azure")
			srcKey := src.key("ck/job/chk-3/_metadata")
			orig, err := src.loc.Bucket.ReadAll(src.ctx, srcKey)
			if err != nil {
				t.Fatal(err)
			}
			dloc := storagetest.Open(t, be.Sub("dst").URL)
			dst := flinkjob.StoreOf(dloc)
			if be.Name == "file" {
				dst.Bucket = src.s.Bucket // one file bucket: copied server-side
			}
			dir := strings.TrimPrefix(dloc.Prefix+"/new/chk-3", "/")
			plan, err := flinkjob.NewRelocatePlan(src.ctx, src.s, srcKey, dst, dir, flinkjob.RelocateOptions{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			res := plan.Result()
			// 9 files: meta, 3 shared (one named p1), 2 private (one p1),
			// 3 elsewhere (two named like others), one merged file for two
			// segments.
			wantFiles := 9
			if be.Name != "azure" {
				wantFiles = 10
			}
			if res.Files != wantFiles || res.FilesCopied != wantFiles || res.ServerSide != (be.Name == "file") {
				t.Fatalf("plan: %+v", res)
			}
			if res, err = plan.Execute(src.ctx, nil); err != nil {
				t.Fatal(err)
			}
			// The source can go: the copy stands alone.
			if err := os.RemoveAll(src.loc.Local); err != nil {
				t.Fatal(err)
			}
			r, err := flinkjob.ReadCheckpoint(src.ctx, dst, dir+"/_metadata", flinkjob.Options{Verify: true, ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Files) != wantFiles || r.Problems != 0 {
				t.Fatalf("relocated: %d files, %d problems", len(r.Files), r.Problems)
			}
			if !r.SelfContained {
				t.Fatalf("relocated checkpoint is not self-contained: %+v", r.Files)
			}
			relocated, err := dst.Bucket.ReadAll(src.ctx, dir+"/_metadata")
			if err != nil {
				t.Fatal(err)
			}
			sameExceptPaths(t, orig, relocated, dst, dir)
			names := map[string]bool{}
			for _, f := range r.Files {
				names[path.Base(f.Key)] = true
			}
			for _, n := range []string{"p1", "p1-2", "s1", "s1-2", "e1", "o1", "meta", "s2", "p2"} {
				if !names[n] {
					t.Errorf("no file named %s among %v", n, names)
				}
			}
		})
	}
}

func TestRelocateRefusals(t *testing.T) {
	ctx := context.Background()
	src, _ := relocationSource(t, true)
	srcKey := src.key("ck/job/chk-3/_metadata")
	dst := newWorld(t)
	plan := func(dir string) error {
		_, err := flinkjob.NewRelocatePlan(ctx, src.s, srcKey, dst.s, dir, flinkjob.RelocateOptions{})
		return err
	}
	// The destination overlaps the source.
	if _, err := flinkjob.NewRelocatePlan(ctx, src.s, srcKey, src.s, src.key("ck/job/chk-3/x/chk-3"), flinkjob.RelocateOptions{}); !errors.Is(err, flinkjob.ErrOverlap) {
		t.Errorf("overlap: %v", err)
	}
	// Missing files are all named, and nothing is written.
	for _, k := range []string{"ck/job/shared/s2", "7f3a/ck/job/shared/e1"} {
		if err := src.loc.Bucket.Delete(ctx, src.key(k)); err != nil {
			t.Fatal(err)
		}
	}
	err := plan("new/chk-3")
	if !errors.Is(err, flinkjob.ErrVerifyFailed) || !strings.Contains(err.Error(), "shared/s2 (missing)") || !strings.Contains(err.Error(), "shared/e1 (missing)") {
		t.Fatalf("missing files: %v", err)
	}
	if got := dst.ls(""); got != "" {
		t.Fatalf("wrote before checking the source:\n%s", got)
	}
}

func TestRelocateOutsideBucketAndBadPaths(t *testing.T) {
	w := newWorld(t)
	m := w.metadataFor(spec{job: "job", id: 1, shared: []string{"s"}})
	refs := m.FileRefs()
	if err := refs[1].SetPath("s3://someone-elses-bucket/job/shared/s", false); err != nil {
		t.Fatal(err)
	}
	data, _ := m.Encode()
	w.put("job/chk-1/_metadata", data)
	_, err := flinkjob.NewRelocatePlan(w.ctx, w.s, "job/chk-1/_metadata", newWorld(t).s, "x/chk-1", flinkjob.RelocateOptions{})
	if !errors.Is(err, flinkjob.ErrVerifyFailed) || !strings.Contains(err.Error(), "s3://someone-elses-bucket/job/shared/s (outside the opened bucket)") {
		t.Fatalf("outside: %v", err)
	}
	r, err := flinkjob.ReadCheckpoint(w.ctx, w.s, "job/chk-1/_metadata", flinkjob.Options{})
	if err != nil || r.Files[1].Where != flinkjob.Outside || r.SelfContained {
		t.Fatalf("inspect without verify: %v %+v", err, r)
	}
}

func TestRelocateExistingDestination(t *testing.T) {
	ctx := context.Background()
	src, _ := relocationSource(t, false)
	srcKey := src.key("ck/job/chk-3/_metadata")
	dst := newWorld(t)
	newPlan := func() (*flinkjob.RelocatePlan, error) {
		return flinkjob.NewRelocatePlan(ctx, src.s, srcKey, dst.s, "new/chk-3", flinkjob.RelocateOptions{})
	}
	// A foreign object in the directory.
	dst.put("new/chk-3/someone-elses", []byte("x"))
	if _, err := newPlan(); !errors.Is(err, flinkjob.ErrDestinationExists) {
		t.Fatalf("foreign object: %v", err)
	}
	_ = dst.loc.Bucket.Delete(ctx, "new/chk-3/someone-elses")
	p, err := newPlan()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Execute(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The same relocation again is done already.
	p, err = newPlan()
	if err != nil || !p.Result().Done {
		t.Fatalf("re-run: %v %+v", err, p.Result())
	}
	// Another checkpoint there is a conflict.
	dst.put("new/chk-3/_metadata", []byte("another"))
	if _, err := newPlan(); !errors.Is(err, flinkjob.ErrDestinationExists) {
		t.Fatalf("other checkpoint: %v", err)
	}
}

// TestRelocateCrashAnywhere interrupts the relocation at every storage
// operation of the destination: no _metadata ever references a missing
// file, and running the relocation again finishes it.
func TestRelocateCrashAnywhere(t *testing.T) {
	ctx := context.Background()
	src, _ := relocationSource(t, true)
	srcKey := src.key("ck/job/chk-3/_metadata")
	run := func(dst flinkjob.Store) error {
		p, err := flinkjob.NewRelocatePlan(ctx, src.s, srcKey, dst, "new/chk-3", flinkjob.RelocateOptions{Parallel: 2})
		if err != nil {
			return err
		}
		_, err = p.Execute(ctx, nil)
		return err
	}
	ref := newWorld(t)
	inj := &faultblob.Injector{}
	s := ref.s
	s.Bucket = faultblob.Wrap(ref.loc.Bucket, inj)
	if err := run(s); err != nil {
		t.Fatal(err)
	}
	want, total := ref.ls(""), inj.Ops()
	t.Logf("an uninterrupted relocation takes %d storage operations at the destination", total)
	for k := 1; k <= total; k++ {
		dst := newWorld(t)
		inj := &faultblob.Injector{}
		inj.CrashAt(k)
		s := dst.s
		s.Bucket = faultblob.Wrap(dst.loc.Bucket, inj)
		if err := run(s); err == nil {
			t.Fatalf("crash at %d went unnoticed", k)
		}
		if dst.exists("new/chk-3/_metadata") {
			if _, err := flinkjob.ReadCheckpoint(ctx, dst.s, "new/chk-3/_metadata", flinkjob.Options{Verify: true}); err != nil {
				t.Fatalf("crash at %d left a broken checkpoint: %v", k, err)
			}
		}
		if err := run(dst.s); err != nil {
			t.Fatalf("re-run after a crash at %d: %v", k, err)
		}
		if got := dst.ls(""); got != want {
			t.Fatalf("crash at %d, then re-run:\n%s\nwant\n%s", k, got, want)
		}
	}
}

func TestRelocateSegmentsToAzureRefused(t *testing.T) {
	src, _ := relocationSource(t, true)
	dst := flinkjob.Store{Bucket: newWorld(t).loc.Bucket, Scheme: storage.SchemeAzure, Name: "container"}
	_, err := flinkjob.NewRelocatePlan(context.Background(), src.s, src.key("ck/job/chk-3/_metadata"), dst, "new/chk-3", flinkjob.RelocateOptions{})
	if !errors.Is(err, flinkjob.ErrUnsupported) || !strings.Contains(err.Error(), "file-merging segments") {
		t.Fatalf("segments to Azure: %v", err)
	}
}

// TestRelocateWithinBackend writes a checkpoint in each backend with the
// absolute URIs Flink would write there (s3://bucket/…, gs://bucket/…),
// and relocates it server-side within that bucket. Azure is left out:
// its URIs name the storage account, which a location does not.
func TestRelocateWithinBackend(t *testing.T) {
	for _, be := range storagetest.Backends(t) {
		if be.Name == "azure" {
			continue
		}
		t.Run(be.Name, func(t *testing.T) {
			w := openWorld(t, be.Sub("ck").URL)
			w.checkpoint(spec{job: "job", id: 2, shared: []string{"s1", "s2"}, private: []string{"p"},
				abs: []string{"0a1b/job/shared/entropy"}, segments: []string{"merged"}})
			dir := w.key("restored/chk-2")
			plan, err := flinkjob.NewRelocatePlan(w.ctx, w.s, w.key("job/chk-2/_metadata"), w.s, dir, flinkjob.RelocateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := plan.Execute(w.ctx, nil); err != nil || !res.ServerSide || res.FilesCopied != 6 {
				t.Fatalf("%+v %v", res, err)
			}
			r, err := flinkjob.ReadCheckpoint(w.ctx, w.s, dir+"/_metadata", flinkjob.Options{Verify: true})
			if err != nil || !r.SelfContained || len(r.Files) != 6 {
				t.Fatalf("%v %+v", err, r)
			}
		})
	}
}
