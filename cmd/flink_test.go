package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/flink"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// The real Flink fixtures are read from CKPT_FLINK_FIXTURES (CI sets it to
// ../shared/flink-fixtures); they are never copied into the repository.
func flinkFixtures(t *testing.T) string {
	t.Helper()
	root := os.Getenv("CKPT_FLINK_FIXTURES")
	if root == "" {
		t.Skip("CKPT_FLINK_FIXTURES is not set: skipping the real Flink fixtures (set it to e.g. ../shared/flink-fixtures)")
	}
	return root
}

func TestFlinkFormatFlag(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	capture := func(args ...string) (format string, del bool) {
		t.Helper()
		f := &Factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
		root := NewRootCmd(f)
		for _, c := range root.Commands() {
			switch c.Name() {
			case "inspect", "relocate", "gc":
				root.RemoveCommand(c)
			}
		}
		root.AddCommand(
			newInspectCmd(f, func(_ context.Context, o *inspectOptions) error { format = o.Format; return nil }),
			newRelocateCmd(f, func(_ context.Context, o *relocateOptions) error { format = o.Format; return nil }),
			newGCCmd(f, func(_ context.Context, o *gcOptions) error { format, del = o.Format, o.Delete; return nil }),
		)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return format, del
	}
	for _, cmd := range [][]string{{"inspect", "x"}, {"relocate", "x", "y"}, {"gc", "x"}} {
		if got, _ := capture(cmd...); got != "auto" {
			t.Errorf("%s: default format %q", cmd[0], got)
		}
		if got, _ := capture(append(cmd, "--format", "flink")...); got != "flink" {
			t.Errorf("%s: --format flink gave %q", cmd[0], got)
		}
	}
	t.Setenv("CKPT_FORMAT", "ckpt")
	if got, _ := capture("inspect", "x"); got != "ckpt" {
		t.Errorf("CKPT_FORMAT: %q", got)
	}
	if _, del := capture("gc", "x", "--delete"); !del {
		t.Error("--delete not parsed")
	}
	t.Setenv("CKPT_FORMAT", "")
	for _, cmd := range [][]string{{"inspect", "x"}, {"relocate", "x", "y"}, {"gc", "x", "--yes"}} {
		r := ckpt(t, append(cmd, "--format", "pebble")...).want(t, ExitUsage)
		if !strings.Contains(r.stderr, "--format must be auto, ckpt or flink") {
			t.Errorf("%s: %q", cmd[0], r.stderr)
		}
	}
}

// TestFlinkInspectFixtures inspects every real Flink _metadata through the
// command line, as a directory and as a file.
func TestFlinkInspectFixtures(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	root := flinkFixtures(t)
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "_metadata" {
			return err
		}
		n++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		md, err := flink.Decode(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, loc := range []string{filepath.Dir(p), p} {
			m := ckpt(t, "inspect", loc, "--json").want(t, 0).json(t)
			if m["format"] != "flink" || m["version"] != float64(1) || m["type"] != "checkpoint" {
				t.Fatalf("%s: %v", loc, m)
			}
			if m["checkpoint_id"] != float64(md.CheckpointID) || m["metadata_version"] != float64(md.Version) ||
				len(m["operators"].([]any)) != len(md.Operators) || m["file_count"] != float64(md.Summary().Files) ||
				m["location"] != realDir(t, filepath.Dir(p)) || m["self_contained"] != true {
				t.Fatalf("%s: %s", loc, jsonLine(m))
			}
			op := m["operators"].([]any)[0].(map[string]any)
			for _, k := range []string{"id", "name", "uid", "parallelism", "max_parallelism", "subtasks"} {
				if _, ok := op[k]; !ok {
					t.Fatalf("%s: operator lacks %q", loc, k)
				}
			}
		}
		ckpt(t, "inspect", filepath.Dir(p)).want(t, 0)
		return nil
	})
	if err != nil || n < 30 {
		t.Fatalf("%v (%d fixtures)", err, n)
	}
}

func jsonLine(m map[string]any) string {
	delete(m, "operators")
	delete(m, "files")
	return fmt.Sprint(m)
}

