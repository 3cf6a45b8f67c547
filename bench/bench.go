package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ckpt-dev/ckpt/internal/testpebble"
)

// Config is the command line.
type Config struct {
	SizeMB        int
	Rounds        int
	Quick         bool
	Out           string
	Work          string
	Keep          bool
	Verbose       bool
	NoS3          bool
	GCCheckpoints int     // checkpoints in the gc chain
	GCRetain      int     // kept by gc
	GCChurn       float64 // churn between the gc chain's checkpoints
	VerifyKeys    bool    // also compare every key of every restore
}

// churns are the incremental steps: the fraction of keys rewritten before
// each incremental checkpoint. Step 0 is the full checkpoint.
var churns = []float64{0, 0.01, 0.05, 0.20}

// opName names step i of churns.
func opName(i int) string {
	if i == 0 {
		return "full"
	}
	return fmt.Sprintf("incr %g %%", churns[i]*100)
}

// Bench holds one run's state.
type Bench struct {
	cfg      Config
	run      *Runner
	ckpt     string // the ckpt binary
	work     string
	pristine string // the store before any churn
	spec     testpebble.Spec
	s3       *S3
	s3Root   string // S3 prefix of this run
	samples  []Sample
	shape    string // the store's files and bytes, for the report
	started  time.Time
	notes    []string
}

// logf prints progress on stderr.
func (b *Bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %6.1fs: %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// Run builds the store and the gc chain, runs every round and returns the
// samples.
func (b *Bench) Run(ctx context.Context) error {
	b.logf("building a %d MiB store (%d keys)", b.cfg.SizeMB, b.spec.Keys)
	if err := buildStore(b.pristine, b.spec); err != nil {
		return err
	}
	files, err := storeFiles(b.pristine)
	if err != nil {
		return err
	}
	var total int64
	var ssts int
	for _, f := range files {
		total += f.Size
		if f.Shared {
			ssts++
		}
	}
	b.shape = fmt.Sprintf("%s keys, %d files checkpointed (%d sstables), %s", thousands(int64(b.spec.Keys)), len(files), ssts, MB(total))
	b.logf("store: %s", b.shape)
	if err := b.buildGCChain(ctx); err != nil {
		return fmt.Errorf("building the gc chain: %w", err)
	}
	for n := 0; n < b.cfg.Rounds; n++ {
		if err := b.round(ctx, n); err != nil {
			return fmt.Errorf("round %d: %w", n+1, err)
		}
	}
	return nil
}

// rotate returns xs rotated left by n, so that every round starts with a
// different tool.
func rotate[T any](xs []T, n int) []T {
	if len(xs) == 0 {
		return xs
	}
	n %= len(xs)
	return append(append([]T{}, xs[n:]...), xs[:n]...)
}

// indexes returns 0, 1, …, n-1.
func indexes(n int) []int {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	return xs
}

// round runs one round: a full and three incremental backups with every
// tool, every restore, every gc.
func (b *Bench) round(ctx context.Context, n int) error {
	r := &round{N: n, Dir: filepath.Join(b.work, fmt.Sprintf("r%d", n+1)), Prefix: fmt.Sprintf("%s/r%d", b.s3Root, n+1)}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return err
	}
	if _, err := b.run.Run(ctx, b.work, "cp", "-a", b.pristine, r.Store()); err != nil {
		return err
	}
	tools := b.backupTools()
	for _, t := range tools {
		if t.Setup != nil {
			if err := t.Setup(ctx, r); err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
		}
	}
	for step, c := range churns {
		var expected int64
		if c > 0 {
			before, err := storeFiles(r.Store())
			if err != nil {
				return err
			}
			if err := churn(r.Store(), b.spec, c, uint64(100+step)); err != nil {
				return err
			}
			after, err := storeFiles(r.Store())
			if err != nil {
				return err
			}
			ns, priv := increment(before, after)
			expected = ns + priv
			b.logf("round %d: churned %g %% of keys: %s new sstables + %s private files", n+1, c*100, MB(ns), MB(priv))
		}
		for _, i := range rotate(indexes(len(tools)), n+step) {
			t := tools[i]
			if err := b.backup(ctx, r, t, i, opName(step), expected); err != nil {
				return fmt.Errorf("%s %s: %w", opName(step), t.Name, err)
			}
		}
	}
	rts := b.restoreTools()
	for _, i := range rotate(indexes(len(rts)), n) {
		t := rts[i]
		if err := b.restore(ctx, r, t, i); err != nil {
			return fmt.Errorf("restore %s: %w", t.Name, err)
		}
	}
	gts := b.gcTools()
	for _, i := range rotate(indexes(len(gts)), n) {
		t := gts[i]
		if err := b.gc(ctx, r, t, i); err != nil {
			return fmt.Errorf("gc %s: %w", t.Name, err)
		}
	}
	if b.cfg.Keep {
		return nil
	}
	if b.s3 != nil {
		if _, err := b.run.Run(ctx, r.Dir, "rclone", "purge", b.s3.rclone(r.Prefix)); err != nil {
			return err
		}
	}
	return removeAll(r.Dir)
}

