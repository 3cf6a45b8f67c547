package proctest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
)

// opDelay slows every storage operation of an interrupted command.
const opDelay = 15 * time.Millisecond

// stopBound is how soon after the signal an interrupted command must exit.
const stopBound = 5 * time.Second

// sigRun is one command to interrupt, prepared in fresh directories.
type sigRun struct {
	args []string
	env  []string
	// progress measures the work done so far (objects written, deleted,
	// files restored); total is its value at the end of an uninterrupted
	// run. A nil progress makes the moments times after the start.
	progress func() int
	total    int
	// dirs are searched for temporary files after the run.
	dirs []string
	// check runs after the interrupted command: storage is consistent, the
	// target absent, old or complete. It returns the checkpoints verified.
	check func(t *testing.T) int
	// rerun runs the command again to completion and checks the result.
	rerun func(t *testing.T)
}

type sigCase struct {
	name  string
	setup func(t *testing.T) *sigRun
	// times are the moments for commands without observable progress.
	times []time.Duration
}

// A moment is a fraction of the command's progress (0: as soon as it handles
// signals),
// or for a command without observable progress a time after that.
var moments = []float64{0, 0.3, 0.7}

func sigCases(t *testing.T) []sigCase {
	db, job := fixture(t)
	jobLoc := openLoc(t, fileURL(job))
	jobObjects := count(jobLoc)
	latest := filepath.Join(job, "chk-4")
	want := digest(t, db)
	// gc's expected end state, from an uninterrupted run on a copy.
	ref := filepath.Join(t.TempDir(), "ref")
	cloneDir(t, job, ref)
	ckpt(t, 0, "gc", ref, "--retain", "1", "--min-age", "0s", "--yes", "-q")
	wantGC := keys(t, openLoc(t, fileURL(ref)))
	latestFiles := fileCount(t, jobLoc, 4)

	return []sigCase{
		{name: "create", setup: func(t *testing.T) *sigRun {
			dir := t.TempDir()
			dst, local := filepath.Join(dir, "job"), filepath.Join(dir, "local")
			loc := openLoc(t, fileURL(dst))
			return &sigRun{
				args:     []string{"create", "--db", db, "--to", dst, "--local-dir", local, "--parallel", "2"},
				progress: func() int { return count(loc) },
				total:    latestFiles,
				dirs:     []string{dir},
				check:    func(t *testing.T) int { return verifyAll(t, loc) },
				rerun: func(t *testing.T) {
					ckpt(t, 0, "create", "--db", db, "--to", dst, "--local-dir", local, "-q")
					if verifyAll(t, loc) == 0 {
						t.Fatal("the re-run committed nothing")
					}
				},
			}
		}},
		{name: "restore", setup: func(t *testing.T) *sigRun {
			parent := t.TempDir()
			target := filepath.Join(parent, "r")
			ckpt(t, 0, "restore", filepath.Join(job, "chk-1"), target, "-q")
			before := snapshot(t, target)
			return &sigRun{
				args: []string{"restore", job, target, "--force", "--parallel", "2"},
				progress: func() int {
					tmps, _ := filepath.Glob(filepath.Join(parent, ".r.ckpt-restore-*"))
					if len(tmps) != 1 {
						return 0
					}
					ents, _ := os.ReadDir(tmps[0])
					return len(ents)
				},
				total: latestFiles,
				dirs:  []string{parent},
				check: func(t *testing.T) int {
					if got := snapshot(t, target); got != before && digest(t, target) != want {
						t.Fatalf("the target is neither the old one nor complete:\n%s", got)
					}
					return verifyAll(t, jobLoc)
				},
				rerun: func(t *testing.T) {
					ckpt(t, 0, "restore", job, target, "--force", "-q")
					if digest(t, target) != want {
						t.Fatal("the re-run restored the wrong data")
					}
				},
			}
		}},
		{name: "relocate", setup: func(t *testing.T) *sigRun {
			dir := t.TempDir()
			dst := filepath.Join(dir, "dst")
			loc := openLoc(t, fileURL(dst))
			return &sigRun{
				args:     []string{"relocate", latest, dst, "--parallel", "2"},
				progress: func() int { return count(loc) },
				total:    latestFiles,
				dirs:     []string{dir, job},
				check:    func(t *testing.T) int { return verifyAll(t, loc) + verifyAll(t, jobLoc) },
				rerun: func(t *testing.T) {
					ckpt(t, 0, "relocate", latest, dst, "-q")
					if verifyAll(t, loc) != 1 {
						t.Fatal("the re-run did not leave one relocated checkpoint")
					}
				},
			}
		}},
		{name: "gc", setup: func(t *testing.T) *sigRun {
			dir := t.TempDir()
			j := filepath.Join(dir, "job")
			cloneDir(t, job, j)
			loc := openLoc(t, fileURL(j))
			return &sigRun{
				args:     []string{"gc", j, "--retain", "1", "--min-age", "0s", "--yes", "--parallel", "2"},
				progress: func() int { return jobObjects - count(loc) },
				total:    jobObjects - len(wantGC),
				dirs:     []string{dir},
				check: func(t *testing.T) int {
					n := verifyAll(t, loc)
					if n == 0 {
						t.Fatal("gc left no checkpoint")
					}
					return n
				},
				rerun: func(t *testing.T) {
					ckpt(t, 0, "gc", j, "--retain", "1", "--min-age", "0s", "--yes", "-q")
					if got := keys(t, loc); !slices.Equal(got, wantGC) {
						t.Fatalf("after the re-run:\n%s\nan uninterrupted gc leaves:\n%s", strings.Join(got, "\n"), strings.Join(wantGC, "\n"))
					}
				},
			}
		}},
		{name: "inspect", times: []time.Duration{0, 150 * time.Millisecond, 400 * time.Millisecond}, setup: func(t *testing.T) *sigRun {
			return &sigRun{
				args:  []string{"inspect", latest, "--read-data", "--parallel", "1"},
				check: func(t *testing.T) int { return verifyAll(t, jobLoc) },
				rerun: func(t *testing.T) { ckpt(t, 0, "inspect", latest, "--read-data", "-q") },
			}
		}},
		{name: "demo", times: []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond}, setup: func(t *testing.T) *sigRun {
			tmp := t.TempDir()
			return &sigRun{
				args:  []string{"demo", "--keys", "400000"}, // takes 3 s or more
				env:   []string{"TMPDIR=" + tmp},
				dirs:  []string{tmp},
				check: func(t *testing.T) int { return 0 },
				rerun: func(t *testing.T) {
					p := start(t, 0, []string{"TMPDIR=" + tmp}, "demo", "--keys", "2000", "--rounds", "1")
					if code := p.wait(time.Minute); code != 0 {
						t.Fatalf("exit %d: %s", code, p)
					}
					if left := tempFiles(tmp); len(left) > 0 {
						t.Fatalf("the demo left %v", left)
					}
				},
			}
		}},
	}
}

