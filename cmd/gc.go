package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt-dev/ckpt/flinkjob"
	"github.com/ckpt-dev/ckpt/gc"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
)

type gcOptions struct {
	Jobs       []string
	Retain     int
	RetainSet  bool
	KeepWithin duration
	Keep       []uint
	MinAge     duration
	DryRun     bool
	Yes        bool
	LocalDir   string
	Parallel   int
	Format     string
	Delete     bool
}

func newGCCmd(f *Factory, runF func(context.Context, *gcOptions) error) *cobra.Command {
	opts := &gcOptions{MinAge: duration(gc.DefaultMinAge)}
	c := &cobra.Command{
		Use:   "gc JOB [JOB...]",
		Short: "Delete what no retained checkpoint needs",
		Long: `Expire checkpoints by a retention policy and delete exactly the objects no
kept checkpoint needs: expired checkpoints (their _metadata first, then their
private files), shared files nothing references, directories of creates that
crashed, stale referrer markers, and with --local-dir the local copies of
checkpoints that are not kept.

The newest complete checkpoint of a job is always kept. Without --retain or
--keep-within nothing expires and gc only removes garbage. Files that other
jobs reference (they were restored from this one with --claim and left a
referrer marker) are kept. If any checkpoint of a job, or of a job that
refers to it, cannot be read, gc deletes nothing in that job and says why.

Orphans and incomplete checkpoints younger than --min-age are left alone: a
create may still be writing them. --min-age must exceed how long a create
takes between refreshes of its reservation (5 minutes) by a wide margin; the
default, 6h, also covers clock skew between machines.

Without a terminal a real run needs --yes (or --dry-run).

Flink job directories (<checkpoint-dir>/<job-id> with chk-<N>/, shared/ and
taskowned/; --format auto detects them) are collected by the same rules: a
file is live if a kept checkpoint of any named job references it (name
together the jobs restored from one another), the checkpoint time is the
modification time of its _metadata, expired and incomplete chk-<N>
directories and unreferenced shared/ objects older than --min-age are
deleted (expired _metadata first), taskowned/ is never touched, and nothing
is deleted if any _metadata cannot be read. For Flink, gc is a dry run
unless both --delete and --yes are given. Do not expire checkpoints Flink
itself still retains (state.checkpoints.num-retained) while the job runs:
see docs/flink.md.`,
		Example: `  ckpt gc s3://bucket/jobs/orders --retain 3 --dry-run
  ckpt gc /backups/job1 /backups/job2 --keep-within 7d --keep 42 --yes
  ckpt gc s3://bucket/flink/checkpoints/3f2a… --retain 3 --delete --yes`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Jobs = args
			opts.RetainSet = cmd.Flags().Changed("retain")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runGC(cmd.Context(), f, opts)
		},
	}
	fl := c.Flags()
	fl.IntVar(&opts.Retain, "retain", 0, "keep the newest N complete checkpoints of each job")
	fl.Var(&opts.KeepWithin, "keep-within", "keep checkpoints created within this duration (e.g. 36h, 7d)")
	fl.UintSliceVar(&opts.Keep, "keep", nil, "pin a checkpoint id (repeatable)")
	fl.Var(&opts.MinAge, "min-age", "leave orphans and incomplete checkpoints younger than this")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print what would be deleted and delete nothing")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.StringVar(&opts.LocalDir, "local-dir", "", "the job's local copy directory (create --local-dir); only with one job")
	fl.IntVar(&opts.Parallel, "parallel", 8, "number of concurrent deletions")
	fl.StringVar(&opts.Format, "format", formatAuto, "checkpoint format: auto (detect Flink job directories), ckpt or flink")
	fl.BoolVar(&opts.Delete, "delete", false, "Flink job directories only: really delete (with --yes); without it gc of Flink jobs is a dry run")
	return c
}

