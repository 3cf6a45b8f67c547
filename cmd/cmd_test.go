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
	"time"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/storage"
)

type run struct {
	code           int
	stdout, stderr string
}

func ckpt(t *testing.T, args ...string) run {
	t.Helper()
	return ckptAt(t, time.Now(), args...)
}

// ckptAt runs ckpt in-process with its clock fixed at now.
func ckptAt(t *testing.T, now time.Time, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	f := &Factory{
		In: strings.NewReader(""), Out: &out, Err: &errb,
		Now:  func() time.Time { return now },
		Open: storage.Open,
	}
	code := Main(context.Background(), args, f)
	return run{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r run) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	return m
}

func (r run) want(t *testing.T, code int) run {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

var spec = testpebble.Spec{Keys: 20000, ValueSize: 100, Seed: 1}

func newStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	if err := testpebble.Create(testpebble.V2, dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCreateFlagsAndPrecedence(t *testing.T) {
	capture := func(env map[string]string, config string, args ...string) *createOptions {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		var got *createOptions
		f := &Factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
		root := NewRootCmd(f)
		for _, c := range root.Commands() {
			if c.Name() == "create" {
				root.RemoveCommand(c)
			}
		}
		root.AddCommand(newCreateCmd(f, func(_ context.Context, o *createOptions) error { got = o; return nil }))
		if config != "" {
			p := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(p, []byte(config), 0o644)
			args = append(args, "--config", p)
		}
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	t.Setenv("CKPT_CONFIG", "")
	o := capture(nil, "", "create", "--db", "d", "--to", "j", "--store", "a=x", "--store", "b=y", "--full")
	if o.DB != "d" || o.To != "j" || len(o.Stores) != 2 || !o.Full || o.Parallel != 8 {
		t.Fatalf("%+v", o)
	}
	o = capture(nil, "parallel: 5\nto: fromconfig\n", "create", "--db", "d")
	if o.Parallel != 5 || o.To != "fromconfig" {
		t.Fatalf("config not applied: %+v", o)
	}
	o = capture(map[string]string{"CKPT_PARALLEL": "3"}, "parallel: 5\n", "create", "--db", "d", "--to", "j")
	if o.Parallel != 3 {
		t.Fatalf("env should beat config: %+v", o)
	}
	o = capture(map[string]string{"CKPT_PARALLEL": "3", "CKPT_LOCAL_DIR": "/l"}, "parallel: 5\n", "create", "--db", "d", "--to", "j", "--parallel", "2")
	if o.Parallel != 2 || o.LocalDir != "/l" {
		t.Fatalf("flag should beat env: %+v", o)
	}
}

func TestCreateInspectEndToEnd(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	db := newStore(t)
	root := t.TempDir()
	job := filepath.Join(root, "jobs", "a")

	r := ckpt(t, "create", "--db", db, "--to", job, "--json").want(t, 0)
	m := r.json(t)
	for _, k := range []string{"checkpoint_id", "location", "files_uploaded", "bytes_uploaded", "files_reused", "bytes_reused"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("create JSON lacks %q: %s", k, r.stdout)
		}
	}
	if m["checkpoint_id"].(float64) != 1 || m["location"] != filepath.Join(job, "chk-1") || r.stderr != "" {
		t.Fatalf("create: %s / stderr %q", r.stdout, r.stderr)
	}
	if err := testpebble.Churn(testpebble.V2, db, spec, 0.05, 3); err != nil {
		t.Fatal(err)
	}
	r = ckpt(t, "create", "--db", db, "--to", "file://"+job, "--json").want(t, 0)
	m = r.json(t)
	if m["checkpoint_id"].(float64) != 2 || m["kind"] != "incremental" || m["files_reused"].(float64) == 0 {
		t.Fatalf("second create: %s", r.stdout)
	}

	r = ckpt(t, "inspect", filepath.Join(job, "chk-2"), "--json", "--verify").want(t, 0)
	m = r.json(t)
	for _, k := range []string{"checkpoint_id", "files", "total_bytes", "self_contained"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("inspect JSON lacks %q", k)
		}
	}
	files := m["files"].([]any)
	f0 := files[0].(map[string]any)
	if f0["path"] == nil || f0["size"] == nil || m["self_contained"] != true {
		t.Fatalf("inspect: %s", r.stdout)
	}
	ckpt(t, "inspect", filepath.Join(job, "chk-2", "_metadata"), "--read-data").want(t, 0)
	r = ckpt(t, "inspect", job).want(t, 0)
	if !strings.Contains(r.stdout, "complete") || !strings.Contains(r.stdout, "latest complete checkpoint: 2") {
		t.Fatalf("job table:\n%s", r.stdout)
	}

	// A plain cp -r of the job keeps every checkpoint valid.
	moved := filepath.Join(t.TempDir(), "elsewhere")
	if out, err := exec.Command("cp", "-r", job, moved).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	for _, id := range []string{"chk-1", "chk-2"} {
		ckpt(t, "inspect", filepath.Join(moved, id), "--read-data").want(t, 0)
	}

	// A missing file is named, exit 5.
	ents, _ := filepath.Glob(filepath.Join(moved, "shared", "*.sst"))
	victim := ents[0]
	os.Remove(victim)
	r = ckpt(t, "inspect", filepath.Join(moved, "chk-2"), "--verify").want(t, ExitCorrupt)
	if !strings.Contains(r.stdout, filepath.Base(victim)) && !strings.Contains(r.stdout, "missing") {
		t.Fatalf("bad file not named:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "verification failed") {
		t.Fatalf("stderr: %q", r.stderr)
	}
	// With --json the report is the one document on stdout, problems in it;
	// the error goes to stderr only.
	r = ckpt(t, "inspect", filepath.Join(moved, "chk-2"), "--verify", "--json").want(t, ExitCorrupt)
	if m := r.json(t); m["problems"].(float64) != 1 {
		t.Fatalf("report: %s", r.stdout)
	}
	// A corrupt _metadata: inspect exits 5, create refuses to build on it
	// unless --full.
	meta := filepath.Join(moved, "chk-2", "_metadata")
	data, _ := os.ReadFile(meta)
	data[40] ^= 1
	os.WriteFile(meta, data, 0o644)
	ckpt(t, "inspect", filepath.Join(moved, "chk-2")).want(t, ExitCorrupt)
	r = ckpt(t, "create", "--db", db, "--to", moved).want(t, ExitCorrupt)
	if !strings.Contains(r.stderr, "--full") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("stderr should be one line with a hint: %q", r.stderr)
	}
	ckpt(t, "create", "--db", db, "--to", moved, "--full").want(t, 0)
}

func TestBadInput(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	job := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"missing db", []string{"create", "--db", "/nonexistent/db", "--to", job}, ExitNotFound, "does not exist"},
		{"not a store", []string{"create", "--db", t.TempDir(), "--to", job}, ExitNotFound, "not a Pebble store"},
		{"no db", []string{"create", "--to", job}, ExitUsage, "--db"},
		{"no to", []string{"create", "--db", "x"}, ExitUsage, "--to"},
		{"bad url", []string{"create", "--db", "x", "--to", "ftp://host/x"}, ExitUsage, "unsupported scheme"},
		{"to is a checkpoint", []string{"create", "--db", newStore(t), "--to", filepath.Join(job, "chk-3")}, ExitUsage, "names a checkpoint"},
		{"unknown flag", []string{"create", "--bogus"}, ExitUsage, "unknown flag"},
		{"inspect nothing", []string{"inspect", filepath.Join(job, "nope")}, ExitNotFound, "no checkpoints"},
		{"inspect missing checkpoint", []string{"inspect", filepath.Join(job, "chk-9")}, ExitNotFound, "not found"},
		{"inspect no arg", []string{"inspect"}, ExitUsage, "accepts 1 arg"},
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
		})
	}
	// With --json, the error is also a JSON document on stdout.
	r := ckpt(t, "inspect", filepath.Join(job, "chk-9"), "--json").want(t, ExitNotFound)
	if e, ok := r.json(t)["error"].(map[string]any); !ok || e["exit_code"].(float64) != ExitNotFound {
		t.Fatalf("%s", r.stdout)
	}
}

