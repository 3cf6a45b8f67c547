package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
)

var (
	workDir   string // removed when the tests end
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "ckpt-proctest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// hookSrc is added to the main package: cmd.DefaultFactory with every
// storage operation delayed by CKPT_TEST_OP_DELAY.
const hookSrc = `package main

import (
	"context"
	"os"
	"time"

	"github.com/ckpt-dev/ckpt/cmd"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/faultblob"
)

// testFactory runs after main installed its signal handler: it says so by
// creating CKPT_TEST_READY.
func testFactory() *cmd.Factory {
	if p := os.Getenv("CKPT_TEST_READY"); p != "" {
		_ = os.WriteFile(p, nil, 0o644)
	}
	f := cmd.DefaultFactory()
	d, _ := time.ParseDuration(os.Getenv("CKPT_TEST_OP_DELAY"))
	if d <= 0 {
		return f
	}
	open := f.Open
	f.Open = func(ctx context.Context, location string) (*storage.Location, error) {
		l, err := open(ctx, location)
		if err != nil {
			return l, err
		}
		inj := &faultblob.Injector{}
		inj.FailMatching(func(faultblob.Op) error { time.Sleep(d); return nil })
		l.Bucket = faultblob.Wrap(l.Bucket, inj)
		return l, nil
	}
	return f
}
`

// binary builds ckpt once: the module's main package, with main.go calling
// testFactory instead of cmd.DefaultFactory.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err
			return
		}
		src, err := os.ReadFile(filepath.Join(root, "main.go"))
		if err != nil {
			buildErr = err
			return
		}
		patched := strings.Replace(string(src), "cmd.DefaultFactory()", "testFactory()", 1)
		if patched == string(src) {
			buildErr = errors.New("main.go no longer calls cmd.DefaultFactory(); update proctest's hook")
			return
		}
		dir := filepath.Join(workDir, "build")
		os.MkdirAll(dir, 0o755)
		mainPath, hookPath := filepath.Join(dir, "main.go"), filepath.Join(dir, "hook.go")
		os.WriteFile(mainPath, []byte(patched), 0o644)
		os.WriteFile(hookPath, []byte(hookSrc), 0o644)
		ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{
			filepath.Join(root, "main.go"):             mainPath,
			filepath.Join(root, "zz_proctest_hook.go"): hookPath,
		}})
		ovPath := filepath.Join(dir, "overlay.json")
		os.WriteFile(ovPath, ov, 0o644)
		binPath = filepath.Join(dir, "ckpt")
		c := exec.Command("go", "build", "-overlay", ovPath, "-o", binPath, ".")
		c.Dir = root
		if out, err := c.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is one running ckpt.
type proc struct {
	cmd        *exec.Cmd
	out, errb  bytes.Buffer
	done       chan struct{}
	exitedAt   time.Time
	args       []string
	startedAt  time.Time
	signalTime time.Time
	ready      string // created once ckpt handles signals
}

var readyN atomic.Int64

// waitReady waits until ckpt has installed its signal handler.
func (p *proc) waitReady() bool {
	return waitFor(p, func() bool { _, err := os.Stat(p.ready); return err == nil })
}

// start runs ckpt with args; delay slows every storage operation.
func start(t testing.TB, delay time.Duration, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{args: args, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Env = append(os.Environ(), "CKPT_CONFIG=", "XDG_CONFIG_HOME="+filepath.Join(workDir, "noconfig"), "CKPT_TEST_OP_DELAY="+delay.String())
	p.ready = filepath.Join(workDir, fmt.Sprintf("ready-%d", readyN.Add(1)))
	p.cmd.Env = append(p.cmd.Env, "CKPT_TEST_READY="+p.ready)
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	p.startedAt = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.exitedAt = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig and reports whether the process was still running.
func (p *proc) signal(sig syscall.Signal) bool {
	if !p.running() {
		return false
	}
	p.signalTime = time.Now()
	return p.cmd.Process.Signal(sig) == nil
}

// wait waits at most d for the exit and returns the exit code (-1 if killed
// by a signal, -2 on timeout).
func (p *proc) wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -2
	}
}

func (p *proc) String() string {
	return fmt.Sprintf("ckpt %s\nstdout: %s\nstderr: %s", strings.Join(p.args, " "), p.out.String(), p.errb.String())
}

// ckpt runs ckpt to completion without delay and fails the test unless it
// exits with want.
func ckpt(t testing.TB, want int, args ...string) string {
	t.Helper()
	p := start(t, 0, nil, args...)
	if code := p.wait(5 * time.Minute); code != want {
		t.Fatalf("exit %d, want %d: %s", code, want, p)
	}
	return p.out.String()
}

// waitFor polls cond until it holds, the process exits, or a minute passes;
// it reports whether cond held.
func waitFor(p *proc, cond func() bool) bool {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		if !p.running() {
			return cond()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// openLoc opens a location and closes it when the test ends.
func openLoc(t testing.TB, url string) *storage.Location {
	t.Helper()
	loc, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loc.Close() })
	return loc
}

// keys lists the objects under a location, relative to it.
func keys(t testing.TB, loc *storage.Location) []string {
	t.Helper()
	prefix := ""
	if loc.Prefix != "" {
		prefix = loc.Prefix + "/"
	}
	var out []string
	it := loc.Bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			if os.IsNotExist(err) || storage.IsNotFound(err) {
				break
			}
			t.Fatal(err)
		}
		out = append(out, strings.TrimPrefix(o.Key, prefix))
	}
	sort.Strings(out)
	return out
}

// count counts the objects under a location (0 if it does not exist).
func count(loc *storage.Location) int {
	prefix := ""
	if loc.Prefix != "" {
		prefix = loc.Prefix + "/"
	}
	n := 0
	it := loc.Bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		if _, err := it.Next(context.Background()); err != nil {
			return n
		}
		n++
	}
}

// verifyAll checks every checkpoint committed under loc: each `_metadata`
// decodes and every file it references has its recorded size and SHA-256.
// It returns how many it checked.
func verifyAll(t testing.TB, loc *storage.Location) int {
	t.Helper()
	n := 0
	for _, k := range keys(t, loc) {
		dir, name := filepath.Split(k)
		if name != metadata.MetadataName {
			continue
		}
		jobRel, chk := filepath.Split(strings.TrimSuffix(dir, "/"))
		id, ok := metadata.ParseCheckpointDirName(chk)
		if !ok {
			continue
		}
		job := metadata.Job{Prefix: strings.Trim(loc.Prefix+"/"+jobRel, "/")}
		if _, err := testutil.VerifyCheckpoint(context.Background(), loc.Bucket, job, id); err != nil {
			t.Fatalf("broken checkpoint %s: %v", k, err)
		}
		n++
	}
	return n
}

// tempFiles lists the temporary files and directories ckpt leaves only when
// it is killed: the file driver's, the local copy's, restore's siblings and
// the demo's directory.
func tempFiles(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			n := e.Name()
			if strings.HasPrefix(n, ".ckpt-tmp-") || strings.HasPrefix(n, ".tmp-chk-") ||
				strings.Contains(n, ".ckpt-restore-") || strings.Contains(n, ".ckpt-old-") ||
				strings.HasPrefix(n, "ckpt-demo-") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// cloneDir copies a directory tree (cp -a).
func cloneDir(t testing.TB, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// fileURL is the file:// URL of a local directory.
func fileURL(dir string) string { return "file://" + dir }
