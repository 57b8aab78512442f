package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/multihomed/multihomed/internal/lab"
)

// edgeColors gives each edge the same color in every plot.
var edgeColors = map[string]color.RGBA{
	"multihomed-fast":     {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"multihomed-default":  {R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	"multihomed-fast-doc": {R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	"exabgp-default":      {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"exabgp-tuned":        {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"frr":                 {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// plotTimelines writes, per scenario, one figure: packets received per
// 10 ms against time from the fault, one row per edge (its first run) with
// one line each, inbound on the left and outbound on the right, sharing
// the time axis; the fault's start and removal are marked. Overlaid in one
// panel the five lines hid each other. The files are
// <dir>/failover-<scenario>.svg and .png; it returns their paths.
func plotTimelines(dir string, results []lab.CompareResult) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var scenarios []string
	first := map[string][]lab.CompareResult{} // scenario -> first run per edge
	seen := map[[2]string]bool{}
	for _, r := range results {
		k := [2]string{r.Scenario, r.Edge}
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := first[r.Scenario]; !ok {
			scenarios = append(scenarios, r.Scenario)
		}
		first[r.Scenario] = append(first[r.Scenario], r)
	}
	var files []string
	for _, sc := range scenarios {
		runs := first[sc]
		maxX := 0.0
		for _, r := range runs {
			tl := r.Timeline
			maxX = max(maxX, (tl.Start + time.Duration(len(tl.Received[0]))*tl.Bin).Seconds())
		}
		grid := make([][]*plot.Plot, len(runs))
		for i, r := range runs {
			for d, dirName := range []string{"inbound (internet host to LAN host)", "outbound (LAN host to internet host)"} {
				p, err := timelinePanel(r, d, fmt.Sprintf("%s, %s: %s", sc, r.Edge, dirName), maxX, i == len(runs)-1)
				if err != nil {
					return files, err
				}
				grid[i] = append(grid[i], p)
			}
		}
		base := filepath.Join(dir, "failover-"+strings.ReplaceAll(strings.TrimSuffix(sc, "%"), " ", "-"))
		for _, ext := range []string{".svg", ".png"} {
			if err := saveGrid(grid, base+ext); err != nil {
				return files, err
			}
			files = append(files, base+ext)
		}
	}
	return files, nil
}

// timelinePanel draws one edge's one direction.
func timelinePanel(r lab.CompareResult, dir int, title string, maxX float64, xLabel bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	if xLabel {
		p.X.Label.Text = "seconds from the fault"
	}
	p.Y.Label.Text = "packets / 10 ms"
	p.Add(plotter.NewGrid())
	tl := r.Timeline
	pts := make(plotter.XYs, len(tl.Received[dir]))
	for i, n := range tl.Received[dir] {
		pts[i].X = (tl.Start + time.Duration(i)*tl.Bin).Seconds()
		pts[i].Y = float64(n)
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	line.Color = edgeColors[r.Edge]
	line.Width = vg.Points(0.8)
	p.Add(line)
	top := float64(tl.PerBin) * 2
	for _, m := range []struct {
		x      float64
		dashes []vg.Length
		label  string
	}{
		{0, []vg.Length{vg.Points(4), vg.Points(3)}, "fault applied"},
		{tl.Healed.Seconds(), []vg.Length{vg.Points(1), vg.Points(2)}, fmt.Sprintf("fault removed (%.1f s)", tl.Healed.Seconds())},
	} {
		ml, err := plotter.NewLine(plotter.XYs{{X: m.x, Y: 0}, {X: m.x, Y: top}})
		if err != nil {
			return nil, err
		}
		ml.Color = color.Black
		ml.Dashes = m.dashes
		p.Add(ml)
		p.Legend.Add(m.label, ml)
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.Y.Min, p.Y.Max = 0, top+float64(tl.PerBin)
	// The view starts 0.1 s after the timeline: in results recorded
	// before the send clock's first sample bounded the timeline (commit
	// after a6a2294), the first bin also holds every packet sent before
	// that sample.
	p.X.Min, p.X.Max = (tl.Start + 10*tl.Bin).Seconds(), maxX
	return p, nil
}

// saveGrid draws the panels (rows of columns) into path (.svg or .png by
// extension).
func saveGrid(grid [][]*plot.Plot, path string) error {
	w, h := 14*vg.Inch, vg.Length(len(grid))*2*vg.Inch
	var c draw.Canvas
	var save func(f *os.File) error
	switch filepath.Ext(path) {
	case ".svg":
		sc := vgsvg.New(w, h)
		c = draw.New(sc)
		save = func(f *os.File) error { _, err := sc.WriteTo(f); return err }
	case ".png":
		ic := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
		c = draw.New(ic)
		save = func(f *os.File) error { _, err := vgimg.PngCanvas{Canvas: ic}.WriteTo(f); return err }
	default:
		return fmt.Errorf("plot: %s: want .svg or .png", path)
	}
	tiles := draw.Tiles{Rows: len(grid), Cols: len(grid[0]), PadX: vg.Points(16), PadY: vg.Points(8),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align(grid, tiles, c)
	for i := range grid {
		for j := range grid[i] {
			grid[i][j].Draw(canvases[i][j])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := save(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