func TestHelpShowsExitStatus(t *testing.T) {
	for _, c := range []string{"create", "inspect", "demo"} {
		r := ckpt(t, c, "--help").want(t, 0)
		if !strings.Contains(r.stdout, "EXIT STATUS") || !strings.Contains(r.stdout, "130") {
			t.Fatalf("%s --help lacks the exit status table", c)
		}
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	r := ckpt(t, "demo", "--dir", dir, "--keys", "5000", "--json").want(t, 0)
	steps := r.json(t)["steps"].([]any)
	var creates, verify int
	for _, s := range steps {
		m := s.(map[string]any)
		switch m["step"] {
		case "create":
			creates++
		case "verify":
			verify++
			if m["problems"].(float64) != 0 {
				t.Fatalf("demo verify found problems: %s", r.stdout)
			}
		}
	}
	if creates != 3 || verify != 1 {
		t.Fatalf("demo steps: %s", r.stdout)
	}
	last := steps[len(steps)-1].(map[string]any)
	if last["step"] != "restore-moved" || last["same_data"] != true {
		t.Fatalf("the demo should end restoring the relocated copy intact: %v", last)
	}
	r = ckpt(t, "demo", "--keys", "5000").want(t, 0)
	if !strings.Contains(r.stdout, "chk-3 (incremental)") {
		t.Fatalf("demo text:\n%s", r.stdout)
	}
}