// Acceptance (issue #8, item 6): SIGTERM or SIGINT at an early, a middle and
// a late moment of every command stops it within stopBound with exit status
// 130, leaves no temporary file, every committed checkpoint verifies, a
// restore target is the old one or complete, and a re-run succeeds.
func TestSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ckpt and a Pebble store")
	}
	var runs, interrupted, broken int
	var slowest time.Duration
	for _, c := range sigCases(t) {
		t.Run(c.name, func(t *testing.T) {
			for i, m := range moments {
				sigs := []syscall.Signal{syscall.SIGTERM}
				if i == 1 {
					sigs = append(sigs, syscall.SIGINT)
				}
				for _, sig := range sigs {
					t.Run(fmt.Sprintf("%s@%v", sigName(sig), m), func(t *testing.T) {
						r := c.setup(t)
						args := append(r.args, "--json")
						p := start(t, opDelay, r.env, args...)
						if !p.waitReady() {
							t.Fatalf("ckpt never got going: %s", p)
						}
						if r.progress != nil {
							at := int(m * float64(r.total))
							if !waitFor(p, func() bool { return r.progress() >= at }) {
								t.Fatalf("never reached %d of %d: %s", at, r.total, p)
							}
						} else {
							time.Sleep(c.times[i])
						}
						runs++
						if !p.signal(sig) {
							t.Fatalf("the command ended before the signal: %s", p)
						}
						code := p.wait(time.Minute)
						took := p.exitedAt.Sub(p.signalTime)
						slowest = max(slowest, took)
						if code != 130 {
							t.Fatalf("exit %d, want 130: %s", code, p)
						}
						interrupted++
						if took > stopBound {
							t.Fatalf("stopped %v after the signal", took)
						}
						if !strings.Contains(p.errb.String(), "interrupted") {
							t.Fatalf("stderr does not say it was interrupted: %s", p)
						}
						if left := tempFiles(r.dirs...); len(left) > 0 {
							t.Fatalf("temporary files left: %v", left)
						}
						if r.check != nil {
							broken++ // undone below unless check fails
							r.check(t)
							broken--
						}
						r.rerun(t)
						t.Logf("stopped %v after %v", took.Round(time.Millisecond), p.signalTime.Sub(p.startedAt).Round(time.Millisecond))
					})
				}
			}
		})
	}
	t.Logf("reliability: signals runs=%d exit130=%d broken=%d slowest_stop_ms=%d", runs, interrupted, broken, slowest.Milliseconds())
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

func digest(t testing.TB, dir string) string {
	t.Helper()
	d, err := testpebble.Digest(dir)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return d
}

// snapshot describes a directory's files (name, size, mtime).
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return "absent"
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}
