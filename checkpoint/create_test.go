package checkpoint_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

var spec = testpebble.Spec{Keys: 20000, ValueSize: 100, Seed: 1}

var clock = func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }

func newStore(t *testing.T, v testpebble.Version) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(v, dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func take(t *testing.T, b *blob.Bucket, job metadata.Job, dir string, opts checkpoint.Options) *checkpoint.Result {
	t.Helper()
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if opts.Now == nil {
		opts.Now = clock
	}
	res, err := checkpoint.Create(context.Background(), b, job, []*checkpoint.Store{s}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// snapshot records every file of a directory with its size, mode, mtime
// and content hash.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, _ := d.Info()
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[p] = fmt.Sprintf("%d %v %v %x", info.Size(), info.Mode(), info.ModTime().UnixNano(), sum[:8])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sstSizes(t *testing.T, dir string) (map[string]int64, int64) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ssts := map[string]int64{}
	var private int64
	for _, e := range ents {
		info, _ := e.Info()
		switch {
		case strings.HasSuffix(e.Name(), ".sst"):
			ssts[e.Name()] = info.Size()
		case e.Name() != "LOCK":
			private += info.Size()
		}
	}
	return ssts, private
}

func TestFullThenIncremental(t *testing.T) {
	for _, v := range []testpebble.Version{testpebble.V2, testpebble.V1} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := context.Background()
			b := memblob.OpenBucket(nil)
			job := metadata.Job{Prefix: "jobs/a"}
			dir := newStore(t, v)
			want1, err := testpebble.Digest(dir)
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			r1 := take(t, b, job, dir, checkpoint.Options{})
			if after := snapshot(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("create modified the source store:\nbefore %v\nafter  %v", before, after)
			}
			if r1.CheckpointID != 1 || r1.Kind != metadata.KindFull || r1.FilesReused != 0 || r1.BytesUploaded == 0 {
				t.Fatalf("first checkpoint: %+v", r1)
			}
			oldSSTs, _ := sstSizes(t, dir)
			if err := testpebble.Churn(v, dir, spec, 0.05, 7); err != nil {
				t.Fatal(err)
			}
			want2, _ := testpebble.Digest(dir)
			newSSTs, private := sstSizes(t, dir)
			var newBytes int64
			for n, sz := range newSSTs {
				if _, ok := oldSSTs[n]; !ok {
					newBytes += sz
				}
			}
			r2 := take(t, b, job, dir, checkpoint.Options{})
			if r2.CheckpointID != 2 || r2.Kind != metadata.KindIncremental || r2.BaseID != 1 {
				t.Fatalf("second checkpoint: %+v", r2)
			}
			if r2.BytesUploaded > newBytes+private {
				t.Fatalf("incremental uploaded %d bytes; new sstables %d + private files %d = %d", r2.BytesUploaded, newBytes, private, newBytes+private)
			}
			if r2.FilesReused == 0 {
				t.Fatalf("incremental reused nothing: %+v", r2)
			}
			t.Logf("full %d B; after 5%% churn uploaded %d B (new ssts %d B + private %d B), reused %d B",
				r1.BytesUploaded, r2.BytesUploaded, newBytes, private, r2.BytesReused)
			for id, want := range map[uint64]string{1: want1, 2: want2} {
				if _, err := testutil.VerifyCheckpoint(ctx, b, job, id); err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "restored")
				if err := testutil.Materialize(ctx, b, job, id, "default", out); err != nil {
					t.Fatal(err)
				}
				got, err := testpebble.Digest(out)
				if err != nil {
					t.Fatalf("chk-%d does not open as a Pebble store: %v", id, err)
				}
				if got != want {
					t.Fatalf("chk-%d holds %s, source had %s", id, got, want)
				}
			}
		})
	}
}

