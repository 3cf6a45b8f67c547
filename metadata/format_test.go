package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() *Checkpoint {
	return &Checkpoint{
		ID:        7,
		JobID:     "0123456789abcdef0123456789abcdef",
		CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Kind:      KindIncremental,
		BaseID:    6,
		Lineage:   &Lineage{Path: "../../other/chk-3", JobID: "fedcba9876543210", CheckpointID: 3, Claim: true},
		Stores: []Store{
			{Name: "z", FormatMajorVersion: 16, Files: []File{{Name: "OPTIONS-000003", Path: "z/OPTIONS-000003", Size: 10, SHA256: strings.Repeat("a", 64), New: true}}},
			{Name: "default", FormatMajorVersion: 24, Files: []File{
				{Name: "000010.sst", Path: "../shared/000010-" + strings.Repeat("b", 32) + ".sst", Size: 1000, SHA256: strings.Repeat("b", 64)},
				{Name: "MANIFEST-000001", Path: "default/MANIFEST-000001", Size: 99, SHA256: strings.Repeat("c", 64), New: true},
				{Name: "000004.sst", Path: "../../other/shared/000004-" + strings.Repeat("d", 32) + ".sst", Size: 5, SHA256: strings.Repeat("d", 64)},
			}},
		},
	}
}

func TestRoundTripAndDeterminism(t *testing.T) {
	a, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("Encode is not deterministic")
	}
	c, err := Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stores[0].Name != "default" || c.Stores[0].Files[0].Name != "000004.sst" {
		t.Fatalf("not sorted: %+v", c.Stores)
	}
	again, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, again) {
		t.Fatalf("decode/encode changed bytes:\n%s\n%s", a, again)
	}
	if c.TotalBytes() != 1114 || c.FileCount() != 4 {
		t.Fatalf("totals: %d bytes %d files", c.TotalBytes(), c.FileCount())
	}
	if !c.CreatedAt.Equal(sample().CreatedAt) || c.Lineage == nil || !c.Lineage.Claim {
		t.Fatalf("fields lost: %+v", c)
	}
}

// Every single-byte alteration and every truncation must be detected.
func TestDetectsEveryAlterationAndTruncation(t *testing.T) {
	data, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		for _, delta := range []byte{1, 0x80} {
			mut := bytes.Clone(data)
			mut[i] ^= delta
			if _, err := Decode(mut); err == nil {
				t.Fatalf("flipping byte %d (%q) went undetected", i, data[i])
			}
		}
	}
	for n := 0; n < len(data); n++ {
		_, err := Decode(data[:n])
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncation to %d bytes: got %v, want ErrCorrupt", n, err)
		}
	}
}

func TestNewerVersionRefused(t *testing.T) {
	data, _ := Encode(sample())
	newer := bytes.Replace(data, []byte("ckpt-metadata 1\n"), []byte("ckpt-metadata 2\n"), 1)
	_, err := Decode(newer)
	if !errors.Is(err, ErrNewerVersion) {
		t.Fatalf("got %v, want ErrNewerVersion", err)
	}
	if !strings.Contains(err.Error(), "upgrade ckpt") {
		t.Fatalf("error does not tell the user what to do: %v", err)
	}
}

// reseal re-computes the trailer after editing the body, so that validation
// (not the checksum) is what rejects the input.
func reseal(t *testing.T, c *Checkpoint, edit func(string) string) []byte {
	t.Helper()
	data, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(data), "\n", 3)
	body := edit(lines[1])
	return []byte(sealForTest(lines[0] + "\n" + body + "\n"))
}

