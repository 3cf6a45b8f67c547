package restore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
)

var spec = testpebble.Spec{Keys: 20000, ValueSize: 100, Seed: 1}

var clock = func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }

func locate(key string) string { return "mem://test/" + key }

// fixture is a job with checkpoints of real Pebble stores and, for each
// checkpoint, the digest of every store at checkpoint time.
type fixture struct {
	b       *blob.Bucket
	job     metadata.Job
	stores  map[string]string // name → directory
	version testpebble.Version
	local   string
	digests map[uint64]map[string]string
}

func newFixture(t *testing.T, v testpebble.Version, local bool, names ...string) *fixture {
	t.Helper()
	if len(names) == 0 {
		names = []string{"default"}
	}
	f := &fixture{b: memblob.OpenBucket(nil), job: metadata.Job{Prefix: "jobs/a"}, stores: map[string]string{},
		version: v, digests: map[uint64]map[string]string{}}
	if local {
		f.local = filepath.Join(t.TempDir(), "local")
	}
	for i, n := range names {
		dir := filepath.Join(t.TempDir(), n)
		s := spec
		s.Seed = uint64(i + 1)
		if err := testpebble.Create(v, dir, s); err != nil {
			t.Fatal(err)
		}
		f.stores[n] = dir
	}
	return f
}