func runGC(ctx context.Context, f *Factory, opts *gcOptions) error {
	if opts.RetainSet && opts.Retain < 1 {
		return usagef("--retain must be at least 1 (the newest checkpoint is always kept)")
	}
	if opts.Parallel < 1 {
		return usagef("--parallel must be at least 1")
	}
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	if opts.Format != formatCkpt {
		if done, err := runFlinkGC(ctx, f, opts); done {
			return err
		}
	}
	if !opts.DryRun && !opts.Yes && !f.StdinTTY {
		return usagef("gc deletes objects: pass --yes to run without a terminal, or --dry-run to see what it would delete")
	}
	var jobs []metadata.Job
	var first *storage.Location
	locs := map[string]*storage.Location{} // by job prefix
	for _, j := range opts.Jobs {
		loc, err := f.Open(ctx, j)
		if err != nil {
			return err
		}
		defer loc.Close()
		kind, job, _ := metadata.ParseLocation(loc.Prefix)
		if kind != metadata.LocationJob {
			return usagef("%s is a checkpoint; gc takes job locations", loc.Display)
		}
		if first == nil {
			first = loc
		} else if !first.SameBucket(loc) {
			return usagef("%s and %s are in different buckets; run gc once per bucket", first.Display, loc.Display)
		}
		jobs = append(jobs, job)
		locs[job.Prefix] = loc
	}
	pol := gc.Policy{Retain: opts.Retain, KeepWithin: time.Duration(opts.KeepWithin)}
	for _, k := range opts.Keep {
		pol.Keep = append(pol.Keep, uint64(k))
	}
	plan, err := gc.NewPlan(ctx, first.Bucket, jobs, gc.Options{
		Policy: pol, MinAge: time.Duration(opts.MinAge), ClockSkew: 5 * time.Minute,
		Now: f.Now, Parallel: opts.Parallel, LocalDir: opts.LocalDir,
		SweepTemps: func(ctx context.Context, prefix string, before time.Time, dryRun bool) (int, int64, error) {
			return storage.SweepTemps(ctx, locs[prefix], prefix, before, dryRun)
		},
	})
	if err != nil {
		if errors.Is(err, gc.ErrBadPolicy) {
			return usagef("%v", err)
		}
		return err
	}
	res := plan.Result()
	if !opts.DryRun && !opts.Yes && res.FilesDeleted+res.LocalDeleted > 0 {
		fmt.Fprintf(f.Err, "gc will delete %d objects (%s) and %d local copies in %s. Continue? [y/N] ",
			res.FilesDeleted, humanBytes(res.BytesDeleted), res.LocalDeleted, strings.Join(opts.Jobs, ", "))
		answer, _ := bufio.NewReader(f.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return usagef("aborted; nothing was deleted")
		}
	}
	var execErr error
	if !opts.DryRun {
		res, execErr = plan.Execute(ctx, f.reporter())
		if errors.Is(execErr, context.Canceled) {
			return execErr
		}
	}
	if f.JSON {
		if err := writeJSON(f.Out, gcJSON(first, res)); err != nil {
			return err
		}
	} else {
		printGC(f, first, plan, res)
	}
	return execErr
}

func gcJSON(loc *storage.Location, r gc.Result) map[string]any {
	var expired, kept []string
	jobs := []map[string]any{}
	for _, j := range r.Jobs {
		job := metadata.Job{Prefix: j.Job}
		for _, id := range j.Expired {
			expired = append(expired, keyDisplay(loc, job.CheckpointDir(id)))
		}
		for _, id := range j.Kept {
			kept = append(kept, keyDisplay(loc, job.CheckpointDir(id)))
		}
		jobs = append(jobs, map[string]any{"job": keyDisplay(loc, j.Job), "kept": nonNil(j.Kept), "expired": nonNil(j.Expired), "blocked": nonNil(j.Blocked)})
	}
	return map[string]any{
		"version":              jsonVersion,
		"dry_run":              r.DryRun,
		"expired_checkpoints":  nonNil(expired),
		"kept_checkpoints":     nonNil(kept),
		"files_deleted":        r.FilesDeleted,
		"bytes_deleted":        r.BytesDeleted,
		"orphans_deleted":      r.OrphansDeleted,
		"local_copies_deleted": r.LocalDeleted,
		"temp_files_deleted":   r.TempsDeleted,
		"jobs":                 jobs,
		"failed":               nonNil(r.Failed),
	}
}

