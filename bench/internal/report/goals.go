package report

import (
	"fmt"
	"slices"
	"strings"
)

// Goal statuses.
const (
	Met         = "met"
	Missed      = "missed"
	NotMeasured = "not measured"
)

// Goal is one of the goals, marked against the medians.
type Goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Status   string `json:"status"`
}

// The cases the goals are judged on.
const (
	goalSmall    = 1000  // listeners: the sweep's reference point
	goalLarge    = 10000 // listeners: the sweep's large point, and idle
	goalIdleKiB  = 14.0  // KiB per idle listener, ours-hijack
	goalScaleMin = 0.8   // deliveries/s at goalLarge over goalSmall, ours
)

// goalRates are the moderate rates of goal 2, events/s at goalSmall
// listeners.
var goalRates = []float64{50, 100}

// Goals marks the goals against r: the scale and moderate-rate goals
// for each streamer, the hijack streamer's, what being scraped costs, and
// what listener filters save each streamer (filter.go).
func (r *Results) Goals() []Goal {
	return slices.Concat([]Goal{
		r.goalScale("ours"), r.goalScale("ours-hijack"),
		r.goalModerate("ours"), r.goalModerate("ours-hijack"),
		r.goalIdle(), r.goalHijackFaster(), r.goalMetrics(),
		r.goalNATSLatency(), r.goalNATSCPU(),
	}, r.filterTargetsGoals())
}

// The NATS mode's goals (issue 18): its e2e p99 on a sparse stream at most
// goalNATSLatency times ours', and its server CPU per POST at most
// goalNATSCPU times ours'.
const (
	goalNATSLatency = 1.5
	goalNATSCPU     = 2.0
)

// goalNATSLatency: a sparse stream through NATS has an e2e p99 at most 1.5×
// the single mode's, in the same run.
func (r *Results) goalNATSLatency() Goal {
	g := Goal{Goal: fmt.Sprintf("ours-nats: e2e p99 on a sparse stream ≤ %.1f× ours'", goalNATSLatency), Status: NotMeasured}
	single, ok1 := r.cell(ScenarioLatency, "ours", func(Stats) bool { return true })
	nats, ok2 := r.cell(ScenarioLatency, "ours-nats", func(Stats) bool { return true })
	if !ok1 || !ok2 || single.P99Ms <= 0 {
		return g
	}
	ratio := nats.P99Ms / single.P99Ms
	g.Measured = fmt.Sprintf("%s vs %s ms at %s events/s: %.2f×", Ms(nats.P99Ms), Ms(single.P99Ms), Count(single.Rate), ratio)
	g.Status = status(ratio <= goalNATSLatency)
	return g
}

// goalNATSCPU: a POST through NATS costs the instance at most 2× the CPU it
// costs the single mode, in the same run.
func (r *Results) goalNATSCPU() Goal {
	g := Goal{Goal: fmt.Sprintf("ours-nats: server CPU per POST ≤ %.0f× ours', no listener", goalNATSCPU), Status: NotMeasured}
	single, ok1 := r.cell(ScenarioIngest, "ours", func(Stats) bool { return true })
	nats, ok2 := r.cell(ScenarioIngest, "ours-nats", func(Stats) bool { return true })
	if !ok1 || !ok2 || single.PostsPerSec <= 0 || nats.PostsPerSec <= 0 || single.ServerCPUCores <= 0 {
		return g
	}
	a, b := nats.ServerCPUCores/nats.PostsPerSec, single.ServerCPUCores/single.PostsPerSec
	g.Measured = fmt.Sprintf("%s vs %s: %.2f×", cpuPerPost(nats), cpuPerPost(single), a/b)
	g.Status = status(a/b <= goalNATSCPU)
	return g
}

// goalMetricsMax is the share of deliveries/s that scraping /metrics every
// second may cost at goalSmall listeners, full speed.
const goalMetricsMax = 0.05

func (r *Results) sweep(target string, listeners int) (Stats, bool) {
	for _, s := range r.Select(ScenarioSweep) {
		if s.Target == target && s.Listeners == listeners && s.DeliveriesPerSec > 0 {
			return s, true
		}
	}
	return Stats{}, false
}

func (r *Results) rate(target string, rate float64) (Stats, bool) {
	for _, s := range r.Select(ScenarioRates) {
		if s.Target == target && s.Listeners == goalSmall && s.Rate == rate && s.P99Ms > 0 {
			return s, true
		}
	}
	return Stats{}, false
}

func status(ok bool) string {
	if ok {
		return Met
	}
	return Missed
}

