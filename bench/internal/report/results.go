// Package report turns a benchmark run's results directory (what benchrun
// writes: one sub-directory per scenario holding sseload's JSON reports of
// every target and repeat, plus run.json) into one report: the median of
// each figure over the repeats, the goals marked met or missed, markdown
// for the READMEs, JSON, and the chart.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

// Scenario names: the sub-directories of a results directory.
const (
	ScenarioToolCeiling = "tool-ceiling" // sseload -self-test
	ScenarioIngest      = "ingest"       // no listener, producers at full speed
	ScenarioSweep       = "sweep"        // listener counts at full speed
	ScenarioSize        = "size"         // large events at full speed
	ScenarioRates       = "rates"        // moderate fixed rates
	ScenarioIdle        = "idle"         // idle listeners' memory
	ScenarioSlow        = "slow"         // listeners that stop reading
	ScenarioLatency     = "latency"      // a sparse stream: 500 events/s, few listeners
)

// Scenarios lists the scenarios in report order.
var Scenarios = []string{ScenarioSweep, ScenarioSize, ScenarioRates, ScenarioIdle, ScenarioIngest, ScenarioLatency,
	ScenarioSlow, ScenarioToolCeiling}

// RunFile is the name of the file, in the results directory, that says
// how the results were made.
const RunFile = "run.json"

// Run describes how a results directory was made; benchrun writes it.
type Run struct {
	// Command is how the run was started (e.g. "make bench-all
	// BENCH_REPEAT=3"), when the caller said so.
	Command string `json:"command,omitempty"`
	// Args are benchrun's own arguments.
	Args        []string  `json:"args"`
	Targets     []string  `json:"targets"`
	Repeat      int       `json:"repeat"`
	DurationSec float64   `json:"duration_s"`
	WarmupSec   float64   `json:"warmup_s"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	// Failures are the runs that did not complete, one line each.
	Failures []string `json:"failures,omitempty"`
}

// WriteRun writes run to dir/run.json.
func WriteRun(dir string, run *Run) error {
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, RunFile), append(b, '\n'), 0o644)
}

// Case is what one group of repeated runs measured.
type Case struct {
	Scenario  string  `json:"scenario"`
	Target    string  `json:"target"` // the sseload label: ours, baseline, …
	Listeners int     `json:"listeners"`
	Rate      float64 `json:"rate,omitempty"` // events/s; 0 = as fast as possible
	Size      int     `json:"size"`
	Slow      float64 `json:"slow,omitempty"` // fraction of listeners that stop reading
}

// Stats are the medians of a case's repeated runs. A figure that no run
// measured is 0.
type Stats struct {
	Case
	Runs int `json:"runs"`

	PostsPerSec      float64 `json:"posts_per_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	DeliveryRatio    float64 `json:"delivery_ratio"`
	Lost             float64 `json:"lost"`
	Disconnected     float64 `json:"disconnected"`
	P50Ms            float64 `json:"e2e_p50_ms"`
	P99Ms            float64 `json:"e2e_p99_ms"`
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	ServerCPUCores   float64 `json:"server_cpu_cores"`
	KiBPerListener   float64 `json:"kib_per_listener"`
	ToolCPUCores     float64 `json:"sseload_cpu_cores"`
	OtherCores       float64 `json:"other_cores"`

	// Spread is the largest over the smallest value of the runs'
	// deliveries/s (load runs with listeners), POSTs/s (without) or KiB
	// per listener (idle): how much the repeats disagree.
	Spread float64 `json:"spread,omitempty"`
	// Warnings are the runs' warnings, each once.
	Warnings []string `json:"warnings,omitempty"`
}

// Results are a results directory's figures.
type Results struct {
	Run   *Run     `json:"run,omitempty"`
	Env   load.Env `json:"env"`
	Stats []Stats  `json:"stats"`
	// Others are the sub-directories of the results directory that are not
	// scenarios (left from an older bench, most likely), not read.
	Others []string `json:"-"`
}

