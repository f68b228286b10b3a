package load

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Schema identifies the JSON result format.
const Schema = "sseload/v1"

// Modes of a run.
const (
	ModeLoad     = "load"
	ModeIdle     = "idle"
	ModeSelfTest = "self-test"
)

// Report is the result of one sseload run, as printed and as written to JSON.
type Report struct {
	Schema    string    `json:"schema"`
	Mode      string    `json:"mode"`
	Label     string    `json:"label,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Params    Params    `json:"params"`
	Env       Env       `json:"env"`

	Load     *RunResult      `json:"load,omitempty"`
	Idle     *IdleResult     `json:"idle,omitempty"`
	SelfTest *SelfTestResult `json:"self_test,omitempty"`
	Server   *ServerStats    `json:"server,omitempty"`
	// Health and HealthAfter are the server's GET /health answers before
	// and after the measured phase (when JSON).
	Health      json.RawMessage `json:"health,omitempty"`
	HealthAfter json.RawMessage `json:"health_after,omitempty"`
	Tool        ToolStats       `json:"tool"`
	Host        *HostStats      `json:"host,omitempty"`
	Warnings    []string        `json:"warnings,omitempty"`
}

// Params are the run's parameters.
type Params struct {
	URL             string  `json:"url"`
	Listeners       int     `json:"listeners"`
	Producers       int     `json:"producers"`
	Rate            float64 `json:"rate"`
	Events          int64   `json:"events,omitempty"`
	DurationSec     float64 `json:"duration_s"`
	WarmupSec       float64 `json:"warmup_s"`
	DrainSec        float64 `json:"drain_s"`
	ConnectTimeout  float64 `json:"connect_timeout_s"`
	Size            int     `json:"size"`
	BodyBytes       int     `json:"body_bytes"`
	Sample          int     `json:"sample"`
	SlowFraction    float64 `json:"slow_fraction"`
	Client          string  `json:"client"`
	SourceIPs       int     `json:"source_ips"`
	ServerPID       int     `json:"server_pid,omitempty"`
	DialConcurrency int     `json:"dial_concurrency"`
	ReadyOnSend     bool    `json:"ready_on_send,omitempty"`
}

// RunResult holds the numbers of a load run.
type RunResult struct {
	ProduceSec  float64          `json:"produce_s"`
	DeliverySec float64          `json:"delivery_window_s"`
	Sent        int64            `json:"sent"`
	PostErrors  int64            `json:"post_errors"`
	PostStatus  map[string]int64 `json:"post_status,omitempty"`
	PacerSkips  int64            `json:"pacer_skipped,omitempty"`
	PostsPerSec float64          `json:"posts_per_s"`
	PostLatency Latency          `json:"post_latency"`

	HealthyListeners int     `json:"healthy_listeners"`
	Expected         int64   `json:"expected"`
	Delivered        int64   `json:"delivered"`
	Lost             int64   `json:"lost"`
	Extra            int64   `json:"extra,omitempty"`
	DeliveryRatio    float64 `json:"delivery_ratio"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	PerListenerMin   int64   `json:"per_listener_min"`
	PerListenerMed   int64   `json:"per_listener_median"`
	PerListenerMax   int64   `json:"per_listener_max"`
	Complete         bool    `json:"complete"`
	Disconnected     int     `json:"disconnected"`
	GapEvents        int64   `json:"gap_events"`
	GapMissed        int64   `json:"gap_missed"`
	OtherEvents      int64   `json:"other_named_events,omitempty"`
	Comments         int64   `json:"comment_blocks"`
	Retries          int64   `json:"retry_blocks,omitempty"`

	E2E   Latency    `json:"e2e_latency"`
	Order OrderCheck `json:"order"`

	Slow *SlowResult `json:"slow,omitempty"`
}

// OrderCheck summarises the per-producer order checks on sampled frames.
type OrderCheck struct {
	Checked    int64 `json:"checked"`
	OutOfOrder int64 `json:"out_of_order"`
	Duplicates int64 `json:"duplicates"`
	SeqGaps    int64 `json:"seq_gaps,omitempty"`
	Foreign    int64 `json:"foreign,omitempty"`
	Unparsed   int64 `json:"unparsed,omitempty"`
}

// SlowResult describes the listeners that stopped reading.
type SlowResult struct {
	Listeners    int   `json:"listeners"`
	Delivered    int64 `json:"delivered"`
	Disconnected int   `json:"disconnected_by_server"`
}