func printGC(f *Factory, loc *storage.Location, plan *gc.Plan, r gc.Result) {
	w := f.Out
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
		for _, o := range plan.Objects() {
			fmt.Fprintf(w, "would delete %s (%d bytes)\n", keyDisplay(loc, o.Key), o.Size)
		}
		for _, jp := range plan.Jobs {
			for _, d := range jp.Local {
				fmt.Fprintf(w, "would delete local copy %s\n", d)
			}
		}
	}
	for _, j := range r.Jobs {
		fmt.Fprintf(w, "%s: keeping %s; expiring %s\n", keyDisplay(loc, j.Job), ids(j.Kept), ids(j.Expired))
		for _, b := range j.Blocked {
			fmt.Fprintf(w, "  left untouched: %s\n", b)
		}
	}
	fmt.Fprintf(w, "%s %d objects, %s (%d orphans), and %d local copies\n", verb, r.FilesDeleted, humanBytes(r.BytesDeleted), r.OrphansDeleted, r.LocalDeleted)
	if r.TempsDeleted > 0 {
		fmt.Fprintf(w, "%s %d temporary files left by interrupted writes\n", verb, r.TempsDeleted)
	}
	for _, fl := range r.Failed {
		fmt.Fprintf(w, "failed: %s\n", fl)
	}
}

func ids(v []uint64) string {
	if len(v) == 0 {
		return "none"
	}
	s := make([]string, len(v))
	for i, id := range v {
		s[i] = "chk-" + strconv.FormatUint(id, 10)
	}
	return strings.Join(s, " ")
}

// runFlinkGC runs gc if the locations are Flink job directories; done is
// false when they are not (then ckpt's gc runs).
func runFlinkGC(ctx context.Context, f *Factory, opts *gcOptions) (done bool, err error) {
	var jobs []flinkjob.Job
	var first *storage.Location
	var notFlink []string
	for _, j := range opts.Jobs {
		loc, err := f.Open(ctx, j)
		if err != nil {
			return opts.Format == formatFlink, err
		}
		defer loc.Close()
		d, ok, err := detectFlink(ctx, loc, opts.Format)
		switch {
		case err != nil:
			return true, fmt.Errorf("reading %s: %w", loc.Display, err)
		case !ok:
			notFlink = append(notFlink, loc.Display)
			continue
		case d.Kind == flinkjob.Checkpoint:
			return true, usagef("%s is a Flink checkpoint; gc takes job directories (<checkpoint-dir>/<job-id>)", loc.Display)
		}
		if first == nil {
			first = loc
		} else if !first.SameBucket(loc) {
			return true, usagef("%s and %s are in different buckets; run gc once per bucket", first.Display, loc.Display)
		}
		jobs = append(jobs, d.Job)
	}
	switch {
	case len(jobs) == 0:
		return false, nil
	case len(notFlink) > 0:
		return true, usagef("%s is not a Flink job directory but %s is; run gc separately for ckpt and Flink jobs (or pass --format)", notFlink[0], first.Display)
	case opts.LocalDir != "":
		return true, usagef("--local-dir applies to ckpt jobs, not to Flink job directories")
	case opts.Delete && opts.DryRun:
		return true, usagef("--delete and --dry-run contradict each other")
	case opts.Delete && !opts.Yes:
		return true, usagef("gc deletes objects of Flink jobs only with --delete and --yes; without them it is a dry run")
	}
	dry := !opts.Delete
	if dry && !opts.DryRun {
		f.warn("dry run: nothing is deleted in Flink job directories without --delete --yes")
	}
	pol := flinkjob.Policy{Retain: opts.Retain, KeepWithin: time.Duration(opts.KeepWithin)}
	for _, k := range opts.Keep {
		pol.Keep = append(pol.Keep, int64(k))
	}
	plan, err := flinkjob.NewGCPlan(ctx, flinkjob.StoreOf(first), jobs, flinkjob.GCOptions{
		Policy: pol, MinAge: time.Duration(opts.MinAge), Now: f.Now, Parallel: opts.Parallel,
	})
	if err != nil {
		return true, err
	}
	res := plan.Result()
	var execErr error
	if !dry {
		res, execErr = plan.Execute(ctx, f.reporter())
		if errors.Is(execErr, context.Canceled) {
			return true, execErr
		}
	} else if len(res.Blocked) > 0 {
		execErr = fmt.Errorf("%w: a _metadata cannot be read: %s", flinkjob.ErrBlocked, strings.Join(res.Blocked, "; "))
	}
	if f.JSON {
		if err := writeJSON(f.Out, flinkGCJSON(first, res)); err != nil {
			return true, err
		}
	} else {
		printFlinkGC(f, first, plan, res)
	}
	return true, execErr
}

