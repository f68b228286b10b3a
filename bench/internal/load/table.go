package load

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the human-readable report.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v ...any) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprint(v...))
	}
	title := "sseload " + r.Mode
	if r.Label != "" {
		title += " [" + r.Label + "]"
	}
	proto := ""
	if r.Params.Protocol != "" && r.Params.Protocol != ProtocolDispatcher {
		proto = " (" + r.Params.Protocol + ")"
	}
	fmt.Fprintf(tw, "%s — %s%s\n", title, r.Params.URL, proto)
	p := r.Params
	switch r.Mode {
	case ModeIdle:
		row("parameters", fmt.Sprintf("listeners=%d hold=%s client=%s", p.Listeners, secs(p.DurationSec), p.Client))
	default:
		rate := "max"
		if p.Rate > 0 {
			rate = FormatCount(p.Rate) + "/s"
		}
		row("parameters", fmt.Sprintf("listeners=%d (slow %.0f%%) producers=%d rate=%s duration=%s warmup=%s size=%dB (body %dB) sample=1/%d client=%s",
			p.Listeners, p.SlowFraction*100, p.Producers, rate, secs(p.DurationSec), secs(p.WarmupSec), p.Size, p.BodyBytes, p.Sample, p.Client))
	}
	if p.Filters > 0 {
		row("filters", fmt.Sprintf("%d distinct, round-robin over the listeners, each passing 1 %s in %d (listener 0: %s)",
			p.Filters, BucketField, p.Buckets, p.FilterExample))
	} else if p.Buckets > 0 {
		row("filters", fmt.Sprintf("none (events carry a %s, 1 in %d)", BucketField, p.Buckets))
	}
	e := r.Env
	commit := e.GitCommit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if e.GitDirty {
		commit += "+dirty"
	}
	row("environment", fmt.Sprintf("%s, %d cores, %s %s/%s, commit %s", e.CPUModel, e.Cores, e.GoVersion, e.OS, e.Arch, orDash(commit)))

	if l := r.Load; l != nil {
		row("posts", fmt.Sprintf("%s sent in %s = %s posts/s, %d errors%s", FormatCount(float64(l.Sent)), secs(l.ProduceSec), FormatCount(l.PostsPerSec), l.PostErrors, statusSuffix(l.PostStatus)))
		row("POST latency", latLine(l.PostLatency, false))
		if p.Listeners > 0 {
			row("deliveries", fmt.Sprintf("%s/s (%s delivered in %s to %d healthy listeners)", FormatCount(l.DeliveriesPerSec), FormatCount(float64(l.Delivered)), secs(l.DeliverySec), l.HealthyListeners))
			row("delivery ratio", fmt.Sprintf("%.6f (lost %d of %d expected%s)", l.DeliveryRatio, l.Lost, l.Expected, extraSuffix(l.Extra)))
			row("per listener", fmt.Sprintf("min %d / median %d / max %d received, %d disconnected", l.PerListenerMin, l.PerListenerMed, l.PerListenerMax, l.Disconnected))
			row("gap events", fmt.Sprintf("%d (announcing %d missed events)", l.GapEvents, l.GapMissed))
			if l.ControlFrames > 0 {
				row("control frames", fmt.Sprintf("%d data blocks that are not events (not counted)", l.ControlFrames))
			}
			row("e2e latency", latLine(l.E2E, true))
			if f := l.Filter; f != nil {
				row("filter check", fmt.Sprintf("%d frames (whole run) checked against their listener's filter: %d it rejects",
					f.Checked, f.Rejected))
			}
			o := l.Order
			row("order check", fmt.Sprintf("%d sampled frames (whole run): %d out of order, %d duplicates, %d seq gaps, %d foreign, %d unparsed", o.Checked, o.OutOfOrder, o.Duplicates, o.SeqGaps, o.Foreign, o.Unparsed))
		}
		if s := l.Slow; s != nil {
			row("slow listeners", fmt.Sprintf("%d stopped reading; received %d events; %d disconnected by the server", s.Listeners, s.Delivered, s.Disconnected))
		}
	}
	if i := r.Idle; i != nil {
		row("idle listeners", fmt.Sprintf("%d connected in %s, held %s, %d disconnected", i.Listeners, secs(i.ConnectSec), secs(i.HoldSec), i.Disconnected))
		row("server RSS", fmt.Sprintf("%s before, %s with listeners (peak %s)", kib(i.RSSBeforeKiB), kib(i.RSSWithKiB), kib(i.PeakRSSKiB)))
		row("memory/listener", fmt.Sprintf("%.2f KiB", i.KiBPerListener))
	}
	if s := r.SelfTest; s != nil {
		if s.Listeners > 0 {
			row("listener ceiling", fmt.Sprintf("%s deliveries/s (%.0f MiB/s) over %d listeners, %dB frames, %d frame(s)/chunk; process CPU %.2fs = %s deliveries per CPU-second",
				FormatCount(s.DeliveriesPerSec), s.MiBPerSec, s.Listeners, s.FrameBytes, s.FramesPerChunk, s.ListenerCPUSec, FormatCount(s.DeliveriesPerCPU)))
		}
		if s.Producers > 0 {
			row("producer ceiling", fmt.Sprintf("%s posts/s with %d producers; process CPU %.2fs = %s posts per CPU-second",
				FormatCount(s.PostsPerSec), s.Producers, s.ProducerCPUSec, FormatCount(s.PostsPerCPU)))
		}
		row("POST latency", latLine(s.PostLatency, false))
		row("note", s.Note)
	}
	if s := r.Server; s != nil {
		row("server", fmt.Sprintf("pid %d: peak RSS %s (baseline %s, +%s; VmHWM %s), CPU %.2fs (%.2f cores; %.2fs whole run)",
			s.PID, kib(s.PeakRSSKiB), kib(s.RSSBaselineKiB), kib(s.RSSDeltaKiB), kib(s.HWMKiB), s.CPUSeconds, s.CPUCores, s.CPUSecondsAll))
	}
	tool := fmt.Sprintf("CPU %.2fs (%.2f cores), peak RSS %s", r.Tool.CPUSeconds, r.Tool.CPUCores, kib(r.Tool.PeakRSSKiB))
	if r.Tool.ReadsPerDelivery > 0 {
		tool += fmt.Sprintf(", %.3f listener reads per delivery", r.Tool.ReadsPerDelivery)
	}
	row("sseload itself", tool)
	if sc := r.Scrape; sc != nil {
		row("metrics scrapes", fmt.Sprintf("%d every %.1fs, %.1f ms each on average, %d errors, %s the last", sc.Scrapes, sc.IntervalSec, sc.MeanMs, sc.Errors, kib(sc.Bytes/1024)))
	}
	if h := r.Host; h != nil {
		row("machine", fmt.Sprintf("%.2f cores busy, of which %.2f by other processes; load average %.2f at start", h.BusyCores, h.OtherCores, h.LoadAvg1))
	}
	for _, w := range r.Warnings {
		row("WARNING", w)
	}
	return tw.Flush()
}

func latLine(l Latency, e2e bool) string {
	if l.Count == 0 {
		return "no samples"
	}
	s := fmt.Sprintf("p50 %s  p90 %s  p99 %s", FormatMicros(l.P50Us), FormatMicros(l.P90Us), FormatMicros(l.P99Us))
	if e2e {
		s += "  p99.9 " + FormatMicros(l.P999Us)
	}
	return s + fmt.Sprintf("  max %s  (%s samples)", FormatMicros(l.MaxUs), FormatCount(float64(l.Count)))
}

func statusSuffix(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func extraSuffix(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d more than expected", n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
