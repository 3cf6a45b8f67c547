package cmd

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
	"github.com/ckpt-dev/ckpt/storage/storagetest"
)

// Every command, end to end through the CLI, on every storage backend:
// mem and file always; S3 (MinIO), GCS (fake-gcs-server) and Azure
// (Azurite) under scripts/test-services.
func TestCommandsOnEveryBackend(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	for _, be := range storagetest.Backends(t) {
		if be.Name == "mem" {
			continue // the in-process mem bucket is covered by the core tests
		}
		t.Run(be.Name, func(t *testing.T) {
			db := newStore(t)
			job := be.Sub("jobs").Sub("a").URL
			moved := be.Sub("jobs").Sub("moved").URL
			for i := 0; i < 3; i++ {
				if i > 0 {
					if err := testpebble.Churn(testpebble.V2, db, spec, 0.05, uint64(i)); err != nil {
						t.Fatal(err)
					}
				}
				r := ckpt(t, "create", "--db", db, "--to", job, "--json").want(t, 0)
				if got := r.json(t)["checkpoint_id"].(float64); got != float64(i+1) {
					t.Fatalf("create %d made checkpoint %v", i+1, got)
				}
			}
			want, err := testpebble.Digest(db)
			if err != nil {
				t.Fatal(err)
			}
			chk3 := be.Sub("jobs").Sub("a").Sub("chk-3").URL
			ckpt(t, "inspect", chk3, "--read-data").want(t, 0)
			r := ckpt(t, "inspect", job, "--json").want(t, 0)
			if n := len(r.json(t)["checkpoints"].([]any)); n != 3 {
				t.Fatalf("job has %d checkpoints", n)
			}

			target := filepath.Join(t.TempDir(), "restored")
			r = ckpt(t, "restore", job, target, "--json").want(t, 0)
			if m := r.json(t); m["checkpoint_id"].(float64) != 3 || m["bytes_from_remote"].(float64) == 0 {
				t.Fatalf("restore: %s", r.stdout)
			}
			if got, err := testpebble.Digest(target); err != nil || got != want {
				t.Fatalf("restored %s (%v), want %s", got, err, want)
			}

			r = ckpt(t, "relocate", chk3, moved, "--json").want(t, 0)
			if !strings.Contains(r.stdout, `"checkpoint_id": 3`) {
				t.Fatalf("relocate: %s", r.stdout)
			}
			ckpt(t, "inspect", be.Sub("jobs").Sub("moved").Sub("chk-3").URL, "--read-data").want(t, 0)

			// gc with a clock a day ahead, so that min-age protects nothing.
			r = ckptAt(t, time.Now().Add(24*time.Hour), "gc", job, "--retain", "1", "--yes", "--json").want(t, 0)
			if m := r.json(t); m["files_deleted"].(float64) == 0 || len(m["expired_checkpoints"].([]any)) != 2 {
				t.Fatalf("gc: %s", r.stdout)
			}
			ckpt(t, "inspect", chk3, "--read-data").want(t, 0)
			ckpt(t, "inspect", be.Sub("jobs").Sub("a").Sub("chk-1").URL).want(t, ExitNotFound)
			target2 := filepath.Join(t.TempDir(), "restored2")
			ckpt(t, "restore", be.Sub("jobs").Sub("moved").URL, target2).want(t, 0)
			if got, err := testpebble.Digest(target2); err != nil || got != want {
				t.Fatalf("restored from the relocated copy %s (%v), want %s", got, err, want)
			}
		})
	}
}

// No credential given in a URL parameter or the environment appears in any
// output, log line or JSON field, even when the command fails.
func TestCredentialsNeverPrinted(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	const secret = "s3cr3t-VALUE-never-shown"
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	db := newStore(t)
	for _, args := range [][]string{
		{"create", "--db", db, "--to", "s3://bucket/job?endpoint=http://127.0.0.1:1&region=us-east-1&use_path_style=true&sse_kms_key_id=" + secret, "--json"},
		{"inspect", "s3://bucket/job?endpoint=http://127.0.0.1:1&region=us-east-1&use_path_style=true&token=" + secret, "--json"},
		{"inspect", "azblob://c/job?sas_token=" + secret},
		{"create", "--db", db, "--to", "s3://AKIA:" + secret + "@bucket/job"},
	} {
		r := ckpt(t, args...)
		if r.code == 0 {
			t.Fatalf("%v succeeded against a closed port", args)
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("%v printed the secret:\nstdout: %s\nstderr: %s", args[0], r.stdout, r.stderr)
		}
		if strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("%v: stderr should be one line: %q", args[0], r.stderr)
		}
	}
}

// A store written by Pebble v1.1 at its newest format (what go-ethereum
// writes) goes through create, incremental create and restore on local
// files, and comes back identical.
func TestPebbleV1StoreOnFiles(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	db := filepath.Join(t.TempDir(), "geth-like")
	if err := testpebble.Create(testpebble.V1, db, spec); err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(t.TempDir(), "job")
	ckpt(t, "create", "--db", db, "--to", job).want(t, 0)
	if err := testpebble.Churn(testpebble.V1, db, spec, 0.05, 9); err != nil {
		t.Fatal(err)
	}
	r := ckpt(t, "create", "--db", db, "--to", job, "--json").want(t, 0)
	if m := r.json(t); m["kind"] != "incremental" || m["files_reused"].(float64) == 0 {
		t.Fatalf("incremental create of a v1 store: %s", r.stdout)
	}
	want, err := testpebble.Digest(db)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "restored")
	ckpt(t, "restore", job, target, "--check").want(t, 0)
	if got, err := testpebble.Digest(target); err != nil || got != want {
		t.Fatalf("restored %s (%v), want %s", got, err, want)
	}
}

// restore --claim, then create into another job: the new job's checkpoint
// references the source's shared files and records its lineage; with the
// default (no claim) it references nothing of the source.
func TestClaimThroughTheCLI(t *testing.T) {
	t.Setenv("CKPT_CONFIG", "")
	db := newStore(t)
	root := t.TempDir()
	a := filepath.Join(root, "a")
	ckpt(t, "create", "--db", db, "--to", a).want(t, 0)
	for _, claim := range []bool{true, false} {
		target := filepath.Join(t.TempDir(), "restored")
		args := []string{"restore", a, target}
		if claim {
			args = append(args, "--claim")
		}
		ckpt(t, args...).want(t, 0)
		job := filepath.Join(root, fmt.Sprintf("b-%v", claim))
		r := ckpt(t, "create", "--db", target, "--to", job, "--json").want(t, 0)
		m := r.json(t)
		reused := m["files_reused"].(float64)
		r = ckpt(t, "inspect", filepath.Join(job, "chk-1"), "--json", "--verify").want(t, 0)
		c := r.json(t)
		lineage := c["lineage"].([]any)
		if len(lineage) != 1 || lineage[0].(map[string]any)["claim"] != claim || lineage[0].(map[string]any)["exists"] != true {
			t.Fatalf("claim=%v: lineage %v", claim, lineage)
		}
		if claim && (reused == 0 || c["self_contained"] != false) {
			t.Fatalf("claim: reused %v files, self-contained %v", reused, c["self_contained"])
		}
		if !claim && (reused != 0 || c["self_contained"] != true) {
			t.Fatalf("no claim: reused %v files, self-contained %v", reused, c["self_contained"])
		}
	}
}
