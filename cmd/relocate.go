package cmd

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/relocate"
	"github.com/ckpt-dev/ckpt/storage"
)

type relocateOptions struct {
	Source   string
	Dest     string
	All      bool
	ID       uint64
	DryRun   bool
	ReadData bool
	Parallel int
	Format   string
}

func newRelocateCmd(f *Factory, runF func(context.Context, *relocateOptions) error) *cobra.Command {
	opts := &relocateOptions{}
	c := &cobra.Command{
		Use:   "relocate SRC_CHECKPOINT DST_JOB | relocate SRC_JOB DST_JOB --all",
		Short: "Copy a checkpoint, or a whole job, to another location, self-contained",
		Long: `Copy a checkpoint (or, with --all, every checkpoint of a job) into the job
location DST_JOB (the same bucket, another bucket or another storage service)
so that the copy references only objects under DST_JOB, by relative paths:
files the source keeps in any job's shared/ (its own, or another job's after a
restore with claim) go to DST_JOB/shared/, the others to DST_JOB/chk-<N>/.
Chain links to other jobs are cut; the source is only read. A checkpoint
keeps its id unless --id gives another; an existing checkpoint at DST_JOB is
never overwritten.

Within one bucket objects are copied server-side; otherwise they are
streamed, in parallel. The source is checked before anything is written
(sizes; checksums with --read-data), every object is verified at the
destination after copying, and _metadata is written last: an interrupted
relocation is not a checkpoint, and running the same command again skips
what was already copied and finishes. --dry-run prints the plan (objects,
bytes, chain links cut) and changes nothing.

A Flink checkpoint (a chk-<N> or savepoint directory holding Flink's
_metadata; --format auto detects it) is copied to DST_JOB/<its directory
name> with every file it references, wherever it lies in the source bucket
(its own directory, the job's shared/, other jobs'), flat in that one
directory, and its _metadata is rewritten so that every file is named
relative to it: a self-contained checkpoint Flink can restore from its new
path (flink run -s DST_JOB/chk-<N>). Only the paths of file handles change;
file-merging segment files are copied once and named by their new absolute
URI (not possible for Azure destinations). Flink records no checksums: files
are checked by size, and --read-data compares each copy with its source.
--all and --id apply to ckpt checkpoints only.`,
		Example: `  ckpt relocate s3://bucket/jobs/b/chk-12 s3://bucket/jobs/b-standalone
  ckpt relocate /backups/job1/chk-7 gs://archive/job1 --read-data
  ckpt relocate s3://bucket/jobs/b s3://other/jobs/b --all --dry-run --json
  ckpt relocate s3://old/flink/3f2a…/chk-42 s3://new/flink/restored --dry-run`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Source, opts.Dest = args[0], args[1]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRelocate(cmd.Context(), f, opts)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&opts.All, "all", false, "relocate every checkpoint of the job SRC (sharing files at the destination)")
	fl.Uint64Var(&opts.ID, "id", 0, "give the relocated checkpoint this id (default: keep its id)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&opts.ReadData, "read-data", false, "also check checksums: of the source before copying, and of the destination after")
	fl.IntVar(&opts.Parallel, "parallel", relocate.DefaultParallel, "number of concurrent copies")
	fl.StringVar(&opts.Format, "format", formatAuto, "checkpoint format: auto (detect Flink's _metadata), ckpt or flink")
	return c
}

func runRelocate(ctx context.Context, f *Factory, opts *relocateOptions) error {
	if opts.Parallel < 1 {
		return usagef("--parallel must be at least 1")
	}
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	if opts.All && opts.ID != 0 {
		return usagef("--id gives one checkpoint a new id; it cannot be used with --all")
	}
	srcLoc, err := f.Open(ctx, opts.Source)
	if err != nil {
		return err
	}
	defer srcLoc.Close()
	if d, ok, err := detectFlink(ctx, srcLoc, opts.Format); ok || err != nil {
		if err != nil {
			return fmt.Errorf("relocating %s: %w", srcLoc.Display, err)
		}
		return runFlinkRelocate(ctx, f, srcLoc, d, opts)
	}
	dstLoc, err := f.Open(ctx, opts.Dest)
	if err != nil {
		return err
	}
	defer dstLoc.Close()

	kind, srcJob, srcID := metadata.ParseLocation(srcLoc.Prefix)
	switch {
	case kind == metadata.LocationCheckpoint && opts.All:
		return usagef("%s names a checkpoint; --all takes the job location that holds it", srcLoc.Display)
	case kind == metadata.LocationJob && !opts.All:
		return usagef("%s names a job; give one of its checkpoints (JOB/chk-N) or --all", srcLoc.Display)
	}
	dkind, dstJob, _ := metadata.ParseLocation(dstLoc.Prefix)
	if dkind != metadata.LocationJob {
		return usagef("%s names a checkpoint; give the job location to relocate into", dstLoc.Display)
	}
	srcBucket, dstBucket := srcLoc.Bucket, dstLoc.Bucket
	if srcLoc.SameBucket(dstLoc) {
		if relocate.Overlaps(srcJob, dstJob) {
			return usagef("%s is inside the source job %s; choose a destination outside it", dstLoc.Display, keyDisplay(srcLoc, srcJob.Prefix))
		}
		dstBucket = srcBucket // server-side copies
	}
	src := relocate.Source{Bucket: srcBucket, Job: srcJob, All: opts.All}
	if !opts.All {
		src.IDs = []uint64{srcID}
	}
	dst := relocate.Destination{Bucket: dstBucket, Job: dstJob, ID: opts.ID}
	ropts := relocate.Options{ReadData: opts.ReadData, Parallel: opts.Parallel, Now: f.Now, Progress: f.reporter()}

	plan, err := relocate.NewPlan(ctx, src, dst, ropts)
	if err != nil {
		return relocateError(srcLoc, err)
	}
	out := relocateOutput{f: f, src: srcLoc, dst: dstLoc, srcJob: srcJob, dstJob: dstJob, all: opts.All}
	if opts.DryRun {
		return out.render(plan.Result(), plan.Copies(), true)
	}
	start := time.Now()
	res, err := plan.Execute(ctx, f.reporter())
	if err != nil {
		return relocateError(srcLoc, err)
	}
	out.elapsed = time.Since(start)
	return out.render(res, nil, false)
}

func relocateError(src *storage.Location, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	err = fmt.Errorf("relocating %s: %w", src.Display, err)
	switch {
	case errors.Is(err, relocate.ErrDestinationExists):
		return fmt.Errorf("%w (give the checkpoint another id with --id, or choose another destination)", err)
	case errors.Is(err, relocate.ErrReservationLost):
		return fmt.Errorf("%w (a gc took the relocation for abandoned; run the same command again)", err)
	}
	return err
}

// relocateOutput renders a relocation's result (or, with copies, its plan).
type relocateOutput struct {
	f              *Factory
	src, dst       *storage.Location
	srcJob, dstJob metadata.Job
	all            bool
	elapsed        time.Duration
}

func (o *relocateOutput) render(r *relocate.Result, copies []relocate.Copy, dry bool) error {
	if o.f.JSON {
		return writeJSON(o.f.Out, o.json(r, copies, dry))
	}
	w := o.f.Out
	how := "streamed"
	if r.ServerSide {
		how = "server-side copy"
	}
	if dry {
		fmt.Fprintf(w, "plan (dry run, nothing was changed): %d checkpoint(s) from %s, %s\n", len(r.Checkpoints), o.sourceDisplay(r), how)
	}
	for _, c := range r.Checkpoints {
		verb := "relocated"
		switch {
		case dry:
			verb = "would relocate"
		case c.Done:
			verb = "already relocated"
		}
		fmt.Fprintf(w, "%s chk-%d to %s: %d files, %s\n", verb, c.SourceID, keyDisplay(o.dst, c.Dir), c.Files, humanBytes(c.Bytes))
		for _, l := range c.LinksCut {
			fmt.Fprintf(w, "  cut %s\n", o.linkText(l))
		}
	}
	for _, id := range r.Incomplete {
		fmt.Fprintf(w, "skipped chk-%d of the source: incomplete (no _metadata)\n", id)
	}
	copied, skipped := "copied", "skipped"
	if dry {
		copied, skipped = "to copy", "already there"
	}
	fmt.Fprintf(w, "%s %d files, %s; %s %d files, %s", copied, r.FilesCopied, humanBytes(r.BytesCopied), skipped, r.FilesSkipped, humanBytes(r.BytesSkipped))
	if !dry {
		fmt.Fprintf(w, " (%s) in %s", how, o.elapsed.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	for _, c := range copies {
		if c.Skip {
			fmt.Fprintf(w, "  keep  %s (%d bytes)\n", keyDisplay(o.dst, c.Dst), c.Size)
		} else {
			fmt.Fprintf(w, "  copy  %s -> %s (%d bytes)\n", keyDisplay(o.src, c.Src), keyDisplay(o.dst, c.Dst), c.Size)
		}
	}
	return nil
}

func (o *relocateOutput) sourceDisplay(r *relocate.Result) string {
	if o.all || len(r.Checkpoints) != 1 {
		return keyDisplay(o.src, o.srcJob.Prefix)
	}
	return keyDisplay(o.src, o.srcJob.CheckpointDir(r.Checkpoints[0].SourceID))
}

func (o *relocateOutput) linkText(l relocate.Link) string {
	if l.Kind == relocate.LinkLineage {
		where := "(location unknown)"
		if l.Key != "" {
			where = keyDisplay(o.src, l.Key)
		}
		return fmt.Sprintf("lineage link to %s (chk-%d of job %s)", where, l.CheckpointID, l.JobID)
	}
	return fmt.Sprintf("references to %d files, %s, in %s (copied in)", l.Files, humanBytes(l.Bytes), keyDisplay(o.src, l.Key))
}

func (o *relocateOutput) linkJSON(id uint64, l relocate.Link) map[string]any {
	m := map[string]any{"checkpoint_id": id, "kind": string(l.Kind)}
	if l.Key != "" {
		m["location"] = keyDisplay(o.src, l.Key)
	}
	if l.Kind == relocate.LinkLineage {
		m["job_id"], m["source_checkpoint_id"] = l.JobID, l.CheckpointID
	} else {
		m["files"], m["bytes"] = l.Files, l.Bytes
	}
	return m
}

func (o *relocateOutput) json(r *relocate.Result, copies []relocate.Copy, dry bool) map[string]any {
	links := []map[string]any{}
	cps := []map[string]any{}
	for _, c := range r.Checkpoints {
		cl := []map[string]any{}
		for _, l := range c.LinksCut {
			cl = append(cl, o.linkJSON(c.ID, l))
		}
		links = append(links, cl...)
		cps = append(cps, map[string]any{
			"checkpoint_id":        c.ID,
			"source_checkpoint_id": c.SourceID,
			"destination":          keyDisplay(o.dst, c.Dir),
			"files":                c.Files,
			"bytes":                c.Bytes,
			"files_copied":         c.FilesCopied,
			"bytes_copied":         c.BytesCopied,
			"files_skipped":        c.FilesSkipped,
			"bytes_skipped":        c.BytesSkipped,
			"chain_links_cut":      cl,
			"already_relocated":    c.Done,
		})
	}
	m := map[string]any{
		"version":          jsonVersion,
		"dry_run":          dry,
		"source":           o.sourceDisplay(r),
		"server_side_copy": r.ServerSide,
		"files_copied":     r.FilesCopied,
		"bytes_copied":     r.BytesCopied,
		"files_skipped":    r.FilesSkipped,
		"bytes_skipped":    r.BytesSkipped,
		"chain_links_cut":  links,
	}
	if o.all {
		m["destination"] = keyDisplay(o.dst, o.dstJob.Prefix)
		m["checkpoints"] = cps
		m["incomplete_skipped"] = nonNil(r.Incomplete)
	} else {
		for k, v := range cps[0] {
			if k != "chain_links_cut" {
				m[k] = v
			}
		}
	}
	if !dry {
		m["duration_ms"] = o.elapsed.Milliseconds()
	}
	if dry {
		cs := []map[string]any{}
		for _, c := range copies {
			action := "copy"
			if c.Skip {
				action = "keep"
			}
			cs = append(cs, map[string]any{"action": action, "source": keyDisplay(o.src, c.Src), "destination": keyDisplay(o.dst, c.Dst), "size": c.Size, "sha256": c.SHA256})
		}
		m["copies"] = cs
	}
	return m
}

func runFlinkRelocate(ctx context.Context, f *Factory, srcLoc *storage.Location, d flinkjob.Detection, opts *relocateOptions) error {
	switch {
	case opts.All:
		return usagef("--all relocates ckpt jobs; for Flink give one checkpoint (JOB/chk-N) at a time")
	case opts.ID != 0:
		return usagef("--id applies to ckpt checkpoints; a Flink checkpoint keeps its directory name")
	case d.Kind == flinkjob.JobDir:
		return usagef("%s names a Flink job; give one of its checkpoints (JOB/chk-N)", srcLoc.Display)
	}
	srcDir := flinkjob.DirOf(d.MetadataKey)
	name := path.Base(srcDir)
	if srcDir == "" {
		return usagef("%s is at the root of its bucket: the checkpoint has no directory name to keep", srcLoc.Display)
	}
	dstLoc, err := f.Open(ctx, opts.Dest)
	if err != nil {
		return err
	}
	defer dstLoc.Close()
	if base := path.Base(dstLoc.Prefix); base == flinkjob.MetadataName || isCheckpointDirName(base) {
		return usagef("%s names a checkpoint; give the directory to relocate into (the copy goes to DST/%s)", dstLoc.Display, name)
	}
	src, dst := flinkjob.StoreOf(srcLoc), flinkjob.StoreOf(dstLoc)
	if srcLoc.SameBucket(dstLoc) {
		dst.Bucket = src.Bucket // server-side copies
	}
	dstDir := name
	if dstLoc.Prefix != "" {
		dstDir = dstLoc.Prefix + "/" + name
	}
	ropts := flinkjob.RelocateOptions{ReadData: opts.ReadData, Parallel: opts.Parallel}
	plan, err := flinkjob.NewRelocatePlan(ctx, src, d.MetadataKey, dst, dstDir, ropts)
	if err != nil {
		return flinkRelocateError(srcLoc, err)
	}
	out := flinkRelocateOutput{f: f, src: srcLoc, dst: dstLoc}
	if opts.DryRun {
		return out.render(plan.Result(), plan.Copies(), true)
	}
	start := time.Now()
	res, err := plan.Execute(ctx, f.reporter())
	if err != nil {
		return flinkRelocateError(srcLoc, err)
	}
	out.elapsed = time.Since(start)
	return out.render(res, nil, false)
}

func isCheckpointDirName(s string) bool {
	_, ok := flinkjob.ParseCheckpointDirName(s)
	return ok
}

func flinkRelocateError(src *storage.Location, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	err = fmt.Errorf("relocating %s: %w", src.Display, err)
	if errors.Is(err, flinkjob.ErrDestinationExists) {
		err = fmt.Errorf("%w (choose another destination)", err)
	}
	return err
}

// flinkRelocateOutput renders a Flink relocation's result (or, with
// copies, its plan).
type flinkRelocateOutput struct {
	f        *Factory
	src, dst *storage.Location
	elapsed  time.Duration
}

func (o *flinkRelocateOutput) render(r flinkjob.RelocateResult, copies []flinkjob.Copy, dry bool) error {
	if o.f.JSON {
		return writeJSON(o.f.Out, o.json(r, copies, dry))
	}
	w := o.f.Out
	how := "streamed"
	if r.ServerSide {
		how = "server-side copy"
	}
	verb := "relocated"
	switch {
	case dry:
		fmt.Fprintf(w, "plan (dry run, nothing was changed): Flink checkpoint %d from %s, %s\n", r.CheckpointID, keyDisplay(o.src, flinkjob.DirOf(r.SourceKey)), how)
		verb = "would relocate"
	case r.Done:
		verb = "already relocated"
	}
	fmt.Fprintf(w, "%s Flink checkpoint %d to %s: %d files, %s; %d paths rewritten (%d relative file handles, %d segment handles with an absolute path)\n",
		verb, r.CheckpointID, keyDisplay(o.dst, r.Dir), r.Files, humanBytes(r.Bytes), r.Handles, r.Relative, r.Segments)
	copied, skipped := "copied", "skipped"
	if dry {
		copied, skipped = "to copy", "already there"
	}
	fmt.Fprintf(w, "%s %d files, %s; %s %d files, %s", copied, r.FilesCopied, humanBytes(r.BytesCopied), skipped, r.FilesSkipped, humanBytes(r.BytesSkipped))
	if !dry {
		fmt.Fprintf(w, " (%s) in %s", how, o.elapsed.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	for _, c := range copies {
		if c.Skip {
			fmt.Fprintf(w, "  keep  %s (%d bytes)\n", keyDisplay(o.dst, c.Dst), c.Size)
		} else {
			fmt.Fprintf(w, "  copy  %s -> %s (%d bytes)\n", keyDisplay(o.src, c.Src), keyDisplay(o.dst, c.Dst), c.Size)
		}
	}
	for _, warning := range r.Warnings {
		o.f.warn("%s", warning)
	}
	return nil
}

func (o *flinkRelocateOutput) json(r flinkjob.RelocateResult, copies []flinkjob.Copy, dry bool) map[string]any {
	m := map[string]any{
		"version":           jsonVersion,
		"format":            "flink",
		"dry_run":           dry,
		"source":            keyDisplay(o.src, flinkjob.DirOf(r.SourceKey)),
		"destination":       keyDisplay(o.dst, r.Dir),
		"checkpoint_id":     r.CheckpointID,
		"server_side_copy":  r.ServerSide,
		"files":             r.Files,
		"bytes":             r.Bytes,
		"files_copied":      r.FilesCopied,
		"bytes_copied":      r.BytesCopied,
		"files_skipped":     r.FilesSkipped,
		"bytes_skipped":     r.BytesSkipped,
		"paths_rewritten":   r.Handles,
		"relative_handles":  r.Relative,
		"segment_handles":   r.Segments,
		"already_relocated": r.Done,
		"warnings":          nonNil(r.Warnings),
	}
	if !dry {
		m["duration_ms"] = o.elapsed.Milliseconds()
	} else {
		cs := []map[string]any{}
		for _, c := range copies {
			action := "copy"
			if c.Skip {
				action = "keep"
			}
			cs = append(cs, map[string]any{"action": action, "source": keyDisplay(o.src, c.Src), "destination": keyDisplay(o.dst, c.Dst), "size": c.Size})
		}
		m["copies"] = cs
	}
	return m
}
