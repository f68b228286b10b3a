// Command benchplot reads sseload JSON results (files or directories) and
// draws deliveries/s and end-to-end p99 latency against the listener count,
// one series per run label (e.g. "ours", "baseline") and event size, as an
// SVG and a PNG with two panels.
//
//	go run ./bench/cmd/benchplot -o bench/results/fanout/fanout bench/results/fanout
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("benchplot", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("o", "fanout", "output path prefix: writes <prefix>.svg and <prefix>.png")
	title := fset.String("title", "SSE fan-out", "chart title")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "benchplot — chart sseload results (deliveries/s and p99 latency vs listeners).\n\nUsage: benchplot [flags] result.json|dir ...\n\n")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() == 0 {
		fset.Usage()
		return 2
	}
	reports, err := loadReports(fset.Args(), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "benchplot: %v\n", err)
		return 1
	}
	series := buildSeries(reports)
	if len(series) == 0 {
		fmt.Fprintln(stderr, "benchplot: no load results with listeners found")
		return 1
	}
	writeTable(stdout, series)
	if err := render(series, *title, subtitle(reports), *out); err != nil {
		fmt.Fprintf(stderr, "benchplot: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s.svg and %s.png\n", *out, *out)
	return 0
}

// loadReports reads every *.json file given or found under the directories
// given. Files that are not sseload results are skipped with a note.
func loadReports(paths []string, stderr io.Writer) ([]*load.Report, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".json") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var reports []*load.Report
	for _, f := range files {
		r, err := load.ReadReport(f)
		if err != nil {
			fmt.Fprintf(stderr, "benchplot: skipping %v\n", err)
			continue
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// point is one run: listeners → deliveries/s and p99 (ms).
type point struct {
	listeners  int
	deliveries float64
	p99ms      float64
	ratio      float64
}

type series struct {
	name   string
	points []point // sorted by listeners
}

// buildSeries groups load runs by label and event size. When several runs
// share a series and a listener count, the latest one wins.
func buildSeries(reports []*load.Report) []series {
	sizes := map[int]bool{}
	for _, r := range reports {
		if r.Mode == load.ModeLoad && r.Load != nil {
			sizes[r.Params.Size] = true
		}
	}
	type key struct {
		name string
		l    int
	}
	latest := map[key]*load.Report{}
	for _, r := range reports {
		if r.Mode != load.ModeLoad || r.Load == nil || r.Params.Listeners <= 0 {
			continue
		}
		name := r.Label
		if name == "" {
			name = "unlabelled"
		}
		if len(sizes) > 1 {
			name += fmt.Sprintf(" %s", sizeName(r.Params.Size))
		}
		k := key{name, r.Params.Listeners}
		if old, ok := latest[k]; !ok || r.StartedAt.After(old.StartedAt) {
			latest[k] = r
		}
	}
	byName := map[string][]point{}
	for k, r := range latest {
		byName[k.name] = append(byName[k.name], point{
			listeners:  k.l,
			deliveries: r.Load.DeliveriesPerSec,
			p99ms:      r.Load.E2E.P99Us / 1000,
			ratio:      r.Load.DeliveryRatio,
		})
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]series, 0, len(names))
	for _, n := range names {
		pts := byName[n]
		sort.Slice(pts, func(i, j int) bool { return pts[i].listeners < pts[j].listeners })
		out = append(out, series{name: n, points: pts})
	}
	return out
}

func sizeName(b int) string {
	if b >= 1024 && b%1024 == 0 {
		return fmt.Sprintf("%dKiB", b/1024)
	}
	return fmt.Sprintf("%dB", b)
}

func subtitle(reports []*load.Report) string {
	for _, r := range reports {
		if r.Mode == load.ModeLoad {
			return fmt.Sprintf("%s, %d cores, %s; %d producers", r.Env.CPUModel, r.Env.Cores, r.Env.GoVersion, r.Params.Producers)
		}
	}
	return ""
}

func writeTable(w io.Writer, ss []series) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "series\tlisteners\tdeliveries/s\tp99 ms\tdelivery ratio\t")
	for _, s := range ss {
		for _, p := range s.points {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t%.4f\t\n", s.name, p.listeners, load.FormatCount(p.deliveries), p.p99ms, p.ratio)
		}
	}
	tw.Flush()
}

// render draws the two panels and writes prefix.svg and prefix.png.
func render(ss []series, title, sub, prefix string) error {
	deliv := newPanel(title+": deliveries/s", "listeners", "deliveries/s (sum over listeners)")
	lat := newPanel(title+": end-to-end p99", "listeners", "p99 latency (ms)")
	if sub != "" {
		deliv.Title.Text += "\n" + sub
		lat.Title.Text += "\n" + sub
	}
	for i, s := range ss {
		var d, l plotter.XYs
		for _, p := range s.points {
			if p.deliveries > 0 {
				d = append(d, plotter.XY{X: float64(p.listeners), Y: p.deliveries})
			}
			if p.p99ms > 0 {
				l = append(l, plotter.XY{X: float64(p.listeners), Y: p.p99ms})
			}
		}
		// Style by series index so a series looks the same in both panels.
		if err := addSeries(deliv, i, s.name, d); err != nil {
			return err
		}
		if err := addSeries(lat, i, s.name, l); err != nil {
			return err
		}
	}
	if dir := filepath.Dir(prefix); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
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
	p.X.Tick.Marker = logTicks{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	// Both metrics grow with the listener count: the lower right corner is
	// where the lines are not.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Millimeter * 2
	p.Legend.YOffs = vg.Millimeter * 2
	p.Add(plotter.NewGrid())
	return p
}

// logTicks labels 1, 2 and 5 times each power of ten (plain
// plot.LogTicks labels powers of ten only, too sparse for a narrow range),
// with unlabelled minor ticks in between.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
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
				t.Label = tickLabel(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func tickLabel(v float64) string {
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
