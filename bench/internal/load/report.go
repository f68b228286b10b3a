package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
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
	// Scrape is what the /metrics scraper did during the measured phase
	// (-scrape-interval).
	Scrape   *ScrapeStats `json:"scrape,omitempty"`
	Host     *HostStats   `json:"host,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
}

// Params are the run's parameters.
type Params struct {
	URL             string   `json:"url"`
	Protocol        string   `json:"protocol,omitempty"`
	Listeners       int      `json:"listeners"`
	Producers       int      `json:"producers"`
	Rate            float64  `json:"rate"`
	Events          int64    `json:"events,omitempty"`
	DurationSec     float64  `json:"duration_s"`
	WarmupSec       float64  `json:"warmup_s"`
	DrainSec        float64  `json:"drain_s"`
	ConnectTimeout  float64  `json:"connect_timeout_s"`
	Size            int      `json:"size"`
	BodyBytes       int      `json:"body_bytes"`
	Sample          int      `json:"sample"`
	SlowFraction    float64  `json:"slow_fraction"`
	Client          string   `json:"client"`
	SourceIPs       int      `json:"source_ips"`
	ServerPID       int      `json:"server_pid,omitempty"`
	ExtraPIDs       []int    `json:"extra_pids,omitempty"`
	PostURLs        []string `json:"post_urls,omitempty"`
	DialConcurrency int      `json:"dial_concurrency"`
	ReadyOnSend     bool     `json:"ready_on_send,omitempty"`
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
	// ControlFrames are data blocks that are not events (Centrifugo's
	// connect reply and pings).
	ControlFrames int64 `json:"control_frames,omitempty"`

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
