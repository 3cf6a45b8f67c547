package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/restore"
	"github.com/ckpt-dev/ckpt/storage"
)

type restoreOptions struct {
	Location    string
	Target      string
	LocalDir    string
	Store       string
	ReuseTarget bool
	TrustSize   bool
	Force       bool
	Strict      bool
	Check       bool
	Claim       bool
	NoClaim     bool
	DryRun      bool
	Parallel    int
}

func newRestoreCmd(f *Factory, runF func(context.Context, *restoreOptions) error) *cobra.Command {
	opts := &restoreOptions{}
	c := &cobra.Command{
		Use:   "restore LOCATION TARGET_DIR",
		Short: "Restore a checkpoint into Pebble store directories",
		Long: `Restore a checkpoint (LOCATION is <job>/chk-<N> or its _metadata) or a job's
latest checkpoint (LOCATION is the job) into TARGET_DIR. If a job's latest
checkpoint is unreadable or fails verification, the previous one is restored
instead and a warning says so; --strict makes that an error.

A checkpoint with one store (or the store chosen with --store) is restored
directly into TARGET_DIR; a checkpoint with several stores is restored into
TARGET_DIR/<store name>/. Each restored store also gets a CKPT-ORIGIN file
naming the source checkpoint, so that the next 'ckpt create' from it knows its
lineage: with --no-claim (the default) the next checkpoint of the store into
another job is a full one and never references the source job's files; with
--claim it may reference the source checkpoint's shared files in place.

Local first: with --local-dir (the directory 'ckpt create --local-dir'
keeps), every file found there, in any checkpoint's copy, with the recorded
size and SHA-256 is taken from there: hard-linked when it is an immutable
sstable or blob file on the same filesystem, copied otherwise. Missing or
damaged local files are downloaded; they never fail the restore.
--reuse-target likewise keeps the matching files already in TARGET_DIR and
replaces everything else (an incremental restore).

Every byte is checked against the recorded size and SHA-256 as it lands, and
the stores are opened with Pebble read-only (--check: every level is read and
checked) before anything is put in place. The restore is built in a hidden
directory beside TARGET_DIR and renamed into place only when complete and
verified: an interrupted restore leaves TARGET_DIR as it was (or absent), and
the next restore removes its leftovers. A non-empty TARGET_DIR is refused
unless --force or --reuse-target; it is then swapped with the new one in one
atomic rename (on filesystems without an atomic exchange, TARGET_DIR is
briefly absent between two renames; a restore interrupted there is undone
by the next one). TARGET_DIR's parent must exist; TARGET_DIR must not be a
symbolic link or a mount point.`,
		Example: `  ckpt restore s3://bucket/jobs/orders ./data/db
  ckpt restore /backups/job1/chk-12 ./data/db --local-dir /var/ckpt-local --json
  ckpt restore /backups/job1 ./data --store accounts --reuse-target --check
  ckpt restore /backups/job1 ./data/db --dry-run`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Location, opts.Target = args[0], args[1]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRestore(cmd.Context(), f, opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.LocalDir, "local-dir", "", "take matching files from this local copy (kept by create --local-dir) before downloading")
	fl.StringVar(&opts.Store, "store", "", "restore only this store, directly into TARGET_DIR")
	fl.BoolVar(&opts.ReuseTarget, "reuse-target", false, "keep the matching files already in TARGET_DIR and replace the rest")
	fl.BoolVar(&opts.TrustSize, "trust-size", false, "take local sstables whose size matches without checking their SHA-256 (near-instant; see docs/restore.md)")
	fl.BoolVar(&opts.Force, "force", false, "replace a non-empty TARGET_DIR")
	fl.BoolVar(&opts.Strict, "strict", false, "fail instead of falling back to an older checkpoint of a job")
	fl.BoolVar(&opts.Check, "check", false, "read and check every level of the restored stores before putting them in place")
	fl.BoolVar(&opts.Claim, "claim", false, "let the next checkpoint of the restored stores reference the source checkpoint's shared files")
	fl.BoolVar(&opts.NoClaim, "no-claim", false, "the next checkpoint of the restored stores into another job is a full one (the default)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print where each file would come from, and change nothing")
	fl.IntVar(&opts.Parallel, "parallel", restore.DefaultParallel, "number of concurrent transfers")
	return c
}

func runRestore(ctx context.Context, f *Factory, opts *restoreOptions) error {
	if opts.Parallel < 1 {
		return usagef("--parallel must be at least 1")
	}
	if opts.Claim && opts.NoClaim {
		return usagef("--claim and --no-claim exclude each other")
	}
	loc, err := f.Open(ctx, opts.Location)
	if err != nil {
		return err
	}
	defer loc.Close()
	kind, job, id := metadata.ParseLocation(loc.Prefix)
	if kind == metadata.LocationJob {
		id = 0
	}
	ropts := restore.Options{
		Target: opts.Target, Store: opts.Store, LocalDir: opts.LocalDir,
		ReuseTarget: opts.ReuseTarget, TrustSize: opts.TrustSize, Force: opts.Force, Strict: opts.Strict, Check: opts.Check,
		Claim: opts.Claim, Parallel: opts.Parallel, Progress: f.reporter(),
		Locate: func(key string) string { return keyDisplay(loc, key) },
	}
	if loc.Scheme == storage.SchemeFile && job.Prefix != "" {
		ropts.SourceDir = keyDisplay(loc, job.Prefix)
	}
	start := time.Now()
	plan, err := restore.NewPlan(ctx, loc.Bucket, job, id, ropts)
	if err != nil {
		return restoreError(loc, err)
	}
	if opts.DryRun {
		for _, w := range plan.Warnings {
			f.warn("%s", w)
		}
		if f.JSON {
			return writeJSON(f.Out, planJSON(plan))
		}
		printPlan(f.Out, plan)
		return nil
	}
	res, err := plan.Execute(ctx, f.reporter())
	if err != nil {
		return restoreError(loc, err)
	}
	for _, w := range res.Warnings {
		f.warn("%s", w)
	}
	elapsed := time.Since(start)
	if f.JSON {
		m := totalsJSON(res.Totals)
		m["version"] = jsonVersion
		m["checkpoint_id"] = res.CheckpointID
		m["job_id"] = res.JobID
		m["location"] = res.Location
		m["target"] = res.Target
		m["stores"] = storesJSON(res.Target, res.Stores)
		m["checked"] = res.Checked
		m["claim"] = res.Claim
		m["fell_back_from"] = fellBackFrom(res.Skipped)
		m["skipped"] = skippedJSON(res.Skipped)
		m["duration_ms"] = elapsed.Milliseconds()
		m["warnings"] = nonNil(res.Warnings)
		return writeJSON(f.Out, m)
	}
	fmt.Fprintf(f.Out, "restored checkpoint %d of job %s from %s into %s\n", res.CheckpointID, res.JobID, res.Location, res.Target)
	if from := fellBackFrom(res.Skipped); from != 0 {
		fmt.Fprintf(f.Out, "  (fell back from chk-%d, which is unusable)\n", from)
	}
	for _, s := range res.Stores {
		fmt.Fprintf(f.Out, "  store %s: %s, %d files, %s\n", s.Name, filepath.Join(res.Target, s.Dir), s.Files, humanBytes(s.Bytes))
	}
	t := res.Totals
	fmt.Fprintf(f.Out, "local copy %d files, %s (%d hard links); reused from target %d files, %s; downloaded %d files, %s; in %s\n",
		t.FilesFromLocal, humanBytes(t.BytesFromLocal), t.FilesLinked, t.FilesReused, humanBytes(t.BytesReused),
		t.FilesFromRemote, humanBytes(t.BytesFromRemote), elapsed.Round(time.Millisecond))
	return nil
}

func restoreError(loc *storage.Location, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, restore.ErrTargetNotEmpty):
		return fmt.Errorf("restoring %s: %w (give --force to replace it, or --reuse-target to keep its matching files)", loc.Display, err)
	}
	return fmt.Errorf("restoring %s: %w", loc.Display, err)
}

