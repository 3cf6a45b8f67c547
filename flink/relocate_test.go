package flink

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRelocateSharedToRelative rewrites the absolute shared files of a
// generated RocksDB incremental checkpoint into relative handles, as
// `ckpt relocate` will after copying them next to _metadata, and checks
// that the output differs from the input exactly in those handles: each
// "02 | i64 size | utf path" becomes "06 | utf name | i64 size".
func TestRelocateSharedToRelative(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(generatedDir, "v5-generated-incremental-absolute-shared", "_metadata"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(orig)
	if err != nil {
		t.Fatal(err)
	}
	before := m.FileRefs()
	expected := bytes.Clone(orig)
	rewritten := map[int]string{} // ref index -> original path
	refs := m.FileRefs()
	for i := range refs {
		r := &refs[i]
		if r.Role() != RoleShared || r.Relative {
			continue
		}
		oldPath, name := r.Path, path.Base(r.Path)
		oldEnc := (&hb{}).i8(TagFile).i64(r.Size).str(oldPath).b
		newEnc := (&hb{}).i8(TagRelativeFile).str(name).i64(r.Size).b
		if n := bytes.Count(expected, oldEnc); n != 1 {
			t.Fatalf("handle of %s found %d times in the input", oldPath, n)
		}
		expected = bytes.Replace(expected, oldEnc, newEnc, 1)
		if err := r.SetPath(name, true); err != nil {
			t.Fatalf("SetPath(%q): %v", name, err)
		}
		if r.Path != name || !r.Relative || r.Kind != KindRelativeFile {
			t.Fatalf("ref not updated: %+v", r)
		}
		rewritten[i] = oldPath
	}
	if len(rewritten) != 4 {
		t.Fatalf("rewrote %d shared handles, want 4", len(rewritten))
	}
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, expected) {
		t.Fatalf("output differs from the expected splice at byte %d", firstDiff(out, expected))
	}
	if len(out) >= len(orig) {
		t.Fatalf("relative names are shorter: %d >= %d bytes", len(out), len(orig))
	}

	// Decoding the output shows the same references, the rewritten ones
	// relative, everything else untouched.
	m2, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	after := m2.FileRefs()
	if len(after) != len(before) {
		t.Fatalf("%d refs after, %d before", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if !reflect.DeepEqual(a.Location, b.Location) || a.Size != b.Size {
			t.Errorf("ref %d moved: %v -> %v", i, b, a)
		}
		if old, ok := rewritten[i]; ok {
			if !a.Relative || a.Path != path.Base(old) || b.Path != old || b.Relative {
				t.Errorf("ref %d: %v -> %v", i, b, a)
			}
		} else if a.Path != b.Path || a.Relative != b.Relative {
			t.Errorf("ref %d changed: %v -> %v", i, b, a)
		}
	}
	// The rewritten file round-trips byte for byte.
	again, err := m2.Encode()
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("rewritten file does not round-trip: %v", err)
	}
	// And rewriting back to absolute restores the original bytes.
	refs = m2.FileRefs()
	for i, old := range rewritten {
		if err := refs[i].SetPath(old, false); err != nil {
			t.Fatal(err)
		}
		if refs[i].Kind != KindFile {
			t.Fatalf("kind %v", refs[i].Kind)
		}
	}
	back, err := m2.Encode()
	if err != nil || !bytes.Equal(back, orig) {
		t.Fatalf("back to absolute: %v, differs at %d", err, firstDiff(back, orig))
	}
}

func TestSetPathErrors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(generatedDir, "v6-generated-all-handles", "_metadata"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	var file, segment *FileRef
	refs := m.FileRefs()
	for i := range refs {
		switch {
		case refs[i].Kind == KindSegmentFile && segment == nil:
			segment = &refs[i]
		case refs[i].Kind == KindFile && file == nil:
			file = &refs[i]
		}
	}
	if file == nil || segment == nil {
		t.Fatal("fixture lacks a file or a segment")
	}
	for _, c := range []struct {
		ref      *FileRef
		path     string
		relative bool
	}{
		{file, "", false},
		{file, "/abs/path", true},
		{file, "s3://bucket/x", true},
		{file, "\xff", false},
		{file, string(make([]byte, 70000)), false},
		{segment, "merged", true},
		{&FileRef{}, "x", false},
	} {
		if err := c.ref.SetPath(c.path, c.relative); err == nil {
			t.Errorf("SetPath(%.20q, %v) on %v succeeded", c.path, c.relative, c.ref.Kind)
		}
	}
	out, err := m.Encode()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("failed SetPath calls changed the file: %v", err)
	}
	// A segment's physical path can be rewritten in place.
	oldSeg := segment.Path
	if err := segment.SetPath("gs://other/merged", false); err != nil {
		t.Fatal(err)
	}
	out, err = m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	oldEnc := (&hb{}).str(oldSeg).b
	newEnc := (&hb{}).str("gs://other/merged").b
	if want := bytes.Replace(data, oldEnc, newEnc, 1); !bytes.Equal(out, want) {
		t.Fatalf("segment rewrite differs at %d", firstDiff(out, want))
	}
}

