package report

import (
	"fmt"
	"strings"
)

// The filter scenario: goalListeners listeners at full speed, unfiltered
// and with listener filters, each filter passing 10 % of the events; the
// goals compare POSTs/s with the unfiltered point of the same server, in
// the same run.

// filterGoal is one of the filter goals: POSTs/s with filters
// distinct filters at least min × the unfiltered figure.
type filterGoal struct {
	filters int
	min     float64
}

// filterGoals are the issue's: 10 filters (100 listeners each) at least
// 3×, 1,000 filters (one listener each) at least 1.5×.
var filterGoals = []filterGoal{{10, 3}, {1000, 1.5}}

// filterCase finds target's figures in the filter scenario at goalSmall
// listeners with filters distinct filters (0: unfiltered).
func (r *Results) filterCase(target string, listeners, filters int) (Stats, bool) {
	return r.cell(ScenarioFilter, target, func(s Stats) bool {
		return s.Listeners == listeners && s.Filters == filters && s.PostsPerSec > 0
	})
}

// goalFilter: at goalSmall listeners, full speed, target accepts with
// g.filters distinct filters at least g.min × the POSTs/s it accepts
// unfiltered, and its filtered listeners receive exactly what their filter
// accepts: nothing it rejects, and no loss (a server that skips
// deliveries would accept POSTs faster).
func (r *Results) goalFilter(target string, g filterGoal) Goal {
	goal := Goal{Goal: fmt.Sprintf("%s listeners at full speed, %s: POSTs/s with %s distinct filters (each passing 10 %% of the events) ≥ %g× the figure unfiltered",
		Num(goalSmall), target, Num(g.filters), g.min), Status: NotMeasured}
	with, ok1 := r.filterCase(target, goalSmall, g.filters)
	without, ok2 := r.filterCase(target, goalSmall, 0)
	if !ok1 || !ok2 {
		return goal
	}
	ratio := with.PostsPerSec / without.PostsPerSec
	goal.Measured = fmt.Sprintf("%s with %s filters vs %s unfiltered: **%.2f×**", Count(with.PostsPerSec), Num(g.filters),
		Count(without.PostsPerSec), ratio)
	goal.Status = status(ratio >= g.min)
	if with.FilterRejected > 0 {
		goal.Measured += fmt.Sprintf("; %s events reached listeners whose filter rejects them", Count(with.FilterRejected))
		goal.Status = Missed
	}
	if with.DeliveryRatio < 1 {
		goal.Measured += fmt.Sprintf("; with filters, delivery ratio %.4f (median %s events lost)", with.DeliveryRatio, Count(with.Lost))
		goal.Status = Missed
	}
	return goal
}

// filterTargetsGoals are the filter goals of each streamer.
func (r *Results) filterTargetsGoals() []Goal {
	targets := []string{"ours", "ours-hijack"}
	out := make([]Goal, 0, len(targets)*len(filterGoals))
	for _, target := range targets {
		for _, g := range filterGoals {
			out = append(out, r.goalFilter(target, g))
		}
	}
	return out
}

// filtersSuffix names a case's filters, if it has any.
func filtersSuffix(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %s filters", Num(n))
}

func filtersName(n int) string {
	if n == 0 {
		return "none"
	}
	return Num(n)
}

func (r *Results) writeFilter(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioFilter)
	if len(stats) == 0 {
		return
	}
	fmt.Fprintf(b, "### Listener filters, %s listeners, full speed\n\n", Num(stats[0].Listeners))
	fmt.Fprintf(b, "Producers post %d B events as fast as the server answers, each with a bucket going round 10 values"+
		" (`\"bucket\":\"<seq mod 10>\"`). Listener i gets filter j = i mod F, `?where=bucket:<j mod 10>`, plus"+
		" `&where=bucket:x<j>` (a value no event has, which keeps the filters distinct) when F is above 10: each filter"+
		" passes 10 %% of the events, and every listener checks every frame it receives against its filter. The points"+
		" run one after the other in each repeat; × unfiltered compares POSTs/s with the same server's unfiltered point."+
		" Deliveries/s are summed over the listeners (with filters, each receives a tenth of the events).\n\n", stats[0].Size)
	if note := r.apart(ScenarioFilter); note != "" {
		b.WriteString(note + "\n\n")
	}
	t := newTable("lrrrrrrr", "server", "filters", "POSTs/s", "× unfiltered", "deliveries/s", "server CPU (cores)",
		"server CPU per POST (µs)", "e2e p50 / p99 (ms)")
	for _, s := range stats {
		ratio := "-"
		if base, ok := r.filterCase(s.Target, s.Listeners, 0); ok {
			ratio = fmt.Sprintf("%.2f×", s.PostsPerSec/base.PostsPerSec)
		}
		perPost := "-"
		if s.PostsPerSec > 0 && s.ServerCPUCores > 0 {
			perPost = fmt.Sprintf("%.0f", s.ServerCPUCores/s.PostsPerSec*1e6)
		}
		t.row(s.Target, filtersName(s.Filters), Count(s.PostsPerSec), ratio, Count(s.DeliveriesPerSec),
			fmt.Sprintf("%.2f", s.ServerCPUCores), perPost, Ms(s.P50Ms)+" / "+Ms(s.P99Ms))
	}
	b.WriteString(t.String() + "\n")
	var rejected []string
	lo, hi := -1.0, 0.0
	for _, s := range stats {
		if s.FilterRejected > 0 {
			rejected = append(rejected, fmt.Sprintf("- %s, %s filters: up to %s events reached listeners whose filter rejects them",
				s.Target, Num(s.Filters), Count(s.FilterRejected)))
		}
		if lo < 0 || s.LoadAvg1 < lo {
			lo = s.LoadAvg1
		}
		hi = max(hi, s.LoadAvg1)
	}
	r.writeLosses(b, ScenarioFilter)
	if len(rejected) > 0 {
		b.WriteString("Listeners that received events their filter rejects (an error of the server):\n\n" +
			strings.Join(rejected, "\n") + "\n\n")
	} else {
		b.WriteString("No listener received an event its filter rejects.\n\n")
	}
	fmt.Fprintf(b, "Load average (1 minute) when the runs started: %.1f–%.1f (medians of the points).\n\n", lo, hi)
}

// apart says when a scenario's runs were not made with the rest of the
// report (another commit: make bench-<scenario> run on its own after
// bench-all), and when they were; "" otherwise.
func (r *Results) apart(scenario string) string {
	o, ok := r.origins[scenario]
	if !ok || o.commit == r.Env.GitCommit && o.dirty == r.Env.GitDirty {
		return ""
	}
	commit := o.commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	s := fmt.Sprintf("Measured apart from the rest of this report: runs from %s, commit %#q",
		o.started.UTC().Format("2006-01-02 15:04 MST"), commit)
	if o.dirty {
		s += " with uncommitted changes"
	}
	return s + "."
}