// TestFlinkVerifyFullDirectory verifies the complete real checkpoint, laid
// out as <tmp>/job/chk-1, then after deleting one of its files.
func TestFlinkVerifyFullDirectory(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	root := flinkFixtures(t)
	job := filepath.Join(t.TempDir(), "job")
	chk := filepath.Join(job, "chk-1")
	copyTree(t, filepath.Join(root, "v5-flink2.0-rocksdb-checkpoint-fulldir"), chk)

	m := ckpt(t, "inspect", chk, "--verify", "--json").want(t, 0).json(t)
	if m["verified"] != true || m["problems"] != float64(0) || m["file_count"] != float64(82) || m["job"] != job {
		t.Fatalf("verify: %s", jsonLine(m))
	}
	ckpt(t, "inspect", filepath.Join(chk, "_metadata"), "--read-data").want(t, 0)
	r := ckpt(t, "inspect", job, "--verify").want(t, 0)
	if !strings.Contains(r.stdout, "flink job "+job) || !strings.Contains(r.stdout, "complete") ||
		!strings.Contains(r.stdout, "latest complete checkpoint: 1") {
		t.Fatalf("job table:\n%s", r.stdout)
	}
	m = ckpt(t, "inspect", job, "--json").want(t, 0).json(t)
	if m["type"] != "job" || m["format"] != "flink" || m["latest_checkpoint_id"] != float64(1) {
		t.Fatalf("job JSON: %v", m)
	}
	// An incomplete chk-2 shows as such.
	if err := os.MkdirAll(filepath.Join(job, "chk-2"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(job, "chk-2", "x"), []byte("x"), 0o644)
	r = ckpt(t, "inspect", job).want(t, 0)
	if !strings.Contains(r.stdout, "incomplete") {
		t.Fatalf("job table:\n%s", r.stdout)
	}

	// A missing file is named, exit 5.
	ents, _ := filepath.Glob(filepath.Join(chk, "*-*-*"))
	victim := ents[7]
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	r = ckpt(t, "inspect", chk, "--verify").want(t, ExitCorrupt)
	if !strings.Contains(r.stdout, victim) || !strings.Contains(r.stdout, "missing") ||
		!strings.Contains(r.stderr, "verification failed") || !strings.Contains(r.stderr, filepath.Base(victim)) {
		t.Fatalf("bad file not named:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
	ckpt(t, "inspect", job, "--verify").want(t, ExitCorrupt)
	// Without --verify the checkpoint is still described.
	ckpt(t, "inspect", chk).want(t, 0)
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFlinkTruncatedMetadata: a truncated Flink _metadata is exit 5 with
// the byte offset in the one-line error.
func TestFlinkTruncatedMetadata(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	data, err := os.ReadFile("../testdata/flink/v5-generated-all-handles/_metadata")
	if err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(t.TempDir(), "job")
	chk := filepath.Join(job, "chk-1")
	os.MkdirAll(chk, 0o755)
	for _, n := range []int{len(data) / 2, 100, 10} {
		if err := os.WriteFile(filepath.Join(chk, "_metadata"), data[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		_, derr := flink.Decode(data[:n])
		r := ckpt(t, "inspect", chk).want(t, ExitCorrupt)
		if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "offset") || !strings.Contains(r.stderr, derr.Error()) {
			t.Fatalf("truncated at %d: %q (decoder: %v)", n, r.stderr, derr)
		}
		r = ckpt(t, "inspect", job, "--json").want(t, ExitCorrupt)
		var report map[string]any
		if err := json.NewDecoder(strings.NewReader(r.stdout)).Decode(&report); err != nil {
			t.Fatal(err)
		}
		if cp := report["checkpoints"].([]any)[0].(map[string]any); cp["state"] != "corrupt" || !strings.Contains(cp["error"].(string), "offset") {
			t.Fatalf("job view: %s", r.stdout)
		}
	}
	// --format ckpt reads it as ckpt's and fails (exit 5); --format flink on
	// a directory without _metadata reports it missing (exit 4).
	ckpt(t, "inspect", chk, "--format", "ckpt").want(t, ExitCorrupt)
	ckpt(t, "inspect", filepath.Join(job, "chk-9"), "--format", "flink").want(t, ExitNotFound)
}

// flinkJob writes Flink-layout checkpoints under dir with the codec's
// writer: absolute file: URIs for the files in shared/, relative names for
// the files in chk-<N>/.
type flinkJob struct {
	t   *testing.T
	dir string
}

func (j flinkJob) file(p string, n int) int64 {
	j.t.Helper()
	if st, err := os.Stat(p); err == nil {
		return st.Size()
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		j.t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Repeat([]byte{byte(n)}, n), 0o644); err != nil {
		j.t.Fatal(err)
	}
	return int64(n)
}

func (j flinkJob) checkpoint(id int64, shared, private []string) string {
	j.t.Helper()
	chk := filepath.Join(j.dir, fmt.Sprintf("chk-%d", id))
	inc := &flink.IncrementalHandle{Tag: flink.TagIncrementalV2, CheckpointID: id, BackendID: "b",
		Range: flink.KeyGroupRange{Count: 128}, ID: "h"}
	inc.Meta = &flink.FileHandle{Path: "meta", Size: j.file(filepath.Join(chk, "meta"), 50), Relative: true}
	for i, s := range shared {
		p := filepath.Join(j.dir, "shared", s)
		inc.Shared = append(inc.Shared, flink.HandleAndLocalPath{LocalPath: fmt.Sprintf("%06d.sst", i),
			Handle: &flink.FileHandle{Path: "file:" + p, Size: j.file(p, 100+i)}})
	}
	for _, s := range private {
		inc.Private = append(inc.Private, flink.HandleAndLocalPath{LocalPath: s,
			Handle: &flink.FileHandle{Path: s, Size: j.file(filepath.Join(chk, s), 30), Relative: true}})
	}
	m := &flink.Metadata{Version: 4, CheckpointID: id, MasterStates: []flink.MasterState{},
		Trailer: []byte{0xAC, 0xED, 0x00, 0x05, 0x70},
		Operators: []*flink.OperatorState{{ID: flink.NewOperatorID(1, id), Parallelism: 1, MaxParallelism: 128,
			Subtasks: []*flink.SubtaskState{{ManagedKeyedState: inc}}}}}
	data, err := m.Encode()
	if err != nil {
		j.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chk, "_metadata"), data, 0o644); err != nil {
		j.t.Fatal(err)
	}
	return chk
}

// generatedIncremental turns the generated fixture
// v5-generated-incremental-absolute-shared (an incremental checkpoint whose
// shared files are absolute s3:// handles) into a checkpoint of a local
// Flink job: its absolute handles point to file:<job>/shared/<name> and
// file:<job>/chk-7/<name>, and every file it references is created.
func generatedIncremental(t *testing.T, job string) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/flink/v5-generated-incremental-absolute-shared/_metadata")
	if err != nil {
		t.Fatal(err)
	}
	m, err := flink.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	chk := filepath.Join(job, "chk-7")
	refs := m.FileRefs()
	for i := range refs {
		r := &refs[i]
		p := filepath.Join(chk, r.Path)
		if !r.Relative {
			_, rest, _ := strings.Cut(r.Path, "/ck/5f0c1e9a3b7d4e2f8a6c9b1d0e3f2a4c/")
			p = filepath.Join(job, filepath.FromSlash(rest))
			if err := r.SetPath("file:"+p, false); err != nil {
				t.Fatal(err)
			}
		}
		flinkJob{t: t}.file(p, int(r.Size))
	}
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chk, "_metadata"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameButPaths checks that relocated differs from orig only in the paths of
// the file handles, all now relative names: walking both, every handle is
// equal once its nested handles are set aside, file handles keep their
// size, and the trailer is byte-identical.
func sameButPaths(t *testing.T, orig, relocated []byte) {
	t.Helper()
	a, err := flink.Decode(orig)
	if err != nil {
		t.Fatal(err)
	}
	b, err := flink.Decode(relocated)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Trailer, b.Trailer) || a.Version != b.Version || a.CheckpointID != b.CheckpointID ||
		!reflect.DeepEqual(a.MasterStates, b.MasterStates) {
		t.Fatal("header, master states or trailer changed")
	}
	type visit struct {
		loc string
		h   flink.Handle
	}
	walk := func(m *flink.Metadata) []visit {
		var out []visit
		m.Walk(func(loc *flink.Location, h flink.Handle) { out = append(out, visit{loc.String(), h}) })
		return out
	}
	va, vb := walk(a), walk(b)
	if len(va) != len(vb) {
		t.Fatalf("%d handles, relocated %d", len(va), len(vb))
	}
	rewritten := 0
	for i := range va {
		x, y := va[i], vb[i]
		if x.loc != y.loc || x.h.Kind() != y.h.Kind() && !(x.h.Kind() == flink.KindFile && y.h.Kind() == flink.KindRelativeFile) {
			t.Fatalf("handle %d: %s %s -> %s %s", i, x.loc, x.h.Kind(), y.loc, y.h.Kind())
		}
		if fx, ok := x.h.(*flink.FileHandle); ok {
			fy := y.h.(*flink.FileHandle)
			if fx.Size != fy.Size || !fy.Relative || strings.Contains(fy.Path, "/") {
				t.Fatalf("%s: %+v -> %+v", x.loc, fx, fy)
			}
			if fx.Path != fy.Path {
				rewritten++
			}
			continue
		}
		if x.h.StateSize() != y.h.StateSize() {
			t.Fatalf("%s: state size changed", x.loc)
		}
		if _, leaf := x.h.(*flink.ByteStreamHandle); leaf && !reflect.DeepEqual(x.h, y.h) {
			t.Fatalf("%s: inline state changed", x.loc)
		}
	}
	// Patching the source's paths gives exactly the relocated bytes.
	ra, rb := a.FileRefs(), b.FileRefs()
	for i := range ra {
		if err := ra[i].SetPath(rb[i].Path, rb[i].Relative); err != nil {
			t.Fatal(err)
		}
	}
	if patched, _ := a.Encode(); !bytes.Equal(patched, relocated) {
		t.Fatal("relocated _metadata differs from the source beyond the rewritten paths")
	}
	if rewritten == 0 {
		t.Fatal("no path was rewritten")
	}
}

func TestFlinkRelocateEndToEnd(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	src := filepath.Join(t.TempDir(), "job")
	orig := generatedIncremental(t, src)
	chk := filepath.Join(src, "chk-7")
	ckpt(t, "inspect", chk, "--verify").want(t, 0)
	m := ckpt(t, "inspect", chk, "--json").want(t, 0).json(t)
	if m["self_contained"] != false {
		t.Fatalf("source has shared/ files, not self-contained: %s", jsonLine(m))
	}

	// Refusals.
	dst := filepath.Join(t.TempDir(), "restored")
	ckpt(t, "relocate", src, dst).want(t, ExitUsage)
	ckpt(t, "relocate", chk, dst, "--all").want(t, ExitUsage)
	ckpt(t, "relocate", chk, dst, "--id", "9").want(t, ExitUsage)
	ckpt(t, "relocate", chk, filepath.Join(dst, "chk-7")).want(t, ExitUsage)
	if r := ckpt(t, "relocate", chk, filepath.Join(chk, "sub")).want(t, ExitUsage); !strings.Contains(r.stderr, "overlaps") {
		t.Fatalf("overlap: %q", r.stderr)
	}

	// A dry run writes nothing.
	r := ckpt(t, "relocate", chk, dst, "--dry-run").want(t, 0)
	if !strings.Contains(r.stdout, "would relocate Flink checkpoint 7") || !strings.Contains(r.stdout, "copy  "+filepath.Join(src, "shared")) {
		t.Fatalf("dry run:\n%s", r.stdout)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatal("dry run wrote something")
	}
	m = ckpt(t, "relocate", chk, dst, "--json", "--read-data").want(t, 0).json(t)
	if m["format"] != "flink" || m["destination"] != filepath.Join(dst, "chk-7") || m["files"] != float64(9) ||
		m["files_copied"] != float64(9) || m["paths_rewritten"] != float64(6) || m["relative_handles"] != float64(10) || m["server_side_copy"] != true {
		t.Fatalf("relocate: %v", m)
	}
	r = ckpt(t, "relocate", chk, dst).want(t, 0)
	if !strings.Contains(r.stdout, "already relocated") {
		t.Fatalf("re-run:\n%s", r.stdout)
	}

	// The source can go: the copy stands alone.
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dst, "chk-7")
	m = ckpt(t, "inspect", moved, "--verify", "--json").want(t, 0).json(t)
	if m["self_contained"] != true || m["problems"] != float64(0) || m["file_count"] != float64(9) {
		t.Fatalf("relocated: %s", jsonLine(m))
	}
	relocated, err := os.ReadFile(filepath.Join(moved, "_metadata"))
	if err != nil {
		t.Fatal(err)
	}
	sameButPaths(t, orig, relocated)

	// A self-contained checkpoint can be copied as a plain directory.
	elsewhere := filepath.Join(t.TempDir(), "x", "chk-7")
	copyTree(t, moved, elsewhere)
	ckpt(t, "inspect", elsewhere, "--read-data").want(t, 0)

	// Another checkpoint at the destination is a conflict (exit 6).
	src2 := filepath.Join(t.TempDir(), "job")
	chk2 := flinkJob{t: t, dir: src2}.checkpoint(7, []string{"z"}, []string{"p"})
	r = ckpt(t, "relocate", chk2, dst).want(t, ExitConflict)
	if !strings.Contains(r.stderr, "holds another checkpoint") {
		t.Fatalf("conflict: %q", r.stderr)
	}
	// A missing source file is named before anything is written (exit 5).
	os.Remove(filepath.Join(src2, "shared", "z"))
	dst2 := filepath.Join(t.TempDir(), "d")
	r = ckpt(t, "relocate", chk2, dst2).want(t, ExitCorrupt)
	if !strings.Contains(r.stderr, filepath.Join(src2, "shared", "z")[1:]+" (missing)") {
		t.Fatalf("missing: %q", r.stderr)
	}
	if _, err := os.Stat(dst2); !os.IsNotExist(err) {
		t.Fatal("relocate wrote before checking the source")
	}
}

// TestFlinkRelocateToServices relocates a local Flink checkpoint to every
// storage backend available (mem always; S3, GCS, Azure under
// scripts/test-services) and verifies it there after deleting the source.
func TestFlinkRelocateToServices(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	for _, be := range storagetest.Backends(t) {
		if be.Name == "file" {
			continue // TestFlinkRelocateEndToEnd
		}
		t.Run(be.Name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "job")
			orig := generatedIncremental(t, src)
			dst := be.Sub("flink/restored")
			m := ckpt(t, "relocate", filepath.Join(src, "chk-7"), dst.URL, "--json").want(t, 0).json(t)
			if m["files_copied"] != float64(9) || m["server_side_copy"] != false {
				t.Fatalf("relocate: %v", m)
			}
			if err := os.RemoveAll(src); err != nil {
				t.Fatal(err)
			}
			moved := be.Sub("flink/restored/chk-7")
			m = ckpt(t, "inspect", moved.URL, "--verify", "--json").want(t, 0).json(t)
			if m["self_contained"] != true || m["problems"] != float64(0) {
				t.Fatalf("relocated: %s", jsonLine(m))
			}
			loc := storagetest.Open(t, moved.URL)
			relocated, err := loc.Bucket.ReadAll(t.Context(), path.Join(loc.Prefix, "_metadata"))
			if err != nil {
				t.Fatal(err)
			}
			sameButPaths(t, orig, relocated)
			ckpt(t, "inspect", be.Sub("flink/restored").URL).want(t, 0)
		})
	}
}

