package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ckpt-dev/ckpt/flinkjob"
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
	Format   string
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
and the exit status is 5.

Apache Flink checkpoints and savepoints (a directory holding Flink's
_metadata, or that file) and Flink job directories (<checkpoint-dir>/<job-id>
with chk-<N>/, shared/, taskowned/) are recognised by Flink's magic number
(--format auto, the default; --format flink or ckpt overrides). For a Flink
checkpoint inspect lists its operators (id, name and uid from Flink 2.0,
parallelism, max parallelism) and subtasks, its state handles (inline bytes,
relative and absolute files, shared files, changelog, file-merging segments,
unaligned channel state), every file it references with its size and where it
lies, and whether it is self-contained. Absolute paths (file:, s3://, s3a://,
s3p://, gs://, wasb(s)://, abfs(s)://) are read when they name the bucket
that was opened; others are reported as outside it, and fail --verify. Flink
records no checksums: --read-data reads every file to its end.`,
		Example: `  ckpt inspect s3://bucket/jobs/orders
  ckpt inspect /backups/job1/chk-12 --verify
  ckpt inspect /backups/job1/chk-12/_metadata --read-data --json
  ckpt inspect s3://bucket/flink/checkpoints/3f2a…/chk-42 --verify`,
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
	fl.StringVar(&opts.Format, "format", formatAuto, "checkpoint format: auto (detect Flink's _metadata), ckpt or flink")
	return c
}

func runInspect(ctx context.Context, f *Factory, opts *inspectOptions) error {
	if opts.Parallel < 1 {
		return usagef("--parallel must be at least 1")
	}
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	loc, err := f.Open(ctx, opts.Location)
	if err != nil {
		return err
	}
	defer loc.Close()
	if d, ok, err := detectFlink(ctx, loc, opts.Format); ok || err != nil {
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", loc.Display, err)
		}
		return runFlinkInspect(ctx, f, loc, d, opts)
	}
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

// Checkpoint formats (--format).
const (
	formatAuto  = "auto"
	formatCkpt  = "ckpt"
	formatFlink = "flink"
)

func checkFormat(format string) error {
	switch format {
	case formatAuto, formatCkpt, formatFlink:
		return nil
	}
	return usagef("--format must be auto, ckpt or flink, not %q", format)
}

// detectFlink says whether loc is to be handled as Flink's. With --format
// auto a location is Flink's when flinkjob.Detect says so; a failure to
// detect leaves it to ckpt's code, which reports its own errors.
func detectFlink(ctx context.Context, loc *storage.Location, format string) (flinkjob.Detection, bool, error) {
	switch format {
	case formatCkpt:
		return flinkjob.Detection{}, false, nil
	case formatFlink:
		d, err := flinkjob.Assume(ctx, loc.Bucket, loc.Prefix)
		return d, true, err
	}
	d, err := flinkjob.Detect(ctx, loc.Bucket, loc.Prefix)
	return d, err == nil && d.Kind != flinkjob.NotFlink, nil
}

func runFlinkInspect(ctx context.Context, f *Factory, loc *storage.Location, d flinkjob.Detection, opts *inspectOptions) error {
	s := flinkjob.StoreOf(loc)
	fo := flinkjob.Options{Verify: opts.Verify, ReadData: opts.ReadData, Parallel: opts.Parallel, Progress: f.reporter()}
	if d.Kind == flinkjob.Checkpoint {
		r, err := flinkjob.ReadCheckpoint(ctx, s, d.MetadataKey, fo)
		if err != nil {
			err = fmt.Errorf("inspecting %s: %w", loc.Display, err)
		}
		if r == nil {
			return err
		}
		if f.JSON {
			if jerr := writeJSON(f.Out, flinkCheckpointJSON(loc, r)); jerr != nil {
				return jerr
			}
		} else {
			printFlinkCheckpoint(f.Out, loc, r, opts.Files)
		}
		return err
	}
	r, err := flinkjob.ReadJob(ctx, s, d.Job, fo)
	if err != nil {
		err = fmt.Errorf("inspecting %s: %w", loc.Display, err)
	}
	if r == nil {
		return err
	}
	if f.JSON {
		if jerr := writeJSON(f.Out, flinkJobJSON(loc, r)); jerr != nil {
			return jerr
		}
	} else {
		printFlinkJob(f.Out, loc, r)
	}
	return err
}

// flinkVersions names the Flink releases that write a metadata version.
func flinkVersions(v int32) string {
	switch v {
	case 2:
		return "1.3-1.10"
	case 3:
		return "1.11-1.15"
	case 4:
		return "1.16-1.20"
	case 5:
		return "2.0"
	case 6:
		return "2.1+"
	}
	return "unknown"
}

// printable shows a name from a _metadata in a table: "-" when empty,
// quoted when it holds characters a terminal would not show as such.
func printable(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == utf8.RuneError }) || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}

// fileLocation shows where a referenced file is: a location in the form the
// user gave, or the path as written when it is outside the opened bucket.
func fileLocation(loc *storage.Location, fl flinkjob.File) string {
	if fl.Key == "" {
		return fl.Path
	}
	return keyDisplay(loc, fl.Key)
}