// Two histories forked from the same store reuse Pebble file numbers for
// different content; their checkpoints in one job must never share or
// overwrite each other's objects.
func TestDivergentHistoriesNeverCollide(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "j"}
	a := newStore(t, testpebble.V2)
	take(t, b, job, a, checkpoint.Options{})
	fork := filepath.Join(t.TempDir(), "fork")
	if out, err := exec.Command("cp", "-r", a, fork).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := testpebble.Churn(testpebble.V2, a, spec, 0.05, 100); err != nil {
		t.Fatal(err)
	}
	if err := testpebble.Churn(testpebble.V2, fork, spec, 0.05, 200); err != nil {
		t.Fatal(err)
	}
	wantA, _ := testpebble.Digest(a)
	wantFork, _ := testpebble.Digest(fork)
	ra := take(t, b, job, a, checkpoint.Options{})
	rf := take(t, b, job, fork, checkpoint.Options{})
	ca, err := testutil.VerifyCheckpoint(ctx, b, job, ra.CheckpointID)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := testutil.VerifyCheckpoint(ctx, b, job, rf.CheckpointID)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]metadata.File{}
	for _, f := range ca.Stores[0].Files {
		byName[f.Name] = f
	}
	sameName := 0
	for _, f := range cf.Stores[0].Files {
		g, ok := byName[f.Name]
		if !ok || !strings.HasSuffix(f.Name, ".sst") {
			continue
		}
		sameName++
		if g.SHA256 != f.SHA256 && metadataKey(job, ra.CheckpointID, g.Path) == metadataKey(job, rf.CheckpointID, f.Path) {
			t.Fatalf("%s: different content stored under one object %s", f.Name, g.Path)
		}
	}
	if sameName == 0 {
		t.Fatal("the histories share no table name; the test proves nothing")
	}
	for id, want := range map[uint64]string{ra.CheckpointID: wantA, rf.CheckpointID: wantFork} {
		out := filepath.Join(t.TempDir(), "r")
		if err := testutil.Materialize(ctx, b, job, id, "default", out); err != nil {
			t.Fatal(err)
		}
		if got, _ := testpebble.Digest(out); got != want {
			t.Fatalf("chk-%d: %s, want %s", id, got, want)
		}
	}
}

func metadataKey(job metadata.Job, id uint64, p string) string {
	k, _ := metadata.Resolve(job.CheckpointDir(id), p)
	return k
}

