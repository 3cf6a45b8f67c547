package flink

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fixturesEnv names the directory of real Flink _metadata files (never
// committed to this repository). CI sets it to ../shared/flink-fixtures.
const fixturesEnv = "CKPT_FLINK_FIXTURES"

type fixture struct {
	name string // directory name relative to the fixtures root
	data []byte
}

// sharedFixtures returns every _metadata under $CKPT_FLINK_FIXTURES, or
// skips the test when the variable is unset.
func sharedFixtures(t testing.TB) []fixture {
	t.Helper()
	root := os.Getenv(fixturesEnv)
	if root == "" {
		t.Skipf("%s is not set: skipping the real Flink fixtures (set it to the directory holding the vN-*/_metadata fixtures, e.g. ../shared/flink-fixtures)", fixturesEnv)
	}
	var out []fixture
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "_metadata" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		out = append(out, fixture{name: filepath.ToSlash(rel), data: data})
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s=%s: %v", fixturesEnv, root, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s=%s holds no _metadata file", fixturesEnv, root)
	}
	return out
}

// versionFromName returns N for a directory named "vN-...".
func versionFromName(name string) (int32, bool) {
	base := name
	if i := strings.IndexByte(base, '/'); i >= 0 {
		base = base[:i]
	}
	rest, ok := strings.CutPrefix(base, "v")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(num)
	return int32(v), err == nil
}

func TestSharedFixturesRoundTrip(t *testing.T) {
	for _, f := range sharedFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			m, err := Decode(f.data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if v, ok := versionFromName(f.name); ok && m.Version != v {
				t.Errorf("version %d, directory name says %d", m.Version, v)
			}
			out, err := m.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(out, f.data) {
				t.Fatalf("re-encoded file differs from the original at byte %d (len %d vs %d)",
					firstDiff(out, f.data), len(out), len(f.data))
			}
			m2, err := Decode(out)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("Decode(Encode(m)) differs from m")
			}
			if m.Version >= 4 && !bytes.HasPrefix(m.Trailer, javaSerializationHeader) {
				t.Errorf("version %d trailer does not start with AC ED 00 05", m.Version)
			}
			if m.Version < 4 && len(m.Trailer) != 0 {
				t.Errorf("version %d file has %d trailing bytes", m.Version, len(m.Trailer))
			}
			s := m.Summary()
			t.Logf("v%d chk %d: %d operators, %d subtasks (%d finished), %d file refs (%d files), %d inline bytes, handles %v",
				m.Version, m.CheckpointID, s.Operators, s.Subtasks, s.FinishedSubtasks, s.FileRefs, s.Files, s.InlineBytes, s.Handles)
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
