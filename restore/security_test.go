package restore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
)

// craft builds `_metadata` bytes by hand, bypassing Encode's validation,
// with a valid checksum trailer (see metadata/format.go for the layout).
func craft(t *testing.T, stores []map[string]any) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"checkpoint_id": 1, "job_id": "0123456789abcdef", "created_at": "2026-11-22T12:00:00Z",
		"kind": "full", "stores": stores,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through the struct so that the bytes are in the canonical
	// form Decode insists on (field order, no spacing).
	var c metadata.Checkpoint
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if body, err = json.Marshal(&c); err != nil {
		t.Fatal(err)
	}
	data := append([]byte("ckpt-metadata 1\n"), body...)
	data = append(data, '\n')
	sum := sha256.Sum256(data)
	return append(data, []byte("sha256 "+hex.EncodeToString(sum[:])+"\n")...)
}

func file(name, path string) map[string]any {
	return map[string]any{"name": name, "path": path, "size": 1, "sha256": strings.Repeat("ab", 32)}
}

func store(name string, files ...map[string]any) map[string]any {
	return map[string]any{"name": name, "format_major_version": 13, "files": files}
}

// Acceptance: metadata naming files outside the target, or objects outside
// the storage root, is rejected and nothing is written anywhere.
func TestHostileMetadata(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		stores []map[string]any
		decode bool // Decode itself rejects it
	}{
		{"dotdot name", []map[string]any{store("default", file("../../x", "default/x"))}, true},
		{"absolute name", []map[string]any{store("default", file("/etc/x", "default/x"))}, true},
		{"slash in name", []map[string]any{store("default", file("a/b", "default/x"))}, true},
		{"absolute path", []map[string]any{store("default", file("000001.sst", "/etc/passwd"))}, true},
		{"dotdot store", []map[string]any{store("..", file("000001.sst", "default/x"))}, true},
		{"dotdot inside path", []map[string]any{store("default", file("000001.sst", "default/../../x"))}, true},
		{"path escaping the root", []map[string]any{store("default", file("000001.sst", "../../../../../../etc/passwd"))}, false},
		{"names equal under case folding", []map[string]any{store("default", file("000001.SST", "default/a"), file("000001.sst", "default/b"))}, false},
		{"stores equal under case folding", []map[string]any{store("A", file("000001.sst", "A/a")), store("a", file("000001.sst", "a/a"))}, false},
		{"origin file name", []map[string]any{store("default", file("CKPT-ORIGIN", "default/a"))}, false},
		// Names are printable ASCII, so no two can differ only by Unicode
		// normalisation (NFC "é" against NFD "e" + U+0301), and none can
		// hold a NUL or exceed a file name's 255 bytes.
		{"names equal under Unicode normalisation", []map[string]any{store("default", file("caf\u00e9.sst", "default/a"), file("cafe\u0301.sst", "default/b"))}, true},
		{"NUL in name", []map[string]any{store("default", file("000001.sst\x00x", "default/a"))}, true},
		{"name over 255 bytes", []map[string]any{store("default", file(strings.Repeat("a", 252)+".sst", "default/a"))}, true},
		{"store name over 64 bytes", []map[string]any{store(strings.Repeat("s", 65), file("000001.sst", "x/a"))}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := craft(t, tc.stores)
			_, derr := metadata.Decode(data)
			if tc.decode != (derr != nil) {
				t.Fatalf("Decode: %v", derr)
			}
			b := memblob.OpenBucket(nil)
			job := metadata.Job{Prefix: "jobs/a"}
			b.WriteAll(ctx, job.MetadataKey(1), data, nil)
			for _, s := range tc.stores {
				for _, f := range s["files"].([]map[string]any) {
					if k, err := metadata.Resolve(job.CheckpointDir(1), f["path"].(string)); err == nil {
						b.WriteAll(ctx, k, []byte("x"), nil)
					}
				}
			}
			parent := t.TempDir()
			sentinel := filepath.Join(parent, "x")
			os.WriteFile(sentinel, []byte("keep"), 0o600)
			target := filepath.Join(parent, "deep", "er", "target")
			os.MkdirAll(filepath.Dir(target), 0o755)
			for _, id := range []uint64{1, 0} {
				_, _, err := run(t, b, job, id, restore.Options{Target: target})
				if !errors.Is(err, metadata.ErrCorrupt) {
					t.Fatalf("want corrupt metadata, got %v", err)
				}
			}
			var all []string
			filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
				all = append(all, strings.TrimPrefix(p, parent))
				return nil
			})
			if strings.Join(all, " ") != " /deep /deep/er /x" {
				t.Fatalf("something was written: %v", all)
			}
			if data, _ := os.ReadFile(sentinel); string(data) != "keep" {
				t.Fatal("sentinel changed")
			}
		})
	}
	// Resolve itself refuses to climb out of the root.
	if _, err := metadata.Resolve("jobs/a/chk-1", "../../../../x"); !errors.Is(err, metadata.ErrOutsideRoot) {
		t.Fatalf("Resolve: %v", err)
	}
}

// untouched checks that an outside file still has its content and a single
// link (it was neither written nor hard-linked into the restore).
func untouched(t *testing.T, p string, want []byte) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil || string(data) != string(want) {
		t.Fatalf("%s changed: %v", p, err)
	}
	fi, _ := os.Lstat(p)
	if n := fi.Sys().(*syscall.Stat_t).Nlink; n != 1 {
		t.Fatalf("%s has %d links: it was linked into the restore", p, n)
	}
}

