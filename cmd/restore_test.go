package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
)

func captureRestore(t *testing.T, env map[string]string, args ...string) *restoreOptions {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var got *restoreOptions
	f := &Factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	root := NewRootCmd(f)
	for _, c := range root.Commands() {
		if c.Name() == "restore" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newRestoreCmd(f, func(_ context.Context, o *restoreOptions) error { got = o; return nil }))
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRestoreFlags(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	o := captureRestore(t, nil, "restore", "s3://b/j", "dir")
	if o.Location != "s3://b/j" || o.Target != "dir" || o.Parallel != 8 || o.Claim || o.Force || o.ReuseTarget ||
		o.Strict || o.Check || o.DryRun || o.LocalDir != "" || o.Store != "" {
		t.Fatalf("defaults: %+v", o)
	}
	o = captureRestore(t, nil, "restore", "j", "d", "--local-dir", "/l", "--store", "s", "--reuse-target", "--force",
		"--strict", "--check", "--claim", "--dry-run", "--parallel", "3")
	if o.LocalDir != "/l" || o.Store != "s" || !o.ReuseTarget || !o.Force || !o.Strict || !o.Check || !o.Claim || !o.DryRun || o.Parallel != 3 {
		t.Fatalf("flags: %+v", o)
	}
	o = captureRestore(t, map[string]string{"CKPT_LOCAL_DIR": "/env", "CKPT_PARALLEL": "5", "CKPT_CHECK": "true"}, "restore", "j", "d", "--parallel", "2")
	if o.LocalDir != "/env" || o.Parallel != 2 || !o.Check {
		t.Fatalf("env: %+v", o)
	}
}

func readOrigin(t *testing.T, dir string) checkpoint.Origin {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, checkpoint.OriginFile))
	if err != nil {
		t.Fatal(err)
	}
	var o checkpoint.Origin
	if err := json.Unmarshal(data, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func digest(t *testing.T, dir string) string {
	t.Helper()
	d, err := testpebble.Digest(dir)
	if err != nil {
		t.Fatalf("%s does not open as a Pebble store: %v", dir, err)
	}
	return d
}

// noCkptLeftovers checks that dir holds nothing of an interrupted restore.
func noCkptLeftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".ckpt-") {
			t.Fatalf("leftover %s in %s", e.Name(), dir)
		}
	}
}

// restoreJob makes a job with two checkpoints (and a local copy) of a
// store that changes in between, and returns the digests at each.
func restoreJob(t *testing.T) (job, local string, want1, want2 string) {
	t.Helper()
	db := newStore(t)
	job = filepath.Join(t.TempDir(), "jobs", "a")
	local = filepath.Join(t.TempDir(), "local")
	ckpt(t, "create", "--db", db, "--to", job, "--local-dir", local).want(t, 0)
	want1 = digest(t, db)
	if err := testpebble.Churn(testpebble.V2, db, spec, 0.05, 3); err != nil {
		t.Fatal(err)
	}
	ckpt(t, "create", "--db", db, "--to", job, "--local-dir", local).want(t, 0)
	want2 = digest(t, db)
	return job, local, want1, want2
}

