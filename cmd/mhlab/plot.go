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
	"multihomed-fast":    {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"multihomed-default": {R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	"exabgp-default":     {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"exabgp-tuned":       {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"frr":                {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// plotTimelines writes, per scenario, one figure with two panels
// (inbound, outbound): packets received per 10 ms against time from the
// fault, one line per edge (its first run), the fault's start marked. The
// files are <dir>/failover-<scenario>.svg and .png; it returns their
// paths.
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
		var panels [2]*plot.Plot
		for dir, title := range []string{"inbound (internet host to LAN host)", "outbound (LAN host to internet host)"} {
			p, err := timelinePanel(sc, title, dir, first[sc])
			if err != nil {
				return files, err
			}
			panels[dir] = p
		}
		base := filepath.Join(dir, "failover-"+strings.ReplaceAll(strings.TrimSuffix(sc, "%"), " ", "-"))
		for _, ext := range []string{".svg", ".png"} {
			if err := saveStacked(panels, base+ext); err != nil {
				return files, err
			}
			files = append(files, base+ext)
		}
	}
	return files, nil
}

func timelinePanel(scenario, title string, dir int, runs []lab.CompareResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s", scenario, title)
	p.X.Label.Text = "seconds from the fault"
	p.Y.Label.Text = "packets received per 10 ms"
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	maxX, perBin := 0.0, 10
	for _, r := range runs {
		tl := r.Timeline
		perBin = tl.PerBin
		pts := make(plotter.XYs, len(tl.Received[dir]))
		for i, n := range tl.Received[dir] {
			pts[i].X = (tl.Start + time.Duration(i)*tl.Bin).Seconds()
			pts[i].Y = float64(n)
		}
		if len(pts) > 0 {
			maxX = max(maxX, pts[len(pts)-1].X)
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		line.Color = edgeColors[r.Edge]
		line.Width = vg.Points(1.2)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s (fault removed at %.1f s)", r.Edge, tl.Healed.Seconds()), line)
	}
	// The fault starts at 0.
	mark, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.5}, {X: 0, Y: float64(perBin) + 1.5}})
	if err != nil {
		return nil, err
	}
	mark.Color = color.Black
	mark.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(mark)
	p.Legend.Add("fault applied", mark)
	p.Y.Min, p.Y.Max = -0.5, float64(perBin)+4
	p.X.Max = maxX
	return p, nil
}

// saveStacked draws the two panels one above the other into path (.svg or
// .png by extension).
func saveStacked(panels [2]*plot.Plot, path string) error {
	w, h := 12*vg.Inch, 8*vg.Inch
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
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(12), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{panels[0]}, {panels[1]}}, tiles, c)
	panels[0].Draw(canvases[0][0])
	panels[1].Draw(canvases[1][0])
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
