package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/chart"
)

// File names Write gives its outputs in the results directory.
const (
	MarkdownFile = "report.md"
	JSONFile     = "report.json"
)

// Write writes the report into dir: report.md, report.json, and the chart
// of the sweep (sweep.svg and sweep.png) when there is one.
func (r *Results) Write(dir string, goals []Goal) error {
	md := "# Benchmark report\n\n" + r.Markdown(goals, "")
	if err := os.WriteFile(filepath.Join(dir, MarkdownFile), []byte(md), 0o644); err != nil {
		return err
	}
	if err := r.WriteJSON(filepath.Join(dir, JSONFile), goals); err != nil {
		return err
	}
	series := r.chartSeries()
	if len(series) == 0 {
		return nil
	}
	sub := fmt.Sprintf("%s, %d cores, %s; medians", r.Env.CPUModel, r.Env.Cores, r.Env.GoVersion)
	return chart.Render(filepath.Join(dir, ChartName), "SSE fan-out at full speed", sub, series)
}

// chartSeries is the sweep, one series per target.
func (r *Results) chartSeries() []chart.Series {
	targets := r.TargetsIn(ScenarioSweep)
	out := make([]chart.Series, 0, len(targets))
	for _, tg := range targets {
		s := chart.Series{Name: tg}
		for _, st := range r.Select(ScenarioSweep) {
			if st.Target == tg {
				s.Points = append(s.Points, chart.Point{Listeners: st.Listeners, Deliveries: st.DeliveriesPerSec, P99Ms: st.P99Ms})
			}
		}
		out = append(out, s)
	}
	return out
}

// ErrNoMarkers is returned by UpdateSection when the file lacks the
// section's markers.
var ErrNoMarkers = errors.New("report: section markers not found")

// Markers returns the lines that open and close section name in a
// markdown file: "<!-- name:begin -->" and "<!-- name:end -->". Whatever
// is between them belongs to the generator.
func Markers(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// UpdateSection replaces what lies between section name's markers in the
// file at path with content, leaving the rest of the file as it is. A
// marker counts only on a line of its own (a marker quoted in the text is
// left alone).
func UpdateSection(path, name, content string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := Markers(name)
	text := string(b)
	i := lineIndex(text, begin, 0)
	j := -1
	if i >= 0 {
		j = lineIndex(text, end, i+len(begin))
	}
	if i < 0 || j < 0 {
		return fmt.Errorf("%w: %s needs a line %q, then a line %q", ErrNoMarkers, path, begin, end)
	}
	i += len(begin)
	out := text[:i] + "\n" + strings.TrimRight(content, "\n") + "\n" + text[j:]
	if out == text {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out), st.Mode().Perm()) //nolint:gosec // the caller names the file to rewrite
}

// lineIndex returns the offset of the first line, at or after from, that
// is exactly line, or -1.
func lineIndex(text, line string, from int) int {
	for from <= len(text) {
		k := strings.Index(text[from:], line)
		if k < 0 {
			return -1
		}
		at := from + k
		after := at + len(line)
		if (at == 0 || text[at-1] == '\n') && (after == len(text) || text[after] == '\n' || text[after] == '\r') {
			return at
		}
		from = after
	}
	return -1
}
