package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
)

type createOptions struct {
	DB       string
	Stores   []string
	To       string
	Full     bool
	Parallel int
	LocalDir string
}

func newCreateCmd(f *Factory, runF func(context.Context, *createOptions) error) *cobra.Command {
	opts := &createOptions{}
	c := &cobra.Command{
		Use:   "create --db DIR --to JOB",
		Short: "Take an incremental checkpoint of Pebble stores into a job location",
		Long: `Take a consistent checkpoint of one or more Pebble stores that no other
process has open, and commit it as the next chk-<N> of the job location.

Shared files (sstables, blob files) are uploaded to the job's shared/ only if
the job's latest checkpoint does not already hold them; MANIFEST, OPTIONS,
marker and WAL files go to chk-<N>/<store>/. _metadata is written last and
only if absent: it is the commit point. The source store is never modified.

To checkpoint a store that your application keeps open, use the Go API
(package checkpoint, FromDB) from that application.`,
		Example: `  ckpt create --db ./data/db --to s3://bucket/jobs/orders
  ckpt create --store accounts=./a --store orders=./o --to /backups/job1 --local-dir /var/ckpt-local`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runCreate(cmd.Context(), f, opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.DB, "db", "", "directory of the Pebble store to checkpoint (stored under the name \"default\")")
	fl.StringArrayVar(&opts.Stores, "store", nil, "`NAME=DIR` of a store to include (repeatable, for several stores in one checkpoint)")
	fl.StringVar(&opts.To, "to", "", "job location to write the checkpoint into (URL or path)")
	fl.BoolVar(&opts.Full, "full", false, "reuse no file of the job's latest checkpoint")
	fl.IntVar(&opts.Parallel, "parallel", checkpoint.DefaultParallel, "number of concurrent uploads")
	fl.StringVar(&opts.LocalDir, "local-dir", "", "also keep a local secondary copy of the checkpoint in this directory")
	return c
}

// storeArgs turns --db and --store into (name, dir) pairs.
func (o *createOptions) storeArgs() ([][2]string, error) {
	var out [][2]string
	if o.DB != "" {
		out = append(out, [2]string{"default", o.DB})
	}
	for _, s := range o.Stores {
		name, dir, ok := strings.Cut(s, "=")
		if !ok || name == "" || dir == "" {
			return nil, usagef("--store %q: want NAME=DIR", s)
		}
		if err := metadata.ValidStoreName(name); err != nil {
			return nil, usagef("--store %q: %v", s, err)
		}
		out = append(out, [2]string{name, dir})
	}
	if len(out) == 0 {
		return nil, usagef("nothing to checkpoint: give --db DIR or --store NAME=DIR")
	}
	return out, nil
}

func runCreate(ctx context.Context, f *Factory, opts *createOptions) error {
	if opts.To == "" {
		return usagef("--to JOB is required")
	}
	if opts.Parallel < 1 {
		return usagef("--parallel must be at least 1")
	}
	args, err := opts.storeArgs()
	if err != nil {
		return err
	}
	loc, err := f.Open(ctx, opts.To)
	if err != nil {
		return err
	}
	defer loc.Close()
	kind, job, _ := metadata.ParseLocation(loc.Prefix)
	if kind != metadata.LocationJob {
		return usagef("--to %s names a checkpoint; give the job location that holds it", loc.Display)
	}
	var stores []*checkpoint.Store
	defer func() {
		for _, s := range stores {
			_ = s.Close()
		}
	}()
	for _, a := range args {
		s, err := checkpoint.OpenDir(a[0], a[1])
		if err != nil {
			return err
		}
		stores = append(stores, s)
	}
	origin, err := originOf(ctx, f, loc, stores)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := checkpoint.Create(ctx, loc.Bucket, job, stores, checkpoint.Options{
		Full: opts.Full, Parallel: opts.Parallel, LocalDir: opts.LocalDir,
		Now: f.Now, Progress: f.reporter(), Origin: origin,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("checkpointing into %s: %w", loc.Display, err)
	}
	for _, w := range res.Warnings {
		f.warn("%s", w)
	}
	where := keyDisplay(loc, job.CheckpointDir(res.CheckpointID))
	if f.JSON {
		return writeJSON(f.Out, map[string]any{
			"version":            jsonVersion,
			"checkpoint_id":      res.CheckpointID,
			"location":           where,
			"kind":               res.Kind,
			"base_checkpoint_id": res.BaseID,
			"files_uploaded":     res.FilesUploaded,
			"bytes_uploaded":     res.BytesUploaded,
			"files_reused":       res.FilesReused,
			"bytes_reused":       res.BytesReused,
			"total_files":        res.TotalFiles,
			"total_bytes":        res.TotalBytes,
			"duration_ms":        time.Since(start).Milliseconds(),
			"local_copy":         res.LocalCopy,
			"warnings":           nonNil(res.Warnings),
		})
	}
	base := ""
	if res.BaseID != 0 {
		base = fmt.Sprintf(" on chk-%d", res.BaseID)
	}
	fmt.Fprintf(f.Out, "committed checkpoint %d (%s%s) at %s\n", res.CheckpointID, res.Kind, base, where)
	fmt.Fprintf(f.Out, "uploaded %d files, %s; reused %d files, %s; %d files, %s in all, in %s\n",
		res.FilesUploaded, humanBytes(res.BytesUploaded), res.FilesReused, humanBytes(res.BytesReused),
		res.TotalFiles, humanBytes(res.TotalBytes), time.Since(start).Round(time.Millisecond))
	if res.LocalCopy != "" {
		fmt.Fprintf(f.Out, "local copy at %s\n", res.LocalCopy)
	}
	return nil
}

// originOf turns the origin recorded in restored stores (ckpt restore
// writes it) into the lineage of the new checkpoint. A claimed source can be
// referenced only in the job's own bucket; elsewhere the checkpoint is full.
func originOf(ctx context.Context, f *Factory, loc *storage.Location, stores []*checkpoint.Store) (*checkpoint.OriginRef, error) {
	o := stores[0].Origin
	if o == nil {
		return nil, nil
	}
	for _, s := range stores[1:] {
		if s.Origin == nil || *s.Origin != *o {
			f.warn("the stores were restored from different checkpoints; recording no lineage")
			return nil, nil
		}
	}
	ref := &checkpoint.OriginRef{JobID: o.JobID, CheckpointID: o.CheckpointID, Claim: o.Claim}
	src, err := f.Open(ctx, o.Location)
	if err != nil {
		f.warn("the origin %s recorded in the store cannot be opened (%v); recording its ids only", storage.Redact(o.Location), err)
		return ref, nil
	}
	defer src.Close()
	if kind, _, _ := metadata.ParseLocation(src.Prefix); kind != metadata.LocationCheckpoint {
		f.warn("the origin %s recorded in the store is not a checkpoint location; recording its ids only", src.Display)
		return ref, nil
	}
	if !loc.SameBucket(src) {
		if o.Claim {
			f.warn("the store was restored with --claim from %s, another bucket: this checkpoint cannot reference its files and is a full one", src.Display)
		}
		return ref, nil
	}
	ref.Dir = strings.TrimSuffix(src.Prefix, "/"+metadata.MetadataName)
	return ref, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