func totalsJSON(t restore.Totals) map[string]any {
	return map[string]any{
		"files_from_local":  t.FilesFromLocal,
		"bytes_from_local":  t.BytesFromLocal,
		"files_linked":      t.FilesLinked,
		"files_from_remote": t.FilesFromRemote,
		"bytes_from_remote": t.BytesFromRemote,
		"files_reused":      t.FilesReused,
		"bytes_reused":      t.BytesReused,
		"total_files":       t.TotalFiles,
		"total_bytes":       t.TotalBytes,
	}
}

func storesJSON(target string, stores []restore.Store) []map[string]any {
	out := []map[string]any{}
	for _, s := range stores {
		out = append(out, map[string]any{"name": s.Name, "dir": filepath.Join(target, s.Dir),
			"format_major_version": s.FormatMajorVersion, "files": s.Files, "bytes": s.Bytes})
	}
	return out
}

func fellBackFrom(s []restore.Skipped) uint64 {
	if len(s) == 0 {
		return 0
	}
	return s[0].CheckpointID
}

func skippedJSON(s []restore.Skipped) []map[string]any {
	out := []map[string]any{}
	for _, x := range s {
		out = append(out, map[string]any{"checkpoint_id": x.CheckpointID, "reason": x.Reason})
	}
	return out
}

