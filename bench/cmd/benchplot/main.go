// Command benchplot reads sseload JSON results (files or directories) and
// draws deliveries/s and end-to-end p99 latency against the listener count,
// one series per run label (e.g. "ours", "baseline") and event size, as an
// SVG and a PNG with two panels. Repeated runs of a point are combined by
// their median. (make bench-all draws its chart itself, with benchreport.)
//
//	go run ./bench/cmd/benchplot -o /tmp/sweep bench/results/sweep
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/chart"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
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
	if err := chart.Render(*out, *title, subtitle(reports), series); err != nil {
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

// buildSeries groups load runs by label and event size, one point per
// listener count: the median of its runs' deliveries/s and p99.
func buildSeries(reports []*load.Report) []chart.Series {
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
	type values struct{ deliv, p99 []float64 }
	points := map[key]*values{}
	for _, r := range reports {
		if r.Mode != load.ModeLoad || r.Load == nil || r.Params.Listeners <= 0 {
			continue
		}
		name := r.Label
		if name == "" {
			name = "unlabelled"
		}
		if len(sizes) > 1 {
			name += " " + sizeName(r.Params.Size)
		}
		k := key{name, r.Params.Listeners}
		if points[k] == nil {
			points[k] = &values{}
		}
		points[k].deliv = append(points[k].deliv, r.Load.DeliveriesPerSec)
		points[k].p99 = append(points[k].p99, r.Load.E2E.P99Us/1000)
	}
	byName := map[string][]chart.Point{}
	for k, v := range points {
		byName[k.name] = append(byName[k.name], chart.Point{Listeners: k.l,
			Deliveries: report.Median(v.deliv), P99Ms: report.Median(v.p99)})
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]chart.Series, 0, len(names))
	for _, n := range names {
		pts := byName[n]
		sort.Slice(pts, func(i, j int) bool { return pts[i].Listeners < pts[j].Listeners })
		out = append(out, chart.Series{Name: n, Points: pts})
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

func writeTable(w io.Writer, ss []chart.Series) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "series\tlisteners\tdeliveries/s\tp99 ms\t")
	for _, s := range ss {
		for _, p := range s.Points {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.2f\t\n", s.Name, p.Listeners, load.FormatCount(p.Deliveries), p.P99Ms)
		}
	}
	tw.Flush()
}