// backup times one backup of the live store by t.
func (b *Bench) backup(ctx context.Context, r *round, t Tool, order int, op string, expected int64) error {
	if t.Prep != nil {
		if err := t.Prep(r); err != nil {
			return err
		}
	}
	d := t.Dest(r)
	before, err := d.List(ctx)
	if err != nil {
		return err
	}
	tm, err := b.run.Timed(ctx, r.Dir, t.Backup(r)...)
	if err != nil {
		return err
	}
	after, err := d.List(ctx)
	if err != nil {
		return err
	}
	s := Sample{Op: op, Tool: t.Name, Round: r.N, Order: order, Wall: tm.Wall, CPU: tm.CPU, ServerCPU: tm.ServerCPU,
		Written: Written(before, after), Expected: expected}
	b.add(s)
	return nil
}

// restore times one restore by t into a fresh directory and verifies it.
func (b *Bench) restore(ctx context.Context, r *round, t RestoreTool, order int) error {
	if t.Setup != nil {
		if err := t.Setup(ctx, r); err != nil {
			return err
		}
	}
	target := r.path("restored")
	if err := removeAll(target); err != nil {
		return err
	}
	tm, err := b.run.Timed(ctx, r.Dir, t.Argv(r, target)...)
	if err != nil {
		return err
	}
	written, err := DirDest(target).List(ctx)
	if err != nil {
		return err
	}
	b.add(Sample{Op: "restore", Tool: t.Name, Round: r.N, Order: order, Wall: tm.Wall, CPU: tm.CPU, ServerCPU: tm.ServerCPU,
		Written: written.Total()})
	if err := verifyRestore(r.Store(), t.Restored(target), b.cfg.VerifyKeys); err != nil {
		return fmt.Errorf("verifying the restore: %w", err)
	}
	return removeAll(target)
}

// gc times one clean-up by t of a fresh copy of the gc chain and checks
// that exactly GCRetain checkpoints remain.
func (b *Bench) gc(ctx context.Context, r *round, t GCTool, order int) error {
	if err := t.Copy(ctx, r); err != nil {
		return err
	}
	d := t.Dest(r)
	before, err := d.List(ctx)
	if err != nil {
		return err
	}
	if got := t.Count(before); got != b.cfg.GCCheckpoints {
		return fmt.Errorf("the chain holds %d checkpoints, want %d", got, b.cfg.GCCheckpoints)
	}
	tm, err := b.run.Timed(ctx, r.Dir, t.Argv(r)...)
	if err != nil {
		return err
	}
	after, err := d.List(ctx)
	if err != nil {
		return err
	}
	if got := t.Count(after); got != b.cfg.GCRetain {
		return fmt.Errorf("%d checkpoints left, want %d", got, b.cfg.GCRetain)
	}
	op := fmt.Sprintf("gc %d → %d", b.cfg.GCCheckpoints, b.cfg.GCRetain)
	b.add(Sample{Op: op, Tool: t.Name, Round: r.N, Order: order, Wall: tm.Wall, CPU: tm.CPU, ServerCPU: tm.ServerCPU,
		Written: Written(before, after), Freed: before.Total() - after.Total()})
	return nil
}

func (b *Bench) add(s Sample) {
	b.samples = append(b.samples, s)
	extra := ""
	if s.Expected > 0 {
		extra = fmt.Sprintf(" (new sstables + private: %s)", MB(s.Expected))
	}
	if s.Freed != 0 {
		extra = fmt.Sprintf(" freed %s", MB(s.Freed))
	}
	b.logf("round %d: %-9s %-18s %6.2f s wall %6.2f s CPU, wrote %s%s", s.Round+1, s.Op, s.Tool,
		s.Wall.Seconds(), s.CPU.Seconds(), MB(s.Written), extra)
}