func countJSON(c flinkjob.Count) map[string]any {
	return map[string]any{"handles": c.Handles, "bytes": c.Bytes}
}

func flinkCheckpointJSON(loc *storage.Location, r *flinkjob.Report) map[string]any {
	m := r.Snapshot.Metadata
	ops := []map[string]any{}
	subtasks, finished := 0, 0
	for _, op := range r.Operators {
		sts := []map[string]any{}
		for _, st := range op.Subtasks {
			hs := []map[string]any{}
			for _, h := range st.Handles {
				hs = append(hs, map[string]any{"slot": string(h.Slot), "kind": h.Kind.String(), "state_size": h.StateSize})
			}
			sts = append(sts, map[string]any{"index": st.Index, "finished": st.Finished, "state_size": st.StateSize, "handles": hs})
			subtasks++
			if st.Finished {
				finished++
			}
		}
		ops = append(ops, map[string]any{
			"id": op.ID.String(), "name": op.Name, "uid": op.UID,
			"parallelism": op.Parallelism, "max_parallelism": op.MaxParallelism,
			"fully_finished": op.FullyFinished, "coordinator_state_bytes": op.CoordinatorBytes,
			"state_size": op.StateSize, "subtasks": sts,
		})
	}
	byKind := map[string]int{}
	for k, n := range r.Handles.ByKind {
		byKind[k.String()] = n
	}
	files := []map[string]any{}
	for _, fl := range r.Files {
		fm := map[string]any{
			"path": fl.Path, "location": fileLocation(loc, fl), "where": string(fl.Where),
			"kind": fl.Kind.String(), "relative": fl.Relative, "segment": fl.Segment,
			"size": fl.Size, "handles": fl.Handles, "referenced_at": fl.Location.String(),
		}
		if fl.Problem != "" {
			fm["problem"] = fl.Problem
		}
		files = append(files, fm)
	}
	var job any
	if r.Job != nil {
		job = keyDisplay(loc, r.Job.Prefix)
	}
	return map[string]any{
		"version":           jsonVersion,
		"format":            "flink",
		"type":              "checkpoint",
		"location":          keyDisplay(loc, r.Snapshot.Dir),
		"metadata":          keyDisplay(loc, r.Snapshot.Key),
		"job":               job,
		"checkpoint_id":     m.CheckpointID,
		"metadata_version":  m.Version,
		"flink_versions":    flinkVersions(m.Version),
		"modified_at":       r.Snapshot.ModTime.UTC().Format(time.RFC3339),
		"metadata_bytes":    r.Snapshot.Size,
		"master_states":     len(m.MasterStates),
		"trailer_bytes":     len(m.Trailer),
		"operator_count":    len(r.Operators),
		"subtask_count":     subtasks,
		"finished_subtasks": finished,
		"operators":         ops,
		"handles": map[string]any{
			"inline":         countJSON(r.Handles.Inline),
			"relative_files": countJSON(r.Handles.RelativeFiles),
			"absolute_files": countJSON(r.Handles.AbsoluteFiles),
			"shared_files":   countJSON(r.Handles.SharedFiles),
			"segments":       countJSON(r.Handles.Segments),
			"changelog":      countJSON(r.Handles.Changelog),
			"channel_state":  countJSON(r.Handles.ChannelState),
			"by_kind":        byKind,
		},
		"file_count":     len(r.Files),
		"total_bytes":    r.FileBytes,
		"inline_bytes":   r.InlineBytes,
		"state_size":     r.StateSize,
		"self_contained": r.SelfContained,
		"verified":       r.Verified,
		"data_checked":   r.DataChecked,
		"problems":       r.Problems,
		"files":          files,
	}
}

