package main

import (
	"fmt"
	"strings"
	"time"
)

// MarkdownTable renders summaries as one markdown table: the operation is
// named on the first of its rows only. Columns for server CPU and freed
// bytes appear only when some row has them.
func MarkdownTable(sums []Summary) string {
	var hasServer, hasFreed bool
	for _, s := range sums {
		hasServer = hasServer || s.ServerCPU > 0
		hasFreed = hasFreed || s.Freed != 0
	}
	head := []string{"operation", "tool", "wall s, median (min–max)", "time ÷ cp -r", "CPU s"}
	if hasServer {
		head = append(head, "MinIO CPU s")
	}
	head = append(head, "written", "written ÷ cp -r")
	if hasFreed {
		head = append(head, "freed")
	}
	var b strings.Builder
	row := func(cells []string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	row(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
		if i >= 2 {
			sep[i] = "--:"
		}
	}
	row(sep)
	prev := ""
	for _, s := range sums {
		op := s.Op
		if op == prev {
			op = ""
		}
		prev = s.Op
		cells := []string{op, s.Tool,
			fmt.Sprintf("%s (%s–%s)", secs(s.Wall), secs(s.WallMin), secs(s.WallMax)),
			times(s.TimeVsCopy), secs(s.CPU)}
		if hasServer {
			cells = append(cells, dash(s.ServerCPU > 0, secs(s.ServerCPU)))
		}
		cells = append(cells, MB(s.Written), times(s.WrittenVsCopy))
		if hasFreed {
			cells = append(cells, dash(s.Freed != 0, MB(s.Freed)))
		}
		row(cells)
	}
	return b.String()
}

// secs formats d in seconds with two decimals below 10 s, one above.
func secs(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f", d.Seconds())
	}
	return fmt.Sprintf("%.2f", d.Seconds())
}

// times formats a ratio as "1.23×", or "—" for 0 (no baseline).
func times(r float64) string {
	if r == 0 {
		return "—"
	}
	if r >= 100 {
		return fmt.Sprintf("%.0f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

// MB formats bytes in megabytes (10^6), with thousands separators.
func MB(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	tenths := (n + 50_000) / 100_000
	s := fmt.Sprintf("%s.%d MB", thousands(tenths/10), tenths%10)
	if neg {
		s = "-" + s
	}
	return s
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func dash(ok bool, s string) string {
	if !ok {
		return "—"
	}
	return s
}
