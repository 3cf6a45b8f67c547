package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
)

func TestGCEndToEnd(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	db := newStore(t)
	job := filepath.Join(t.TempDir(), "job")
	local := filepath.Join(t.TempDir(), "local")
	for i := 0; i < 3; i++ {
		if i > 0 {
			if err := testpebble.Churn(testpebble.V2, db, spec, 0.05, uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		ckpt(t, "create", "--db", db, "--to", job, "--local-dir", local).want(t, 0)
	}
	// Refusals.
	r := ckpt(t, "gc", job, "--retain", "1").want(t, ExitUsage)
	if !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("no-terminal refusal should mention --yes: %q", r.stderr)
	}
	ckpt(t, "gc", job, "--retain", "0", "--yes").want(t, ExitUsage)
	ckpt(t, "gc", job, "--keep-within", "-3h", "--yes").want(t, ExitUsage)
	ckpt(t, "gc", filepath.Join(job, "chk-1"), "--yes").want(t, ExitUsage)
	ckpt(t, "gc", filepath.Join(t.TempDir(), "nothing"), "--yes").want(t, ExitNotFound)

	// The clock is fixed well after the objects were written, so that
	// min-age does not protect them.
	later := time.Now().Add(24 * time.Hour)
	run := func(args ...string) run {
		t.Helper()
		return ckptAt(t, later, args...)
	}
	// Temporary files of writes killed midway (never objects), one in a
	// kept checkpoint's directory: old by the clock, so swept.
	temps := []string{filepath.Join(job, "shared", ".ckpt-tmp-killed1"), filepath.Join(job, "chk-3", ".ckpt-tmp-killed2")}
	for _, p := range temps {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r = run("gc", job, "--retain", "1", "--dry-run", "--json", "--local-dir", local).want(t, 0)
	m := r.json(t)
	if m["dry_run"] != true || m["files_deleted"].(float64) == 0 || len(m["expired_checkpoints"].([]any)) != 2 || m["temp_files_deleted"] != float64(2) {
		t.Fatalf("dry run: %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(job, "chk-1", "_metadata")); err != nil {
		t.Fatal("dry run deleted something")
	}
	r = run("gc", job, "--retain", "1", "--yes", "--json", "--local-dir", local).want(t, 0)
	m = r.json(t)
	for _, k := range []string{"expired_checkpoints", "kept_checkpoints", "files_deleted", "bytes_deleted", "orphans_deleted", "dry_run"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("gc JSON lacks %q: %s", k, r.stdout)
		}
	}
	if m["dry_run"] != false || m["files_deleted"].(float64) == 0 || m["bytes_deleted"].(float64) == 0 || m["temp_files_deleted"] != float64(2) {
		t.Fatalf("gc: %s", r.stdout)
	}
	for _, p := range temps {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("temporary file %s not swept: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(job, "chk-1")); !os.IsNotExist(err) {
		t.Fatalf("expired chk-1 still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(local, "chk-2")); !os.IsNotExist(err) {
		t.Fatalf("local copy of expired chk-2 still there: %v", err)
	}
	ckpt(t, "inspect", filepath.Join(job, "chk-3"), "--read-data").want(t, 0)
	r = run("gc", job, "--retain", "1", "--yes").want(t, 0)
	if !strings.Contains(r.stdout, "deleted 0 objects") {
		t.Fatalf("second gc should find nothing:\n%s", r.stdout)
	}
}

func TestDurationFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute, "0s": 0} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1h", "-2d", "d", "7x", "1e400d"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "36h", "1.5d", "-1h", "", "1e9d", "NaNd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("%q gave a negative duration %v", s, d)
		}
	})
}
