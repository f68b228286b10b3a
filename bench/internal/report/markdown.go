package report

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// ChartName is the chart's file name (without extension) in the results
// directory.
const ChartName = "sweep"

// Markdown renders the full report. linkBase is the path from the
// markdown file's directory to the results directory (for the chart's
// link; "" when they are the same).
func (r *Results) Markdown(goals []Goal, linkBase string) string {
	var b strings.Builder
	b.WriteString(r.provenance() + "\n\n")
	b.WriteString("### Goals\n\n" + goalTable(goals) + "\n")
	sections := []func(*strings.Builder, string){r.writeSweep, r.writeSize, r.writeRates, r.writeIdle, r.writeIngest,
		r.writeLatency, r.writeSlow, r.writeCeiling}
	for _, write := range sections {
		write(&b, linkBase)
	}
	r.writeProblems(&b)
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// provenance says where, when and how the figures were made.
func (r *Results) provenance() string {
	e := r.Env
	machine := fmt.Sprintf("%s, %d cores", e.CPUModel, e.Cores)
	if e.MemMiB > 0 {
		machine += fmt.Sprintf(", %.0f GiB", float64(e.MemMiB)/1024)
	}
	if e.Kernel != "" {
		machine += ", Linux " + e.Kernel
	}
	commit := e.GitCommit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	commit = "`" + commit + "`"
	if e.GitDirty {
		commit += " with uncommitted changes"
	}
	var how, when string
	repeat := 0
	if run := r.Run; run != nil {
		repeat = run.Repeat
		cmd := run.Command
		if cmd == "" {
			cmd = "benchrun"
		}
		how = fmt.Sprintf("%#q (%#q)", cmd, "benchrun "+strings.Join(run.Args, " "))
		when = run.Started.UTC().Format("2006-01-02 15:04 MST")
		if !run.Finished.IsZero() {
			when += fmt.Sprintf(", %s", run.Finished.Sub(run.Started).Round(time.Minute))
		}
	}
	if how == "" {
		how = "`benchrun`"
	}
	s := fmt.Sprintf("Generated from one run of %s", how)
	if when != "" {
		s += " (" + when + ")"
	}
	s += fmt.Sprintf(" on %s; %s; commit %s.", machine, e.GoVersion, commit)
	if repeat > 1 {
		s += fmt.Sprintf(" Every figure is the median of %d runs.", repeat)
	}
	var tool, other float64
	for _, st := range r.Stats {
		tool = max(tool, st.ToolCPUCores)
		other = max(other, st.OtherCores)
	}
	s += fmt.Sprintf(" sseload shares the cores with the server (it used up to %.1f cores; other processes up to %.2f):"+
		" compare the servers within this run, by their ratios, rather than with figures from elsewhere.", tool, other)
	return s
}

func goalTable(goals []Goal) string {
	t := newTable("llc", "goal", "measured", "")
	for _, g := range goals {
		st := g.Status
		if st == Met || st == Missed {
			st = "**" + st + "**"
		}
		t.row(g.Goal, g.Measured, st)
	}
	return t.String()
}

// header is the first column's title followed by the targets.
func header(first string, targets []string) []string {
	return append([]string{first}, targets...)
}

func align(n int) string { return "l" + strings.Repeat("r", n) }

// listenerCounts returns the listener counts measured in a scenario.
func (r *Results) listenerCounts(scenario string) []int {
	var out []int
	for _, s := range r.Select(scenario) {
		if !slices.Contains(out, s.Listeners) {
			out = append(out, s.Listeners)
		}
	}
	slices.Sort(out)
	return out
}

// cell finds the stats of target in scenario matching keep.
func (r *Results) cell(scenario, target string, keep func(Stats) bool) (Stats, bool) {
	for _, s := range r.Select(scenario) {
		if s.Target == target && keep(s) {
			return s, true
		}
	}
	return Stats{}, false
}

func (r *Results) writeSweep(b *strings.Builder, linkBase string) {
	stats := r.Select(ScenarioSweep)
	if len(stats) == 0 {
		return
	}
	targets := r.TargetsIn(ScenarioSweep)
	s0 := stats[0]
	fmt.Fprintf(b, "### Full speed, %s listeners\n\n", joinInts(r.listenerCounts(ScenarioSweep)))
	fmt.Fprintf(b, "Producers post %d B events as fast as the server answers. Deliveries/s are summed over the listeners;"+
		" POSTs/s is the rate the server accepted events at; the end-to-end latency runs from the producer's clock"+
		" before the POST to the listener parsing the frame.\n\n", s0.Size)
	metrics := []struct {
		title string
		cell  func(Stats) string
	}{
		{"deliveries/s", func(s Stats) string { return Count(s.DeliveriesPerSec) }},
		{"POSTs/s", func(s Stats) string { return Count(s.PostsPerSec) }},
		{"e2e p50 / p99 (ms)", func(s Stats) string { return Ms(s.P50Ms) + " / " + Ms(s.P99Ms) }},
	}
	for _, m := range metrics {
		t := newTable(align(len(targets)), header("listeners: "+m.title, targets)...)
		for _, l := range r.listenerCounts(ScenarioSweep) {
			cells := []string{Num(l)}
			for _, tg := range targets {
				s, ok := r.cell(ScenarioSweep, tg, func(s Stats) bool { return s.Listeners == l })
				cells = append(cells, cellOr(ok, func() string { return m.cell(s) }))
			}
			t.row(cells...)
		}
		b.WriteString(t.String() + "\n")
	}
	r.writeLosses(b, ScenarioSweep)
	fmt.Fprintf(b, "![deliveries/s and p99 against listeners](%s)\n\n", path.Join(linkBase, ChartName+".png"))
}

func cellOr(ok bool, f func() string) string {
	if !ok {
		return "-"
	}
	return f()
}

// writeLosses lists the cases whose listeners did not get everything.
func (r *Results) writeLosses(b *strings.Builder, scenario string) {
	var lines []string
	for _, s := range r.Select(scenario) {
		if s.Listeners > 0 && s.DeliveryRatio < 1 {
			lines = append(lines, fmt.Sprintf("- %s, %s listeners%s: delivery ratio %.4f (median %s events lost, %s listeners disconnected)",
				s.Target, Num(s.Listeners), rateSuffix(s.Rate), s.DeliveryRatio, Count(s.Lost), Count(s.Disconnected)))
		}
	}
	if len(lines) == 0 {
		b.WriteString("Every listener received every event in every run.\n\n")
		return
	}
	b.WriteString("Listeners that did not receive every event:\n\n" + strings.Join(lines, "\n") + "\n\n")
}

func rateSuffix(rate float64) string {
	if rate == 0 {
		return ""
	}
	return fmt.Sprintf(" × %s events/s", Count(rate))
}

func (r *Results) writeSize(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioSize)
	if len(stats) == 0 {
		return
	}
	fmt.Fprintf(b, "### %s B events, %s listeners, full speed\n\n", Num(stats[0].Size), Num(stats[0].Listeners))
	t := newTable("lrrr", "server", "deliveries/s", "POSTs/s", "e2e p50 / p99 (ms)")
	for _, s := range stats {
		t.row(s.Target, Count(s.DeliveriesPerSec), Count(s.PostsPerSec), Ms(s.P50Ms)+" / "+Ms(s.P99Ms))
	}
	b.WriteString(t.String() + "\n")
	r.writeLosses(b, ScenarioSize)
}