func TestFlinkGCEndToEnd(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	job := filepath.Join(t.TempDir(), "ck", "3f2a")
	j := flinkJob{t: t, dir: job}
	j.checkpoint(1, []string{"a", "b"}, []string{"p1"})
	j.checkpoint(2, []string{"b", "c"}, []string{"p2"})
	j.checkpoint(3, []string{"c", "d"}, []string{"p3"})
	j.file(filepath.Join(job, "shared", "orphan"), 10)
	j.file(filepath.Join(job, "chk-4", "aborted"), 10)
	j.file(filepath.Join(job, "taskowned", "t"), 10)
	later := time.Now().Add(24 * time.Hour)
	run := func(args ...string) run { t.Helper(); return ckptAt(t, later, args...) }

	// Refusals.
	run("gc", job, "--retain", "1", "--delete").want(t, ExitUsage)
	run("gc", job, "--retain", "1", "--delete", "--dry-run", "--yes").want(t, ExitUsage)
	run("gc", job, "--local-dir", t.TempDir(), "--yes").want(t, ExitUsage)
	run("gc", filepath.Join(job, "chk-3"), "--yes").want(t, ExitUsage)
	run("gc", job, "--retain", "0").want(t, ExitUsage)

	// Without --delete: a dry run, whatever --yes says.
	r := run("gc", job, "--retain", "1", "--yes", "--json").want(t, 0)
	m := r.json(t)
	if m["dry_run"] != true || m["format"] != "flink" || m["files_deleted"] != float64(10) || m["orphans_deleted"] != float64(2) ||
		len(m["expired_checkpoints"].([]any)) != 2 || m["taskowned_untouched"] != float64(1) || !strings.Contains(r.stderr, "--delete") {
		t.Fatalf("dry run: %s\n%s", r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(job, "chk-1", "_metadata")); err != nil {
		t.Fatal("the dry run deleted something")
	}
	r = run("gc", job, "--retain", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "would delete "+filepath.Join(job, "shared", "a")) {
		t.Fatalf("dry run without a terminal:\n%s\n%s", r.stdout, r.stderr)
	}
	// --min-age protects everything here when the clock is now.
	m = ckpt(t, "gc", job, "--retain", "1", "--delete", "--yes", "--json").want(t, 0).json(t)
	if m["files_deleted"] != float64(0) || len(m["expired_checkpoints"].([]any)) != 0 {
		t.Fatalf("min-age: %v", m)
	}

	m = run("gc", job, "--retain", "1", "--delete", "--yes", "--json").want(t, 0).json(t)
	for _, k := range []string{"expired_checkpoints", "kept_checkpoints", "files_deleted", "bytes_deleted", "orphans_deleted", "dry_run"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("gc JSON lacks %q: %v", k, m)
		}
	}
	if m["dry_run"] != false || m["files_deleted"] != float64(10) || m["bytes_deleted"] == float64(0) ||
		!reflect.DeepEqual(m["kept_checkpoints"], []any{filepath.Join(job, "chk-3")}) {
		t.Fatalf("gc: %v", m)
	}
	for _, gone := range []string{"chk-1", "chk-2", "chk-4", "shared/a", "shared/b", "shared/orphan"} {
		if _, err := os.Stat(filepath.Join(job, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(job, "taskowned", "t")); err != nil {
		t.Fatalf("taskowned/ touched: %v", err)
	}
	run("inspect", filepath.Join(job, "chk-3"), "--read-data").want(t, 0)
	r = run("gc", job, "--retain", "1", "--delete", "--yes").want(t, 0)
	if !strings.Contains(r.stdout, "deleted 0 objects") {
		t.Fatalf("second gc:\n%s", r.stdout)
	}

	// An unreadable _metadata: nothing is deleted, exit 5, even in a dry run.
	j.checkpoint(5, []string{"c"}, nil)
	os.WriteFile(filepath.Join(job, "chk-5", "_metadata"), []byte{0x49, 0x60, 0x67, 0x2d, 0, 0, 0, 4, 0}, 0o644)
	j.file(filepath.Join(job, "shared", "orphan2"), 10)
	r = run("gc", job, "--delete", "--yes").want(t, ExitCorrupt)
	if !strings.Contains(r.stderr, "chk-5/_metadata") || !strings.Contains(r.stderr, "offset") {
		t.Fatalf("blocked: %q", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(job, "shared", "orphan2")); err != nil {
		t.Fatal("a blocked gc deleted something")
	}
	run("gc", job).want(t, ExitCorrupt)

	// ckpt and Flink jobs are not mixed.
	ckptJob := filepath.Join(t.TempDir(), "ckptjob")
	ckpt(t, "create", "--db", newStore(t), "--to", ckptJob).want(t, 0)
	r = run("gc", job, ckptJob, "--yes").want(t, ExitUsage)
	if !strings.Contains(r.stderr, "not a Flink job directory") {
		t.Fatalf("mixed: %q", r.stderr)
	}
	// A ckpt job is still ckpt's: --delete changes nothing there.
	run("gc", ckptJob, "--yes", "--json").want(t, 0)
	m = run("gc", ckptJob, "--dry-run", "--json").want(t, 0).json(t)
	if _, ok := m["format"]; ok {
		t.Fatalf("ckpt gc JSON changed: %v", m)
	}
}

// realDir is dir with symbolic links resolved, as ckpt names local locations.
func realDir(t *testing.T, dir string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
