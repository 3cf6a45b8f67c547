package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// restic runs restic on repo with a cache private to the repository.
func (b *Bench) restic(repo, cache string, args ...string) []string {
	return append([]string{"restic", "-q", "-r", repo, "--cache-dir", cache}, args...)
}

// backupTools lists the tools timed for full and incremental backups: the
// local-disk ones, then the S3 ones when S3 is configured.
func (b *Bench) backupTools() []Tool {
	tools := []Tool{
		{
			Name:   "ckpt",
			Dest:   func(r *round) Dest { return DirDest(r.path("ckpt-job")) },
			Backup: func(r *round) []string { return []string{b.ckpt, "create", "-q", "--db", "store", "--to", "ckpt-job"} },
		},
		{
			// With a local copy: unchanged sstables are then not re-read
			// (their digests come from the previous local copy).
			Name: "ckpt --local-dir",
			Dest: func(r *round) Dest { return DirDest(r.path("ckpt-ld-job")) },
			Backup: func(r *round) []string {
				return []string{b.ckpt, "create", "-q", "--db", "store", "--to", "ckpt-ld-job", "--local-dir", "ckpt-ld"}
			},
		},
		{
			Name: "restic",
			Dest: func(r *round) Dest { return DirDest(r.path("restic-repo")) },
			Setup: func(ctx context.Context, r *round) error {
				_, err := b.run.Run(ctx, r.Dir, b.restic("restic-repo", "restic-cache", "init")...)
				return err
			},
			Backup: func(r *round) []string { return b.restic("restic-repo", "restic-cache", "backup", "store") },
		},
		{
			Name:   "rclone sync",
			Dest:   func(r *round) Dest { return DirDest(r.path("rclone")) },
			Backup: func(r *round) []string { return []string{"rclone", "sync", "-q", "store", "rclone"} },
		},
		{
			Name:   Baseline,
			Dest:   func(r *round) Dest { return DirDest(r.path("cp")) },
			Prep:   func(r *round) error { return removeAll(r.path("cp")) },
			Backup: func(r *round) []string { return []string{"cp", "-r", "store", "cp"} },
		},
	}
	if b.s3 == nil {
		return tools
	}
	s := b.s3
	return append(tools,
		Tool{
			Name: "ckpt (s3)",
			Dest: func(r *round) Dest { return S3Dest(s.ckpt(r.Prefix + "/ckpt")) },
			Backup: func(r *round) []string {
				return []string{b.ckpt, "create", "-q", "--db", "store", "--to", s.ckpt(r.Prefix + "/ckpt")}
			},
		},
		Tool{
			Name: "restic (s3)",
			Dest: func(r *round) Dest { return S3Dest(s.ckpt(r.Prefix + "/restic")) },
			Setup: func(ctx context.Context, r *round) error {
				_, err := b.run.Run(ctx, r.Dir, b.restic(s.restic(r.Prefix+"/restic"), "restic-s3-cache", "init")...)
				return err
			},
			Backup: func(r *round) []string {
				return b.restic(s.restic(r.Prefix+"/restic"), "restic-s3-cache", "backup", "store")
			},
		},
		Tool{
			Name: "rclone sync (s3)",
			Dest: func(r *round) Dest { return S3Dest(s.ckpt(r.Prefix + "/rclone")) },
			Backup: func(r *round) []string {
				return []string{"rclone", "sync", "-q", "store", s.rclone(r.Prefix + "/rclone")}
			},
		},
	)
}

// restoreTools lists the restores of the round's last backup.
func (b *Bench) restoreTools() []RestoreTool {
	same := func(t string) string { return t }
	localCopy := func(ctx context.Context, r *round) error {
		if _, err := os.Stat(r.path("ckpt-local")); err == nil {
			return nil
		}
		_, err := b.run.Run(ctx, r.Dir, b.ckpt, "create", "-q", "--db", "store", "--to", "ckpt-local-job", "--local-dir", "ckpt-local")
		return err
	}
	tools := []RestoreTool{
		{
			Name:     "ckpt",
			Argv:     func(r *round, t string) []string { return []string{b.ckpt, "restore", "-q", "ckpt-job", t} },
			Restored: same,
		},
		{
			Name: "ckpt --local-dir",
			// A complete local copy of the store's current state, made
			// untimed by a full checkpoint into a second job.
			Setup: localCopy,
			Argv: func(r *round, t string) []string {
				return []string{b.ckpt, "restore", "-q", "ckpt-local-job", t, "--local-dir", "ckpt-local"}
			},
			Restored: same,
		},
		{
			// The same local copy, its sstables taken by size (no read).
			Name:  "ckpt --local-dir --trust-size",
			Setup: localCopy,
			Argv: func(r *round, t string) []string {
				return []string{b.ckpt, "restore", "-q", "ckpt-local-job", t, "--local-dir", "ckpt-local", "--trust-size"}
			},
			Restored: same,
		},
		{
			Name: "restic",
			Argv: func(r *round, t string) []string {
				return b.restic("restic-repo", "restic-cache", "restore", "latest", "--target", t)
			},
			Restored: func(t string) string { return filepath.Join(t, "store") },
		},
		{
			Name:     "rclone copy",
			Argv:     func(r *round, t string) []string { return []string{"rclone", "copy", "-q", "rclone", t} },
			Restored: same,
		},
		{
			Name:     Baseline,
			Argv:     func(r *round, t string) []string { return []string{"cp", "-r", "cp", t} },
			Restored: same,
		},
	}
	if b.s3 == nil {
		return tools
	}
	s := b.s3
	return append(tools,
		RestoreTool{
			Name: "ckpt (s3)",
			Argv: func(r *round, t string) []string {
				return []string{b.ckpt, "restore", "-q", s.ckpt(r.Prefix + "/ckpt"), t}
			},
			Restored: same,
		},
		RestoreTool{
			Name: "restic (s3)",
			Argv: func(r *round, t string) []string {
				return b.restic(s.restic(r.Prefix+"/restic"), "restic-s3-cache", "restore", "latest", "--target", t)
			},
			Restored: func(t string) string { return filepath.Join(t, "store") },
		},
		RestoreTool{
			Name: "rclone copy (s3)",
			Argv: func(r *round, t string) []string {
				return []string{"rclone", "copy", "-q", s.rclone(r.Prefix + "/rclone"), t}
			},
			Restored: same,
		},
	)
}