// Acceptance: symbolic links planted in the local directory or the target,
// even ones named like sstables and pointing at files with the right
// content, are never followed.
func TestSymlinksNeverFollowed(t *testing.T) {
	f := newFixture(t, testpebble.V2, true)
	f.take(t)
	c := f.meta(t, 1)
	var sst metadata.File
	for _, x := range c.Stores[0].Files {
		if strings.HasSuffix(x.Name, ".sst") {
			sst = x
			break
		}
	}
	outside := t.TempDir()
	local := filepath.Join(f.local, "chk-1", "default")
	content, _ := os.ReadFile(filepath.Join(local, sst.Name))
	bait := filepath.Join(outside, sst.Name)
	os.WriteFile(bait, content, 0o644)

	// In the local directory: a symlinked file and a symlinked checkpoint
	// directory, both pointing outside.
	os.Remove(filepath.Join(local, sst.Name))
	os.Symlink(bait, filepath.Join(local, sst.Name))
	os.Symlink(outside, filepath.Join(f.local, "chk-7"))
	target := filepath.Join(t.TempDir(), "r")
	p, r, err := f.restore(t, 1, restore.Options{Target: target, LocalDir: f.local})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range p.Files {
		if x.Name == sst.Name && x.Source != restore.FromRemote {
			t.Fatalf("%s taken from %s", x.Name, x.From)
		}
	}
	if r.FilesFromRemote != 1 {
		t.Fatalf("%+v", r)
	}
	untouched(t, bait, content)
	if fi, _ := os.Lstat(filepath.Join(target, sst.Name)); !fi.Mode().IsRegular() {
		t.Fatal("restored a symlink")
	}

	// In the target, with --reuse-target.
	os.Remove(filepath.Join(target, sst.Name))
	os.Symlink(bait, filepath.Join(target, sst.Name))
	os.Symlink(outside, filepath.Join(target, "subdir"))
	r = mustRestore(t, f, 1, restore.Options{Target: target, ReuseTarget: true})
	if r.FilesFromRemote != 1 || r.FilesReused != r.TotalFiles-1 {
		t.Fatalf("%+v", r)
	}
	untouched(t, bait, content)
	if _, err := os.Lstat(filepath.Join(outside, sst.Name)); err != nil {
		t.Fatal("removing the old target followed a symlink")
	}
	checkStoreDir(t, target, c, "default", f.digests[1]["default"])
}

// Acceptance: unusable targets are refused with ErrBadTarget (a usage
// error), and nothing is written.
func TestBadTargets(t *testing.T) {
	f := newFixture(t, testpebble.V2, true)
	f.take(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o755)
	link := filepath.Join(dir, "link")
	os.Symlink(real, link)
	afile := filepath.Join(dir, "file")
	os.WriteFile(afile, []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "job"), 0o755)
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	cases := []struct {
		name string
		o    restore.Options
		want error
		say  string
	}{
		{"symlink", restore.Options{Target: link}, restore.ErrBadTarget, "symbolic link"},
		{"file", restore.Options{Target: afile}, restore.ErrBadTarget, "not a directory"},
		{"no parent", restore.Options{Target: filepath.Join(dir, "nope", "r")}, restore.ErrBadTarget, "does not exist"},
		{"root", restore.Options{Target: "/"}, restore.ErrBadTarget, "no parent"},
		{"inside the source", restore.Options{Target: filepath.Join(dir, "job", "r"), SourceDir: filepath.Join(dir, "job")}, restore.ErrBadTarget, "overlaps"},
		{"containing the source", restore.Options{Target: full, Force: true, SourceDir: filepath.Join(full, "job")}, restore.ErrBadTarget, "overlaps"},
		{"containing the local dir", restore.Options{Target: filepath.Dir(f.local), Force: true, LocalDir: f.local}, restore.ErrBadTarget, "local directory"},
		{"not empty", restore.Options{Target: full}, restore.ErrTargetNotEmpty, "holds 1 entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, dir)
			_, _, err := f.restore(t, 1, tc.o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("%v", err)
			}
			if tc.want == restore.ErrBadTarget && !errors.Is(err, storage.ErrBadLocation) {
				t.Fatalf("%v does not match storage.ErrBadLocation", err)
			}
			if snapshot(t, dir) != before {
				t.Fatal("something was written")
			}
		})
	}
	// An empty existing directory is fine and keeps its place.
	mustRestore(t, f, 1, restore.Options{Target: real})
	checkStoreDir(t, real, f.meta(t, 1), "default", f.digests[1]["default"])
}

// Restored files are 0644 and directories 0755 whatever the umask.
func TestModesIgnoreUmask(t *testing.T) {
	f := newFixture(t, testpebble.V2, true, "a", "b")
	f.take(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	target := filepath.Join(t.TempDir(), "r")
	mustRestore(t, f, 1, restore.Options{Target: target})
	target2 := filepath.Join(t.TempDir(), "r")
	mustRestore(t, f, 1, restore.Options{Target: target2, LocalDir: f.local})
	syscall.Umask(old)
	for _, tg := range []string{target, target2} {
		for _, n := range []string{"a", "b"} {
			checkStoreDir(t, filepath.Join(tg, n), f.meta(t, 1), n, f.digests[1][n])
		}
		if fi, _ := os.Stat(tg); fi.Mode().Perm() != 0o755 {
			t.Fatalf("%s: %v", tg, fi.Mode())
		}
	}
}
