package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	in := []time.Duration{3, 1, 2}
	if median(in) != 2 || in[0] != 3 {
		t.Errorf("median of durations wrong or input modified: %v", in)
	}
}

func TestSummarize(t *testing.T) {
	s := func(op, tool string, round, order int, wall time.Duration, written int64) Sample {
		return Sample{Op: op, Tool: tool, Round: round, Order: order, Wall: wall * time.Second, Written: written}
	}
	sums := Summarize([]Sample{
		// Round 0 runs ckpt last, round 1 first: tables keep Order.
		s("full", Baseline, 0, 1, 2, 100),
		s("full", "ckpt", 0, 0, 4, 50),
		s("full", "ckpt", 1, 0, 9, 50),
		s("full", Baseline, 1, 1, 3, 100),
		s("gc", "ckpt gc", 0, 0, 1, 0),
	})
	if len(sums) != 3 {
		t.Fatalf("got %d summaries, want 3: %+v", len(sums), sums)
	}
	if sums[0].Tool != "ckpt" || sums[1].Tool != Baseline || sums[2].Op != "gc" {
		t.Errorf("order: %s, %s, %s", sums[0].Tool, sums[1].Tool, sums[2].Op)
	}
	c := sums[0]
	if c.Wall != 6500*time.Millisecond || c.WallMin != 4*time.Second || c.WallMax != 9*time.Second {
		t.Errorf("ckpt wall median/min/max = %v %v %v", c.Wall, c.WallMin, c.WallMax)
	}
	// Per-round ratios 4/2 = 2 and 9/3 = 3: median 2.5.
	if c.TimeVsCopy != 2.5 || c.WrittenVsCopy != 0.5 {
		t.Errorf("ratios to cp -r = %v, %v; want 2.5, 0.5", c.TimeVsCopy, c.WrittenVsCopy)
	}
	if sums[2].TimeVsCopy != 0 {
		t.Errorf("gc has no baseline, ratio %v", sums[2].TimeVsCopy)
	}
}

func TestMarkdownTable(t *testing.T) {
	got := MarkdownTable([]Summary{
		{Op: "full", Tool: "ckpt", Wall: 1500 * time.Millisecond, WallMin: time.Second, WallMax: 12 * time.Second,
			TimeVsCopy: 2, CPU: time.Second, Written: 1_234_567_890, WrittenVsCopy: 0.995},
		{Op: "full", Tool: Baseline, Wall: 750 * time.Millisecond, WallMin: 750 * time.Millisecond, WallMax: 750 * time.Millisecond,
			TimeVsCopy: 1, Written: 1_240_000_000, WrittenVsCopy: 1},
	})
	want := `| operation | tool | wall s, median (min–max) | time ÷ cp -r | CPU s | written | written ÷ cp -r |
| --- | --- | --: | --: | --: | --: | --: |
| full | ckpt | 1.50 (1.00–12.0) | 2.00× | 1.00 | 1,234.6 MB | 0.99× |
|  | cp -r | 0.75 (0.75–0.75) | 1.00× | 0.00 | 1,240.0 MB | 1.00× |
`
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[int64]string{0: "0.0 MB", 49_999: "0.0 MB", 50_000: "0.1 MB", 1_028_937_883: "1,028.9 MB", -3_100_000: "-3.1 MB"} {
		if got := MB(in); got != want {
			t.Errorf("MB(%d) = %q, want %q", in, got, want)
		}
	}
	if times(0) != "—" || times(0.5) != "0.50×" || times(250) != "250×" {
		t.Errorf("times: %q %q %q", times(0), times(0.5), times(250))
	}
}

func TestWritten(t *testing.T) {
	before := Listing{"a": {Size: 10, Inode: 1}, "b": {Size: 20, Inode: 2}, "gone": {Size: 5}}
	after := Listing{"a": {Size: 10, Inode: 1}, "b": {Size: 20, Inode: 3}, "c": {Size: 7}}
	if got := Written(before, after); got != 27 {
		t.Errorf("Written = %d, want 27 (rewritten b + new c)", got)
	}
	if before.Total()-after.Total() != -2 {
		t.Errorf("totals %d %d", before.Total(), after.Total())
	}
}

func TestChartPNG(t *testing.T) {
	img := Chart("Wall time (s)", "median; whisker min-max", []Bar{
		{Group: "full", Label: "ckpt", Value: 4, Min: 3, Max: 5, Text: "4.00 s"},
		{Group: "full", Label: "cp -r", Value: 1, Text: "1.00 s"},
		{Group: "gc 20 → 3", Label: "restic forget --prune", Value: 0, Text: "0.00 s"},
	})
	path := filepath.Join(t.TempDir(), "c.png")
	if err := WritePNG(path, img); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a valid PNG: %v", err)
	}
	if b := dec.Bounds(); b.Dx() != plotWidth || b.Dy() < 200 {
		t.Errorf("size %v", b)
	}
	// The ckpt bar (colour 0) must be drawn, longer than cp -r's.
	count := func(c int) int {
		n := 0
		for y := dec.Bounds().Min.Y; y < dec.Bounds().Max.Y; y++ {
			for x := dec.Bounds().Min.X; x < dec.Bounds().Max.X; x++ {
				r, g, b, _ := dec.At(x, y).RGBA()
				p := palette[c]
				if uint8(r>>8) == p.R && uint8(g>>8) == p.G && uint8(b>>8) == p.B {
					n++
				}
			}
		}
		return n
	}
	if a, b := count(0), count(1); a == 0 || a <= 2*b {
		t.Errorf("bar pixels: ckpt %d, cp -r %d; want ckpt's about 4× cp's", a, b)
	}
}

func TestGlyphs(t *testing.T) {
	for r, g := range glyphs {
		for _, row := range g {
			if len(row) != glyphW || strings.Trim(row, ".#") != "" {
				t.Errorf("glyph %q: bad row %q", r, row)
			}
		}
	}
}

func TestRotate(t *testing.T) {
	if got := rotate([]int{0, 1, 2}, 4); got[0] != 1 || got[2] != 0 {
		t.Errorf("rotate = %v", got)
	}
}
