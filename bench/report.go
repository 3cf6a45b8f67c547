package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Chart file names in -out (docs/img keeps the same names).
const (
	timeChart  = "vs-tools-time.png"
	bytesChart = "vs-tools-bytes.png"
)

// Report writes results.md, results.json and the charts into cfg.Out.
func (b *Bench) Report(m Machine, args []string) error {
	sums := Summarize(b.samples)
	raw, err := json.MarshalIndent(b.samples, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.cfg.Out, "results.json"), raw, 0o644); err != nil {
		return err
	}
	if err := writeCharts(b.cfg.Out, sums, b.cfg.Rounds); err != nil {
		return err
	}
	var w strings.Builder
	fmt.Fprintf(&w, "Command: `go run ./bench %s`, %s, took %s.\n\n", strings.Join(args, " "),
		b.started.UTC().Format(time.RFC3339), time.Since(b.started).Round(time.Second))
	fmt.Fprintf(&w, "| | |\n|---|---|\n")
	fmt.Fprintf(&w, "| machine | %s, %d CPUs (`nproc`), %.1f GiB RAM, %s |\n", m.CPU, m.NProc, m.MemGiB, m.Kernel)
	fmt.Fprintf(&w, "| load average during the run | %s |\n", m.Load)
	fmt.Fprintf(&w, "| scratch filesystem | %s |\n", m.Filesystem)
	fmt.Fprintf(&w, "| software | %s; %s; %s; ckpt built from this tree |\n", m.GoVersion, m.Restic, m.Rclone)
	fmt.Fprintf(&w, "| store | Pebble v2 (`testpebble.Create`): %s; keys `key-`+8-byte big-endian index, dense and sequential; values random (incompressible), %d bytes; Pebble's default sstable sizes, compacted into the last level |\n", b.shape, valueSize)
	fmt.Fprintf(&w, "| churn | `testpebble.Churn`: a contiguous range of 1 %%, 5 %%, then 20 %% of the keys rewritten (every 97th deleted), then flushed; Pebble compacts as it would |\n")
	fmt.Fprintf(&w, "| gc chain | %d checkpoints / snapshots, %g %% churn between them; gc keeps %d |\n", b.cfg.GCCheckpoints, b.cfg.GCChurn*100, b.cfg.GCRetain)
	for _, n := range b.notes {
		fmt.Fprintf(&w, "| note | %s |\n", n)
	}
	fmt.Fprintf(&w, "\n%s\n", MarkdownTable(sums))
	fmt.Fprintf(&w, "%s\n%s", incrementTable(b.samples), targetsTable(sums, b.s3 != nil))
	fmt.Fprintf(&w, "\n![time](img/%s)\n\n![bytes](img/%s)\n", timeChart, bytesChart)
	return os.WriteFile(filepath.Join(b.cfg.Out, "results.md"), []byte(w.String()), 0o644)
}

// incrementTable compares what ckpt wrote for each incremental checkpoint
// with the new sstables and private files of the store (median over rounds
// of the per-round ratio).
func incrementTable(samples []Sample) string {
	var w strings.Builder
	fmt.Fprintf(&w, "| incremental | tool | written (median) | new sstables + private files (median) | ratio (median, range) |\n|---|---|--:|--:|--:|\n")
	for _, s := range Summarize(samples) {
		if s.Expected == 0 || !strings.HasPrefix(s.Tool, "ckpt") {
			continue
		}
		var rs []float64
		for _, x := range samples {
			if x.Op == s.Op && x.Tool == s.Tool {
				rs = append(rs, ratio(float64(x.Written), float64(x.Expected)))
			}
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %.3f (%.3f–%.3f) |\n", s.Op, s.Tool, MB(s.Written), MB(s.Expected),
			median(rs), slices.Min(rs), slices.Max(rs))
	}
	return w.String()
}