func flinkGCJSON(loc *storage.Location, r flinkjob.GCResult) map[string]any {
	var expired, kept []string
	jobs := []map[string]any{}
	for _, j := range r.Jobs {
		job := flinkjob.Job{Prefix: j.Job}
		for _, id := range j.Expired {
			expired = append(expired, keyDisplay(loc, job.CheckpointDir(id)))
		}
		for _, ids := range [][]int64{j.Kept, j.Young} {
			for _, id := range ids {
				kept = append(kept, keyDisplay(loc, job.CheckpointDir(id)))
			}
		}
		jobs = append(jobs, map[string]any{
			"job": keyDisplay(loc, j.Job), "kept": nonNil(j.Kept), "expired": nonNil(j.Expired),
			"kept_by_min_age": nonNil(j.Young), "incomplete_deleted": nonNil(j.Incomplete), "taskowned_objects": j.TaskOwned,
		})
	}
	sort.Strings(kept)
	return map[string]any{
		"version":             jsonVersion,
		"format":              "flink",
		"dry_run":             r.DryRun,
		"expired_checkpoints": nonNil(expired),
		"kept_checkpoints":    nonNil(kept),
		"files_deleted":       r.FilesDeleted,
		"bytes_deleted":       r.BytesDeleted,
		"orphans_deleted":     r.OrphansDeleted,
		"taskowned_untouched": r.TaskOwnedUntouched,
		"blocked":             nonNil(r.Blocked),
		"jobs":                jobs,
		"failed":              nonNil(r.Failed),
	}
}

func printFlinkGC(f *Factory, loc *storage.Location, plan *flinkjob.GCPlan, r flinkjob.GCResult) {
	w := f.Out
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
		for _, o := range plan.Objects() {
			fmt.Fprintf(w, "would delete %s (%d bytes)\n", keyDisplay(loc, o.Key), o.Size)
		}
	}
	for _, j := range r.Jobs {
		fmt.Fprintf(w, "%s: keeping %s; expiring %s", keyDisplay(loc, j.Job), flinkIDs(j.Kept), flinkIDs(j.Expired))
		if len(j.Young) > 0 {
			fmt.Fprintf(w, "; kept until older than --min-age %s", flinkIDs(j.Young))
		}
		if len(j.Incomplete) > 0 {
			fmt.Fprintf(w, "; incomplete %s", flinkIDs(j.Incomplete))
		}
		fmt.Fprintln(w)
	}
	for _, b := range r.Blocked {
		fmt.Fprintf(w, "nothing deleted: %s\n", b)
	}
	fmt.Fprintf(w, "%s %d objects, %s (%d orphans); %d taskowned/ objects left alone\n", verb, r.FilesDeleted, humanBytes(r.BytesDeleted), r.OrphansDeleted, r.TaskOwnedUntouched)
	for _, fl := range r.Failed {
		fmt.Fprintf(w, "failed: %s\n", fl)
	}
}

func flinkIDs(v []int64) string {
	if len(v) == 0 {
		return "none"
	}
	s := make([]string, len(v))
	for i, id := range v {
		s[i] = flinkjob.CheckpointDirName(id)
	}
	return strings.Join(s, " ")
}
