package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt-dev/ckpt/inspect"
	"github.com/ckpt-dev/ckpt/metadata"
	"github.com/ckpt-dev/ckpt/storage"
)

type inspectOptions struct {
	Location string
	Verify   bool
	ReadData bool
	Files    bool
	Parallel int
}

func newInspectCmd(f *Factory, runF func(context.Context, *inspectOptions) error) *cobra.Command {
	opts := &inspectOptions{}
	c := &cobra.Command{
		Use:   "inspect LOCATION",
		Short: "Describe and verify a checkpoint or a job",
		Long: `Describe a checkpoint (id, time, kind, stores, files, bytes new and inherited,
where each file lives, lineage, whether it is self-contained) or a job (a
table of its checkpoints, with directories lacking _metadata flagged as
incomplete).

--verify checks that every referenced file exists with its recorded size;
--read-data also reads every file and checks its SHA-256. Bad files are named
and the exit status is 5.`,
		Example: `  ckpt inspect s3://bucket/jobs/orders
  ckpt inspect /backups/job1/chk-12 --verify
  ckpt inspect /backups/job1/chk-12/_metadata --read-data --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Location = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInspect(cmd.Context(), f, opts)
		},
	}
	fl := c.Flags()
	fl.BoolVar(&opts.Verify, "verify", false, "check that every referenced file exists with its size")
	fl.BoolVar(&opts.ReadData, "read-data", false, "also read every file and check its checksum")
	fl.BoolVar(&opts.Files, "files", false, "list every file (text output lists them when there are few)")
	fl.IntVar(&opts.Parallel, "parallel", 8, "number of concurrent storage requests")
	return c
}

func runInspect(ctx context.Context, f *Factory, opts *inspectOptions) error {
	if opts.Parallel < 1 {
		return usagef("--parallel must be at least 1")
	}
	loc, err := f.Open(ctx, opts.Location)
	if err != nil {
		return err
	}
	defer loc.Close()
	iopts := inspect.Options{Verify: opts.Verify, ReadData: opts.ReadData, Parallel: opts.Parallel, Progress: f.reporter()}
	kind, job, id := metadata.ParseLocation(loc.Prefix)
	if kind == metadata.LocationCheckpoint {
		r, err := inspect.ReadCheckpoint(ctx, loc.Bucket, job, id, iopts)
		if r == nil {
			return fmt.Errorf("inspecting %s: %w", loc.Display, err)
		}
		if f.JSON {
			if jerr := writeJSON(f.Out, checkpointJSON(loc, r)); jerr != nil {
				return jerr
			}
		} else {
			printCheckpoint(f.Out, loc, r, opts.Files)
		}
		return err
	}
	r, err := inspect.ReadJob(ctx, loc.Bucket, job, iopts)
	if r == nil {
		if errors.Is(err, metadata.ErrNotFound) {
			return fmt.Errorf("inspecting %s: no checkpoints there (not a job location?): %w", loc.Display, err)
		}
		return fmt.Errorf("inspecting %s: %w", loc.Display, err)
	}
	if f.JSON {
		if jerr := writeJSON(f.Out, jobJSON(loc, r)); jerr != nil {
			return jerr
		}
	} else {
		printJob(f.Out, loc, r)
	}
	return err
}

type fileJSON struct {
	Store    string `json:"store"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	Location string `json:"location"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	New      bool   `json:"new"`
	Where    string `json:"where"`
	OwnerJob string `json:"owner_job,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

func checkpointJSON(loc *storage.Location, r *inspect.Checkpoint) map[string]any {
	files := make([]fileJSON, 0, len(r.Files))
	for _, fr := range r.Files {
		fj := fileJSON{Store: fr.Store, Name: fr.Name, Path: fr.Path, Location: keyDisplay(loc, fr.Key),
			Size: fr.Size, SHA256: fr.SHA256, New: fr.New, Where: string(fr.Where), Problem: fr.Problem}
		if fr.OwnerJob != "" {
			fj.OwnerJob = keyDisplay(loc, fr.OwnerJob)
		}
		files = append(files, fj)
	}
	stores := []map[string]any{}
	for _, s := range r.Stores {
		stores = append(stores, map[string]any{"name": s.Name, "format_major_version": s.FormatMajorVersion, "files": s.Files, "bytes": s.Bytes})
	}
	chain := []map[string]any{}
	for _, l := range r.Chain {
		m := map[string]any{"job_id": l.JobID, "checkpoint_id": l.CheckpointID, "claim": l.Claim, "exists": l.Exists}
		if l.Key != "" {
			m["location"] = keyDisplay(loc, l.Key)
		}
		chain = append(chain, m)
	}
	ext := []string{}
	for _, j := range r.ExternalJobs {
		ext = append(ext, keyDisplay(loc, j))
	}
	return map[string]any{
		"version":            jsonVersion,
		"type":               "checkpoint",
		"location":           keyDisplay(loc, r.Key),
		"checkpoint_id":      r.ID,
		"job_id":             r.JobID,
		"created_at":         r.CreatedAt.UTC().Format(time.RFC3339),
		"kind":               r.Kind,
		"base_checkpoint_id": r.BaseID,
		"stores":             stores,
		"file_count":         len(r.Files),
		"total_bytes":        r.TotalBytes,
		"new_bytes":          r.NewBytes,
		"inherited_bytes":    r.InheritedBytes,
		"self_contained":     r.SelfContained,
		"external_jobs":      ext,
		"lineage":            chain,
		"verified":           r.Verified,
		"data_checked":       r.DataChecked,
		"problems":           r.Problems,
		"files":              files,
	}
}

func jobJSON(loc *storage.Location, r *inspect.Job) map[string]any {
	cps := []map[string]any{}
	for _, e := range r.Checkpoints {
		m := map[string]any{"checkpoint_id": e.ID, "state": e.State, "pending": e.Pending, "problems": e.Problems}
		if e.State == inspect.Complete {
			m["created_at"] = e.CreatedAt.UTC().Format(time.RFC3339)
			m["kind"] = e.Kind
			m["file_count"] = e.Files
			m["total_bytes"] = e.TotalBytes
			m["new_bytes"] = e.NewBytes
			m["self_contained"] = e.SelfContained
		}
		if e.Error != "" {
			m["error"] = e.Error
		}
		cps = append(cps, m)
	}
	return map[string]any{
		"version":              jsonVersion,
		"type":                 "job",
		"location":             keyDisplay(loc, r.Key),
		"latest_checkpoint_id": r.Latest,
		"verified":             r.Verified,
		"problems":             r.Problems,
		"checkpoints":          cps,
	}
}

func printCheckpoint(w io.Writer, loc *storage.Location, r *inspect.Checkpoint, all bool) {
	fmt.Fprintf(w, "checkpoint %d of job %s\n", r.ID, r.JobID)
	fmt.Fprintf(w, "  location        %s\n", keyDisplay(loc, r.Key))
	kind := string(r.Kind)
	if r.BaseID != 0 {
		kind += fmt.Sprintf(" (on chk-%d)", r.BaseID)
	}
	fmt.Fprintf(w, "  created         %s\n", r.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  kind            %s\n", kind)
	for _, s := range r.Stores {
		fmt.Fprintf(w, "  store           %s: pebble format %d, %d files, %s\n", s.Name, s.FormatMajorVersion, s.Files, humanBytes(s.Bytes))
	}
	fmt.Fprintf(w, "  files           %d, %s (new %s, inherited %s)\n", len(r.Files), humanBytes(r.TotalBytes), humanBytes(r.NewBytes), humanBytes(r.InheritedBytes))
	fmt.Fprintf(w, "  self-contained  %s\n", yesNo(r.SelfContained))
	for _, j := range r.ExternalJobs {
		fmt.Fprintf(w, "  references      %s\n", keyDisplay(loc, j))
	}
	for i, l := range r.Chain {
		where := "(location unknown)"
		if l.Key != "" {
			where = keyDisplay(loc, l.Key)
		}
		mode := "no-claim"
		if l.Claim {
			mode = "claim"
		}
		gone := ""
		if !l.Exists {
			gone = " [gone]"
		}
		fmt.Fprintf(w, "  restored from   %s%s chk-%d of job %s (%s)%s\n", indent(i), where, l.CheckpointID, l.JobID, mode, gone)
	}
	if r.Verified {
		status := "ok"
		if r.Problems > 0 {
			status = fmt.Sprintf("%d bad files", r.Problems)
		}
		what := "sizes"
		if r.DataChecked {
			what = "sizes and checksums"
		}
		fmt.Fprintf(w, "  verified        %s: %s\n", what, status)
	}
	if all || len(r.Files) <= 20 || r.Problems > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nSTORE\tFILE\tSIZE\tWHERE\tPATH\tSTATUS")
		for _, fr := range r.Files {
			if !all && len(r.Files) > 20 && fr.Problem == "" {
				continue
			}
			status := "-"
			if r.Verified {
				status = "ok"
			}
			if fr.Problem != "" {
				status = fr.Problem
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", fr.Store, fr.Name, fr.Size, fr.Where, fr.Path, status)
		}
		tw.Flush()
	}
}

func indent(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("%*s← ", 2*(i-1), "")
}

func printJob(w io.Writer, loc *storage.Location, r *inspect.Job) {
	fmt.Fprintf(w, "job %s\n\n", keyDisplay(loc, r.Key))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tKIND\tCREATED\tFILES\tSIZE\tNEW\tSELF-CONTAINED\tPROBLEMS")
	for _, e := range r.Checkpoints {
		if e.State != inspect.Complete {
			state := string(e.State)
			if e.Pending {
				state += " (pending)"
			}
			fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t-\t-\t-\t%d\n", e.ID, state, e.Problems)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\n", e.ID, e.State, e.Kind, e.CreatedAt.UTC().Format(time.RFC3339),
			e.Files, humanBytes(e.TotalBytes), humanBytes(e.NewBytes), yesNo(e.SelfContained), e.Problems)
	}
	tw.Flush()
	for _, e := range r.Checkpoints {
		if e.Error != "" {
			fmt.Fprintf(w, "\nchk-%d: %s\n", e.ID, e.Error)
		}
	}
	if r.Latest != 0 {
		fmt.Fprintf(w, "\nlatest complete checkpoint: %d\n", r.Latest)
	}
}