// TestRealCheckpointDirectory checks the complete Flink 2.0 checkpoint
// directory: every reference is relative and names a file of the
// directory with the recorded size; making every reference absolute and
// then relative again gives back the original bytes.
func TestRealCheckpointDirectory(t *testing.T) {
	var dir string
	for _, f := range sharedFixtures(t) {
		if f.name == "v5-flink2.0-rocksdb-checkpoint-fulldir" {
			dir = filepath.Join(os.Getenv(fixturesEnv), filepath.FromSlash(f.name))
		}
	}
	if dir == "" {
		t.Skip("fixture v5-flink2.0-rocksdb-checkpoint-fulldir not found")
	}
	data, err := os.ReadFile(filepath.Join(dir, "_metadata"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 5 || m.CheckpointID != 2 || len(m.Operators) != 8 {
		t.Fatalf("version %d checkpoint %d operators %d", m.Version, m.CheckpointID, len(m.Operators))
	}
	op := m.Operators[0]
	if op.ID.String() != "1f2b5df5a66154aca61fcb26193792be" || op.Name != "Source: Custom Source" ||
		op.UID != "CheckpointingSource2" || op.Parallelism != 1 || op.MaxParallelism != 4 {
		t.Fatalf("first operator %s %q %q %d/%d", op.ID, op.Name, op.UID, op.Parallelism, op.MaxParallelism)
	}
	refs := m.FileRefs()
	if len(refs) != 82 {
		t.Fatalf("%d refs, want 82", len(refs))
	}
	roles := map[Role]int{}
	for i := range refs {
		r := &refs[i]
		roles[r.Role()]++
		if !r.Relative || r.Kind != KindRelativeFile {
			t.Fatalf("ref %v is not relative", r)
		}
		st, err := os.Stat(filepath.Join(dir, r.Path))
		if err != nil {
			t.Fatalf("ref %v: %v", r, err)
		}
		if st.Size() != r.Size {
			t.Errorf("ref %v: file has %d bytes", r, st.Size())
		}
		if err := r.SetPath("s3://elsewhere/chk-2/"+r.Path, false); err != nil {
			t.Fatal(err)
		}
	}
	if roles[RoleShared] != 0 || roles[RolePrivate] == 0 || roles[RoleMetadata] != 14 {
		t.Errorf("roles %v", roles)
	}
	abs, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(abs)
	if err != nil {
		t.Fatal(err)
	}
	refs = m2.FileRefs()
	for i := range refs {
		if refs[i].Relative {
			t.Fatalf("ref %v still relative", &refs[i])
		}
		if err := refs[i].SetPath(path.Base(refs[i].Path), true); err != nil {
			t.Fatal(err)
		}
	}
	back, err := m2.Encode()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("absolute and back: %v, differs at %d", err, firstDiff(back, data))
	}
}

// TestSharedFixtureFacts checks a few facts read off the real files.
func TestSharedFixtureFacts(t *testing.T) {
	facts := map[string]struct {
		version    int32
		checkpoint int64
		operators  int
		check      func(t *testing.T, m *Metadata)
	}{
		"v2-flink1.6-state-evolution-savepoint":     {2, 108, 2, nil},
		"v3-tests_operatorstate_nonKeyed-flink1.16": {3, 195, 5, nil},
		"v4-flink1.17-hashmap-changelog-checkpoint": {4, 2, 8, func(t *testing.T, m *Metadata) {
			if n := m.Summary().Handles[KindChangelog]; n != 12 {
				t.Errorf("%d changelog handles", n)
			}
		}},
		"v4-flink1.20-rocksdb-checkpoint": {4, 2, 8, func(t *testing.T, m *Metadata) {
			for _, r := range m.FileRefs() {
				if !r.Relative || r.Role() == RoleShared {
					t.Errorf("non-incremental RocksDB checkpoint has %v", &r)
				}
			}
		}},
		"v5-flink2.0-rocksdb-checkpoint": {5, 2, 8, nil},
		"v6-table_stream-exec-correlate_1_correlate-with-literal-agg_savepoint": {6, 1, 13, func(t *testing.T, m *Metadata) {
			if m.Operators[0].Name == "" {
				t.Errorf("version 6 operator without a name")
			}
		}},
	}
	seen := 0
	for _, f := range sharedFixtures(t) {
		want, ok := facts[f.name]
		if !ok {
			continue
		}
		seen++
		m, err := Decode(f.data)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if m.Version != want.version || m.CheckpointID != want.checkpoint || len(m.Operators) != want.operators {
			t.Errorf("%s: version %d checkpoint %d operators %d, want %d %d %d", f.name,
				m.Version, m.CheckpointID, len(m.Operators), want.version, want.checkpoint, want.operators)
		}
		if want.check != nil {
			want.check(t, m)
		}
	}
	if seen != len(facts) {
		t.Errorf("found %d of the %d fixtures with known facts", seen, len(facts))
	}
}