func TestConcurrentCreatorsGetDistinctIDs(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "j"}
	dirs := []string{newStore(t, testpebble.V2), newStore(t, testpebble.V2), newStore(t, testpebble.V2), newStore(t, testpebble.V2)}
	var wg sync.WaitGroup
	ids := make([]uint64, len(dirs))
	errs := make([]error, len(dirs))
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := checkpoint.OpenDir("default", d)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			r, err := checkpoint.Create(ctx, b, job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock})
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = r.CheckpointID
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, id := range ids {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[id] {
			t.Fatalf("two creators committed id %d", id)
		}
		seen[id] = true
		if _, err := testutil.VerifyCheckpoint(ctx, b, job, id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCorruptBaseRefusedUnlessFull(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "j"}
	dir := newStore(t, testpebble.V2)
	take(t, b, job, dir, checkpoint.Options{})
	data, _ := b.ReadAll(ctx, job.MetadataKey(1))
	data[len(data)/2] ^= 1
	if err := b.WriteAll(ctx, job.MetadataKey(1), data, nil); err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = checkpoint.Create(ctx, b, job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock})
	if !errors.Is(err, checkpoint.ErrBadBase) || !errors.Is(err, metadata.ErrCorrupt) {
		t.Fatalf("got %v, want ErrBadBase wrapping ErrCorrupt", err)
	}
	r, err := checkpoint.Create(ctx, b, job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	// The refusal comes before any reservation, so the next id is 2.
	if r.Kind != metadata.KindFull || r.CheckpointID != 2 {
		t.Fatalf("full after corrupt base: %+v", r)
	}
	if _, err := testutil.VerifyCheckpoint(ctx, b, job, r.CheckpointID); err != nil {
		t.Fatal(err)
	}
}

func TestNotAStoreAndMissingDir(t *testing.T) {
	empty := t.TempDir()
	if _, err := checkpoint.OpenDir("default", empty); !errors.Is(err, checkpoint.ErrNotStore) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := checkpoint.OpenDir("default", filepath.Join(empty, "nope")); !errors.Is(err, checkpoint.ErrNotStore) {
		t.Fatalf("missing dir: %v", err)
	}
	f := filepath.Join(empty, "file")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := checkpoint.OpenDir("default", f); !errors.Is(err, checkpoint.ErrNotStore) {
		t.Fatalf("file: %v", err)
	}
	if _, err := checkpoint.OpenDir("../x", empty); err == nil {
		t.Fatal("bad store name accepted")
	}
}

// A store held open by another process is refused with ErrStoreInUse.
func TestStoreInUseByAnotherProcess(t *testing.T) {
	if os.Getenv("CKPT_TEST_HOLD_STORE") != "" {
		db, err := pebble.Open(os.Getenv("CKPT_TEST_HOLD_STORE"), &pebble.Options{})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		fmt.Println("held")
		time.Sleep(time.Minute)
		db.Close()
		os.Exit(0)
	}
	dir := newStore(t, testpebble.V2)
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreInUseByAnotherProcess$")
	cmd.Env = append(os.Environ(), "CKPT_TEST_HOLD_STORE="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf[:4]) != "held" {
		t.Fatalf("child did not open the store: %q %v", buf, err)
	}
	_, err = checkpoint.OpenDir("default", dir)
	if !errors.Is(err, checkpoint.ErrStoreInUse) {
		t.Fatalf("got %v, want ErrStoreInUse", err)
	}
}

// The Go API checkpoints a store this process holds open and writes to.
func TestFromLiveDB(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "live"}
	dir := filepath.Join(t.TempDir(), "db")
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLog{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < 5000; i++ {
		db.Set(testpebble.Key(i), []byte(fmt.Sprint(i)), pebble.NoSync)
	}
	db.Flush()
	db.Set([]byte("only-in-wal"), []byte("yes"), pebble.NoSync)
	for round := 1; round <= 2; round++ {
		s, err := checkpoint.FromDB(db, "default", filepath.Join(t.TempDir(), "scratch"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := checkpoint.Create(ctx, b, job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock})
		scratch := s.Dir
		if cerr := s.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(scratch); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("scratch dir left behind: %v", err)
		}
		out := filepath.Join(t.TempDir(), "r")
		if err := testutil.Materialize(ctx, b, job, r.CheckpointID, "default", out); err != nil {
			t.Fatal(err)
		}
		m, err := testpebble.Dump(out)
		if err != nil {
			t.Fatal(err)
		}
		if m["only-in-wal"] != "yes" || len(m) != 5001+round-1 {
			t.Fatalf("round %d: restored %d keys, only-in-wal=%q", round, len(m), m["only-in-wal"])
		}
		db.Set([]byte("round2"), []byte("x"), pebble.Sync)
	}
}

func TestLocalCopy(t *testing.T) {
	b := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "j"}
	dir := newStore(t, testpebble.V2)
	local := filepath.Join(t.TempDir(), "local")
	r1 := take(t, b, job, dir, checkpoint.Options{LocalDir: local})
	if r1.LocalCopy != filepath.Join(local, "chk-1") || len(r1.Warnings) != 0 {
		t.Fatalf("%+v", r1)
	}
	testpebble.Churn(testpebble.V2, dir, spec, 0.05, 3)
	r2 := take(t, b, job, dir, checkpoint.Options{LocalDir: local})
	ents, _ := os.ReadDir(local)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[chk-2]" {
		t.Fatalf("local dir holds %v, want only chk-2", names)
	}
	want, _ := testpebble.Digest(dir)
	got, err := testpebble.Digest(filepath.Join(r2.LocalCopy, "default"))
	if err != nil || got != want {
		t.Fatalf("local copy: %s %v, want %s", got, err, want)
	}
	// Tables are hard links of the source's.
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	src, _ := os.Stat(ssts[0])
	dst, err := os.Stat(filepath.Join(r2.LocalCopy, "default", filepath.Base(ssts[0])))
	if err != nil || !os.SameFile(src, dst) {
		t.Fatalf("table not hard-linked: %v", err)
	}
	// A local copy that cannot be written only warns.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o644)
	r3 := take(t, b, job, dir, checkpoint.Options{LocalDir: blocker})
	if len(r3.Warnings) != 1 || r3.LocalCopy != "" {
		t.Fatalf("%+v", r3)
	}
}

// Crash test: the creator dies at every storage operation of a run; the job
// then holds only complete checkpoints that verify, and a re-run succeeds.
func TestCrashAtEveryOperation(t *testing.T) {
	ctx := context.Background()
	small := testpebble.Spec{Keys: 3000, ValueSize: 50, Seed: 5, UnflushedKeys: 10}
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, small); err != nil {
		t.Fatal(err)
	}
	job := metadata.Job{Prefix: "j"}
	// Count the operations of an undisturbed second checkpoint.
	count := func() int {
		inner := memblob.OpenBucket(nil)
		take(t, inner, job, dir, checkpoint.Options{})
		inj := &faultblob.Injector{}
		take(t, faultblob.Wrap(inner, inj), job, dir, checkpoint.Options{Full: true})
		return inj.Ops()
	}
	n := count()
	if n < 5 {
		t.Fatalf("only %d operations; the crash test would prove little", n)
	}
	for k := 1; k <= n; k++ {
		inner := memblob.OpenBucket(nil)
		take(t, inner, job, dir, checkpoint.Options{})
		inj := &faultblob.Injector{}
		inj.CrashAt(k)
		s, err := checkpoint.OpenDir("default", dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkpoint.Create(ctx, faultblob.Wrap(inner, inj), job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock, Full: true})
		s.Close()
		if err == nil && k < n {
			// Only the last operation (removing the reservation marker)
			// comes after the commit.
			t.Fatalf("crash at op %d/%d: create succeeded", k, n)
		}
		entries, lerr := metadata.ListJob(ctx, inner, job)
		if lerr != nil {
			t.Fatal(lerr)
		}
		for _, e := range entries {
			if e.Committed {
				if _, err := testutil.VerifyCheckpoint(ctx, inner, job, e.ID); err != nil {
					t.Fatalf("crash at op %d: %v", k, err)
				}
			}
		}
		r := take(t, inner, job, dir, checkpoint.Options{})
		if _, err := testutil.VerifyCheckpoint(ctx, inner, job, r.CheckpointID); err != nil {
			t.Fatalf("re-run after crash at op %d: %v", k, err)
		}
	}
	t.Logf("crashed create at each of %d storage operations", n)
}