// targetsTable states issue 9's targets and whether the medians meet them.
func targetsTable(sums []Summary, s3 bool) string {
	var w strings.Builder
	fmt.Fprintf(&w, "| target | measured (ratio of medians) | met |\n|---|--:|---|\n")
	line := func(what string, r float64, ok bool) {
		if r == 0 {
			fmt.Fprintf(&w, "| %s | not measured | — |\n", what)
			return
		}
		fmt.Fprintf(&w, "| %s | %.2f× | %s |\n", what, r, yes(ok))
	}
	get := func(op, tool string) float64 {
		s, _ := Find(sums, op, tool)
		return s.Wall.Seconds()
	}
	for _, op := range []string{"incr 1 %", "incr 5 %", "incr 20 %"} {
		s, _ := Find(sums, op, "ckpt")
		r := ratio(float64(s.Written), float64(s.Expected))
		line(fmt.Sprintf("%s: ckpt writes ≤ 1.05× new sstables + private files", op), r, r <= 1.05)
	}
	for _, op := range []string{"incr 1 %", "incr 5 %", "incr 20 %"} {
		restic := get(op, "restic")
		for _, tool := range []string{"ckpt", "ckpt --local-dir"} {
			r := ratio(restic, get(op, tool))
			line(fmt.Sprintf("%s: %s faster than restic backup (restic time ÷ ckpt time > 1)", op, tool), r, r > 1)
		}
	}
	ckpt, cp := get("restore", "ckpt"), get("restore", Baseline)
	r := ratio(cp, ckpt)
	line("restore: ckpt throughput ≥ 0.8× `cp -r` (cp time ÷ ckpt time)", r, r >= 0.8)
	local := get("restore", "ckpt --local-dir")
	r = ratio(ckpt, local)
	line("restore: local copy ≥ 10× faster than from the file location", r, r >= 10)
	trusted := get("restore", "ckpt --local-dir --trust-size")
	r = ratio(ckpt, trusted)
	line("restore: local copy with --trust-size ≥ 10× faster than from the file location", r, r >= 10)
	if s3 {
		r = ratio(get("restore", "ckpt (s3)"), local)
		line("restore: local copy ≥ 10× faster than from S3 (MinIO)", r, r >= 10)
	}
	r = ratio(get("restore", "restic"), ckpt)
	line("restore: ckpt faster than restic (restic time ÷ ckpt time > 1)", r, r > 1)
	if s3 {
		r = ratio(get("restore", "restic (s3)"), get("restore", "ckpt (s3)"))
		line("restore from S3: ckpt faster than restic", r, r > 1)
	}
	return w.String()
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// sizeText is MB for a chart label, or kB below 0.1 MB so that small
// figures do not print as 0.0 MB beside a visible bar.
func sizeText(n int64) string {
	if n < 100_000 {
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	}
	return MB(n)
}

// writeCharts draws the time and bytes charts of sums into out.
func writeCharts(out string, sums []Summary, rounds int) error {
	note := fmt.Sprintf("median of %d round(s); whisker: min-max; bars scaled within each operation", rounds)
	var tb, bb []Bar
	for _, s := range sums {
		tb = append(tb, Bar{Group: s.Op, Label: s.Tool, Value: s.Wall.Seconds(), Min: s.WallMin.Seconds(), Max: s.WallMax.Seconds(),
			Text: fmt.Sprintf("%s s", secs(s.Wall))})
		bb = append(bb, Bar{Group: s.Op, Label: s.Tool, Value: float64(s.Written), Text: sizeText(s.Written)})
	}
	if err := WritePNG(filepath.Join(out, timeChart), Chart("Wall time per operation and tool (s)", note, tb)); err != nil {
		return err
	}
	if err := WritePNG(filepath.Join(out, bytesChart),
		Chart("Bytes written to the destination per operation and tool", fmt.Sprintf("median of %d round(s); restore: bytes of the restored directory", rounds), bb)); err != nil {
		return err
	}
	return nil
}

// Replot redraws the charts in dir from its results.json (after a change
// to the charts, without measuring again).
func Replot(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var samples []Sample
	if err := json.Unmarshal(raw, &samples); err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(dir, "results.json"), err)
	}
	rounds := 0
	for _, s := range samples {
		rounds = max(rounds, s.Round+1)
	}
	return writeCharts(dir, Summarize(samples), rounds)
}
