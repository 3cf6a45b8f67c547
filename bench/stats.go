package main

import (
	"slices"
	"time"
)

// Sample is one timed run of one tool for one operation in one round.
type Sample struct {
	Op    string // operation, one of the ops list (e.g. "incr 5 %")
	Tool  string // tool and destination (e.g. "restic (s3)")
	Round int
	// Order is the tool's place in its unrotated list: tables and charts
	// list tools in this order.
	Order int
	Wall  time.Duration
	// CPU is the child process's user + system time (getrusage of the
	// waited-for child, which includes its own reaped children).
	CPU time.Duration
	// ServerCPU is the MinIO server's CPU time during the run (S3 rows, when
	// the server process could be found), else 0.
	ServerCPU time.Duration
	// Written is the bytes of the files (objects) that are new or rewritten
	// at the destination after the run, found by listing it before and after.
	Written int64
	// Freed is the destination's total size before minus after (gc rows).
	Freed int64
	// Expected is, for checkpoint rows, the bytes of new sstables plus the
	// store's private files since the previous checkpoint (0 for a full one).
	Expected int64
}

// Summary aggregates the samples of one (operation, tool) pair.
type Summary struct {
	Op, Tool                 string
	N                        int
	Wall, WallMin, WallMax   time.Duration // median, min, max
	CPU, ServerCPU           time.Duration // medians
	Written, Freed, Expected int64         // medians
	TimeVsCopy               float64       // median per-round wall / cp -r wall; 0 if no cp -r row
	WrittenVsCopy            float64       // median per-round written / cp -r written; 0 if none
}

// median returns the median of xs (the mean of the two middle values for an
// even count), 0 for none. xs is not modified.
func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Baseline is the tool every other tool's time is compared with.
const Baseline = "cp -r"

// Summarize groups samples by (Op, Tool), operations in the order they first
// appear and tools by Order, and computes medians and ratios to the Baseline tool of the same
// operation and round.
func Summarize(samples []Sample) []Summary {
	type key struct{ op, tool string }
	var order []key
	groups := map[key][]Sample{}
	base := map[string]map[int]Sample{} // op -> round -> baseline sample
	for _, s := range samples {
		k := key{s.Op, s.Tool}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
		if s.Tool == Baseline {
			if base[s.Op] == nil {
				base[s.Op] = map[int]Sample{}
			}
			base[s.Op][s.Round] = s
		}
	}
	// Keep operations together, in first-seen order.
	opRank := map[string]int{}
	for _, k := range order {
		if _, ok := opRank[k.op]; !ok {
			opRank[k.op] = len(opRank)
		}
	}
	slices.SortStableFunc(order, func(a, b key) int {
		if opRank[a.op] != opRank[b.op] {
			return opRank[a.op] - opRank[b.op]
		}
		return groups[a][0].Order - groups[b][0].Order
	})

	out := make([]Summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		var wall, cpu, srv []time.Duration
		var written, freed, expected []int64
		var tr, wr []float64
		for _, s := range g {
			wall = append(wall, s.Wall)
			cpu = append(cpu, s.CPU)
			srv = append(srv, s.ServerCPU)
			written = append(written, s.Written)
			freed = append(freed, s.Freed)
			expected = append(expected, s.Expected)
			if b, ok := base[s.Op][s.Round]; ok {
				tr = append(tr, ratio(float64(s.Wall), float64(b.Wall)))
				if b.Written > 0 {
					wr = append(wr, ratio(float64(s.Written), float64(b.Written)))
				}
			}
		}
		out = append(out, Summary{
			Op: k.op, Tool: k.tool, N: len(g),
			Wall: median(wall), WallMin: slices.Min(wall), WallMax: slices.Max(wall),
			CPU: median(cpu), ServerCPU: median(srv),
			Written: median(written), Freed: median(freed), Expected: median(expected),
			TimeVsCopy: median(tr), WrittenVsCopy: median(wr),
		})
	}
	return out
}

// Find returns the summary of (op, tool), if any.
func Find(sums []Summary, op, tool string) (Summary, bool) {
	for _, s := range sums {
		if s.Op == op && s.Tool == tool {
			return s, true
		}
	}
	return Summary{}, false
}