func TestCancelledCreateCommitsNothing(t *testing.T) {
	b := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "j"}
	dir := newStore(t, testpebble.V2)
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := checkpoint.Create(ctx, b, job, []*checkpoint.Store{s}, checkpoint.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	ok, _ := b.Exists(context.Background(), job.MetadataKey(1))
	if ok {
		t.Fatal("a cancelled create committed")
	}
}

type quietLog struct{}

func (quietLog) Infof(string, ...interface{})      {}
func (quietLog) Errorf(string, ...interface{})     {}
func (quietLog) Fatalf(f string, a ...interface{}) { panic(fmt.Sprintf(f, a...)) }

// Writes still in the WAL (never flushed) are part of the checkpoint, for
// stores written by either Pebble line.
func TestUnflushedWritesAreCheckpointed(t *testing.T) {
	for _, v := range []testpebble.Version{testpebble.V2, testpebble.V1} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "db")
			if err := testpebble.Create(v, dir, testpebble.Spec{Keys: 4000, ValueSize: 64, Seed: 9, UnflushedKeys: 300}); err != nil {
				t.Fatal(err)
			}
			want, err := testpebble.Digest(dir)
			if err != nil {
				t.Fatal(err)
			}
			b := memblob.OpenBucket(nil)
			job := metadata.Job{Prefix: "j"}
			r := take(t, b, job, dir, checkpoint.Options{})
			out := filepath.Join(t.TempDir(), "r")
			if err := testutil.Materialize(ctx, b, job, r.CheckpointID, "default", out); err != nil {
				t.Fatal(err)
			}
			if got, err := testpebble.Digest(out); err != nil || got != want {
				t.Fatalf("restored %s (%v), want %s", got, err, want)
			}
		})
	}
}

// Ctrl-C at any storage operation: nothing is committed by the interrupted
// run, every committed checkpoint verifies, and a re-run works.
func TestInterruptAtEveryOperation(t *testing.T) {
	small := testpebble.Spec{Keys: 3000, ValueSize: 50, Seed: 6}
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, small); err != nil {
		t.Fatal(err)
	}
	job := metadata.Job{Prefix: "j"}
	for k := 1; ; k++ {
		inner := memblob.OpenBucket(nil)
		take(t, inner, job, dir, checkpoint.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		inj := &faultblob.Injector{}
		n := 0
		var mu sync.Mutex
		inj.FailMatching(func(faultblob.Op) error {
			mu.Lock()
			defer mu.Unlock()
			if n++; n == k {
				cancel()
			}
			return nil
		})
		s, err := checkpoint.OpenDir("default", dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkpoint.Create(ctx, faultblob.Wrap(inner, inj), job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock, Full: true})
		s.Close()
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupt at op %d: %v, want context.Canceled", k, err)
		}
		bg := context.Background()
		entries, _ := metadata.ListJob(bg, inner, job)
		for _, e := range entries {
			if e.Committed {
				if _, err := testutil.VerifyCheckpoint(bg, inner, job, e.ID); err != nil {
					t.Fatalf("interrupt at op %d: %v", k, err)
				}
			}
		}
		r := take(t, inner, job, dir, checkpoint.Options{})
		if _, err := testutil.VerifyCheckpoint(bg, inner, job, r.CheckpointID); err != nil {
			t.Fatal(err)
		}
		if k > n {
			t.Logf("interrupted create at each of %d storage operations", n)
			return
		}
	}
}

