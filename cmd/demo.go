package cmd

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"path/filepath"
	"strings"

	"github.com/ckpt-dev/ckpt/demo"
	"github.com/ckpt-dev/ckpt/storage"
)

type demoOptions struct {
	Dir    string
	Keys   int
	Rounds int
	Keep   bool
}

func newDemoCmd(f *Factory, runF func(context.Context, *demoOptions) error) *cobra.Command {
	opts := &demoOptions{}
	c := &cobra.Command{
		Use:   "demo",
		Short: "Build a Pebble store, checkpoint it incrementally while it changes, and inspect the result",
		Long: `Run ckpt end to end on an embedded default, in a temporary directory: build a
real Pebble store, take incremental checkpoints into a local job location
(keeping a local secondary copy) while changing 5% of the data between
them, inspect the job and verify the newest checkpoint byte by byte, restore
it from the local copy, restore it with --claim so that a second job
continues from it (its checkpoint references the first job's files), collect
the first job's garbage, relocate the second job's checkpoint, delete both
original jobs, and restore from the relocated copy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDemo(cmd.Context(), f, opts)
		},
	}
	c.Flags().StringVar(&opts.Dir, "dir", "", "directory to work in (default: a new temporary directory)")
	c.Flags().IntVar(&opts.Keys, "keys", 200_000, "number of keys in the generated store (256-byte values)")
	c.Flags().IntVar(&opts.Rounds, "rounds", 3, "number of checkpoints to take")
	c.Flags().BoolVar(&opts.Keep, "keep", false, "keep the temporary directory")
	return c
}

func runDemo(ctx context.Context, f *Factory, opts *demoOptions) error {
	if opts.Keys < 100 || opts.Rounds < 1 {
		return usagef("--keys must be at least 100 and --rounds at least 1")
	}
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "ckpt-demo-")
		if err != nil {
			return err
		}
		dir = tmp
		if !opts.Keep {
			defer os.RemoveAll(tmp)
		}
	}
	var steps []map[string]any
	say := func(format string, args ...any) {
		if !f.JSON {
			fmt.Fprintf(f.Out, format+"\n", args...)
		}
	}
	say("ckpt demo in %s\n", dir)
	err := demo.Run(ctx, demo.Options{
		Dir: dir, Keys: opts.Keys, Rounds: opts.Rounds, Now: f.Now, Progress: f.reporter(),
		Step: func(s demo.Step) {
			rec, text := demoStep(dir, s)
			steps = append(steps, rec)
			for _, line := range text {
				say("%s", line)
			}
			if s.Name == "inspect" && !f.JSON {
				printJob(f.Out, &storage.Location{Scheme: storage.SchemeFile}, s.Job)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if f.JSON {
		return writeJSON(f.Out, map[string]any{"version": jsonVersion, "dir": dir, "kept": opts.Keep || opts.Dir != "", "steps": steps})
	}
	if opts.Keep || opts.Dir != "" {
		say("\nleft everything in %s", dir)
	}
	return nil
}

// demoStep describes one step of the demo for people (lines) and for --json
// (a record).
func demoStep(dir string, s demo.Step) (map[string]any, []string) {
	p := func(rel string) string { return filepath.Join(dir, rel) }
	switch s.Name {
	case "build":
		return map[string]any{"step": s.Name, "keys": s.Store.Keys, "dir": s.Store.Dir},
			[]string{fmt.Sprintf("1. built a Pebble store with %d keys in %s", s.Store.Keys, s.Store.Dir)}
	case "churn":
		return map[string]any{"step": s.Name, "changed_keys": s.Store.Changed},
			[]string{fmt.Sprintf("   changed %d keys (%.0f%%)", s.Store.Changed, 100*float64(s.Store.Changed)/float64(s.Store.Keys))}
	case "create", "create-claimed":
		r := s.Checkpoint
		cmdline := fmt.Sprintf("2. ckpt create --db %s --to %s --local-dir %s", p(demo.StoreDir), p(demo.JobDir), p(demo.LocalDir))
		if s.Name == "create-claimed" {
			cmdline = fmt.Sprintf("\n7. changed %d keys, then ckpt create --db %s --to %s", s.Store.Changed, p(demo.ClaimedDir), p(demo.ClaimJobDir))
		}
		return map[string]any{"step": s.Name, "checkpoint_id": r.CheckpointID, "kind": r.Kind,
				"bytes_uploaded": r.BytesUploaded, "bytes_reused": r.BytesReused, "files_uploaded": r.FilesUploaded, "files_reused": r.FilesReused},
			[]string{cmdline, fmt.Sprintf("   chk-%d (%s): uploaded %d files, %s; reused %d files, %s", r.CheckpointID, r.Kind,
				r.FilesUploaded, humanBytes(r.BytesUploaded), r.FilesReused, humanBytes(r.BytesReused))}
	case "inspect":
		return map[string]any{"step": s.Name, "checkpoints": len(s.Job.Checkpoints), "latest_checkpoint_id": s.Job.Latest},
			[]string{fmt.Sprintf("\n3. ckpt inspect %s", p(demo.JobDir))}
	case "verify":
		v := s.Verified
		return map[string]any{"step": s.Name, "checkpoint_id": v.ID, "problems": v.Problems, "total_bytes": v.TotalBytes, "new_bytes": v.NewBytes},
			[]string{fmt.Sprintf("\n4. ckpt inspect %s/chk-%d --read-data", p(demo.JobDir), v.ID),
				fmt.Sprintf("   %d files, %s; new in this checkpoint %s, inherited %s; self-contained: %s; problems: %d",
					len(v.Files), humanBytes(v.TotalBytes), humanBytes(v.NewBytes), humanBytes(v.InheritedBytes), yesNo(v.SelfContained), v.Problems)}
	case "restore", "restore-claim", "restore-moved":
		r := s.Restore
		rec := map[string]any{"step": s.Name, "checkpoint_id": r.CheckpointID, "target": r.Target,
			"files_from_local": r.FilesFromLocal, "bytes_from_local": r.BytesFromLocal,
			"files_from_remote": r.FilesFromRemote, "bytes_from_remote": r.BytesFromRemote, "same_data": s.Same}
		var head string
		switch s.Name {
		case "restore":
			head = fmt.Sprintf("\n5. ckpt restore %s %s --local-dir %s", p(demo.JobDir), r.Target, p(demo.LocalDir))
		case "restore-claim":
			head = fmt.Sprintf("\n6. ckpt restore %s/chk-%d %s --claim   (a second job continues from it)", p(demo.JobDir), r.CheckpointID, r.Target)
		default:
			head = fmt.Sprintf("\n11. ckpt restore %s %s", p(demo.MovedJobDir), r.Target)
		}
		lines := []string{head, fmt.Sprintf("   chk-%d: %s from the local copy (%d files), %s from storage (%d files)",
			r.CheckpointID, humanBytes(r.BytesFromLocal), r.FilesFromLocal, humanBytes(r.BytesFromRemote), r.FilesFromRemote)}
		if s.Name != "restore-claim" {
			lines = append(lines, fmt.Sprintf("   every key and value equals the checkpointed store: %s", yesNo(s.Same)))
		}
		return rec, lines
	case "inspect-claimed":
		v := s.Verified
		return map[string]any{"step": s.Name, "checkpoint_id": v.ID, "self_contained": v.SelfContained, "external_jobs": len(v.ExternalJobs)},
			[]string{fmt.Sprintf("   %s/chk-%d references %s of the first job's files in place: self-contained: %s",
				p(demo.ClaimJobDir), v.ID, humanBytes(v.InheritedBytes), yesNo(v.SelfContained))}
	case "gc":
		r := s.GC
		return map[string]any{"step": s.Name, "files_deleted": r.FilesDeleted, "bytes_deleted": r.BytesDeleted, "orphans_deleted": r.OrphansDeleted},
			[]string{fmt.Sprintf("\n8. ckpt gc %s --retain 1 --min-age 0s --yes", p(demo.JobDir)),
				fmt.Sprintf("   reclaimed %s in %d objects; kept what %s still references", humanBytes(r.BytesDeleted), r.FilesDeleted, p(demo.ClaimJobDir))}
	case "relocate":
		r := s.Relocate
		return map[string]any{"step": s.Name, "files_copied": r.FilesCopied, "bytes_copied": r.BytesCopied, "server_side": r.ServerSide},
			[]string{fmt.Sprintf("\n9. ckpt relocate %s/chk-1 %s", p(demo.ClaimJobDir), p(demo.MovedJobDir)),
				fmt.Sprintf("   copied %d files, %s: the copy references nothing outside %s", r.FilesCopied, humanBytes(r.BytesCopied), p(demo.MovedJobDir))}
	case "delete-originals":
		return map[string]any{"step": s.Name, "removed": s.Removed},
			[]string{fmt.Sprintf("\n10. rm -r %s", strings.Join(s.Removed, " "))}
	}
	return map[string]any{"step": s.Name}, nil
}
