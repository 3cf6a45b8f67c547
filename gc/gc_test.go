package gc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

func TestPolicyRefusals(t *testing.T) {
	w := newWorld(t)
	w.store("s", 2000, 1)
	w.create(w.b, "a", "s")
	for _, opts := range []gc.Options{
		{Policy: gc.Policy{Retain: -1}},
		{Policy: gc.Policy{KeepWithin: -time.Hour}},
		{MinAge: -time.Second},
		{LocalDir: t.TempDir()}, // with two jobs
	} {
		jobs := []string{"a"}
		if opts.LocalDir != "" {
			jobs = []string{"a", "b"}
		}
		if _, _, err := w.gc(w.b, jobs, opts, true); !errors.Is(err, gc.ErrBadPolicy) {
			t.Fatalf("%+v: got %v, want ErrBadPolicy", opts, err)
		}
	}
	if _, _, err := w.gc(w.b, []string{"nothing-here"}, gc.Options{}, true); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("not a job: %v", err)
	}
}

// Random sequences of create / churn / restore-with-claim / crash / gc:
// after each gc every kept checkpoint of every job verifies and restores to
// the right data, and no unreachable object older than min-age remains.
func TestPropertyRandomHistories(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			w := newWorld(t)
			w.store("s0", 2000, uint64(seed))
			jobs := []string{"j0"}
			storeOf := map[string]string{"j0": "s0"}
			committed := map[string][]uint64{}
			for step := 0; step < 25; step++ {
				job := jobs[rng.IntN(len(jobs))]
				switch op := rng.IntN(10); {
				case op < 4:
					w.churn(storeOf[job], 0.05, rng.Uint64())
					r, err := w.create(w.b, job, storeOf[job])
					if err != nil {
						t.Fatal(err)
					}
					committed[job] = append(committed[job], r.CheckpointID)
				case op < 5 && len(jobs) < 4 && len(committed[job]) > 0:
					ids := committed[job]
					src := ids[len(ids)-1]
					nj := fmt.Sprintf("j%d", len(jobs))
					ns := "s" + nj[1:]
					if _, err := metadata.Read(w.ctx, w.b, metadata.Job{Prefix: job}.MetadataKey(src)); err != nil {
						continue // expired meanwhile
					}
					w.restore(job, src, ns, rng.IntN(2) == 0)
					jobs = append(jobs, nj)
					storeOf[nj] = ns
				case op < 6:
					w.crashCreate(job, storeOf[job], 1+rng.IntN(12))
				case op < 7:
					w.offset += time.Duration(rng.IntN(5)) * time.Hour
				default:
					named := []string{job}
					if rng.IntN(3) == 0 {
						named = jobs
					}
					var hasAny bool
					for _, j := range named {
						hasAny = hasAny || len(committed[j]) > 0
					}
					if !hasAny {
						continue
					}
					opts := gc.Options{Policy: gc.Policy{Retain: 1 + rng.IntN(3)}, MinAge: 6 * time.Hour}
					_, _, err := w.gc(w.b, withCheckpoints(named, committed), opts, false)
					if err != nil {
						t.Fatalf("step %d: gc %v: %v", step, named, err)
					}
					if got := w.check(opts.MinAge); strings.Contains(got, "BROKEN") || strings.Contains(got, "WRONG") {
						t.Fatalf("step %d: after gc of %v:\n%s", step, named, got)
					}
				}
			}
			// Finally let everything age and collect every job: no
			// garbage may remain.
			w.offset += 7 * time.Hour
			if _, _, err := w.gc(w.b, withCheckpoints(jobs, committed), gc.Options{Policy: gc.Policy{Retain: 2}, MinAge: 6 * time.Hour}, false); err != nil {
				t.Fatal(err)
			}
			got := w.check(6 * time.Hour)
			if strings.Contains(got, "BROKEN") || strings.Contains(got, "WRONG") || strings.Contains(got, "unreachable") {
				t.Fatalf("final state:\n%s", got)
			}
			t.Log(got)
		})
	}
}

