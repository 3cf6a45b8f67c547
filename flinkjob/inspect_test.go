package flinkjob_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/flink"
	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/storage"
)

// fixturesEnv names the directory of real Flink fixtures (never committed
// here); CI sets it to ../shared/flink-fixtures.
const fixturesEnv = "CKPT_FLINK_FIXTURES"

func fixturesRoot(t *testing.T) string {
	t.Helper()
	root := os.Getenv(fixturesEnv)
	if root == "" {
		t.Skipf("%s is not set: skipping the real Flink fixtures (set it to e.g. ../shared/flink-fixtures)", fixturesEnv)
	}
	return root
}

// TestInspectFixtures describes every real _metadata: it decodes, its
// operators and files are accounted for, and every file it references is
// relative, inside its own directory.
func TestInspectFixtures(t *testing.T) {
	root := fixturesRoot(t)
	loc, err := storage.Open(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	s := flinkjob.StoreOf(loc)
	n := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "_metadata" {
			return err
		}
		n++
		key := loc.Prefix + "/" + filepath.ToSlash(strings.TrimPrefix(p, root+"/"))
		det, err := flinkjob.Detect(t.Context(), loc.Bucket, flinkjob.DirOf(key))
		if err != nil || det.Kind != flinkjob.Checkpoint || det.MetadataKey != key {
			t.Errorf("%s: detected %+v, %v", p, det, err)
		}
		r, err := flinkjob.ReadCheckpoint(t.Context(), s, key, flinkjob.Options{})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		sum := r.Snapshot.Metadata.Summary()
		if len(r.Operators) != sum.Operators || len(r.Files) != sum.Files || !r.SelfContained {
			t.Errorf("%s: %d operators, %d files, self-contained %v; summary %+v", p, len(r.Operators), len(r.Files), r.SelfContained, sum)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walking %s: %v (%d files)", root, err, n)
	}
}

// TestVerifyFullDirectory verifies the one complete real checkpoint
// directory, laid out as a Flink job, then with one file gone.
func TestVerifyFullDirectory(t *testing.T) {
	root := fixturesRoot(t)
	w := newFileWorld(t)
	chk := filepath.Join(w.loc.Local, "job", "chk-1")
	copyDir(t, filepath.Join(root, "v5-flink2.0-rocksdb-checkpoint-fulldir"), chk)
	job := flinkjob.Job{Prefix: w.key("job")}
	det, err := flinkjob.Detect(w.ctx, w.loc.Bucket, job.Prefix)
	if err != nil || det.Kind != flinkjob.JobDir {
		t.Fatalf("job detected as %+v, %v", det, err)
	}
	r, err := flinkjob.ReadCheckpoint(w.ctx, w.s, job.MetadataKey(1), flinkjob.Options{Verify: true, ReadData: true})
	if err != nil || r.Problems != 0 || len(r.Files) != 82 || r.Snapshot.Metadata.Operators[1].Name != "Flat Map" {
		t.Fatalf("verify: %v (%d problems, %d files)", err, r.Problems, len(r.Files))
	}
	jr, err := flinkjob.ReadJob(w.ctx, w.s, job, flinkjob.Options{Verify: true})
	if err != nil || jr.Latest != 1 || len(jr.Checkpoints) != 1 || jr.Checkpoints[0].State != flinkjob.Complete {
		t.Fatalf("job: %v %+v", err, jr)
	}
	victim := r.Files[5].Key
	if err := os.Remove("/" + victim); err != nil {
		t.Fatal(err)
	}
	r, err = flinkjob.ReadCheckpoint(w.ctx, w.s, job.MetadataKey(1), flinkjob.Options{Verify: true})
	if !errors.Is(err, flinkjob.ErrVerifyFailed) || !strings.Contains(err.Error(), victim+" (missing)") || r.Problems != 1 {
		t.Fatalf("missing file: %v", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDetect(t *testing.T) {
	w := newWorld(t)
	w.checkpoint(spec{job: "flink/job", id: 7, shared: []string{"s"}, private: []string{"p"}})
	w.put("flink/job/chk-8/x", []byte("in progress"))
	w.put("ckpt/job/chk-2/_metadata", []byte("ckpt-metadata {}"))
	w.put("ckpt/job/shared/x", []byte("x"))
	w.put("flink/fresh/taskowned/x", []byte("x"))
	w.put("flink/fresh/shared/y", []byte("x"))
	w.put("truncated/_metadata", []byte{0x49, 0x60, 0x67, 0x2d, 0})
	cases := map[string]flinkjob.Kind{
		"flink/job":                     flinkjob.JobDir,
		"flink/job/chk-7":               flinkjob.Checkpoint,
		"flink/job/chk-7/_metadata":     flinkjob.Checkpoint,
		"flink/job/chk-8":               flinkjob.NotFlink,
		"flink/fresh":                   flinkjob.JobDir,
		"ckpt/job":                      flinkjob.NotFlink,
		"ckpt/job/chk-2":                flinkjob.NotFlink,
		"nothing/here":                  flinkjob.NotFlink,
		"truncated":                     flinkjob.Checkpoint,
		"flink/job/chk-7/_metadata/sub": flinkjob.NotFlink,
	}
	for prefix, want := range cases {
		d, err := flinkjob.Detect(w.ctx, w.loc.Bucket, prefix)
		if err != nil || d.Kind != want {
			t.Errorf("%s: %+v %v, want kind %d", prefix, d, err, want)
		}
	}
	// --format flink: a ckpt _metadata is read as Flink's (and rejected),
	// a missing one reported missing.
	for prefix, want := range map[string]flinkjob.Detection{
		"ckpt/job/chk-2": {Kind: flinkjob.Checkpoint, MetadataKey: "ckpt/job/chk-2/_metadata"},
		"nothing/chk-4":  {Kind: flinkjob.Checkpoint, MetadataKey: "nothing/chk-4/_metadata"},
		"nothing":        {Kind: flinkjob.JobDir, Job: flinkjob.Job{Prefix: "nothing"}},
	} {
		if d, err := flinkjob.Assume(w.ctx, w.loc.Bucket, prefix); err != nil || d != want {
			t.Errorf("assume %s: %+v %v", prefix, d, err)
		}
	}
	_, err := flinkjob.ReadMetadata(w.ctx, w.loc.Bucket, "ckpt/job/chk-2/_metadata")
	if !errors.Is(err, flinkjob.ErrCorrupt) || !errors.Is(err, flink.ErrNotMetadata) || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("ckpt metadata read as Flink's: %v", err)
	}
	_, err = flinkjob.ReadMetadata(w.ctx, w.loc.Bucket, "truncated/_metadata")
	if !errors.Is(err, flinkjob.ErrCorrupt) || !errors.Is(err, flink.ErrTruncated) || !strings.Contains(err.Error(), "at offset 4") {
		t.Errorf("truncated: %v", err)
	}
	_, err = flinkjob.ReadMetadata(w.ctx, w.loc.Bucket, "nothing/_metadata")
	if !errors.Is(err, flinkjob.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
}