// A store restored with claim into another job references the source's
// shared files in place and marks the source job; without claim it is
// checkpointed in full and references nothing of the source.
func TestClaimAndNoClaim(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	a := metadata.Job{Prefix: "jobs/a"}
	dir := newStore(t, testpebble.V2)
	ra := take(t, b, a, dir, checkpoint.Options{})
	for _, claim := range []bool{true, false} {
		t.Run(fmt.Sprintf("claim=%v", claim), func(t *testing.T) {
			restored := filepath.Join(t.TempDir(), "r")
			if err := testutil.Materialize(ctx, b, a, ra.CheckpointID, "default", restored); err != nil {
				t.Fatal(err)
			}
			jb := metadata.Job{Prefix: fmt.Sprintf("jobs/b-%v", claim)}
			origin := &checkpoint.OriginRef{Dir: a.CheckpointDir(ra.CheckpointID), JobID: "0123456789abcdef", CheckpointID: ra.CheckpointID, Claim: claim}
			r := take(t, b, jb, restored, checkpoint.Options{Origin: origin})
			c, err := testutil.VerifyCheckpoint(ctx, b, jb, r.CheckpointID)
			if err != nil {
				t.Fatal(err)
			}
			if c.Lineage == nil || c.Lineage.Path != "../../a/chk-1" || c.Lineage.Claim != claim {
				t.Fatalf("lineage: %+v", c.Lineage)
			}
			external := 0
			for _, f := range c.Stores[0].Files {
				if strings.HasPrefix(f.Path, "../../a/shared/") {
					external++
				}
			}
			markers, _ := b.List(&blob.ListOptions{Prefix: a.ReferrersDirKey()}).Next(ctx)
			if claim {
				if external == 0 || r.BytesUploaded >= ra.BytesUploaded/2 || markers == nil {
					t.Fatalf("claim: %d external files, uploaded %d of %d, marker %v", external, r.BytesUploaded, ra.BytesUploaded, markers)
				}
				data, _ := b.ReadAll(ctx, markers.Key)
				if !strings.Contains(string(data), `"path":"../b-true"`) {
					t.Fatalf("referrer marker: %s", data)
				}
			} else if external != 0 || r.FilesReused != 0 {
				t.Fatalf("no-claim referenced the source: %d external files, %+v", external, r)
			}
			b.Delete(ctx, markersKey(markers))
		})
	}
}

func markersKey(o *blob.ListObject) string {
	if o == nil {
		return "none"
	}
	return o.Key
}

// An object already at a shared name that the base does not vouch for (an
// orphan of a crashed creator, say) is never trusted: the file is written
// under a name unique to the new checkpoint.
func TestUnvouchedObjectIsNotReused(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "j"}
	dir := newStore(t, testpebble.V2)
	r1 := take(t, b, job, dir, checkpoint.Options{})
	c1, _ := testutil.VerifyCheckpoint(ctx, b, job, r1.CheckpointID)
	// Plant a corrupt object where a full checkpoint would write a table.
	var planted string
	for _, f := range c1.Stores[0].Files {
		if strings.HasSuffix(f.Name, ".sst") {
			planted, _ = metadata.Resolve(job.CheckpointDir(1), f.Path)
			b.WriteAll(ctx, planted, []byte("garbage"), nil)
			break
		}
	}
	r2 := take(t, b, job, dir, checkpoint.Options{Full: true})
	c2, err := testutil.VerifyCheckpoint(ctx, b, job, r2.CheckpointID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range c2.Stores[0].Files {
		if k, _ := metadata.Resolve(job.CheckpointDir(r2.CheckpointID), f.Path); k == planted {
			t.Fatalf("full checkpoint references the planted object %s", planted)
		}
	}
	if r2.FilesReused != 0 {
		t.Fatalf("--full reused files: %+v", r2)
	}
}

// A creator whose reservation vanished (collected by a gc that took it for
// dead) must not commit.
func TestReservationLostAbortsCommit(t *testing.T) {
	ctx := context.Background()
	inner := memblob.OpenBucket(nil)
	job := metadata.Job{Prefix: "j"}
	dir := newStore(t, testpebble.V2)
	inj := &faultblob.Injector{}
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == "write" && strings.HasSuffix(op.Key, ".sst") {
			inner.Delete(ctx, job.PendingKey(1))
		}
		return nil
	})
	s, err := checkpoint.OpenDir("default", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = checkpoint.Create(ctx, faultblob.Wrap(inner, inj), job, []*checkpoint.Store{s}, checkpoint.Options{})
	if !errors.Is(err, checkpoint.ErrReservationLost) {
		t.Fatalf("got %v, want ErrReservationLost", err)
	}
	if ok, _ := inner.Exists(ctx, job.MetadataKey(1)); ok {
		t.Fatal("committed without a reservation")
	}
}
