package proctest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// killRun is one command to kill, prepared at a fresh location.
type killRun struct {
	args     []string
	progress func() int // work done so far, as in sigRun
	total    int
	// check runs after the kill and returns the checkpoints it verified.
	check func(t *testing.T) int
	// rerun runs the command again and checks that it converged.
	rerun func(t *testing.T)
	// dirs are searched for temporary files the kill left.
	dirs []string
}

type backend struct {
	name string
	url  func(elem string) string // a fresh location
	dir  func(elem string) string // its local directory, "" if not local
}

func killBackends(t *testing.T) []backend {
	base := t.TempDir()
	bs := []backend{{
		name: "file",
		url:  func(e string) string { return fileURL(filepath.Join(base, e)) },
		dir:  func(e string) string { return filepath.Join(base, e) },
	}}
	if u := os.Getenv(storagetest.EnvS3); u != "" {
		s3 := storagetest.Backend{Name: "s3", URL: u}.Sub(fmt.Sprintf("ckpt-proctest-%d-%d", time.Now().UnixNano(), os.Getpid()))
		bs = append(bs, backend{
			name: "s3",
			url:  func(e string) string { return s3.Sub(e).URL },
			dir:  func(string) string { return "" },
		})
		t.Cleanup(func() {
			loc := openLoc(t, s3.URL)
			for _, k := range keys(t, loc) {
				loc.Bucket.Delete(context.Background(), loc.Prefix+"/"+k)
			}
		})
	} else {
		t.Logf("%s not set; killing against local files only", storagetest.EnvS3)
	}
	return bs
}

// copyObjects copies every object of from to the same relative keys under
// to: a plain copy of a job is a valid job.
func copyObjects(t testing.TB, from, to *storage.Location) {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys(t, from) {
		data, err := from.Bucket.ReadAll(ctx, from.Prefix+"/"+k)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.Bucket.WriteAll(ctx, strings.TrimPrefix(to.Prefix+"/"+k, "/"), data, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func killCases(t *testing.T) map[string]func(t *testing.T, b backend, i int) *killRun {
	db, job := fixture(t)
	jobLoc := openLoc(t, fileURL(job))
	jobObjects := count(jobLoc)
	latest := filepath.Join(job, "chk-4")
	latestFiles := fileCount(t, jobLoc, 4)
	ref := filepath.Join(t.TempDir(), "ref")
	cloneDir(t, job, ref)
	ckpt(t, 0, "gc", ref, "--retain", "1", "--min-age", "0s", "--yes", "-q")
	wantGC := keys(t, openLoc(t, fileURL(ref)))

	return map[string]func(t *testing.T, b backend, i int) *killRun{
		"create": func(t *testing.T, b backend, i int) *killRun {
			name := "create-" + strconv.Itoa(i)
			dst := b.url(name)
			local := filepath.Join(t.TempDir(), "local")
			loc := openLoc(t, dst)
			return &killRun{
				args:     []string{"create", "--db", db, "--to", dst, "--local-dir", local, "--parallel", "2"},
				progress: func() int { return count(loc) },
				total:    latestFiles,
				dirs:     []string{b.dir(name), local},
				check:    func(t *testing.T) int { return verifyAll(t, loc) },
				rerun: func(t *testing.T) {
					before := verifyAll(t, loc)
					ckpt(t, 0, "create", "--db", db, "--to", dst, "--local-dir", local, "-q")
					if verifyAll(t, loc) != before+1 {
						t.Fatal("the next create did not commit")
					}
					if left := tempFiles(local); len(left) > 0 {
						t.Fatalf("the next create left the killed one's local copy: %v", left)
					}
				},
			}
		},
		"gc": func(t *testing.T, b backend, i int) *killRun {
			name := "gc-" + strconv.Itoa(i)
			dst := b.url(name)
			loc := openLoc(t, dst)
			copyObjects(t, jobLoc, loc)
			return &killRun{
				args:     []string{"gc", dst, "--retain", "1", "--min-age", "0s", "--yes", "--parallel", "2"},
				progress: func() int { return jobObjects - count(loc) },
				total:    jobObjects - len(wantGC),
				dirs:     []string{b.dir(name)},
				check: func(t *testing.T) int {
					n := verifyAll(t, loc)
					if n == 0 {
						t.Fatal("the killed gc left no checkpoint")
					}
					return n
				},
				rerun: func(t *testing.T) {
					ckpt(t, 0, "gc", dst, "--retain", "1", "--min-age", "0s", "--yes", "-q")
					if got := keys(t, loc); !slices.Equal(got, wantGC) {
						t.Fatalf("after the re-run:\n%s\nan uninterrupted gc leaves:\n%s", strings.Join(got, "\n"), strings.Join(wantGC, "\n"))
					}
				},
			}
		},
		"relocate": func(t *testing.T, b backend, i int) *killRun {
			name := "relocate-" + strconv.Itoa(i)
			dst := b.url(name)
			loc := openLoc(t, dst)
			return &killRun{
				args:     []string{"relocate", latest, dst, "--parallel", "2"},
				progress: func() int { return count(loc) },
				total:    latestFiles,
				dirs:     []string{b.dir(name)},
				check:    func(t *testing.T) int { return verifyAll(t, loc) + verifyAll(t, jobLoc) },
				rerun: func(t *testing.T) {
					ckpt(t, 0, "relocate", latest, dst, "-q")
					if verifyAll(t, loc) != 1 {
						t.Fatal("the re-run did not leave one relocated checkpoint that verifies")
					}
				},
			}
		},
	}
}

// killRounds is how many times each command is killed per backend
// (CKPT_KILL_ROUNDS overrides).
func killRounds() int {
	if n, err := strconv.Atoi(os.Getenv("CKPT_KILL_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// Acceptance (issue #8, item 2): ckpt create, gc and relocate killed with
// SIGKILL at random moments (seeded; CKPT_KILL_SEED replays a run) on local
// files and, with CKPT_TEST_S3_URL, on S3: every `_metadata` present still
// verifies, and a re-run converges (create: the next create commits; gc: the
// same objects remain as after an uninterrupted gc; relocate: it completes
// and the destination verifies).
func TestKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ckpt and a Pebble store")
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CKPT_KILL_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("CKPT_KILL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	cases := killCases(t)
	for _, b := range killBackends(t) {
		for _, name := range []string{"create", "gc", "relocate"} {
			t.Run(b.name+"/"+name, func(t *testing.T) {
				var kills, finished, verified, tmpLeft int
				for i := 0; i < killRounds(); i++ {
					r := cases[name](t, b, i)
					at := rng.IntN(r.total + 1)
					jitter := time.Duration(rng.IntN(20)) * time.Millisecond
					p := start(t, opDelay, nil, r.args...)
					if !p.waitReady() {
						t.Fatalf("ckpt never got going: %s", p)
					}
					waitFor(p, func() bool { return r.progress() >= at })
					time.Sleep(jitter)
					if p.signal(syscall.SIGKILL) {
						kills++
					} else {
						finished++
					}
					p.wait(time.Minute)
					tmpLeft += len(tempFiles(r.dirs...))
					verified += r.check(t)
					r.rerun(t)
					t.Logf("round %d: killed after %d of %d (+%v)", i, at, r.total, jitter)
				}
				t.Logf("reliability: kill backend=%s command=%s kills=%d finished_first=%d verified=%d broken=0 tmp_left=%d", b.name, name, kills, finished, verified, tmpLeft)
			})
		}
	}
}