// take checkpoints every store and records their digests.
func (f *fixture) take(t *testing.T) uint64 {
	t.Helper()
	var ss []*checkpoint.Store
	names := f.names()
	for _, n := range names {
		s, err := checkpoint.OpenDir(n, f.stores[n])
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	res, err := checkpoint.Create(context.Background(), f.b, f.job, ss, checkpoint.Options{LocalDir: f.local, Now: clock})
	for _, s := range ss {
		s.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 {
		t.Fatalf("create warnings: %v", res.Warnings)
	}
	d := map[string]string{}
	for _, n := range names {
		if d[n], err = testpebble.Digest(f.stores[n]); err != nil {
			t.Fatal(err)
		}
	}
	f.digests[res.CheckpointID] = d
	return res.CheckpointID
}

func (f *fixture) churn(t *testing.T, seed uint64) {
	t.Helper()
	for _, n := range f.names() {
		if err := testpebble.Churn(f.version, f.stores[n], spec, 0.05, seed); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) names() []string {
	var out []string
	for n := range f.stores {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (f *fixture) meta(t *testing.T, id uint64) *metadata.Checkpoint {
	t.Helper()
	c, err := metadata.Read(context.Background(), f.b, f.job.MetadataKey(id))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) restore(t *testing.T, id uint64, o restore.Options) (*restore.Plan, *restore.Result, error) {
	t.Helper()
	return run(t, f.b, f.job, id, o)
}

func run(t *testing.T, b *blob.Bucket, job metadata.Job, id uint64, o restore.Options) (*restore.Plan, *restore.Result, error) {
	t.Helper()
	if o.Locate == nil {
		o.Locate = locate
	}
	ctx := context.Background()
	p, err := restore.NewPlan(ctx, b, job, id, o)
	if err != nil {
		return nil, nil, err
	}
	r, err := p.Execute(ctx, nil)
	return p, r, err
}

func mustRestore(t *testing.T, f *fixture, id uint64, o restore.Options) *restore.Result {
	t.Helper()
	_, r, err := f.restore(t, id, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkStoreDir checks that dir holds exactly the files of store name of
// checkpoint c (with their content, mode 0644) plus the origin file, and
// that its digest is want. It opens the store, so it must come last.
func checkStoreDir(t *testing.T, dir string, c *metadata.Checkpoint, name, want string) {
	t.Helper()
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("%s: %v %v", dir, fi, err)
	}
	var s *metadata.Store
	for i := range c.Stores {
		if c.Stores[i].Name == name {
			s = &c.Stores[i]
		}
	}
	files := map[string]string{}
	for _, f := range s.Files {
		files[f.Name] = f.SHA256
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == checkpoint.OriginFile {
			continue
		}
		want, ok := files[e.Name()]
		if !ok {
			t.Fatalf("%s: unexpected %s", dir, e.Name())
		}
		info, _ := e.Info()
		if !info.Mode().IsRegular() || info.Mode().Perm() != 0o644 {
			t.Fatalf("%s/%s: mode %v", dir, e.Name(), info.Mode())
		}
		if got := fileSum(t, filepath.Join(dir, e.Name())); got != want {
			t.Fatalf("%s/%s: content differs from the checkpoint", dir, e.Name())
		}
		delete(files, e.Name())
	}
	if len(files) > 0 {
		t.Fatalf("%s lacks %v", dir, files)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.OriginFile)); err != nil {
		t.Fatalf("no origin file: %v", err)
	}
	got, err := testpebble.Digest(dir)
	if err != nil {
		t.Fatalf("restored store does not open: %v", err)
	}
	if got != want {
		t.Fatalf("restored store holds %s, the source had %s", got, want)
	}
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// noLeftovers checks that the parent of target holds nothing of ckpt's.
func noLeftovers(t *testing.T, target string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Dir(target))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".ckpt-") {
			t.Fatalf("leftover %s beside %s", e.Name(), target)
		}
	}
}

// snapshot records every entry under dir (name, type, mode, content hash).
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", strings.TrimPrefix(p, dir), info.Mode())
		if info.Mode().IsRegular() {
			line += " " + fileSum(t, p)
		}
		lines = append(lines, line)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// Acceptance: create → churn → create → restore, for stores written by
// Pebble v2 and v1.1; every key and value equals the source at checkpoint
// time, and the directory holds exactly the checkpoint's files.
func TestRestoreEndToEnd(t *testing.T) {
	for _, v := range []testpebble.Version{testpebble.V2, testpebble.V1} {
		t.Run(v.String(), func(t *testing.T) {
			f := newFixture(t, v, false)
			f.take(t)
			f.churn(t, 3)
			f.take(t)
			for _, id := range []uint64{1, 2, 0} {
				target := filepath.Join(t.TempDir(), "restored")
				r := mustRestore(t, f, id, restore.Options{Target: target, Check: id == 0})
				want := id
				if id == 0 {
					want = 2
				}
				if r.CheckpointID != want || r.FilesFromRemote != r.TotalFiles || r.BytesFromRemote != r.TotalBytes ||
					r.FilesFromLocal != 0 || r.Target != target || len(r.Skipped) != 0 || len(r.Warnings) != 0 || r.Checked != (id == 0) {
					t.Fatalf("chk-%d: %+v", id, r)
				}
				if r.TotalBytes != f.meta(t, want).TotalBytes() {
					t.Fatalf("total bytes %d", r.TotalBytes)
				}
				noLeftovers(t, target)
				checkStoreDir(t, target, f.meta(t, want), "default", f.digests[want]["default"])
			}
		})
	}
}

// Acceptance: with an intact local copy nothing is downloaded; damaged or
// missing local files are fetched, exactly those; local copies of other
// checkpoints count too.
func TestLocalCopyFirst(t *testing.T) {
	f := newFixture(t, testpebble.V2, true)
	f.take(t)
	f.churn(t, 3)
	f.take(t)
	c2 := f.meta(t, 2)

	target := filepath.Join(t.TempDir(), "r")
	r := mustRestore(t, f, 2, restore.Options{Target: target, LocalDir: f.local})
	if r.BytesFromRemote != 0 || r.FilesFromRemote != 0 || r.FilesFromLocal != r.TotalFiles || r.BytesFromLocal != r.TotalBytes {
		t.Fatalf("complete local copy: %+v", r)
	}
	var ssts int
	for _, x := range c2.Stores[0].Files {
		if strings.HasSuffix(x.Name, ".sst") {
			ssts++
		}
	}
	if r.FilesLinked != ssts {
		t.Fatalf("linked %d files, want the %d sstables (%+v)", r.FilesLinked, ssts, r)
	}
	checkStoreDir(t, target, c2, "default", f.digests[2]["default"])

	// Damage the local copy: one SST missing, one corrupt (same size), one
	// truncated, one replaced by a directory, the MANIFEST corrupt. Files
	// are replaced rather than modified in place: local SSTs are hard links
	// to the source store's own.
	dir := filepath.Join(f.local, "chk-2", "default")
	var victims []string
	var victimBytes int64
	for _, x := range c2.Stores[0].Files {
		p := filepath.Join(dir, x.Name)
		switch {
		case strings.HasPrefix(x.Name, "MANIFEST"):
		case strings.HasSuffix(x.Name, ".sst") && len(victims) < 4:
		default:
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		switch len(victims) {
		case 0: // missing
		case 1:
			data[len(data)/2] ^= 0xff
			os.WriteFile(p, data, 0o644)
		case 2:
			os.WriteFile(p, data[:len(data)/2], 0o644)
		case 3:
			os.Mkdir(p, 0o755)
		default:
			data[0] ^= 1
			os.WriteFile(p, data, 0o644)
		}
		victims = append(victims, x.Name)
		victimBytes += x.Size
	}
	if len(victims) != 5 {
		t.Fatalf("victims %v", victims)
	}
	target2 := filepath.Join(t.TempDir(), "r")
	p, r, err := f.restore(t, 2, restore.Options{Target: target2, LocalDir: f.local})
	if err != nil {
		t.Fatal(err)
	}
	var remote []string
	for _, x := range p.Files {
		if x.Source == restore.FromRemote {
			remote = append(remote, x.Name)
		}
	}
	sort.Strings(victims)
	if fmt.Sprint(remote) != fmt.Sprint(victims) || r.BytesFromRemote != victimBytes || r.FilesFromRemote != len(victims) {
		t.Fatalf("fetched %v (%d B), want exactly %v (%d B)", remote, r.BytesFromRemote, victims, victimBytes)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "do not match") {
		t.Fatalf("warnings: %q", r.Warnings)
	}
	checkStoreDir(t, target2, c2, "default", f.digests[2]["default"])

	// The local directory only holds chk-2 (create keeps the newest); chk-1
	// still takes every file chk-2's copy has with the same content.
	c1 := f.meta(t, 1)
	inLocal := map[string]string{}
	for _, x := range c2.Stores[0].Files {
		inLocal[x.Name] = x.SHA256
	}
	for _, v := range victims {
		delete(inLocal, v)
	}
	var wantRemote int64
	for _, x := range c1.Stores[0].Files {
		if inLocal[x.Name] != x.SHA256 {
			wantRemote += x.Size
		}
	}
	target3 := filepath.Join(t.TempDir(), "r")
	r = mustRestore(t, f, 1, restore.Options{Target: target3, LocalDir: f.local})
	if r.BytesFromRemote != wantRemote || r.FilesFromLocal == 0 {
		t.Fatalf("chk-1 from chk-2's local copy: fetched %d B, want %d B (%+v)", r.BytesFromRemote, wantRemote, r)
	}
	checkStoreDir(t, target3, c1, "default", f.digests[1]["default"])

	// A missing local directory is a warning, not an error.
	target4 := filepath.Join(t.TempDir(), "r")
	r = mustRestore(t, f, 2, restore.Options{Target: target4, LocalDir: filepath.Join(t.TempDir(), "nope")})
	if r.FilesFromRemote != r.TotalFiles || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "not used") {
		t.Fatalf("%+v", r)
	}
}

// A local file that changes between planning and execution is not used.
func TestLocalFileChangedAfterPlanning(t *testing.T) {
	f := newFixture(t, testpebble.V2, true)
	f.take(t)
	target := filepath.Join(t.TempDir(), "r")
	ctx := context.Background()
	p, err := restore.NewPlan(ctx, f.b, f.job, 1, restore.Options{Target: target, LocalDir: f.local, Locate: locate})
	if err != nil {
		t.Fatal(err)
	}
	var linked, copied *restore.File
	for i := range p.Files {
		x := &p.Files[i]
		if x.Source != restore.FromLocal {
			t.Fatalf("%s not planned from local", x.Name)
		}
		if x.Link && linked == nil {
			linked = x
		}
		if !x.Link && copied == nil {
			copied = x
		}
	}
	if linked == nil || copied == nil {
		t.Fatal("want a linked and a copied file in the plan")
	}
	for _, x := range []*restore.File{linked, copied} {
		data, _ := os.ReadFile(x.From)
		data[len(data)-1] ^= 0xff
		os.Remove(x.From)
		os.WriteFile(x.From, data, 0o644)
	}
	r, err := p.Execute(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.FilesFromRemote != 2 || len(r.Warnings) != 2 {
		t.Fatalf("%+v", r)
	}
	checkStoreDir(t, target, f.meta(t, 1), "default", f.digests[1]["default"])
}

// Acceptance: an incremental restore keeps the target's matching files,
// fetches the rest and removes extra files.
func TestReuseTarget(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	f.take(t)
	f.churn(t, 3)
	f.take(t)
	target := filepath.Join(t.TempDir(), "r")
	mustRestore(t, f, 1, restore.Options{Target: target})
	os.WriteFile(filepath.Join(target, "extra"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(target, "extradir"), 0o755)

	_, _, err := f.restore(t, 2, restore.Options{Target: target})
	if !errors.Is(err, restore.ErrTargetNotEmpty) || !errors.Is(err, storage.ErrExists) {
		t.Fatalf("non-empty target: %v", err)
	}

	c1, c2 := f.meta(t, 1), f.meta(t, 2)
	old := map[string]string{}
	for _, x := range c1.Stores[0].Files {
		old[x.Name] = x.SHA256
	}
	var reused int
	var fetched int64
	for _, x := range c2.Stores[0].Files {
		if old[x.Name] == x.SHA256 {
			reused++
		} else {
			fetched += x.Size
		}
	}
	r := mustRestore(t, f, 2, restore.Options{Target: target, ReuseTarget: true})
	if r.FilesReused != reused || r.BytesFromRemote != fetched || r.FilesReused == 0 {
		t.Fatalf("reused %d (want %d), fetched %d B (want %d): %+v", r.FilesReused, reused, r.BytesFromRemote, fetched, r)
	}
	noLeftovers(t, target)
	checkStoreDir(t, target, c2, "default", f.digests[2]["default"]) // extra files are gone

	// --force replaces without reusing.
	r = mustRestore(t, f, 1, restore.Options{Target: target, Force: true})
	if r.FilesReused != 0 || r.FilesFromRemote != r.TotalFiles {
		t.Fatalf("%+v", r)
	}
	checkStoreDir(t, target, c1, "default", f.digests[1]["default"])
}

// Acceptance: several stores go to TARGET/<name>; --store picks one, restored
// directly into TARGET.
func TestMultiStore(t *testing.T) {
	f := newFixture(t, testpebble.V2, true, "accounts", "orders")
	f.take(t)
	f.churn(t, 5)
	f.take(t)
	c := f.meta(t, 2)
	target := filepath.Join(t.TempDir(), "r")
	r := mustRestore(t, f, 2, restore.Options{Target: target, LocalDir: f.local})
	if len(r.Stores) != 2 || r.Stores[0].Dir != "accounts" || r.Stores[1].Dir != "orders" || r.BytesFromRemote != 0 {
		t.Fatalf("%+v", r)
	}
	ents, _ := os.ReadDir(target)
	if len(ents) != 2 {
		t.Fatalf("target holds %d entries", len(ents))
	}
	for _, n := range []string{"accounts", "orders"} {
		checkStoreDir(t, filepath.Join(target, n), c, n, f.digests[2][n])
	}

	one := filepath.Join(t.TempDir(), "one")
	r = mustRestore(t, f, 2, restore.Options{Target: one, Store: "orders"})
	if len(r.Stores) != 1 || r.Stores[0].Dir != "." {
		t.Fatalf("%+v", r)
	}
	checkStoreDir(t, one, c, "orders", f.digests[2]["orders"])

	_, _, err := f.restore(t, 2, restore.Options{Target: filepath.Join(t.TempDir(), "x"), Store: "nope"})
	if !errors.Is(err, restore.ErrNoStore) || !errors.Is(err, metadata.ErrNotFound) || !strings.Contains(err.Error(), "accounts, orders") {
		t.Fatalf("unknown store: %v", err)
	}
}

// Acceptance: a job's latest checkpoint that is unreadable or lacks a file
// is passed over for the previous one, and the result says so; --strict
// refuses instead.
func TestFallback(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) *fixture {
		f := newFixture(t, testpebble.V2, false)
		f.take(t)
		f.churn(t, 3)
		f.take(t)
		return f
	}
	newFile := func(t *testing.T, f *fixture) string {
		for _, x := range f.meta(t, 2).Stores[0].Files {
			if x.New && strings.HasSuffix(x.Name, ".sst") {
				k, _ := metadata.Resolve(f.job.CheckpointDir(2), x.Path)
				return k
			}
		}
		t.Fatal("no new sstable in chk-2")
		return ""
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, f *fixture)
		strict error
		reason string
	}{
		{"corrupt metadata", func(t *testing.T, f *fixture) {
			k := f.job.MetadataKey(2)
			data, _ := f.b.ReadAll(ctx, k)
			data[30] ^= 1
			f.b.WriteAll(ctx, k, data, nil)
		}, metadata.ErrCorrupt, "checksum mismatch"},
		{"missing file", func(t *testing.T, f *fixture) {
			f.b.Delete(ctx, newFile(t, f))
		}, inspect.ErrVerifyFailed, "is missing"},
		{"corrupt file", func(t *testing.T, f *fixture) {
			k := newFile(t, f)
			data, _ := f.b.ReadAll(ctx, k)
			data[len(data)/2] ^= 1
			f.b.WriteAll(ctx, k, data, nil)
		}, inspect.ErrVerifyFailed, "checksum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			tc.damage(t, f)
			target := filepath.Join(t.TempDir(), "r")
			_, _, err := f.restore(t, 0, restore.Options{Target: target, Strict: true})
			if !errors.Is(err, tc.strict) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("strict: %v", err)
			}
			if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
				t.Fatal("a failed restore left a target")
			}
			noLeftovers(t, target)
			_, r, err := f.restore(t, 0, restore.Options{Target: target})
			if err != nil {
				t.Fatal(err)
			}
			if r.CheckpointID != 1 || len(r.Skipped) != 1 || r.Skipped[0].CheckpointID != 2 ||
				!strings.Contains(r.Skipped[0].Reason, tc.reason) || len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "chk-2 is unusable") {
				t.Fatalf("fallback: %+v", r)
			}
			checkStoreDir(t, target, f.meta(t, 1), "default", f.digests[1]["default"])
			// Naming the checkpoint never falls back.
			_, _, err = f.restore(t, 2, restore.Options{Target: filepath.Join(t.TempDir(), "x")})
			if !errors.Is(err, tc.strict) {
				t.Fatalf("chk-2 named: %v", err)
			}
		})
	}
	t.Run("nothing usable", func(t *testing.T) {
		f := newFixture(t, testpebble.V2, false)
		f.take(t)
		k := f.job.MetadataKey(1)
		f.b.WriteAll(ctx, k, []byte("garbage"), nil)
		_, _, err := f.restore(t, 0, restore.Options{Target: filepath.Join(t.TempDir(), "x")})
		if !errors.Is(err, metadata.ErrCorrupt) {
			t.Fatal(err)
		}
		_, _, err = run(t, f.b, metadata.Job{Prefix: "nothing"}, 0, restore.Options{Target: filepath.Join(t.TempDir(), "x")})
		if !errors.Is(err, metadata.ErrNotFound) {
			t.Fatal(err)
		}
		_, _, err = f.restore(t, 7, restore.Options{Target: filepath.Join(t.TempDir(), "x")})
		if !errors.Is(err, metadata.ErrNotFound) {
			t.Fatal(err)
		}
	})
}

