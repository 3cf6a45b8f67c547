package cmd

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

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
them, then inspect the job and verify the newest checkpoint byte by byte.`,
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
			switch {
			case s.Store != nil && s.Name == "build":
				say("1. built a Pebble store with %d keys in %s", s.Store.Keys, s.Store.Dir)
				steps = append(steps, map[string]any{"step": "build", "keys": s.Store.Keys, "dir": s.Store.Dir})
			case s.Store != nil:
				say("   changed %d keys (%.0f%%)", s.Store.Changed, 100*float64(s.Store.Changed)/float64(s.Store.Keys))
				steps = append(steps, map[string]any{"step": "churn", "changed_keys": s.Store.Changed})
			case s.Checkpoint != nil:
				r := s.Checkpoint
				say("2. ckpt create --db %s/%s --to %s/%s --local-dir %s/%s", dir, demo.StoreDir, dir, demo.JobDir, dir, demo.LocalDir)
				say("   chk-%d (%s): uploaded %d files, %s; reused %d files, %s", r.CheckpointID, r.Kind,
					r.FilesUploaded, humanBytes(r.BytesUploaded), r.FilesReused, humanBytes(r.BytesReused))
				steps = append(steps, map[string]any{"step": "create", "checkpoint_id": r.CheckpointID, "kind": r.Kind,
					"bytes_uploaded": r.BytesUploaded, "bytes_reused": r.BytesReused, "files_uploaded": r.FilesUploaded, "files_reused": r.FilesReused})
			case s.Job != nil:
				say("\n3. ckpt inspect %s/%s", dir, demo.JobDir)
				if !f.JSON {
					printJob(f.Out, &storage.Location{Scheme: storage.SchemeFile}, s.Job)
				}
				steps = append(steps, map[string]any{"step": "inspect", "checkpoints": len(s.Job.Checkpoints), "latest_checkpoint_id": s.Job.Latest})
			case s.Verified != nil:
				v := s.Verified
				say("\n4. ckpt inspect %s/%s/chk-%d --read-data", dir, demo.JobDir, v.ID)
				say("   %d files, %s; new in this checkpoint %s, inherited %s; self-contained: %s; problems: %d",
					len(v.Files), humanBytes(v.TotalBytes), humanBytes(v.NewBytes), humanBytes(v.InheritedBytes), yesNo(v.SelfContained), v.Problems)
				steps = append(steps, map[string]any{"step": "verify", "checkpoint_id": v.ID, "problems": v.Problems, "total_bytes": v.TotalBytes, "new_bytes": v.NewBytes})
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