func TestRejectsBadPathsAndFields(t *testing.T) {
	cases := []struct {
		name, from, to string
	}{
		{"absolute", `"path":"default/MANIFEST-000001"`, `"path":"/etc/passwd"`},
		{"empty", `"path":"default/MANIFEST-000001"`, `"path":""`},
		{"dot", `"path":"default/MANIFEST-000001"`, `"path":"."`},
		{"dot segment", `"path":"default/MANIFEST-000001"`, `"path":"default/./MANIFEST-000001"`},
		{"inner dotdot", `"path":"default/MANIFEST-000001"`, `"path":"default/../../x"`},
		{"only dotdot", `"path":"default/MANIFEST-000001"`, `"path":"../.."`},
		{"backslash", `"path":"default/MANIFEST-000001"`, `"path":"default\\\\MANIFEST"`},
		{"nul", `"path":"default/MANIFEST-000001"`, `"path":"default/a\u0000b"`},
		{"double slash", `"path":"default/MANIFEST-000001"`, `"path":"default//MANIFEST-000001"`},
		{"name with slash", `"name":"MANIFEST-000001"`, `"name":"../MANIFEST-000001"`},
		{"name dotdot", `"name":"MANIFEST-000001"`, `"name":".."`},
		{"negative size", `"size":99`, `"size":-1`},
		{"absurd size", `"size":99`, `"size":9223372036854775807`},
		{"bad sha", `"sha256":"cccc`, `"sha256":"zzzz`},
		{"bad kind", `"kind":"incremental"`, `"kind":"partial"`},
		{"zero id", `"checkpoint_id":7,"job_id"`, `"checkpoint_id":0,"job_id"`},
		{"unknown field", `"kind":"incremental"`, `"kind":"incremental","surprise":1`},
		{"bad store name", `"name":"z"`, `"name":"_meta"`},
		{"duplicate store", `"name":"z"`, `"name":"default"`},
		{"base not older", `"base_checkpoint_id":6`, `"base_checkpoint_id":9`},
		{"re-cased key", `"kind":"incremental"`, `"KIND":"incremental"`},
		{"spacing", `"kind":"incremental"`, `"kind": "incremental"`},
		{"trailing brace", `]}]}`, `]}]}}`},
		{"reordered keys", `"checkpoint_id":7,"job_id":"0123456789abcdef0123456789abcdef"`, `"job_id":"0123456789abcdef0123456789abcdef","checkpoint_id":7`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := reseal(t, sample(), func(body string) string {
				if !strings.Contains(body, tc.from) {
					t.Fatalf("sample body lacks %s", tc.from)
				}
				return strings.Replace(body, tc.from, tc.to, 1)
			})
			if _, err := Decode(data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
	// The unedited reseal decodes, so the cases above fail for their edit.
	if _, err := Decode(reseal(t, sample(), func(s string) string { return s })); err != nil {
		t.Fatal(err)
	}
}

func TestResolveAndRel(t *testing.T) {
	cases := []struct {
		dir, rel, want string
		err            bool
	}{
		{"jobs/a/chk-3", "default/MANIFEST-1", "jobs/a/chk-3/default/MANIFEST-1", false},
		{"jobs/a/chk-3", "../shared/x.sst", "jobs/a/shared/x.sst", false},
		{"jobs/a/chk-3", "../../b/shared/x.sst", "jobs/b/shared/x.sst", false},
		{"jobs/a/chk-3", "../../../x", "x", false},
		{"jobs/a/chk-3", "../../../../x", "", true},
		{"chk-1", "../../x", "", true},
		{"", "../x", "", true},
		{"chk-1", "../shared/x", "shared/x", false},
	}
	for _, tc := range cases {
		got, err := Resolve(tc.dir, tc.rel)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q, err=%v", tc.dir, tc.rel, got, err, tc.want, tc.err)
		}
		if err == nil {
			if back := Rel(tc.dir, got); back != tc.rel && tc.rel != "../../../x" {
				t.Errorf("Rel(%q, %q) = %q, want %q", tc.dir, got, back, tc.rel)
			}
			if again, _ := Resolve(tc.dir, Rel(tc.dir, got)); again != got {
				t.Errorf("Resolve(Rel) round trip: %q != %q", again, got)
			}
		}
	}
}

func TestParseLocation(t *testing.T) {
	cases := []struct {
		in   string
		kind LocationKind
		job  string
		id   uint64
	}{
		{"data/job1", LocationJob, "data/job1", 0},
		{"data/job1/chk-12", LocationCheckpoint, "data/job1", 12},
		{"data/job1/chk-12/_metadata", LocationCheckpoint, "data/job1", 12},
		{"chk-3", LocationCheckpoint, "", 3},
		{"chk-03", LocationJob, "chk-03", 0},
		{"", LocationJob, "", 0},
	}
	for _, tc := range cases {
		k, j, id := ParseLocation(tc.in)
		if k != tc.kind || j.Prefix != tc.job || id != tc.id {
			t.Errorf("ParseLocation(%q) = %v %q %d", tc.in, k, j.Prefix, id)
		}
	}
}

func TestSharedName(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	if got := SharedName("000123.sst", sum); got != "000123-"+sum[:32]+".sst" {
		t.Fatal(got)
	}
	if SharedName("000123.sst", sum) == SharedName("000123.sst", strings.Repeat("cd", 32)) {
		t.Fatal("different content, same shared name")
	}
}

func FuzzDecode(f *testing.F) {
	data, _ := Encode(sample())
	f.Add(data)
	f.Add([]byte("ckpt-metadata 1\n{}\n"))
	f.Add([]byte(sealForTest("ckpt-metadata 1\n{\"checkpoint_id\":1}\n")))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Decode(in)
		if err != nil {
			return
		}
		out, err := Encode(c)
		if err != nil {
			t.Fatalf("decoded but cannot encode: %v", err)
		}
		c2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded output does not decode: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the value")
		}
	})
}

func TestRelDir(t *testing.T) {
	for _, tc := range [][3]string{
		{"a/b", "a/c/d", "../c/d"},
		{"a/b", "a/b", "."},
		{"", "x/y", "x/y"},
		{"x/y", "", "../.."},
		{"jobs/b", "jobs/a/chk-3", "../a/chk-3"},
	} {
		if got := RelDir(tc[0], tc[1]); got != tc[2] {
			t.Errorf("RelDir(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}