// Acceptance: the origin file records the source checkpoint and the claim
// mode, and checkpoint.OpenDir reads it back.
func TestClaimAndNoClaim(t *testing.T) {
	f := newFixture(t, testpebble.V2, false, "a", "b")
	f.take(t)
	for _, claim := range []bool{false, true} {
		target := filepath.Join(t.TempDir(), "r")
		r := mustRestore(t, f, 1, restore.Options{Target: target, Claim: claim})
		if r.Claim != claim || r.Location != "mem://test/jobs/a/chk-1" {
			t.Fatalf("%+v", r)
		}
		for _, n := range []string{"a", "b"} {
			s, err := checkpoint.OpenDir(n, filepath.Join(target, n))
			if err != nil {
				t.Fatal(err)
			}
			o := s.Origin
			s.Close()
			want := checkpoint.Origin{Location: "mem://test/jobs/a/chk-1", JobID: f.meta(t, 1).JobID, CheckpointID: 1, Claim: claim}
			if o == nil || *o != want {
				t.Fatalf("origin %+v, want %+v", o, want)
			}
			fi, _ := os.Stat(filepath.Join(target, n, checkpoint.OriginFile))
			if fi.Mode().Perm() != 0o644 {
				t.Fatalf("origin file mode %v", fi.Mode())
			}
		}
	}
}

