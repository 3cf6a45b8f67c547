package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

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

Without a terminal a real run needs --yes (or --dry-run).`,
		Example: `  ckpt gc s3://bucket/jobs/orders --retain 3 --dry-run
  ckpt gc /backups/job1 /backups/job2 --keep-within 7d --keep 42 --yes`,
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
	return c
}

func runGC(ctx context.Context, f *Factory, opts *gcOptions) error {
	if opts.RetainSet && opts.Retain < 1 {
		return usagef("--retain must be at least 1 (the newest checkpoint is always kept)")
	}
	if opts.Parallel < 1 {
		return usagef("--parallel must be at least 1")
	}
	if !opts.DryRun && !opts.Yes && !f.StdinTTY {
		return usagef("gc deletes objects: pass --yes to run without a terminal, or --dry-run to see what it would delete")
	}
	var jobs []metadata.Job
	var first *storage.Location
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
	}
	pol := gc.Policy{Retain: opts.Retain, KeepWithin: time.Duration(opts.KeepWithin)}
	for _, k := range opts.Keep {
		pol.Keep = append(pol.Keep, uint64(k))
	}
	plan, err := gc.NewPlan(ctx, first.Bucket, jobs, gc.Options{
		Policy: pol, MinAge: time.Duration(opts.MinAge), ClockSkew: 5 * time.Minute,
		Now: f.Now, Parallel: opts.Parallel, LocalDir: opts.LocalDir,
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