func TestRestoreEndToEnd(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	job, local, want1, want2 := restoreJob(t)

	// A job's latest checkpoint, all from storage.
	target := filepath.Join(t.TempDir(), "r")
	r := ckpt(t, "restore", job, target, "--json").want(t, 0)
	m := r.json(t)
	for _, k := range []string{"checkpoint_id", "files_from_local", "bytes_from_local", "files_from_remote", "bytes_from_remote",
		"files_reused", "duration_ms", "target", "stores", "fell_back_from", "location", "version"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("restore JSON lacks %q: %s", k, r.stdout)
		}
	}
	if m["checkpoint_id"].(float64) != 2 || m["files_from_local"].(float64) != 0 || m["bytes_from_remote"] != m["total_bytes"] ||
		m["target"] != target || m["fell_back_from"].(float64) != 0 || r.stderr != "" {
		t.Fatalf("restore: %s / stderr %q", r.stdout, r.stderr)
	}
	if o := readOrigin(t, target); o.Location != filepath.Join(job, "chk-2") || o.CheckpointID != 2 || o.Claim {
		t.Fatalf("origin %+v", o)
	}
	if digest(t, target) != want2 {
		t.Fatal("restored store differs from the source")
	}

	// From the complete local copy: nothing downloaded; --claim recorded.
	target2 := filepath.Join(t.TempDir(), "r")
	r = ckpt(t, "restore", filepath.Join(job, "chk-2"), target2, "--local-dir", local, "--claim", "--check", "--json").want(t, 0)
	m = r.json(t)
	if m["bytes_from_remote"].(float64) != 0 || m["files_from_local"] != m["total_files"] || m["files_linked"].(float64) == 0 || m["checked"] != true {
		t.Fatalf("local restore: %s", r.stdout)
	}
	if o := readOrigin(t, target2); !o.Claim || o.CheckpointID != 2 {
		t.Fatalf("origin %+v", o)
	}
	if digest(t, target2) != want2 {
		t.Fatal("restored store differs from the source")
	}

	// --dry-run prints the plan and writes nothing.
	target3 := filepath.Join(t.TempDir(), "r")
	r = ckpt(t, "restore", job, target3, "--local-dir", local, "--dry-run").want(t, 0)
	if !strings.Contains(r.stdout, "would restore checkpoint 2") || !strings.Contains(r.stdout, "local (link)") {
		t.Fatalf("dry run:\n%s", r.stdout)
	}
	r = ckpt(t, "restore", job, target3, "--dry-run", "--json").want(t, 0)
	if m := r.json(t); m["dry_run"] != true || len(m["files"].([]any)) == 0 || m["bytes_from_remote"] != m["total_bytes"] {
		t.Fatalf("dry run: %s", r.stdout)
	}
	if _, err := os.Lstat(target3); err == nil {
		t.Fatal("--dry-run wrote the target")
	}

	// Text output; a checkpoint named by its _metadata as a file:// URL.
	r = ckpt(t, "restore", "file://"+filepath.Join(job, "chk-1", "_metadata"), target3).want(t, 0)
	if !strings.Contains(r.stdout, "restored checkpoint 1 of job") || !strings.Contains(r.stdout, "downloaded") {
		t.Fatalf("text:\n%s", r.stdout)
	}
	if digest(t, target3) != want1 {
		t.Fatal("chk-1 differs from the source")
	}

	// A non-empty target is a conflict; --reuse-target is incremental.
	r = ckpt(t, "restore", job, target3).want(t, ExitConflict)
	if !strings.Contains(r.stderr, "not empty") || !strings.Contains(r.stderr, "--force") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("stderr: %q", r.stderr)
	}
	r = ckpt(t, "restore", job, target3, "--reuse-target", "--json").want(t, 0)
	if m := r.json(t); m["files_reused"].(float64) == 0 || m["bytes_from_remote"].(float64) >= m["total_bytes"].(float64) {
		t.Fatalf("reuse: %s", r.stdout)
	}
	if digest(t, target3) != want2 {
		t.Fatal("incremental restore differs from the source")
	}
	noCkptLeftovers(t, filepath.Dir(target3))
}

func TestRestoreFallback(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	job, _, want1, _ := restoreJob(t)
	meta := filepath.Join(job, "chk-2", "_metadata")
	data, _ := os.ReadFile(meta)
	data[40] ^= 1
	os.WriteFile(meta, data, 0o644)

	target := filepath.Join(t.TempDir(), "r")
	r := ckpt(t, "restore", job, target, "--strict").want(t, ExitCorrupt)
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "corrupt") {
		t.Fatalf("stderr: %q", r.stderr)
	}
	r = ckpt(t, "restore", job, target, "--json").want(t, 0)
	m := r.json(t)
	if m["checkpoint_id"].(float64) != 1 || m["fell_back_from"].(float64) != 2 || len(m["skipped"].([]any)) != 1 {
		t.Fatalf("fallback: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "warning: chk-2 is unusable") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("the fallback should be one warning: %q", r.stderr)
	}
	if digest(t, target) != want1 {
		t.Fatal("fallback restored the wrong data")
	}
}

