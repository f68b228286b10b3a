package report

import (
	"fmt"
	"path"
	"strings"
)

// Summary renders the short version for the repository's README: the
// provenance, one table of the headline figures, and the goals. linkBase
// is the path from the README's directory to the bench's README.
func (r *Results) Summary(goals []Goal, benchReadme string) string {
	var b strings.Builder
	b.WriteString(r.provenance() + "\n\n")
	targets := r.allTargets()
	t := newTable(align(len(targets)), header("scenario", targets)...)
	rows := []struct {
		title    string
		scenario string
		keep     func(Stats) bool
		cell     func(Stats) string
	}{
		{"1,000 listeners, full speed: deliveries/s (POSTs/s)", ScenarioSweep, listeners(1000), delivPosts},
		{"10,000 listeners, full speed: deliveries/s (POSTs/s)", ScenarioSweep, listeners(10000), delivPosts},
		{"1,000 listeners, full speed: e2e p50 / p99", ScenarioSweep, listeners(1000), p50p99},
		{"1 KiB events, 1,000 listeners: deliveries/s", ScenarioSize, listeners(1000), func(s Stats) string { return Count(s.DeliveriesPerSec) }},
		{"1,000 listeners × 50 events/s: e2e p99, server CPU", ScenarioRates, rateAt(1000, 50), p99CPU},
		{"1,000 listeners × 100 events/s: e2e p99, server CPU", ScenarioRates, rateAt(1000, 100), p99CPU},
		{"1,000 listeners × 200 events/s: e2e p99, server CPU", ScenarioRates, rateAt(1000, 200), p99CPU},
		{"10,000 idle listeners: server memory each", ScenarioIdle, listeners(10000), func(s Stats) string { return fmt.Sprintf("%.1f KiB", s.KiBPerListener) }},
		{"no listener: POSTs/s", ScenarioIngest, func(Stats) bool { return true }, func(s Stats) string { return Count(s.PostsPerSec) }},
		{"no listener: server CPU per POST", ScenarioIngest, func(Stats) bool { return true }, cpuPerPost},
		{"a sparse stream (500 events/s): e2e p50 / p99", ScenarioLatency, func(Stats) bool { return true }, p50p99},
	}
	for _, row := range rows {
		cells := make([]string, 0, 1+len(targets))
		cells = append(cells, row.title)
		found := false
		for _, tg := range targets {
			s, ok := r.cell(row.scenario, tg, row.keep)
			found = found || ok
			cells = append(cells, cellOr(ok, func() string { return row.cell(s) }))
		}
		if found {
			t.row(cells...)
		}
	}
	b.WriteString(t.String() + "\n")
	count := map[string]int{}
	for _, g := range goals {
		count[g.Status]++
	}
	fmt.Fprintf(&b, "Goals: %d of %d met", count[Met], len(goals))
	if n := count[NotMeasured]; n > 0 {
		fmt.Fprintf(&b, ", %d not measured", n)
	}
	b.WriteString(".\n\n")
	for _, g := range goals {
		fmt.Fprintf(&b, "- %s: %s", g.Goal, g.Status)
		if g.Measured != "" {
			fmt.Fprintf(&b, " (%s)", strings.ReplaceAll(g.Measured, "**", ""))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n[%s](%s) has every scenario, the chart, the tool's own ceiling and how to reproduce.\n",
		path.Clean(benchReadme), benchReadme)
	return b.String()
}

// allTargets returns every target measured, in report order.
func (r *Results) allTargets() []string {
	seen := map[string]bool{}
	var out []string
	for _, sc := range Scenarios {
		if sc == ScenarioToolCeiling {
			continue
		}
		for _, t := range r.TargetsIn(sc) {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return sortTargets(out)
}

func listeners(n int) func(Stats) bool { return func(s Stats) bool { return s.Listeners == n } }

func rateAt(listeners int, v float64) func(Stats) bool {
	return func(s Stats) bool { return s.Listeners == listeners && s.Rate == v }
}

func delivPosts(s Stats) string {
	return fmt.Sprintf("%s (%s)", Count(s.DeliveriesPerSec), Count(s.PostsPerSec))
}

func p50p99(s Stats) string { return Ms(s.P50Ms) + " / " + Ms(s.P99Ms) + " ms" }

func p99CPU(s Stats) string { return fmt.Sprintf("%s ms, %.2f s", Ms(s.P99Ms), s.ServerCPUSeconds) }