// --check reads every level; a store whose files match the metadata but do
// not make a Pebble store fails verification and leaves nothing.
func TestCheckAndBrokenStore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, testpebble.V2, false)
	f.take(t)
	target := filepath.Join(t.TempDir(), "r")
	r := mustRestore(t, f, 1, restore.Options{Target: target, Check: true})
	if !r.Checked {
		t.Fatalf("%+v", r)
	}
	// A checkpoint that omits a live table: every file matches its
	// metadata, but the store does not open.
	c := f.meta(t, 1)
	var kept []metadata.File
	dropped := false
	for _, x := range c.Stores[0].Files {
		if !dropped && strings.HasSuffix(x.Name, ".sst") {
			dropped = true
			continue
		}
		if !strings.HasPrefix(x.Path, "../") {
			x.Path = "../chk-1/" + x.Path
		}
		kept = append(kept, x)
	}
	c.Stores[0].Files = kept
	c.ID = 5
	data, err := metadata.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	// chk-5's paths are relative to its own directory, as chk-1's were.
	f.b.WriteAll(ctx, f.job.MetadataKey(5), data, nil)
	for _, check := range []bool{false, true} {
		bad := filepath.Join(t.TempDir(), "bad")
		_, _, err = f.restore(t, 5, restore.Options{Target: bad, Check: check})
		if !errors.Is(err, inspect.ErrVerifyFailed) || !strings.Contains(err.Error(), "does not open") {
			t.Fatalf("broken store: %v", err)
		}
		if _, err := os.Lstat(bad); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("broken store left a target")
		}
		noLeftovers(t, bad)
	}
}

// A failed read is retried; a file that stays unreadable fails the restore.
func TestRetry(t *testing.T) {
	f := newFixture(t, testpebble.V2, false)
	f.take(t)
	inj := &faultInjector{}
	b := inj.wrap(f.b)
	inj.failReads(1)
	target := filepath.Join(t.TempDir(), "r")
	if _, _, err := run(t, b, f.job, 1, restore.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	checkStoreDir(t, target, f.meta(t, 1), "default", f.digests[1]["default"])
	inj.failReads(100)
	target2 := filepath.Join(t.TempDir(), "r")
	_, _, err := run(t, b, f.job, 1, restore.Options{Target: target2, Retries: 1})
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("%v", err)
	}
	noLeftovers(t, target2)
}