// IdleResult holds the numbers of an idle run.
type IdleResult struct {
	Listeners      int     `json:"listeners"`
	ConnectSec     float64 `json:"connect_s"`
	HoldSec        float64 `json:"hold_s"`
	RSSBeforeKiB   int64   `json:"rss_before_kib"`
	RSSWithKiB     int64   `json:"rss_with_kib"`
	PeakRSSKiB     int64   `json:"peak_rss_kib"`
	KiBPerListener float64 `json:"kib_per_listener"`
	Disconnected   int     `json:"disconnected"`
}

// SelfTestResult is the tool's own ceiling against a trivial in-process
// server.
type SelfTestResult struct {
	Listeners        int     `json:"listeners"`
	FrameBytes       int     `json:"frame_bytes"`
	FramesPerChunk   int     `json:"frames_per_chunk"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	MiBPerSec        float64 `json:"mib_per_s"`
	ListenerCPUSec   float64 `json:"listener_phase_cpu_s"`
	DeliveriesPerCPU float64 `json:"deliveries_per_cpu_s"`
	Producers        int     `json:"producers"`
	PostsPerSec      float64 `json:"posts_per_s"`
	PostLatency      Latency `json:"post_latency"`
	ProducerCPUSec   float64 `json:"producer_phase_cpu_s"`
	PostsPerCPU      float64 `json:"posts_per_cpu_s"`
	Note             string  `json:"note"`
}

// ServerStats are the server process's resource use (when -server-pid is
// given).
type ServerStats struct {
	PID            int     `json:"pid"`
	RSSBaselineKiB int64   `json:"rss_baseline_kib"`
	PeakRSSKiB     int64   `json:"peak_rss_kib"`
	RSSDeltaKiB    int64   `json:"rss_delta_kib"`
	HWMKiB         int64   `json:"vm_hwm_kib"`
	CPUSeconds     float64 `json:"cpu_s"`
	CPUCores       float64 `json:"cpu_cores"`
	CPUSecondsAll  float64 `json:"cpu_s_whole_run"`
}

// ToolStats are sseload's own resource use.
type ToolStats struct {
	CPUSeconds float64 `json:"cpu_s"`
	CPUCores   float64 `json:"cpu_cores"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	// ReadsPerDelivery is the healthy listeners' reads that returned data
	// per delivered event, over the whole run (below 1 when one read
	// carries several frames).
	ReadsPerDelivery float64 `json:"reads_per_delivery,omitempty"`
}

// HostStats describe the whole machine during the measured phase, to tell
// whether other processes competed for the CPU.
type HostStats struct {
	LoadAvg1   float64 `json:"load_avg_1m_at_start"`
	BusyCores  float64 `json:"busy_cores"`
	OtherCores float64 `json:"other_cores"` // busy minus sseload minus the server (when known)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteJSONFile writes the report to path (creating parent directories).
func (r *Report) WriteJSONFile(path string) error {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		if err := os.MkdirAll(path[:i], 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadReport reads a JSON report.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%s: not an sseload report (schema %q)", path, r.Schema)
	}
	return &r, nil
}

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
	fmt.Fprintf(tw, "%s — %s\n", title, r.Params.URL)
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
			row("e2e latency", latLine(l.E2E, true))
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

func secs(s float64) string {
	return strconv.FormatFloat(s, 'f', -1, 64) + "s"
}

func kib(k int64) string {
	switch {
	case k >= 10<<20:
		return fmt.Sprintf("%.1f GiB", float64(k)/(1<<20))
	case k >= 10<<10:
		return fmt.Sprintf("%.1f MiB", float64(k)/(1<<10))
	default:
		return fmt.Sprintf("%d KiB", k)
	}
}

// FormatCount renders a count or rate with a k/M/G suffix.
func FormatCount(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimZero(fmt.Sprintf("%.2f", v/1e9)) + "G"
	case a >= 1e6:
		return trimZero(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e4:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return trimZero(fmt.Sprintf("%.1f", v))
	}
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

// FormatMicros renders a duration given in microseconds with a fitting unit.
func FormatMicros(us float64) string {
	switch {
	case us >= 1e6:
		return trimZero(fmt.Sprintf("%.2f", us/1e6)) + "s"
	case us >= 1e3:
		return trimZero(fmt.Sprintf("%.2f", us/1e3)) + "ms"
	default:
		return trimZero(fmt.Sprintf("%.1f", us)) + "µs"
	}
}