func (r *Results) writeRates(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioRates)
	if len(stats) == 0 {
		return
	}
	targets := r.TargetsIn(ScenarioRates)
	var rates []float64
	for _, s := range stats {
		if !slices.Contains(rates, s.Rate) {
			rates = append(rates, s.Rate)
		}
	}
	slices.Sort(rates)
	fmt.Fprintf(b, "### Moderate rates, %s listeners\n\n", Num(stats[0].Listeners))
	b.WriteString("Every frame is timed. The server's CPU time is over the measured phase, the same length for every" +
		" server; a rate in brackets is what a server held when it could not keep up.\n\n")
	t := newTable(align(len(targets)), header("events/s", targets)...)
	for _, rate := range rates {
		for _, m := range []string{"e2e p99 (ms)", "server CPU (s)"} {
			cells := []string{Count(rate) + ": " + m}
			for _, tg := range targets {
				s, ok := r.cell(ScenarioRates, tg, func(s Stats) bool { return s.Rate == rate })
				cells = append(cells, cellOr(ok, func() string {
					v := Ms(s.P99Ms)
					if m != "e2e p99 (ms)" {
						v = fmt.Sprintf("%.2f", s.ServerCPUSeconds)
					} else if s.PostsPerSec < 0.95*rate {
						v += " (" + Count(s.PostsPerSec) + "/s)"
					}
					return v
				}))
			}
			t.row(cells...)
		}
	}
	b.WriteString(t.String() + "\n")
	r.writeLosses(b, ScenarioRates)
}

func (r *Results) writeIdle(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioIdle)
	if len(stats) == 0 {
		return
	}
	fmt.Fprintf(b, "### Idle listeners: server memory\n\n(RSS with the listeners − RSS before) / listeners;"+
		" kernel socket buffers are not in a process's RSS.\n\n")
	t := newTable("lrr", "server", "listeners", "KiB per listener")
	for _, s := range stats {
		t.row(s.Target, Num(s.Listeners), fmt.Sprintf("%.1f", s.KiBPerListener))
	}
	b.WriteString(t.String() + "\n")
}