// Load reads every sseload report under dir's scenario directories and
// run.json (when present) and computes the medians.
func Load(dir string) (*Results, error) {
	r := &Results{}
	if b, err := os.ReadFile(filepath.Join(dir, RunFile)); err == nil {
		r.Run = &Run{}
		if err := json.Unmarshal(b, r.Run); err != nil {
			return nil, fmt.Errorf("%s: %w", RunFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	groups := map[Case][]*load.Report{}
	for _, sc := range Scenarios {
		files, err := filepath.Glob(filepath.Join(dir, sc, "*.json"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			rep, err := load.ReadReport(f)
			if err != nil {
				return nil, err
			}
			c := caseOf(sc, rep)
			groups[c] = append(groups[c], rep)
			if r.Env.CPUModel == "" {
				r.Env = rep.Env
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(Scenarios, e.Name()) {
			r.Others = append(r.Others, e.Name())
		}
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("report: no sseload results under %s/{%s}", dir, strings.Join(Scenarios, ","))
	}
	for c, reps := range groups {
		r.Stats = append(r.Stats, medians(c, reps))
	}
	sort.Slice(r.Stats, func(i, j int) bool { return r.Stats[i].less(&r.Stats[j]) })
	return r, nil
}

func caseOf(scenario string, rep *load.Report) Case {
	label := rep.Label
	if label == "" {
		label = "sseload"
	}
	p := rep.Params
	return Case{Scenario: scenario, Target: label, Listeners: p.Listeners, Rate: p.Rate, Size: p.Size, Slow: p.SlowFraction}
}

func (s *Stats) less(o *Stats) bool {
	a, b := s.Case, o.Case
	switch {
	case a.Scenario != b.Scenario:
		return slices.Index(Scenarios, a.Scenario) < slices.Index(Scenarios, b.Scenario)
	case a.Target != b.Target:
		return TargetIndex(a.Target) < TargetIndex(b.Target)
	case a.Size != b.Size:
		return a.Size < b.Size
	case a.Listeners != b.Listeners:
		return a.Listeners < b.Listeners
	case a.Rate != b.Rate:
		return a.Rate < b.Rate
	default:
		return a.Slow < b.Slow
	}
}

// Targets lists the known targets in report order; others follow, sorted.
var Targets = []string{"ours", "ours-hijack", "ours-scraped", "ours-nats", "ours-nats3", "baseline", "baseline-flush", "original", "centrifugo"}

// TargetIndex is the target's column in tables.
func TargetIndex(name string) int {
	if i := slices.Index(Targets, name); i >= 0 {
		return i
	}
	return len(Targets)
}

// Find returns the stats of case c.
func (r *Results) Find(c Case) (Stats, bool) {
	for _, s := range r.Stats {
		if s.Case == c {
			return s, true
		}
	}
	return Stats{}, false
}

// Select returns the stats of a scenario, in order.
func (r *Results) Select(scenario string) []Stats {
	var out []Stats
	for _, s := range r.Stats {
		if s.Scenario == scenario {
			out = append(out, s)
		}
	}
	return out
}

// TargetsIn returns the targets measured in a scenario, in report order.
func (r *Results) TargetsIn(scenario string) []string {
	var out []string
	for _, s := range r.Select(scenario) {
		if !slices.Contains(out, s.Target) {
			out = append(out, s.Target)
		}
	}
	return sortTargets(out)
}

// sortTargets sorts target names in report order.
func sortTargets(names []string) []string {
	sort.SliceStable(names, func(i, j int) bool {
		if a, b := TargetIndex(names[i]), TargetIndex(names[j]); a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	return names
}

// medians summarises a case's runs.
func medians(c Case, reps []*load.Report) Stats {
	s := Stats{Case: c, Runs: len(reps)}
	var posts, deliv, ratio, lost, disc, p50, p99, cpuS, cpuC, kib, other, spread []float64
	tool := make([]float64, 0, len(reps))
	warned := map[string]bool{}
	for _, rep := range reps {
		if l := rep.Load; l != nil {
			posts = append(posts, l.PostsPerSec)
			if rep.Params.Listeners > 0 {
				deliv = append(deliv, l.DeliveriesPerSec)
				ratio = append(ratio, l.DeliveryRatio)
				lost = append(lost, float64(l.Lost))
				disc = append(disc, float64(l.Disconnected))
				p50 = append(p50, l.E2E.P50Us/1e3)
				p99 = append(p99, l.E2E.P99Us/1e3)
				spread = append(spread, l.DeliveriesPerSec)
			} else {
				spread = append(spread, l.PostsPerSec)
			}
		}
		if st := rep.SelfTest; st != nil {
			deliv = append(deliv, st.DeliveriesPerSec)
			posts = append(posts, st.PostsPerSec)
		}
		if i := rep.Idle; i != nil {
			kib = append(kib, i.KiBPerListener)
			disc = append(disc, float64(i.Disconnected))
			spread = append(spread, i.KiBPerListener)
		}
		if sv := rep.Server; sv != nil {
			cpuS = append(cpuS, sv.CPUSeconds)
			cpuC = append(cpuC, sv.CPUCores)
		}
		tool = append(tool, rep.Tool.CPUCores)
		if rep.Host != nil {
			other = append(other, rep.Host.OtherCores)
		}
		for _, w := range rep.Warnings {
			if !warned[w] {
				warned[w] = true
				s.Warnings = append(s.Warnings, w)
			}
		}
	}
	s.PostsPerSec, s.DeliveriesPerSec, s.DeliveryRatio = Median(posts), Median(deliv), Median(ratio)
	s.Lost, s.Disconnected, s.P50Ms, s.P99Ms = Median(lost), Median(disc), Median(p50), Median(p99)
	s.ServerCPUSeconds, s.ServerCPUCores, s.KiBPerListener = Median(cpuS), Median(cpuC), Median(kib)
	s.ToolCPUCores, s.OtherCores = Median(tool), Median(other)
	if lo, hi := minMax(spread); lo > 0 && len(spread) > 1 {
		s.Spread = round(hi/lo, 3)
	}
	return s
}

// Median returns the median of xs (the mean of the two middle values for
// an even count), or 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// WriteJSON writes the results as indented JSON to path.
func (r *Results) WriteJSON(path string, goals []Goal) error {
	b, err := json.MarshalIndent(struct {
		*Results
		Goals []Goal `json:"goals"`
	}{r, goals}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
