// Package chart draws the benchmark's fan-out chart: deliveries/s and
// end-to-end p99 latency against the listener count, one line per series,
// on log-log axes, as an SVG and a PNG with the two panels side by side.
package chart

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Point is one measurement of a series at a listener count. A zero or
// negative value is left out of its panel (not measured).
type Point struct {
	Listeners  int
	Deliveries float64 // deliveries/s
	P99Ms      float64 // end-to-end p99, milliseconds
}

// Series is one line in both panels (one server, one event size).
type Series struct {
	Name   string
	Points []Point
}

// Render draws the two panels and writes prefix.svg and prefix.png,
// creating prefix's directory. A series keeps its colour, dash and marker
// in both panels.
func Render(prefix, title, subtitle string, series []Series) error {
	deliv := newPanel(title+": deliveries/s", "listeners", "deliveries/s (sum over listeners)")
	lat := newPanel(title+": end-to-end p99", "listeners", "p99 latency (ms)")
	if subtitle != "" {
		deliv.Title.Text += "\n" + subtitle
		lat.Title.Text += "\n" + subtitle
	}
	var hasDeliv, hasLat bool
	for i, s := range series {
		var d, l plotter.XYs
		for _, p := range s.Points {
			if p.Deliveries > 0 {
				d = append(d, plotter.XY{X: float64(p.Listeners), Y: p.Deliveries})
			}
			if p.P99Ms > 0 {
				l = append(l, plotter.XY{X: float64(p.Listeners), Y: p.P99Ms})
			}
		}
		hasDeliv = hasDeliv || len(d) > 0
		hasLat = hasLat || len(l) > 0
		if err := addSeries(deliv, i, s.Name, d); err != nil {
			return err
		}
		if err := addSeries(lat, i, s.Name, l); err != nil {
			return err
		}
	}
	for p, has := range map[*plot.Plot]bool{deliv: hasDeliv, lat: hasLat} {
		if !has {
			// Log axes cannot show an empty range.
			p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
			p.X.Tick.Marker, p.Y.Tick.Marker = plot.DefaultTicks{}, plot.DefaultTicks{}
			p.Title.Text += " (no data)"
		}
	}
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return err
	}
	const w, h = 11 * vg.Inch, 4.5 * vg.Inch
	svg := vgsvg.New(w, h)
	drawPanels(draw.New(svg), deliv, lat)
	if err := writeFile(prefix+".svg", svg); err != nil {
		return err
	}
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))
	drawPanels(draw.New(img), deliv, lat)
	return writeFile(prefix+".png", vgimg.PngCanvas{Canvas: img})
}

func addSeries(p *plot.Plot, i int, name string, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Color = plotutil.Color(i)
	line.Dashes = plotutil.Dashes(i)
	line.Width = vg.Points(1.5)
	points.Color = plotutil.Color(i)
	points.Shape = plotutil.Shape(i)
	p.Add(line, points)
	p.Legend.Add(name, line, points)
	return nil
}

func newPanel(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = LogTicks{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = LogTicks{}
	// Both metrics grow with the listener count: the lower right corner is
	// where the lines are not.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Millimeter * 2
	p.Legend.YOffs = vg.Millimeter * 2
	p.Add(plotter.NewGrid())
	return p
}

// LogTicks labels 1, 2 and 5 times each power of ten (plain plot.LogTicks
// labels powers of ten only, too sparse for a narrow range), with
// unlabelled minor ticks in between.
type LogTicks struct{}

// Ticks implements plot.Ticker.
func (LogTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= 0 || lo > hi {
		return nil
	}
	var ticks []plot.Tick
	for exp := math.Floor(math.Log10(lo)); math.Pow(10, exp) <= hi; exp++ {
		base := math.Pow(10, exp)
		for m := 1; m < 10; m++ {
			v := float64(m) * base
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = TickLabel(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// TickLabel writes v with a k or M suffix: 2000 is "2k".
func TickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

func drawPanels(dc draw.Canvas, plots ...*plot.Plot) {
	t := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 3,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	canvases := plot.Align([][]*plot.Plot{plots}, t, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
}

func writeFile(path string, w io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
