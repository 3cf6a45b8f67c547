package restore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// faultInjector fails the next n reads of store files (not of _metadata).
type faultInjector struct {
	inj  faultblob.Injector
	mu   sync.Mutex
	left int
}

func (fi *faultInjector) wrap(b *blob.Bucket) *blob.Bucket {
	fi.inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind != faultblob.KindRead || strings.HasSuffix(op.Key, metadata.MetadataName) {
			return nil
		}
		fi.mu.Lock()
		defer fi.mu.Unlock()
		if fi.left > 0 {
			fi.left--
			return errors.New("injected read failure")
		}
		return nil
	})
	return faultblob.Wrap(b, &fi.inj)
}

func (fi *faultInjector) failReads(n int) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.left = n
}

// Acceptance: a restore crashed (every storage call failing from the k-th
// on) or cancelled at every storage operation leaves the target absent or
// as it was, never partial, and no leftovers; a re-run succeeds.
func TestCrashAndCancelAtEveryOperation(t *testing.T) {
	f := newFixture(t, testpebble.V2, true)
	f.take(t)
	f.churn(t, 3)
	f.take(t)
	// Remove half of the local copy's sstables so that the restore takes
	// files from both places.
	ents, _ := filepath.Glob(filepath.Join(f.local, "chk-2", "default", "*.sst"))
	for i, e := range ents {
		if i%2 == 0 {
			os.Remove(e)
		}
	}
	for _, prev := range []bool{false, true} {
		for _, mode := range []string{"crash", "cancel"} {
			t.Run(fmt.Sprintf("previous=%v/%s", prev, mode), func(t *testing.T) {
				target := filepath.Join(t.TempDir(), "r")
				before := "absent"
				if prev {
					mustRestore(t, f, 1, restore.Options{Target: target})
					before = snapshot(t, target)
				}
				var k int
				for k = 1; ; k++ {
					if k > 1000 {
						t.Fatal("the restore never completes")
					}
					inj := &faultblob.Injector{}
					b := faultblob.Wrap(f.b, inj)
					ctx, cancel := context.WithCancel(context.Background())
					if mode == "crash" {
						inj.CrashAt(k)
					} else {
						inj.FailMatching(func(op faultblob.Op) error {
							if op.N == k {
								cancel()
							}
							return nil
						})
					}
					o := restore.Options{Target: target, LocalDir: f.local, Force: true, Retries: -1, Parallel: 3, Locate: locate}
					p, err := restore.NewPlan(ctx, b, f.job, 0, o)
					if err == nil {
						_, err = p.Execute(ctx, nil)
					}
					cancel()
					if err == nil {
						break
					}
					if mode == "cancel" && !errors.Is(err, context.Canceled) {
						t.Fatalf("k=%d: cancelled restore returned %v", k, err)
					}
					if got := snapshot(t, target); got != before {
						t.Fatalf("k=%d (%v): target changed:\n%s\nwas\n%s", k, err, got, before)
					}
					noLeftovers(t, target)
				}
				if k < 5 {
					t.Fatalf("only %d operations", k)
				}
				t.Logf("%d storage operations", k-1)
				noLeftovers(t, target)
				checkStoreDir(t, target, f.meta(t, 2), "default", f.digests[2]["default"])
			})
		}
	}
}