func withCheckpoints(jobs []string, committed map[string][]uint64) []string {
	var out []string
	for _, j := range jobs {
		if len(committed[j]) > 0 {
			out = append(out, j)
		}
	}
	return out
}

// scenario builds a world with expired checkpoints, orphans, a stale
// incomplete directory and a cross-job reference, aged past min-age.
func scenario(t *testing.T) *world {
	w := newWorld(t)
	w.store("s1", 2000, 1)
	for i := 0; i < 4; i++ {
		if i > 0 {
			w.churn("s1", 0.05, uint64(i))
		}
		if _, err := w.create(w.b, "a", "s1"); err != nil {
			t.Fatal(err)
		}
	}
	w.restore("a", 2, "s2", true)
	if _, err := w.create(w.b, "b", "s2"); err != nil {
		t.Fatal(err)
	}
	w.churn("s1", 0.05, 9)
	w.crashCreate("a", "s1", 8)
	return w
}

func keySet(w *world) string {
	keys := w.allKeys()
	var out []string
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// clone copies w's bucket into a new world whose objects are all older than
// min-age, so that runs on clones of one scenario start from the same state.
func clone(t *testing.T, w *world) *world {
	c := newWorld(t)
	for k := range w.allKeys() {
		data, err := w.b.ReadAll(w.ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.b.WriteAll(c.ctx, k, data, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.base = time.Now()
	c.offset = 7 * time.Hour
	c.digests = w.digests
	return c
}

// Crash test: gc dies at every storage operation of a run; no kept
// checkpoint is ever broken in between, and a re-run reaches the same end
// state as an uninterrupted run.
func TestCrashAtEveryOperation(t *testing.T) {
	opts := gc.Options{Policy: gc.Policy{Retain: 1}, MinAge: 6 * time.Hour}
	tmpl := scenario(t)
	ref := clone(t, tmpl)
	inj := &faultblob.Injector{}
	if _, _, err := ref.gc(faultblob.Wrap(ref.b, inj), []string{"a"}, opts, false); err != nil {
		t.Fatal(err)
	}
	n := inj.Ops()
	want := keySet(ref)
	if want == keySet(tmpl) {
		t.Fatal("the uninterrupted gc deleted nothing; the test would prove nothing")
	}
	for k := 1; k <= n; k++ {
		w := clone(t, tmpl)
		inj := &faultblob.Injector{}
		inj.CrashAt(k)
		if _, _, err := w.gc(faultblob.Wrap(w.b, inj), []string{"a"}, opts, false); err == nil && k < n {
			t.Fatalf("crash at op %d/%d went unnoticed", k, n)
		}
		if got := w.check(0); strings.Contains(got, "BROKEN") || strings.Contains(got, "WRONG") {
			t.Fatalf("crash at op %d/%d broke a checkpoint:\n%s", k, n, got)
		}
		if _, _, err := w.gc(w.b, []string{"a"}, opts, false); err != nil {
			t.Fatalf("re-run after crash at op %d: %v", k, err)
		}
		if got := keySet(w); got != want {
			t.Fatalf("crash at op %d/%d: end state differs from an uninterrupted run:\n%s\nwant:\n%s", k, n, got, want)
		}
	}
	t.Logf("crashed gc at each of %d storage operations", n)
}

// Concurrency: creators and gc run at the same time on one job, hundreds of
// rounds; no committed checkpoint is ever broken.
func TestConcurrentCreateAndGC(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 60
	}
	w := newWorld(t)
	w.store("s1", 1500, 1)
	// s2 is a fork of s1: the two histories share most tables, so that
	// each creator's base (often the other's checkpoint) has files it
	// reuses, and files gc deletes when that base expires.
	fork := filepath.Join(t.TempDir(), "s2")
	if out, err := exec.Command("cp", "-r", w.stores["s1"].dir, fork).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	w.stores["s2"] = &storeState{dir: fork, spec: w.stores["s1"].spec}
	if _, err := w.create(w.b, "a", "s1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex // the world's digest map
	var created, gcs, lost, deleted int
	errc := make(chan error, 4)
	for _, s := range []string{"s1", "s2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds/2 && ctx.Err() == nil; i++ {
				mu.Lock()
				w.churn(s, 0.05, uint64(i))
				mu.Unlock()
				src, err := openStore(w, s)
				if err != nil {
					errc <- err
					return
				}
				_, err = createWith(w, src, &mu)
				src.Close()
				if errors.Is(err, checkpoint.ErrReservationLost) {
					// Stalled longer than min-age: gc collected the
					// reservation, and the creator correctly refused.
					mu.Lock()
					lost++
					mu.Unlock()
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			// A min-age far below a real one, so that the files of expired
			// checkpoints are old enough to delete while creators run.
			plan, err := gc.NewPlan(ctx, w.b, []metadata.Job{{Prefix: "a"}}, gc.Options{Policy: gc.Policy{Retain: 1}, MinAge: 300 * time.Millisecond})
			if err == nil {
				var r gc.Result
				r, err = plan.Execute(ctx, nil)
				mu.Lock()
				deleted += r.FilesDeleted
				mu.Unlock()
			}
			if err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("gc: %w", err)
				return
			}
			mu.Lock()
			gcs++
			mu.Unlock()
		}
	}()
	done := make(chan struct{})
	go func() {
		for {
			mu.Lock()
			c := created
			mu.Unlock()
			if c+lost >= rounds-1 {
				break
			}
			select {
			case err := <-errc:
				t.Error(err)
				cancel()
				close(done)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel()
		close(done)
	}()
	<-done
	wg.Wait()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	default:
	}
	// Every committed checkpoint left verifies.
	if got := w.check(time.Hour); strings.Contains(got, "BROKEN") || strings.Contains(got, "WRONG") {
		t.Fatalf("after %d creates and %d gc runs:\n%s", created, gcs, got)
	}
	if deleted == 0 {
		t.Fatal("gc never deleted a shared file: the race was not exercised")
	}
	t.Logf("%d creates (%d refused after losing their reservation) and %d gc runs concurrently, %d objects deleted; no broken checkpoint", created, lost, gcs, deleted)
}

func TestLocalCopiesPruned(t *testing.T) {
	w := newWorld(t)
	w.store("s1", 2000, 1)
	local := t.TempDir()
	for i := 1; i <= 3; i++ {
		os.MkdirAll(filepath.Join(local, fmt.Sprintf("chk-%d", i)), 0o755)
		if i > 1 {
			w.churn("s1", 0.05, uint64(i))
		}
		w.create(w.b, "a", "s1")
	}
	os.WriteFile(filepath.Join(local, "unrelated"), nil, 0o644)
	if _, _, err := w.gc(w.b, []string{"a"}, gc.Options{Policy: gc.Policy{Retain: 2}, LocalDir: local}, false); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(local)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[chk-2 chk-3 unrelated]" {
		t.Fatalf("local dir after gc: %v", names)
	}
}

// The concurrent-writer protocol, interleaved deterministically: creator A
// builds on its own previous checkpoint; at a chosen storage operation of
// A, another creator commits a newer checkpoint and gc (retain 1) runs to
// completion, expiring A's base. A's checkpoint must still verify, whether
// gc ran before A's reservation was visible (A must notice its base is gone
// and reuse nothing) or after (gc must keep what the reservation names).
func TestGCDuringCreateInterleaved(t *testing.T) {
	const minAge = 250 * time.Millisecond
	for _, when := range []string{"while-listing", "before-reservation", "after-reservation", "during-uploads", "before-commit"} {
		t.Run(when, func(t *testing.T) {
			w := newWorld(t)
			// s2 shares no file with s1: everything A's base holds is
			// exclusive to it, and gc deletes it unless protected.
			w.store("s1", 30000, 1)
			w.store("s2", 3000, 2)
			if _, err := w.create(w.b, "a", "s1"); err != nil { // A's base: s1's own files
				t.Fatal(err)
			}
			w.churn("s2", 0.2, 22)
			w.churn("s1", 0.02, 33)
			// Let everything written so far age past min-age (real time:
			// A's own objects must look young to gc).
			time.Sleep(2 * minAge)
			fired, reserved, reused := false, false, 0
			defer func() {
				t.Logf("A reused %d files", reused)
			}()
			inj := &faultblob.Injector{}
			inj.FailMatching(func(op faultblob.Op) error {
				if op.Kind == "write" && strings.HasSuffix(op.Key, "/_pending") {
					reserved = true
				}
				hit := false
				switch when {
				case "while-listing":
					hit = op.Kind == "read"
				case "before-reservation":
					hit = op.Kind == "write" && strings.HasSuffix(op.Key, "/_pending")
				case "after-reservation":
					hit = reserved && op.Kind == "attrs"
				case "during-uploads":
					hit = op.Kind == "write" && strings.Contains(op.Key, "/shared/")
				case "before-commit":
					hit = op.Kind == "write" && strings.HasSuffix(op.Key, "/_metadata")
				}
				if !hit || fired {
					return nil
				}
				fired = true
				if _, err := w.create(w.b, "a", "s2"); err != nil {
					t.Error(err)
				}
				if _, _, err := w.gc(w.b, []string{"a"}, gc.Options{Policy: gc.Policy{Retain: 1}, MinAge: minAge}, false); err != nil {
					t.Error(err)
				}
				return nil
			})
			r, err := w.create(faultblob.Wrap(w.b, inj), "a", "s1")
			if !fired {
				t.Fatal("the interleaving point was never reached")
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.CheckpointID == 0 {
				t.Fatal("no checkpoint")
			}
			reused = r.FilesReused
			if got := w.check(time.Hour); strings.Contains(got, "BROKEN") || strings.Contains(got, "WRONG") {
				t.Fatalf("A committed chk-%d (%s) that is broken:\n%s", r.CheckpointID, r.Kind, got)
			}
		})
	}
}

// If deleting an expired checkpoint's _metadata fails, the checkpoint still
// exists: none of its files may be deleted in that run.
func TestFailedMetadataDeleteKeepsCheckpoint(t *testing.T) {
	w := newWorld(t)
	w.store("s1", 20000, 1)
	for i := 0; i < 3; i++ {
		if i > 0 {
			w.churn("s1", 0.05, uint64(i))
		}
		if _, err := w.create(w.b, "a", "s1"); err != nil {
			t.Fatal(err)
		}
	}
	w.offset = 7 * time.Hour
	inj := &faultblob.Injector{}
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == faultblob.KindDelete && op.Key == "a/chk-1/_metadata" {
			return errors.New("injected: permission denied")
		}
		return nil
	})
	r, _, err := w.gc(faultblob.Wrap(w.b, inj), []string{"a"}, gc.Options{Policy: gc.Policy{Retain: 1}, MinAge: time.Hour}, false)
	if !errors.Is(err, gc.ErrPartial) || len(r.Failed) != 1 {
		t.Fatalf("got %v, failed %v", err, r.Failed)
	}
	if got := w.check(time.Hour); strings.Contains(got, "BROKEN") || strings.Contains(got, "WRONG") {
		t.Fatalf("a checkpoint gc could not expire was broken:\n%s", got)
	}
	// The next run finishes the job.
	if _, _, err := w.gc(w.b, []string{"a"}, gc.Options{Policy: gc.Policy{Retain: 1}, MinAge: time.Hour}, false); err != nil {
		t.Fatal(err)
	}
	if got := w.check(time.Hour); !strings.HasPrefix(got, "1 checkpoints verified") || strings.Contains(got, "unreachable") {
		t.Fatalf("after the re-run:\n%s", got)
	}
}
