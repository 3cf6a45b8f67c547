package cmd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/internal/testutil"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

func captureRelocate(t *testing.T, env map[string]string, config string, args ...string) *relocateOptions {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var got *relocateOptions
	f := &Factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	root := NewRootCmd(f)
	for _, c := range root.Commands() {
		if c.Name() == "relocate" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newRelocateCmd(f, func(_ context.Context, o *relocateOptions) error { got = o; return nil }))
	if config != "" {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRelocateFlags(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	o := captureRelocate(t, nil, "", "relocate", "s3://b/j/chk-3", "gs://c/j")
	if o.Source != "s3://b/j/chk-3" || o.Dest != "gs://c/j" || o.All || o.ID != 0 || o.DryRun || o.ReadData || o.Parallel != 8 {
		t.Fatalf("defaults: %+v", o)
	}
	o = captureRelocate(t, nil, "", "relocate", "a", "b", "--all", "--dry-run", "--read-data", "--parallel", "3")
	if !o.All || !o.DryRun || !o.ReadData || o.Parallel != 3 {
		t.Fatalf("flags: %+v", o)
	}
	o = captureRelocate(t, nil, "", "relocate", "a/chk-1", "b", "--id", "12")
	if o.ID != 12 {
		t.Fatalf("--id: %+v", o)
	}
	o = captureRelocate(t, map[string]string{"CKPT_PARALLEL": "5", "CKPT_READ_DATA": "true"}, "parallel: 7\ndry-run: true\n", "relocate", "a", "b")
	if o.Parallel != 5 || !o.ReadData || !o.DryRun {
		t.Fatalf("env and config: %+v", o)
	}
	o = captureRelocate(t, map[string]string{"CKPT_PARALLEL": "5"}, "", "relocate", "a", "b", "--parallel", "2")
	if o.Parallel != 2 {
		t.Fatalf("flag should beat env: %+v", o)
	}
}

// relocateChain builds, under root, job a (from a Pebble store) and job b,
// whose store was restored from a's checkpoint with claim, so that b's
// checkpoint references a's shared files. It returns b's checkpoint id and
// the digest of its data.
func relocateChain(t *testing.T, root string) (uint64, string) {
	t.Helper()
	ctx := context.Background()
	ckpt(t, "create", "--db", newStore(t), "--to", filepath.Join(root, "a")).want(t, 0)
	fs, err := storage.Open(ctx, "file:///")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	key := func(p string) string { return strings.TrimPrefix(filepath.ToSlash(p), "/") }
	a, b := metadata.Job{Prefix: key(filepath.Join(root, "a"))}, metadata.Job{Prefix: key(filepath.Join(root, "b"))}
	ca, err := metadata.Read(ctx, fs.Bucket, a.MetadataKey(1))
	if err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if err := testutil.Materialize(ctx, fs.Bucket, a, 1, "default", restored); err != nil {
		t.Fatal(err)
	}
	if err := testpebble.Churn(testpebble.V2, restored, spec, 0.05, 4); err != nil {
		t.Fatal(err)
	}
	want, err := testpebble.Digest(restored)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.OpenDir("default", restored)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := checkpoint.Create(ctx, fs.Bucket, b, []*checkpoint.Store{s}, checkpoint.Options{
		Origin: &checkpoint.OriginRef{Dir: a.CheckpointDir(1), JobID: ca.JobID, CheckpointID: 1, Claim: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesReused == 0 {
		t.Fatalf("b reuses nothing of a: %+v", res)
	}
	return res.CheckpointID, want
}

func TestRelocateEndToEnd(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	root := t.TempDir()
	id, want := relocateChain(t, root)
	chk := filepath.Join(root, "b", "chk-"+itoa(id))
	c := filepath.Join(root, "c")

	// The plan changes nothing.
	r := ckpt(t, "relocate", chk, c, "--dry-run", "--json").want(t, 0)
	m := r.json(t)
	if m["dry_run"] != true || len(m["copies"].([]any)) == 0 || len(m["chain_links_cut"].([]any)) != 2 {
		t.Fatalf("plan: %s", r.stdout)
	}
	if _, err := os.Stat(c); !os.IsNotExist(err) {
		t.Fatalf("the dry run wrote %s", c)
	}
	r = ckpt(t, "relocate", chk, c, "--dry-run").want(t, 0)
	if !strings.Contains(r.stdout, "nothing was changed") || !strings.Contains(r.stdout, "cut lineage link to "+filepath.Join(root, "a", "chk-1")) {
		t.Fatalf("plan text:\n%s", r.stdout)
	}

	r = ckpt(t, "relocate", chk, c, "--json").want(t, 0)
	m = r.json(t)
	for _, k := range []string{"checkpoint_id", "files_copied", "bytes_copied", "files_skipped", "chain_links_cut", "destination"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("relocate JSON lacks %q: %s", k, r.stdout)
		}
	}
	if m["checkpoint_id"].(float64) != float64(id) || m["destination"] != filepath.Join(c, "chk-"+itoa(id)) ||
		m["files_copied"].(float64) == 0 || m["files_skipped"].(float64) != 0 || m["server_side_copy"] != true || r.stderr != "" {
		t.Fatalf("relocate: %s / stderr %q", r.stdout, r.stderr)
	}
	links := m["chain_links_cut"].([]any)
	if l := links[0].(map[string]any); l["kind"] != "lineage" || l["location"] != filepath.Join(root, "a", "chk-1") {
		t.Fatalf("links: %v", links)
	}

	// Again: nothing to do.
	r = ckpt(t, "relocate", chk, c, "--json", "--read-data").want(t, 0)
	if m = r.json(t); m["already_relocated"] != true || m["files_copied"].(float64) != 0 {
		t.Fatalf("re-run: %s", r.stdout)
	}

	// The source is gone; the relocated checkpoint stands, and so does a
	// plain copy of it anywhere.
	os.RemoveAll(filepath.Join(root, "a"))
	os.RemoveAll(filepath.Join(root, "b"))
	r = ckpt(t, "inspect", filepath.Join(c, "chk-"+itoa(id)), "--read-data", "--json").want(t, 0)
	if m = r.json(t); m["self_contained"] != true {
		t.Fatalf("inspect: %s", r.stdout)
	}
	moved := filepath.Join(t.TempDir(), "x", "y")
	os.MkdirAll(filepath.Dir(moved), 0o755)
	if out, err := exec.Command("cp", "-r", c, moved).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	ckpt(t, "inspect", filepath.Join(moved, "chk-"+itoa(id)), "--read-data").want(t, 0)
	fs, _ := storage.Open(context.Background(), "file:///")
	defer fs.Close()
	out := filepath.Join(t.TempDir(), "out")
	job := metadata.Job{Prefix: strings.TrimPrefix(moved, "/")}
	if err := testutil.Materialize(context.Background(), fs.Bucket, job, id, "default", out); err != nil {
		t.Fatal(err)
	}
	if got, _ := testpebble.Digest(out); got != want {
		t.Fatalf("data %s, want %s", got, want)
	}

	// A whole job, into a mem bucket (streamed): a list plus totals.
	r = ckpt(t, "relocate", moved, "mem://relocate-e2e/jobs/d", "--all", "--json").want(t, 0)
	m = r.json(t)
	cps := m["checkpoints"].([]any)
	if len(cps) != 1 || m["server_side_copy"] != false || m["destination"] != "mem://relocate-e2e/jobs/d" ||
		m["files_copied"].(float64) != cps[0].(map[string]any)["files_copied"].(float64) {
		t.Fatalf("--all: %s", r.stdout)
	}
	r = ckpt(t, "relocate", moved, "mem://relocate-e2e/jobs/d", "--all").want(t, 0)
	if !strings.Contains(r.stdout, "already relocated chk-"+itoa(id)) {
		t.Fatalf("--all text:\n%s", r.stdout)
	}
}

func TestRelocateBadInput(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	root := t.TempDir()
	id, _ := relocateChain(t, root)
	chk := filepath.Join(root, "b", "chk-"+itoa(id))
	ssts, _ := filepath.Glob(filepath.Join(root, "a", "shared", "*.sst"))
	bssts, _ := filepath.Glob(filepath.Join(root, "b", "shared", "*.sst"))
	if len(ssts) < 2 || len(bssts) == 0 {
		t.Fatalf("shared files: %v %v", ssts, bssts)
	}
	// A checkpoint of another store under b's id in job "taken".
	ckpt(t, "create", "--db", newStore(t), "--to", filepath.Join(root, "taken")).want(t, 0)
	for i := uint64(2); i <= id; i++ {
		ckpt(t, "create", "--db", newStore(t), "--to", filepath.Join(root, "taken"), "--full").want(t, 0)
	}

	// Damage a copy of the tree for the source checks.
	damaged := filepath.Join(t.TempDir(), "damaged")
	if out, err := exec.Command("cp", "-r", root, damaged).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	rel := func(p string) string { r, _ := filepath.Rel(root, p); return filepath.Join(damaged, r) }
	os.Remove(rel(ssts[0]))
	data, _ := os.ReadFile(rel(bssts[0]))
	data[len(data)/2] ^= 0xff
	os.WriteFile(rel(bssts[0]), data, 0o644)
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	exec.Command("cp", "-r", root, corrupt).Run()
	meta := filepath.Join(corrupt, "b", "chk-"+itoa(id), "_metadata")
	data, _ = os.ReadFile(meta)
	data[30] ^= 1
	os.WriteFile(meta, data, 0o644)

	dst := func() string { return filepath.Join(t.TempDir(), "dst") }
	cases := []struct {
		name  string
		args  []string
		code  int
		say   []string
		clean string // must not exist afterwards
	}{
		{"missing file", []string{"relocate", rel(chk), filepath.Join(damaged, "c")}, ExitCorrupt,
			[]string{"verification failed", filepath.Base(ssts[0]) + " (missing)"}, filepath.Join(damaged, "c")},
		{"missing and corrupt files", []string{"relocate", rel(chk), filepath.Join(damaged, "c"), "--read-data"}, ExitCorrupt,
			[]string{"2 of", filepath.Base(ssts[0]) + " (missing)", filepath.Base(bssts[0]) + " (checksum mismatch)"}, filepath.Join(damaged, "c")},
		{"unreadable metadata", []string{"relocate", filepath.Join(corrupt, "b", "chk-"+itoa(id)), dst()}, ExitCorrupt,
			[]string{"checksum mismatch"}, ""},
		{"id taken", []string{"relocate", chk, filepath.Join(root, "taken")}, ExitConflict,
			[]string{"holds a different checkpoint", "--id"}, ""},
		{"inside the source", []string{"relocate", chk, filepath.Join(root, "b", "copy")}, ExitUsage,
			[]string{"inside the source job"}, filepath.Join(root, "b", "copy")},
		{"no such checkpoint", []string{"relocate", filepath.Join(root, "b", "chk-99"), dst()}, ExitNotFound,
			[]string{"not found"}, ""},
		{"job without --all", []string{"relocate", filepath.Join(root, "b"), dst()}, ExitUsage, []string{"--all"}, ""},
		{"checkpoint with --all", []string{"relocate", chk, dst(), "--all"}, ExitUsage, []string{"names a checkpoint"}, ""},
		{"destination is a checkpoint", []string{"relocate", chk, filepath.Join(root, "c", "chk-4")}, ExitUsage, []string{"names a checkpoint"}, ""},
		{"--id with --all", []string{"relocate", filepath.Join(root, "b"), dst(), "--all", "--id", "3"}, ExitUsage, []string{"--id"}, ""},
		{"one argument", []string{"relocate", chk}, ExitUsage, []string{"accepts 2 arg"}, ""},
		{"bad url", []string{"relocate", chk, "ftp://x/y"}, ExitUsage, []string{"unsupported scheme"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ckpt(t, tc.args...).want(t, tc.code)
			for _, s := range tc.say {
				if !strings.Contains(r.stderr, s) {
					t.Fatalf("stderr does not say %q: %q", s, r.stderr)
				}
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "ckpt: ") || r.stdout != "" {
				t.Fatalf("want one line on stderr and nothing on stdout: %q / %q", r.stderr, r.stdout)
			}
			if tc.clean != "" {
				if _, err := os.Stat(tc.clean); !os.IsNotExist(err) {
					t.Fatalf("%s was written", tc.clean)
				}
			}
		})
	}
	// The taken id is untouched, and another id works.
	ckpt(t, "inspect", filepath.Join(root, "taken", "chk-"+itoa(id)), "--read-data").want(t, 0)
	r := ckpt(t, "relocate", chk, filepath.Join(root, "taken"), "--id", "50", "--json").want(t, 0)
	if r.json(t)["checkpoint_id"].(float64) != 50 {
		t.Fatalf("%s", r.stdout)
	}
	ckpt(t, "inspect", filepath.Join(root, "taken", "chk-50"), "--read-data").want(t, 0)
}

func TestRelocateHelp(t *testing.T) {
	r := ckpt(t, "relocate", "--help").want(t, 0)
	if !strings.Contains(r.stdout, "EXIT STATUS") || !strings.Contains(r.stdout, "--dry-run") {
		t.Fatalf("help:\n%s", r.stdout)
	}
}

func itoa(id uint64) string { return metadata.CheckpointDirName(id)[len("chk-"):] }

// Through every storage backend the environment names (scripts/test-services
// sets S3, GCS and Azure): local files → backend (streamed), then within the
// backend, given as two URLs of one bucket (server-side copy).
func TestRelocateServices(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	root := t.TempDir()
	id, _ := relocateChain(t, root)
	chk := filepath.Join(root, "b", "chk-"+itoa(id))
	for _, be := range storagetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			first, second := be.Sub("c").URL, be.Sub("d").URL
			m := ckpt(t, "relocate", chk, first, "--json").want(t, 0).json(t)
			if m["server_side_copy"] != (be.Name == "file") {
				t.Fatalf("to %s: %v", be.Name, m)
			}
			at := func(job string) string {
				base, query, _ := strings.Cut(job, "?")
				if query != "" {
					query = "?" + query
				}
				return base + "/chk-" + itoa(id) + query
			}
			ckpt(t, "inspect", at(first), "--read-data").want(t, 0)
			m = ckpt(t, "relocate", at(first), second, "--json", "--read-data").want(t, 0).json(t)
			if m["server_side_copy"] != true {
				t.Fatalf("within %s: %v", be.Name, m)
			}
			ckpt(t, "inspect", at(second), "--read-data").want(t, 0)
		})
	}
}
