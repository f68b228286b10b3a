package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

// writeSummary writes dir/summary.md: one markdown table per kind of result
// found in dir/*.json, one row per run (repeats included; the report has
// the medians).
func writeSummary(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	var reports []*load.Report
	for _, f := range files {
		r, err := load.ReadReport(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: summary: skipping %v\n", err)
			continue
		}
		reports = append(reports, r)
	}
	sort.SliceStable(reports, func(i, j int) bool {
		a, b := reports[i], reports[j]
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		if a.Params.Size != b.Params.Size {
			return a.Params.Size < b.Params.Size
		}
		if a.Params.Listeners != b.Params.Listeners {
			return a.Params.Listeners < b.Params.Listeners
		}
		if a.Params.Rate != b.Params.Rate {
			return a.Params.Rate < b.Params.Rate
		}
		if a.Params.SlowFraction != b.Params.SlowFraction {
			return a.Params.SlowFraction < b.Params.SlowFraction
		}
		if a.Params.Filters != b.Params.Filters {
			return a.Params.Filters < b.Params.Filters
		}
		return a.StartedAt.Before(b.StartedAt)
	})
	f, err := os.Create(filepath.Join(dir, "summary.md"))
	if err != nil {
		return err
	}
	if err := summarize(f, filepath.Base(dir), reports); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func summarize(w io.Writer, title string, reports []*load.Report) error {
	fmt.Fprintf(w, "# Benchmark results: %s\n\n", title)
	if len(reports) == 0 {
		fmt.Fprintln(w, "No results.")
		return nil
	}
	e := reports[0].Env
	commit := e.GitCommit
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(w, "Machine: %s, %d cores, %s %s/%s, kernel %s; commit %s.\n\n", e.CPUModel, e.Cores, e.GoVersion, e.OS, e.Arch, e.Kernel, commit)

	var loads, idles, selfs []*load.Report
	for _, r := range reports {
		switch r.Mode {
		case load.ModeLoad:
			loads = append(loads, r)
		case load.ModeIdle:
			idles = append(idles, r)
		case load.ModeSelfTest:
			selfs = append(selfs, r)
		}
	}
	if len(loads) > 0 {
		fmt.Fprintln(w, "| server | listeners | slow | filters | producers | rate | size | posts/s | POST p99 | deliveries/s | delivery ratio | lost | gap events | e2e p50 | e2e p99 | e2e p99.9 | server CPU (cores) | server peak RSS | sseload CPU (cores) |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range loads {
			p, l := r.Params, r.Load
			rate := "max"
			if p.Rate > 0 {
				rate = load.FormatCount(p.Rate) + "/s"
			}
			cpu, rss := "-", "-"
			if s := r.Server; s != nil {
				cpu = fmt.Sprintf("%.2f", s.CPUCores)
				rss = fmt.Sprintf("%.1f MiB", float64(s.PeakRSSKiB)/1024)
			}
			deliv, ratio, p50, p99, p999 := "-", "-", "-", "-", "-"
			if p.Listeners > 0 {
				deliv = load.FormatCount(l.DeliveriesPerSec)
				ratio = fmt.Sprintf("%.4f", l.DeliveryRatio)
				p50, p99, p999 = load.FormatMicros(l.E2E.P50Us), load.FormatMicros(l.E2E.P99Us), load.FormatMicros(l.E2E.P999Us)
			}
			filters := "-"
			if p.Filters > 0 {
				filters = strconv.Itoa(p.Filters)
			}
			fmt.Fprintf(w, "| %s | %d | %.0f%% | %s | %d | %s | %d B | %s | %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %.2f |\n",
				label(r), p.Listeners, p.SlowFraction*100, filters, p.Producers, rate, p.Size,
				load.FormatCount(l.PostsPerSec), load.FormatMicros(l.PostLatency.P99Us),
				deliv, ratio, l.Lost, l.GapEvents, p50, p99, p999, cpu, rss, r.Tool.CPUCores)
		}
		fmt.Fprintln(w)
		for _, r := range loads {
			if f := r.Load.Filter; f != nil && f.Rejected > 0 {
				fmt.Fprintf(w, "- %s, %d listeners, %d filters: %d events reached listeners whose filter rejects them.\n",
					label(r), r.Params.Listeners, r.Params.Filters, f.Rejected)
			}
			if s := r.Load.Slow; s != nil {
				fmt.Fprintf(w, "- %s, %d listeners: %d slow listeners received %d events in the measured phase; %d were disconnected by the server.\n",
					label(r), r.Params.Listeners, s.Listeners, s.Delivered, s.Disconnected)
			}
		}
	}
	if len(idles) > 0 {
		fmt.Fprintln(w, "| server | idle listeners | connect time | RSS before | RSS with listeners | KiB per listener | disconnected |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
		for _, r := range idles {
			i := r.Idle
			fmt.Fprintf(w, "| %s | %d | %.2f s | %.1f MiB | %.1f MiB | %.2f | %d |\n", label(r), i.Listeners, i.ConnectSec,
				float64(i.RSSBeforeKiB)/1024, float64(i.RSSWithKiB)/1024, i.KiBPerListener, i.Disconnected)
		}
		fmt.Fprintln(w)
	}
	if len(selfs) > 0 {
		fmt.Fprintln(w, "| frame | listeners | deliveries/s | deliveries per CPU-s | producers | posts/s | posts per CPU-s |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range selfs {
			s := r.SelfTest
			fmt.Fprintf(w, "| %d B | %d | %s | %s | %d | %s | %s |\n", s.FrameBytes, s.Listeners, load.FormatCount(s.DeliveriesPerSec),
				load.FormatCount(s.DeliveriesPerCPU), s.Producers, load.FormatCount(s.PostsPerSec), load.FormatCount(s.PostsPerCPU))
		}
		fmt.Fprintf(w, "\n%s\n", selfs[0].SelfTest.Note)
	}
	var warns []string
	for _, r := range reports {
		for _, x := range r.Warnings {
			warns = append(warns, fmt.Sprintf("- %s, %d listeners: %s", label(r), r.Params.Listeners, x))
		}
	}
	if len(warns) > 0 {
		if len(warns) > 20 {
			warns = append(warns[:20], fmt.Sprintf("- … %d more", len(warns)-20))
		}
		fmt.Fprintf(w, "\nWarnings:\n\n%s\n", strings.Join(warns, "\n"))
	}
	return nil
}

func label(r *load.Report) string {
	if r.Label == "" {
		return "-"
	}
	return r.Label
}