func printFlinkCheckpoint(w io.Writer, loc *storage.Location, r *flinkjob.Report, all bool) {
	m := r.Snapshot.Metadata
	subtasks, finished := 0, 0
	for _, op := range r.Operators {
		for _, st := range op.Subtasks {
			subtasks++
			if st.Finished {
				finished++
			}
		}
	}
	h := r.Handles
	fmt.Fprintf(w, "flink checkpoint %d (metadata version %d, Flink %s)\n", m.CheckpointID, m.Version, flinkVersions(m.Version))
	fmt.Fprintf(w, "  location        %s\n", keyDisplay(loc, r.Snapshot.Dir))
	fmt.Fprintf(w, "  written         %s (_metadata, %s)\n", r.Snapshot.ModTime.UTC().Format(time.RFC3339), humanBytes(r.Snapshot.Size))
	fmt.Fprintf(w, "  operators       %d, %d subtasks (%d finished)\n", len(r.Operators), subtasks, finished)
	fmt.Fprintf(w, "  files           %d, %s; inline state %s; state size %s\n", len(r.Files), humanBytes(r.FileBytes), humanBytes(r.InlineBytes), humanBytes(r.StateSize))
	fmt.Fprintf(w, "  handles         %d relative files, %d absolute files (%d shared), %d segments, %d changelog, %d channel state, %d inline\n",
		h.RelativeFiles.Handles, h.AbsoluteFiles.Handles, h.SharedFiles.Handles, h.Segments.Handles, h.Changelog.Handles, h.ChannelState.Handles, h.Inline.Handles)
	fmt.Fprintf(w, "  self-contained  %s\n", yesNo(r.SelfContained))
	if r.Verified {
		status := "ok"
		if r.Problems > 0 {
			status = fmt.Sprintf("%d bad files", r.Problems)
		}
		what := "sizes"
		if r.DataChecked {
			what = "sizes, every file read"
		}
		fmt.Fprintf(w, "  verified        %s: %s\n", what, status)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nOPERATOR\tNAME\tUID\tPARALLELISM\tMAX\tSUBTASKS\tSTATE")
	for _, op := range r.Operators {
		name, uid := printable(op.Name), printable(op.UID)
		n := strconv.Itoa(len(op.Subtasks))
		if op.FullyFinished {
			n = "finished"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", op.ID, name, uid, op.Parallelism, op.MaxParallelism, n, humanBytes(op.StateSize))
	}
	tw.Flush()
	if all || len(r.Files) <= 20 || r.Problems > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nFILE\tSIZE\tWHERE\tHANDLES\tSTATUS")
		for _, fl := range r.Files {
			if !all && len(r.Files) > 20 && fl.Problem == "" {
				continue
			}
			status := "-"
			if r.Verified {
				status = "ok"
			}
			if fl.Problem != "" {
				status = fl.Problem
			}
			size := strconv.FormatInt(fl.Size, 10)
			if fl.Segment {
				size = "≥" + size
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", printable(fileLocation(loc, fl)), size, fl.Where, fl.Handles, status)
		}
		tw.Flush()
	}
}

func flinkJobJSON(loc *storage.Location, r *flinkjob.JobReport) map[string]any {
	cps := []map[string]any{}
	for _, e := range r.Checkpoints {
		m := map[string]any{"checkpoint_id": e.ID, "state": string(e.State), "objects": e.Objects, "bytes": e.Bytes}
		if !e.Newest.IsZero() {
			m["newest_object_at"] = e.Newest.UTC().Format(time.RFC3339)
		}
		if rep := e.Report; rep != nil {
			m["metadata_version"] = rep.Snapshot.Metadata.Version
			m["modified_at"] = rep.Snapshot.ModTime.UTC().Format(time.RFC3339)
			m["file_count"] = len(rep.Files)
			m["total_bytes"] = rep.FileBytes
			m["state_size"] = rep.StateSize
			m["self_contained"] = rep.SelfContained
			m["problems"] = rep.Problems
		}
		if e.Error != "" {
			m["error"] = e.Error
			m["problems"] = 1
		}
		cps = append(cps, m)
	}
	var latest any
	if r.Latest >= 0 {
		latest = r.Latest
	}
	return map[string]any{
		"version":              jsonVersion,
		"format":               "flink",
		"type":                 "job",
		"location":             keyDisplay(loc, r.Job.Prefix),
		"latest_checkpoint_id": latest,
		"verified":             r.Verified,
		"problems":             r.Problems,
		"shared":               map[string]any{"files": r.Shared.Handles, "bytes": r.Shared.Bytes},
		"taskowned":            map[string]any{"files": r.TaskOwned.Handles, "bytes": r.TaskOwned.Bytes},
		"checkpoints":          cps,
	}
}

func printFlinkJob(w io.Writer, loc *storage.Location, r *flinkjob.JobReport) {
	fmt.Fprintf(w, "flink job %s\n\n", keyDisplay(loc, r.Job.Prefix))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tWRITTEN\tVERSION\tFILES\tSIZE\tSELF-CONTAINED\tPROBLEMS")
	for _, e := range r.Checkpoints {
		if e.Report == nil {
			problems := 0
			if e.Error != "" {
				problems = 1
			}
			fmt.Fprintf(tw, "%d\t%s\t-\t-\t%d objects\t%s\t-\t%d\n", e.ID, e.State, e.Objects, humanBytes(e.Bytes), problems)
			continue
		}
		rep := e.Report
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\t%d\n", e.ID, e.State, rep.Snapshot.ModTime.UTC().Format(time.RFC3339),
			rep.Snapshot.Metadata.Version, len(rep.Files), humanBytes(rep.FileBytes), yesNo(rep.SelfContained), rep.Problems)
	}
	tw.Flush()
	for _, e := range r.Checkpoints {
		if e.Error != "" {
			fmt.Fprintf(w, "\nchk-%d: %s\n", e.ID, e.Error)
		}
	}
	fmt.Fprintf(w, "\nshared/: %d objects, %s; taskowned/: %d objects, %s (never touched by ckpt)\n",
		r.Shared.Handles, humanBytes(r.Shared.Bytes), r.TaskOwned.Handles, humanBytes(r.TaskOwned.Bytes))
	if r.Latest >= 0 {
		fmt.Fprintf(w, "latest complete checkpoint: %d\n", r.Latest)
	}
}