// gcTools lists the clean-ups of the gc chain.
func (b *Bench) gcTools() []GCTool {
	keep := fmt.Sprint(b.cfg.GCRetain)
	pristine := filepath.Join(b.work, "gc")
	cpA := func(name string) func(ctx context.Context, r *round) error {
		return func(ctx context.Context, r *round) error {
			if err := removeAll(r.path("gc-" + name)); err != nil {
				return err
			}
			_, err := b.run.Run(ctx, r.Dir, "cp", "-a", filepath.Join(pristine, name), r.path("gc-"+name))
			return err
		}
	}
	tools := []GCTool{
		{
			Name: "ckpt gc",
			Copy: cpA("ckpt"),
			Dest: func(r *round) Dest { return DirDest(r.path("gc-ckpt")) },
			Argv: func(r *round) []string {
				return []string{b.ckpt, "gc", "-q", "gc-ckpt", "--retain", keep, "--min-age", "0s", "--yes"}
			},
			Count: countCkpt,
		},
		{
			Name: "restic forget --prune",
			Copy: cpA("restic"),
			Dest: func(r *round) Dest { return DirDest(r.path("gc-restic")) },
			Argv: func(r *round) []string {
				return b.restic("gc-restic", "gc-restic-cache", "forget", "--keep-last", keep, "--prune")
			},
			Count: countRestic,
		},
	}
	if b.s3 == nil {
		return tools
	}
	s := b.s3
	// The round's copy of the chain on S3 is a server-side rclone copy.
	s3Copy := func(name string) func(ctx context.Context, r *round) error {
		return func(ctx context.Context, r *round) error {
			_, err := b.run.Run(ctx, r.Dir, "rclone", "copy", "-q", s.rclone(b.s3Root+"/gc/"+name), s.rclone(r.Prefix+"/gc-"+name))
			return err
		}
	}
	return append(tools,
		GCTool{
			Name: "ckpt gc (s3)",
			Copy: s3Copy("ckpt"),
			Dest: func(r *round) Dest { return S3Dest(s.ckpt(r.Prefix + "/gc-ckpt")) },
			Argv: func(r *round) []string {
				return []string{b.ckpt, "gc", "-q", s.ckpt(r.Prefix + "/gc-ckpt"), "--retain", keep, "--min-age", "0s", "--yes"}
			},
			Count: countCkpt,
		},
		GCTool{
			Name: "restic forget --prune (s3)",
			Copy: s3Copy("restic"),
			Dest: func(r *round) Dest { return S3Dest(s.ckpt(r.Prefix + "/gc-restic")) },
			Argv: func(r *round) []string {
				return b.restic(s.restic(r.Prefix+"/gc-restic"), "gc-restic-s3-cache", "forget", "--keep-last", keep, "--prune")
			},
			Count: countRestic,
		},
	)
}

// buildGCChain takes GCCheckpoints checkpoints (and restic snapshots) of a
// copy of the store, churning GCChurn of its keys between them, into
// work/gc/{ckpt,restic} and, with S3, under the run's prefix gc/. Rounds
// time gc on copies of it.
func (b *Bench) buildGCChain(ctx context.Context) error {
	dir := filepath.Join(b.work, "gc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := b.run.Run(ctx, dir, "cp", "-a", b.pristine, filepath.Join(dir, "store")); err != nil {
		return err
	}
	var s3ckpt, s3restic string
	if b.s3 != nil {
		s3ckpt, s3restic = b.s3.ckpt(b.s3Root+"/gc/ckpt"), b.s3.restic(b.s3Root+"/gc/restic")
	}
	run := func(argv ...string) error { _, err := b.run.Run(ctx, dir, argv...); return err }
	if err := run(b.restic("restic", "cache", "init")...); err != nil {
		return err
	}
	if b.s3 != nil {
		if err := run(b.restic(s3restic, "s3-cache", "init")...); err != nil {
			return err
		}
	}
	b.logf("gc chain: %d checkpoints, %g %% churn between them", b.cfg.GCCheckpoints, b.cfg.GCChurn*100)
	for i := 0; i < b.cfg.GCCheckpoints; i++ {
		if i > 0 {
			if err := churn(filepath.Join(dir, "store"), b.spec, b.cfg.GCChurn, uint64(1000+i)); err != nil {
				return err
			}
		}
		cmds := [][]string{
			{b.ckpt, "create", "-q", "--db", "store", "--to", "ckpt"},
			b.restic("restic", "cache", "backup", "store"),
		}
		if b.s3 != nil {
			cmds = append(cmds,
				[]string{b.ckpt, "create", "-q", "--db", "store", "--to", s3ckpt},
				b.restic(s3restic, "s3-cache", "backup", "store"))
		}
		if (i+1)%5 == 0 {
			b.logf("gc chain: %d of %d checkpoints taken", i+1, b.cfg.GCCheckpoints)
		}
		for _, c := range cmds {
			if err := run(c...); err != nil {
				return err
			}
		}
	}
	return removeAll(filepath.Join(dir, "store"))
}