// goalScale: at full speed, target delivers at 10,000 listeners at least
// 0.8× what it delivers at 1,000.
func (r *Results) goalScale(target string) Goal {
	g := Goal{Goal: fmt.Sprintf("full speed, %s: deliveries/s at %s listeners ≥ %.1f× the figure at %s",
		target, Num(goalLarge), goalScaleMin, Num(goalSmall)), Status: NotMeasured}
	small, ok1 := r.sweep(target, goalSmall)
	large, ok2 := r.sweep(target, goalLarge)
	if !ok1 || !ok2 {
		return g
	}
	ratio := large.DeliveriesPerSec / small.DeliveriesPerSec
	g.Measured = fmt.Sprintf("%s at %s (%s POSTs/s, p99 %s ms) vs %s at %s: **%.2f×**", Count(large.DeliveriesPerSec), Num(goalLarge),
		Count(large.PostsPerSec), Ms(large.P99Ms), Count(small.DeliveriesPerSec), Num(goalSmall), ratio)
	g.Status = status(ratio >= goalScaleMin)
	return g
}

// goalModerate: at 1,000 listeners × 50 and 100 events/s, target has an
// end-to-end p99 and a server CPU time at or below the baseline's.
func (r *Results) goalModerate(target string) Goal {
	g := Goal{Goal: fmt.Sprintf("%s listeners × %s events/s, %s: e2e p99 and server CPU ≤ the drain-before-flush baseline's",
		Num(goalSmall), joinRates(goalRates), target), Status: NotMeasured}
	var parts []string
	met := true
	for _, rate := range goalRates {
		ours, ok1 := r.rate(target, rate)
		base, ok2 := r.rate("baseline", rate)
		if !ok1 || !ok2 {
			return g
		}
		parts = append(parts, fmt.Sprintf("%s/s: p99 %s vs %s ms, CPU %.2f vs %.2f s", Count(rate),
			Ms(ours.P99Ms), Ms(base.P99Ms), ours.ServerCPUSeconds, base.ServerCPUSeconds))
		met = met && ours.P99Ms <= base.P99Ms && ours.ServerCPUSeconds <= base.ServerCPUSeconds
	}
	g.Measured = strings.Join(parts, "; ")
	g.Status = status(met)
	return g
}

// goalIdle: ours-hijack holds at most 14 KiB per idle listener at 10,000.
func (r *Results) goalIdle() Goal {
	g := Goal{Goal: fmt.Sprintf("ours-hijack: ≤ %.0f KiB of server memory per idle listener at %s", goalIdleKiB, Num(goalLarge)),
		Status: NotMeasured}
	for _, s := range r.Select(ScenarioIdle) {
		if s.Target == "ours-hijack" && s.Listeners == goalLarge && s.KiBPerListener > 0 {
			g.Measured = fmt.Sprintf("**%.1f KiB**", s.KiBPerListener)
			if o, ok := r.Find(Case{Scenario: ScenarioIdle, Target: "ours", Listeners: goalLarge, Size: s.Size}); ok {
				g.Measured += fmt.Sprintf(" (ours: %.1f KiB)", o.KiBPerListener)
			}
			g.Status = status(s.KiBPerListener <= goalIdleKiB)
		}
	}
	return g
}

// goalHijackFaster: ours-hijack delivers more than ours at 1,000 and at
// 10,000 listeners, at full speed.
func (r *Results) goalHijackFaster() Goal {
	g := Goal{Goal: fmt.Sprintf("ours-hijack: more deliveries/s than ours at %s and %s listeners, full speed",
		Num(goalSmall), Num(goalLarge)), Status: NotMeasured}
	var parts []string
	met := true
	for _, l := range []int{goalSmall, goalLarge} {
		h, ok1 := r.sweep("ours-hijack", l)
		o, ok2 := r.sweep("ours", l)
		if !ok1 || !ok2 {
			return g
		}
		parts = append(parts, fmt.Sprintf("%s: %s vs %s (%.2f×)", Num(l), Count(h.DeliveriesPerSec),
			Count(o.DeliveriesPerSec), h.DeliveriesPerSec/o.DeliveriesPerSec))
		met = met && h.DeliveriesPerSec > o.DeliveriesPerSec
	}
	g.Measured = strings.Join(parts, "; ")
	g.Status = status(met)
	return g
}

func joinRates(rates []float64) string {
	s := make([]string, 0, len(rates))
	for _, r := range rates {
		s = append(s, Count(r))
	}
	return strings.Join(s, " and ")
}

// goalMetrics: scraping /metrics every second costs ours at most 5 % of its
// deliveries/s at 1,000 listeners, full speed.
func (r *Results) goalMetrics() Goal {
	g := Goal{Goal: fmt.Sprintf("metrics: scraping /metrics every second costs ≤ %.0f %% of ours' deliveries/s at %s listeners, full speed",
		goalMetricsMax*100, Num(goalSmall)), Status: NotMeasured}
	plain, ok1 := r.sweep("ours", goalSmall)
	scraped, ok2 := r.sweep("ours-scraped", goalSmall)
	if !ok1 || !ok2 {
		return g
	}
	cost := 1 - scraped.DeliveriesPerSec/plain.DeliveriesPerSec
	g.Measured = fmt.Sprintf("%s scraped vs %s not: %+.1f %%", Count(scraped.DeliveriesPerSec), Count(plain.DeliveriesPerSec), -cost*100)
	g.Status = status(cost <= goalMetricsMax)
	return g
}
