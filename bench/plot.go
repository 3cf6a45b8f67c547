package main

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"strings"
)

// Bar is one horizontal bar of a chart: the median of a tool's runs for one
// operation, with its range drawn as a whisker when Min < Max.
type Bar struct {
	Group string  // operation; bars of a group share one scale
	Label string  // tool
	Value float64 // bar length (median)
	Min   float64 // whisker start (0 for none)
	Max   float64 // whisker end (0 for none)
	Text  string  // printed after the bar
}

// Plot geometry, in image pixels.
const (
	scale     = 2 // image pixels per font pixel
	charW     = glyphAdvance * scale
	lineH     = (glyphH + 5) * scale
	margin    = 16
	plotWidth = 1100
)

var (
	white = color.RGBA{255, 255, 255, 255}
	ink   = color.RGBA{30, 30, 30, 255}
	grey  = color.RGBA{150, 150, 150, 255}
	// palette colours tool families in order of first appearance.
	palette = []color.RGBA{
		{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
		{188, 189, 34, 255}, {23, 190, 207, 255},
	}
)

// Chart draws bars grouped by Group (in order of first appearance) under a
// title and a note, each group scaled to its own largest value (its Max if
// larger), so that small and large operations are both readable; every bar
// carries its value as text.
func Chart(title, note string, bars []Bar) *image.RGBA {
	var groups []string
	byGroup := map[string][]Bar{}
	colours := map[string]color.RGBA{}
	labelW := 0
	for _, b := range bars {
		if _, ok := byGroup[b.Group]; !ok {
			groups = append(groups, b.Group)
		}
		byGroup[b.Group] = append(byGroup[b.Group], b)
		if _, ok := colours[family(b.Label)]; !ok {
			colours[family(b.Label)] = palette[len(colours)%len(palette)]
		}
		labelW = max(labelW, textWidth(b.Label))
	}
	height := margin*2 + 3*lineH + len(groups)*(lineH+lineH/2) + len(bars)*lineH
	img := image.NewRGBA(image.Rect(0, 0, plotWidth, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)

	y := margin
	drawText(img, margin, y, title, ink)
	y += lineH
	drawText(img, margin, y, note, grey)
	y += 2 * lineH
	x0 := margin + labelW + charW
	barMax := plotWidth - x0 - margin - 14*charW // room for the value text
	for _, g := range groups {
		drawText(img, margin, y, g, ink)
		y += lineH
		top := 0.0
		for _, b := range byGroup[g] {
			top = max(top, b.Value, b.Max)
		}
		px := func(v float64) int {
			if top <= 0 {
				return 0
			}
			return int(v / top * float64(barMax))
		}
		for _, b := range byGroup[g] {
			drawText(img, margin+labelW-textWidth(b.Label), y, b.Label, ink)
			h := glyphH * scale
			fill(img, image.Rect(x0, y, x0+max(px(b.Value), 1), y+h), colours[family(b.Label)])
			end := px(b.Value)
			if b.Max > b.Min {
				mid := y + h/2
				fill(img, image.Rect(x0+px(b.Min), mid-1, x0+px(b.Max)+1, mid+1), ink)
				fill(img, image.Rect(x0+px(b.Min), y+2, x0+px(b.Min)+2, y+h-2), ink)
				fill(img, image.Rect(x0+px(b.Max)-1, y+2, x0+px(b.Max)+1, y+h-2), ink)
				end = max(end, px(b.Max))
			}
			drawText(img, x0+end+charW, y, b.Text, ink)
			y += lineH
		}
		y += lineH / 2
	}
	return img
}

// family is the tool a bar label names (its first word): one colour per
// tool, whatever the operation or destination.
func family(label string) string {
	f, _, _ := strings.Cut(label, " ")
	return f
}

// WritePNG encodes img into the file path.
func WritePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

// textWidth is the width in pixels of s drawn by drawText.
func textWidth(s string) int { return len([]rune(s)) * charW }

// drawText draws s with its top-left corner at (x, y).
func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	for _, r := range s {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs['?']
		}
		for row, line := range g {
			for col, ch := range line {
				if ch == '#' {
					fill(img, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
		x += charW
	}
}