func TestRestoreBadInput(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	job, _, _, _ := restoreJob(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-job")
	os.Mkdir(empty, 0o755)
	corrupt := filepath.Join(dir, "corrupt")
	missing := filepath.Join(dir, "missing")
	for _, d := range []string{corrupt, missing} {
		if out, err := exec.Command("cp", "-r", job, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	meta := filepath.Join(corrupt, "chk-2", "_metadata")
	data, _ := os.ReadFile(meta)
	data[40] ^= 1
	os.WriteFile(meta, data, 0o644)
	data, _ = os.ReadFile(filepath.Join(missing, "chk-2", "_metadata"))
	c, err := metadata.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	victim := ""
	for _, f := range c.Stores[0].Files {
		if strings.HasSuffix(f.Name, ".sst") {
			victim = filepath.Join(missing, "chk-2", f.Path)
		}
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	afile := filepath.Join(dir, "afile")
	os.WriteFile(afile, nil, 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(empty, link)
	target := filepath.Join(dir, "target")

	cases := []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"checkpoint not found", []string{"restore", filepath.Join(job, "chk-9"), target}, ExitNotFound, "not found"},
		{"job without checkpoints", []string{"restore", empty, target}, ExitNotFound, "no committed checkpoint"},
		{"corrupt metadata", []string{"restore", filepath.Join(corrupt, "chk-2"), target}, ExitCorrupt, "checksum mismatch"},
		{"missing files", []string{"restore", filepath.Join(missing, "chk-2"), target}, ExitCorrupt, "verification failed"},
		{"missing files named", []string{"restore", missing, target, "--strict"}, ExitCorrupt, victim + ") is missing"},
		{"target not empty", []string{"restore", job, full}, ExitConflict, "not empty"},
		{"target is a file", []string{"restore", job, afile}, ExitUsage, "not a directory"},
		{"target is a symlink", []string{"restore", job, link}, ExitUsage, "symbolic link"},
		{"target parent missing", []string{"restore", job, filepath.Join(dir, "no", "t")}, ExitUsage, "does not exist"},
		{"target inside the job", []string{"restore", job, filepath.Join(job, "restored")}, ExitUsage, "overlaps"},
		{"no such store", []string{"restore", job, target, "--store", "nope"}, ExitNotFound, "\"nope\" is not in"},
		{"claim and no-claim", []string{"restore", job, target, "--claim", "--no-claim"}, ExitUsage, "exclude each other"},
		{"parallel 0", []string{"restore", job, target, "--parallel", "0"}, ExitUsage, "--parallel"},
		{"one argument", []string{"restore", job}, ExitUsage, "accepts 2 arg"},
		{"bad location", []string{"restore", "ftp://x/y", target}, ExitUsage, "unsupported scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ckpt(t, tc.args...).want(t, tc.code)
			if !strings.Contains(r.stderr, tc.say) || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "ckpt: ") {
				t.Fatalf("stderr should be one line saying %q: %q", tc.say, r.stderr)
			}
			if r.stdout != "" {
				t.Fatalf("stdout should be empty on error: %q", r.stdout)
			}
			if _, err := os.Lstat(target); err == nil {
				t.Fatal("a failed restore left a target")
			}
			noCkptLeftovers(t, dir)
			noCkptLeftovers(t, job)
		})
	}
	r := ckpt(t, "restore", filepath.Join(job, "chk-9"), target, "--json").want(t, ExitNotFound)
	if e, ok := r.json(t)["error"].(map[string]any); !ok || e["exit_code"].(float64) != ExitNotFound {
		t.Fatalf("%s", r.stdout)
	}
}

// mountTmpfs mounts a tmpfs (root only) or skips the test.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

func TestRestoreOntoReadOnlyOrFullFilesystem(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	job, _, _, _ := restoreJob(t)
	for _, tc := range []struct{ opts, say string }{
		{"ro,size=1m", "read-only file system"},
		{"size=256k", "no space left on device"},
	} {
		t.Run(tc.opts, func(t *testing.T) {
			mnt := mountTmpfs(t, tc.opts)
			r := ckpt(t, "restore", job, filepath.Join(mnt, "r")).want(t, ExitError)
			if !strings.Contains(r.stderr, tc.say) || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("stderr: %q", r.stderr)
			}
			if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
				t.Fatalf("left %v on the filesystem", ents)
			}
		})
	}
}

func TestRestoreLocalDirOnAnotherFilesystem(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	db := newStore(t)
	job := filepath.Join(t.TempDir(), "job")
	local := mountTmpfs(t, "size=64m")
	ckpt(t, "create", "--db", db, "--to", job, "--local-dir", local).want(t, 0)
	target := filepath.Join(t.TempDir(), "r")
	r := ckpt(t, "restore", job, target, "--local-dir", local, "--json").want(t, 0)
	m := r.json(t)
	if m["bytes_from_remote"].(float64) != 0 || m["files_linked"].(float64) != 0 || m["files_from_local"] != m["total_files"] {
		t.Fatalf("%s", r.stdout)
	}
	if strings.Count(r.stderr, "another filesystem") != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("want one warning: %q", r.stderr)
	}
	if digest(t, target) != digest(t, db) {
		t.Fatal("restored store differs")
	}
}

func TestRestoreHelp(t *testing.T) {
	r := ckpt(t, "restore", "--help").want(t, 0)
	for _, s := range []string{"EXIT STATUS", "130", "--local-dir", "--reuse-target", "--no-claim", "TARGET_DIR/<store name>"} {
		if !strings.Contains(r.stdout, s) {
			t.Fatalf("help lacks %q", s)
		}
	}
}