func (r *Results) writeIngest(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioIngest)
	if len(stats) == 0 {
		return
	}
	b.WriteString("### Ingest, no listener\n\n")
	b.WriteString("Server CPU per POST is the server's CPU time over the measured phase (every instance's, for " +
		"ours-nats3; not nats-server's) over the POSTs answered.\n\n")
	t := newTable("lrrr", "server", "event", "POSTs/s", "server CPU per POST")
	for _, s := range stats {
		t.row(s.Target, Num(s.Size)+" B", Count(s.PostsPerSec), cpuPerPost(s))
	}
	b.WriteString(t.String() + "\n")
}

// cpuPerPost is the server's CPU time per POST answered, in µs.
func cpuPerPost(s Stats) string {
	if s.PostsPerSec <= 0 || s.ServerCPUCores <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f µs", s.ServerCPUCores/s.PostsPerSec*1e6)
}

// writeLatency is the latency scenario: a sparse stream, every frame timed.
func (r *Results) writeLatency(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioLatency)
	if len(stats) == 0 {
		return
	}
	fmt.Fprintf(b, "### A sparse stream, %s events/s\n\n", Count(stats[0].Rate))
	b.WriteString("Every frame is timed, from the POST's start to its arrival at a listener. With ours-nats3 the " +
		"listeners read one instance and the producers post to the two others.\n\n")
	t := newTable("lrrrr", "server", "listeners", "e2e p50", "e2e p99", "server CPU")
	for _, s := range stats {
		t.row(s.Target, Num(s.Listeners), Ms(s.P50Ms)+" ms", Ms(s.P99Ms)+" ms", fmt.Sprintf("%.2f s", s.ServerCPUSeconds))
	}
	b.WriteString(t.String() + "\n")
	r.writeLosses(b, ScenarioLatency)
}

func (r *Results) writeSlow(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioSlow)
	if len(stats) == 0 {
		return
	}
	fmt.Fprintf(b, "### Listeners that stop reading, %s listeners × %s events/s\n\n", Num(stats[0].Listeners), Count(stats[0].Rate))
	t := newTable("lrrrr", "server", "slow listeners", "healthy listeners' loss", "e2e p99 (ms)", "delivery ratio")
	for _, s := range stats {
		t.row(s.Target, fmt.Sprintf("%.0f%%", s.Slow*100), Count(s.Lost), Ms(s.P99Ms), fmt.Sprintf("%.4f", s.DeliveryRatio))
	}
	b.WriteString(t.String() + "\n")
}

func (r *Results) writeCeiling(b *strings.Builder, _ string) {
	stats := r.Select(ScenarioToolCeiling)
	if len(stats) == 0 {
		return
	}
	b.WriteString("### sseload's own ceiling\n\nAgainst a trivial in-process server that streams pre-built frames" +
		" and answers POSTs with a bare 200: what the tool can count at most here, sharing the cores with that server.\n\n")
	t := newTable("lrrr", "frame", "listeners", "deliveries/s", "POSTs/s")
	for _, s := range stats {
		t.row(Num(s.Size)+" B event", Num(s.Listeners), Count(s.DeliveriesPerSec), Count(s.PostsPerSec))
	}
	b.WriteString(t.String() + "\n")
}

// writeProblems lists failed runs and the runs' warnings (a few per case).
func (r *Results) writeProblems(b *strings.Builder) {
	var lines []string
	if r.Run != nil {
		for _, f := range r.Run.Failures {
			lines = append(lines, "- failed: "+f)
		}
	}
	for _, s := range r.Stats {
		if r.Run != nil && r.Run.Repeat > 0 && s.Runs < r.Run.Repeat {
			lines = append(lines, fmt.Sprintf("- %s: median of %d runs only", caseName(s.Case), s.Runs))
		}
		for i, w := range s.Warnings {
			if i == 2 {
				lines = append(lines, fmt.Sprintf("- %s: … %d more warnings", caseName(s.Case), len(s.Warnings)-2))
				break
			}
			lines = append(lines, fmt.Sprintf("- %s: %s", caseName(s.Case), w))
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("### Warnings\n\n" + strings.Join(lines, "\n") + "\n\n")
}

func caseName(c Case) string {
	s := fmt.Sprintf("%s %s", c.Scenario, c.Target)
	if c.Listeners > 0 {
		s += ", " + Num(c.Listeners) + " listeners"
	}
	return s + rateSuffix(c.Rate)
}

func joinInts(xs []int) string {
	s := make([]string, 0, len(xs))
	for _, x := range xs {
		s = append(s, Num(x))
	}
	if len(s) > 1 {
		return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
	}
	return strings.Join(s, "")
}
