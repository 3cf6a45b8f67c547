// Command bench compares ckpt with the tools users would pick instead —
// restic, rclone and cp -r — on the same Pebble store, process to process,
// on local disk and (when scripts/test-services provides MinIO) on S3:
//
//	go run ./bench -quick -out "$(mktemp -d)"                     # ~16 MB, 1 round, CI
//	scripts/test-services -- go run ./bench -rounds 3 -out /tmp/b # 1 GiB, 3 rounds, with S3
//
// It builds ckpt once, generates a store with internal/testpebble, and
// times, in rounds that run every tool once each in a rotated order: a full
// backup, incremental backups after 1 %, 5 % and 20 % of the keys changed,
// a restore of the last backup (verified against the store byte for byte),
// and a clean-up of a chain of checkpoints down to the newest few. It writes
// results.md (markdown tables: medians, ranges, ratios to cp -r, bytes
// written), results.json (every sample) and two PNG charts into -out, and
// exits non-zero if any tool fails or any restore differs from the source.
// restic and rclone are installed with apt-get when missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	cfg := Config{}
	flag.IntVar(&cfg.SizeMB, "size-mb", 1024, "store size in MiB")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each runs every tool once per operation")
	flag.BoolVar(&cfg.Quick, "quick", false, "CI mode: 16 MiB store, 1 round, gc of 5 checkpoints keeping 2, no S3, every key of every restore compared")
	flag.StringVar(&cfg.Out, "out", "", "directory for results.md, results.json and the PNG charts (required)")
	flag.StringVar(&cfg.Work, "work", "", "parent of the scratch directory (default $TMPDIR); the scratch directory is removed afterwards unless -keep")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory and S3 objects")
	flag.BoolVar(&cfg.Verbose, "v", false, "print every command")
	flag.BoolVar(&cfg.NoS3, "no-s3", false, "skip the S3 rows even if CKPT_TEST_S3_URL is set")
	flag.IntVar(&cfg.GCCheckpoints, "gc-checkpoints", 20, "checkpoints in the chain gc cleans up")
	flag.IntVar(&cfg.GCRetain, "gc-retain", 3, "checkpoints gc keeps")
	flag.Float64Var(&cfg.GCChurn, "gc-churn", 0.002, "fraction of keys changed between the gc chain's checkpoints")
	flag.BoolVar(&cfg.VerifyKeys, "verify-keys", false, "also open every restored store with Pebble and compare every key (always on with -quick)")
	replot := flag.String("replot", "", "only redraw the charts in this -out directory from its results.json")
	flag.Parse()
	if *replot != "" {
		if err := Replot(*replot); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if cfg.Quick {
		cfg.SizeMB, cfg.Rounds, cfg.GCCheckpoints, cfg.GCRetain, cfg.NoS3, cfg.VerifyKeys = 16, 1, 5, 2, true, true
	}
	if cfg.Out == "" || cfg.Rounds < 1 || cfg.GCRetain < 1 || cfg.GCCheckpoints <= cfg.GCRetain {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench -out DIR [-quick] [-size-mb N] [-rounds N] (see -h)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run sets up the scratch directory, the tools and the environment, runs
// the benchmark and writes the report.
func run(ctx context.Context, cfg Config) error {
	start := time.Now()
	if err := ensureTools(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.Work, "ckpt-bench-")
	if err != nil {
		return err
	}
	work, err = filepath.Abs(work)
	if err != nil {
		return err
	}
	if !cfg.Keep {
		defer os.RemoveAll(work)
	}
	ckptBin := filepath.Join(work, "ckpt")
	if out, err := execOut(ctx, "go", "build", "-o", ckptBin, "."); err != nil {
		return fmt.Errorf("building ckpt (run from the repository root): %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(work, "rclone.conf"), nil, 0o600); err != nil {
		return err
	}
	// AWS_CA_BUNDLE is dropped: every endpoint here is plain HTTP on
	// 127.0.0.1, and rclone's S3 client refuses to start with one set.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	env = append(env, "RESTIC_PASSWORD=ckpt-bench", "RCLONE_CONFIG="+filepath.Join(work, "rclone.conf"))
	b := &Bench{
		cfg:      cfg,
		run:      &Runner{Env: env, Verbose: cfg.Verbose},
		ckpt:     ckptBin,
		work:     work,
		pristine: filepath.Join(work, "pristine"),
		spec:     storeSpec(cfg.SizeMB),
		started:  start,
		s3Root:   fmt.Sprintf("ckpt-bench-%d-%d", os.Getpid(), start.Unix()),
	}
	switch s3url := os.Getenv("CKPT_TEST_S3_URL"); {
	case cfg.NoS3:
		b.notes = append(b.notes, "S3 rows skipped (-no-s3 or -quick).")
	case s3url == "":
		b.notes = append(b.notes, "S3 rows skipped: CKPT_TEST_S3_URL is not set (run under scripts/test-services for them).")
	default:
		if b.s3, err = parseS3(s3url); err != nil {
			return fmt.Errorf("CKPT_TEST_S3_URL: %w", err)
		}
		if !strings.Contains(b.s3.Endpoint, "127.0.0.1") && !strings.Contains(b.s3.Endpoint, "localhost") {
			return fmt.Errorf("CKPT_TEST_S3_URL: the endpoint %q is not on this machine; the benchmark only talks to 127.0.0.1", b.s3.Endpoint)
		}
		b.run.Env = append(b.run.Env, b.s3.rcloneEnv()...)
		port := b.s3.Endpoint[strings.LastIndex(b.s3.Endpoint, ":")+1:]
		b.run.ServerPID = findServer("minio", "127.0.0.1:"+port)
	}
	m := describeMachine(ctx, work)
	m.Load = startLoadSampler(5 * time.Second)
	runErr := b.Run(ctx)
	m.Load.Stop()
	if runErr != nil {
		return runErr
	}
	if b.s3 != nil && !cfg.Keep {
		if _, err := b.run.Run(ctx, work, "rclone", "purge", b.s3.rclone(b.s3Root)); err != nil {
			return err
		}
	}
	if err := b.Report(m, os.Args[1:]); err != nil {
		return err
	}
	b.logf("done; results in %s", cfg.Out)
	return nil
}

// execOut runs a command in the working directory and returns its output.
func execOut(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