func planJSON(p *restore.Plan) map[string]any {
	m := totalsJSON(p.Totals())
	files := []map[string]any{}
	for _, x := range p.Files {
		files = append(files, map[string]any{"store": x.Store, "name": x.Name, "size": x.Size, "sha256": x.SHA256,
			"source": string(x.Source), "link": x.Link, "from": x.From})
	}
	m["version"] = jsonVersion
	m["dry_run"] = true
	m["checkpoint_id"] = p.CheckpointID
	m["job_id"] = p.JobID
	m["location"] = p.Location
	m["target"] = p.Target
	m["replace"] = p.Replace
	m["interrupted"] = p.Interrupted
	m["stores"] = storesJSON(p.Target, p.Stores)
	m["fell_back_from"] = fellBackFrom(p.Skipped)
	m["skipped"] = skippedJSON(p.Skipped)
	m["warnings"] = nonNil(p.Warnings)
	m["files"] = files
	return m
}

func printPlan(w io.Writer, p *restore.Plan) {
	replace := ""
	if p.Replace {
		replace = " (replacing it)"
	}
	fmt.Fprintf(w, "would restore checkpoint %d of job %s from %s into %s%s\n", p.CheckpointID, p.JobID, p.Location, p.Target, replace)
	if from := fellBackFrom(p.Skipped); from != 0 {
		fmt.Fprintf(w, "  (falling back from chk-%d, which is unusable)\n", from)
	}
	if p.Interrupted != "" {
		fmt.Fprintf(w, "  (first putting back %s, left by an interrupted restore)\n", p.Interrupted)
	}
	for _, s := range p.Stores {
		fmt.Fprintf(w, "  store %s: %s, %d files, %s\n", s.Name, filepath.Join(p.Target, s.Dir), s.Files, humanBytes(s.Bytes))
	}
	t := p.Totals()
	fmt.Fprintf(w, "local copy %d files, %s (%d hard links); reused from target %d files, %s; to download %d files, %s\n\n",
		t.FilesFromLocal, humanBytes(t.BytesFromLocal), t.FilesLinked, t.FilesReused, humanBytes(t.BytesReused),
		t.FilesFromRemote, humanBytes(t.BytesFromRemote))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tFILE\tSIZE\tSOURCE\tFROM")
	for _, x := range p.Files {
		src := string(x.Source)
		if x.Link {
			src += " (link)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", x.Store, x.Name, x.Size, src, x.From)
	}
	tw.Flush()
}