// A real crash: a child process restoring from slow storage is killed with
// SIGKILL while it writes; the target is untouched, and the next restore
// removes the leftover and succeeds.
func TestKilledRestore(t *testing.T) {
	if os.Getenv("CKPT_TEST_CHILD") == "restore" {
		childRestore(t)
		return
	}
	ctx := context.Background()
	loc, err := storage.Open(ctx, "file:///")
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	db := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, db, spec); err != nil {
		t.Fatal(err)
	}
	jobDir := filepath.Join(t.TempDir(), "job")
	job := metadata.Job{Prefix: strings.TrimPrefix(jobDir, "/")}
	s, err := checkpoint.OpenDir("default", db)
	if err != nil {
		t.Fatal(err)
	}
	_, err = checkpoint.Create(ctx, loc.Bucket, job, []*checkpoint.Store{s}, checkpoint.Options{Now: clock})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := testpebble.Digest(db)
	c, err := metadata.Read(ctx, loc.Bucket, job.MetadataKey(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, prev := range []bool{false, true} {
		t.Run(fmt.Sprintf("previous=%v", prev), func(t *testing.T) {
			parent := t.TempDir()
			target := filepath.Join(parent, "r")
			before := "absent"
			if prev {
				os.Mkdir(target, 0o755)
				os.WriteFile(filepath.Join(target, "old"), []byte("old"), 0o644)
				before = snapshot(t, target)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRestore$", "-test.count=1")
			cmd.Env = append(os.Environ(), "CKPT_TEST_CHILD=restore", "CKPT_TEST_JOB="+jobDir, "CKPT_TEST_TARGET="+target)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// Kill it once its working directory holds a few files.
			deadline := time.Now().Add(60 * time.Second)
			for {
				if time.Now().After(deadline) {
					t.Fatal("the child never got going")
				}
				tmps, _ := filepath.Glob(filepath.Join(parent, ".r.ckpt-restore-*"))
				if len(tmps) == 1 {
					if files, _ := os.ReadDir(tmps[0]); len(files) >= 3 {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			cmd.Process.Kill()
			cmd.Wait()
			if got := snapshot(t, target); got != before {
				t.Fatalf("a killed restore changed the target:\n%s", got)
			}
			tmps, _ := filepath.Glob(filepath.Join(parent, ".r.ckpt-restore-*"))
			if len(tmps) != 1 {
				t.Fatalf("expected the killed restore's working directory, found %v", tmps)
			}
			if _, _, err := run(t, loc.Bucket, job, 1, restore.Options{Target: target, Force: true}); err != nil {
				t.Fatal(err)
			}
			noLeftovers(t, target)
			checkStoreDir(t, target, c, "default", want)
		})
	}
}

func childRestore(t *testing.T) {
	ctx := context.Background()
	loc, err := storage.Open(ctx, "file:///")
	if err != nil {
		t.Fatal(err)
	}
	inj := &faultblob.Injector{}
	inj.FailMatching(func(op faultblob.Op) error {
		if op.Kind == faultblob.KindRead && !strings.HasSuffix(op.Key, metadata.MetadataName) {
			time.Sleep(200 * time.Millisecond)
		}
		return nil
	})
	b := faultblob.Wrap(loc.Bucket, inj)
	job := metadata.Job{Prefix: strings.TrimPrefix(os.Getenv("CKPT_TEST_JOB"), "/")}
	_, _, err = run(t, b, job, 1, restore.Options{Target: os.Getenv("CKPT_TEST_TARGET"), Force: true, Parallel: 1})
	t.Fatalf("the child restore was not killed: %v", err)
}

// An interrupted replacement (the old target renamed aside, the new one not
// yet in) is undone by the next restore before anything else.
func TestInterruptedReplacementIsUndone(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	f.take(t)
	target := filepath.Join(t.TempDir(), "r")
	os.Mkdir(target, 0o755)
	os.WriteFile(filepath.Join(target, "old"), []byte("old"), 0o644)
	before := snapshot(t, target)
	aside := restore.SiblingName(target, "old")
	if err := os.Rename(target, aside); err != nil {
		t.Fatal(err)
	}
	stale := restore.SiblingName(target, "restore")
	os.Mkdir(stale, 0o700)
	os.WriteFile(filepath.Join(stale, "000001.sst"), []byte("partial"), 0o644)

	// Without --force: the old contents come back and the restore refuses
	// to replace them.
	p, err := restore.NewPlan(context.Background(), f.b, f.job, 1, restore.Options{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if p.Interrupted != aside {
		t.Fatalf("plan does not see the interrupted replacement: %q", p.Interrupted)
	}
	_, err = p.Execute(context.Background(), nil)
	if !errors.Is(err, restore.ErrTargetNotEmpty) {
		t.Fatalf("%v", err)
	}
	if got := snapshot(t, target); got != before {
		t.Fatalf("old contents not put back:\n%s", got)
	}
	noLeftovers(t, target)

	// With --force, and a filesystem without an atomic exchange.
	os.Rename(target, aside)
	o := restore.Options{Target: target, Force: true}
	restore.NoExchange(&o)
	_, r, err := f.restore(t, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "put back") {
		t.Fatalf("%q", r.Warnings)
	}
	noLeftovers(t, target)
	checkStoreDir(t, target, f.meta(t, 1), "default", f.digests[1]["default"])
}

// A restore running into the same target makes another one refuse.
func TestConcurrentRestoreRefused(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	f.take(t)
	target := filepath.Join(t.TempDir(), "r")
	busy := restore.SiblingName(target, "restore")
	os.Mkdir(busy, 0o700)
	fd, err := unix.Open(busy, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Flock(fd, unix.LOCK_EX)
	_, _, err = f.restore(t, 1, restore.Options{Target: target})
	if !errors.Is(err, restore.ErrBusy) || !errors.Is(err, storage.ErrExists) {
		t.Fatalf("%v", err)
	}
	if _, err := os.Lstat(busy); err != nil {
		t.Fatal("the running restore's directory was removed")
	}
	unix.Close(fd)
	mustRestore(t, f, 1, restore.Options{Target: target})
	noLeftovers(t, target)
}

// A target store that another process has open is never replaced.
func TestTargetInUse(t *testing.T) {
	if p := os.Getenv("CKPT_TEST_HOLD_LOCK"); p != "" {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			t.Fatal(err)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		return
	}
	f := newFixture(t, testpebble.V2, false)
	f.take(t)
	target := filepath.Join(t.TempDir(), "r")
	mustRestore(t, f, 1, restore.Options{Target: target})
	os.WriteFile(filepath.Join(target, "LOCK"), nil, 0o644)
	before := snapshot(t, target)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTargetInUse$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CKPT_TEST_HOLD_LOCK="+filepath.Join(target, "LOCK"))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("child: %q", line)
	}
	_, _, err := f.restore(t, 1, restore.Options{Target: target, Force: true})
	if !errors.Is(err, restore.ErrTargetInUse) || !errors.Is(err, storage.ErrExists) {
		t.Fatalf("%v", err)
	}
	if got := snapshot(t, target); got != before {
		t.Fatal("target changed")
	}
	noLeftovers(t, target)
}

func TestPlanExecutesOnce(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	f.take(t)
	p, err := restore.NewPlan(context.Background(), f.b, f.job, 1, restore.Options{Target: filepath.Join(t.TempDir(), "r")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Execute(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Execute(context.Background(), nil); err == nil {
		t.Fatal("a plan executed twice")
	}
}
