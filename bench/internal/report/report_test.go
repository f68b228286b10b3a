package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testEnv = load.Env{CPUModel: "Test CPU", Cores: 2, MemMiB: 24 << 10, GoVersion: "go1.26.8", Kernel: "6.18", GitCommit: "0123456789abcdef"}

// writeLoad writes one load run's report into dir/scenario.
func writeLoad(t *testing.T, dir, scenario, target string, rep, listeners int, rate float64, size int, res load.RunResult, cpu float64) {
	t.Helper()
	r := &load.Report{
		Schema: load.Schema, Mode: load.ModeLoad, Label: target, Env: testEnv,
		Params: load.Params{Listeners: listeners, Rate: rate, Size: size, Producers: 8},
		Load:   &res,
		Server: &load.ServerStats{CPUSeconds: cpu, CPUCores: cpu / 5},
		Tool:   load.ToolStats{CPUCores: 0.7},
		Host:   &load.HostStats{OtherCores: 0.01},
	}
	name := fmt.Sprintf("%s-L%d-R%g-%dB-r%d.json", target, listeners, rate, size, rep)
	if err := r.WriteJSONFile(filepath.Join(dir, scenario, name)); err != nil {
		t.Fatal(err)
	}
}

func writeIdle(t *testing.T, dir, target string, rep, listeners int, kib float64) {
	t.Helper()
	r := &load.Report{Schema: load.Schema, Mode: load.ModeIdle, Label: target, Env: testEnv,
		Params: load.Params{Listeners: listeners}, Idle: &load.IdleResult{Listeners: listeners, KiBPerListener: kib}}
	if err := r.WriteJSONFile(filepath.Join(dir, ScenarioIdle, fmt.Sprintf("%s-%d-r%d.json", target, listeners, rep))); err != nil {
		t.Fatal(err)
	}
}

// delivered is a load result at full speed: d deliveries/s, p posts/s.
func delivered(d, p, p99ms float64) load.RunResult {
	return load.RunResult{DeliveriesPerSec: d, PostsPerSec: p, DeliveryRatio: 1, E2E: load.Latency{Count: 100, P50Us: p99ms * 300, P99Us: p99ms * 1000}}
}

// fixture writes a results directory where, over three repeats, ours
// scales (goal 1 met), beats the baseline at 50/s but not at 100/s (goal 2
// missed), and ours-hijack is lean (goal 3 met) but slower at 10,000
// listeners (goal 4 missed).
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for rep := 1; rep <= 3; rep++ {
		k := float64(rep) // the middle repeat is the median
		for _, l := range []int{1000, 10000} {
			writeLoad(t, dir, ScenarioSweep, "ours", rep, l, 0, 128, delivered(1e6*k, 2e3*k, 20*k), 4)
			hijack := 1.5e6 * k
			if l == 10000 {
				hijack = 0.5e6 * k
			}
			writeLoad(t, dir, ScenarioSweep, "ours-hijack", rep, l, 0, 128, delivered(hijack, 3e3, 10), 4)
			writeLoad(t, dir, ScenarioSweep, "baseline", rep, l, 0, 128, delivered(3e5*k, 300, 100), 4)
		}
		// Scraped, ours delivers 3 % less: within the metrics goal.
		writeLoad(t, dir, ScenarioSweep, "ours-scraped", rep, 1000, 0, 128, delivered(0.97e6*k, 2e3*k, 20*k), 4)
		lossy := delivered(2e5, 200, 300)
		lossy.DeliveryRatio, lossy.Lost, lossy.Disconnected = 0.9, 1000, 12
		writeLoad(t, dir, ScenarioSweep, "centrifugo", rep, 10000, 0, 128, lossy, 4)
		for _, rate := range []float64{50, 100, 200} {
			ours, base := delivered(5e4, rate, 10), delivered(5e4, rate, 12)
			if rate == 100 {
				ours.E2E.P99Us = 15000
			}
			writeLoad(t, dir, ScenarioRates, "ours", rep, 1000, rate, 128, ours, 0.5)
			writeLoad(t, dir, ScenarioRates, "baseline", rep, 1000, rate, 128, base, 0.6)
			writeLoad(t, dir, ScenarioRates, "ours-hijack", rep, 1000, rate, 128, delivered(5e4, rate, 9), 0.4)
		}
		writeIdle(t, dir, "ours", rep, 10000, 29+k)
		writeIdle(t, dir, "ours-hijack", rep, 10000, 11+k)
	}
	// A directory left from an older bench is not read.
	if err := os.MkdirAll(filepath.Join(dir, "fanout"), 0o755); err != nil {
		t.Fatal(err)
	}
	// One repeat of ingest only: reported as such. Through NATS, a POST
	// costs 3.5 times as much CPU: the NATS CPU goal is missed.
	writeLoad(t, dir, ScenarioIngest, "ours", 1, 0, 0, 128, load.RunResult{PostsPerSec: 7e4}, 1)
	writeLoad(t, dir, ScenarioIngest, "ours-nats", 1, 0, 0, 128, load.RunResult{PostsPerSec: 2e4}, 1)
	// A sparse stream: through NATS, a p99 1.4 times the single mode's:
	// the NATS latency goal is met.
	for rep := 1; rep <= 3; rep++ {
		writeLoad(t, dir, ScenarioLatency, "ours", rep, 1, 500, 128, delivered(500, 500, 2), 0.1)
		writeLoad(t, dir, ScenarioLatency, "ours-nats", rep, 1, 500, 128, delivered(500, 500, 2.8), 0.2)
	}
	run := &Run{Command: "make bench-all", Args: []string{"-repeat", "3", "all"}, Repeat: 3,
		Started: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Finished: time.Date(2026, 12, 1, 10, 31, 0, 0, time.UTC),
		Failures: []string{"centrifugo sweep L1000 r2: connect timeout"}}
	if err := WriteRun(dir, run); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadComputesMedians(t *testing.T) {
	r, err := Load(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := r.Find(Case{Scenario: ScenarioSweep, Target: "ours", Listeners: 1000, Size: 128})
	if !ok || s.Runs != 3 || s.DeliveriesPerSec != 2e6 || s.PostsPerSec != 4e3 || s.P99Ms != 40 || s.Spread != 3 {
		t.Fatalf("ours sweep 1000: %+v", s)
	}
	if got := r.TargetsIn(ScenarioSweep); strings.Join(got, ",") != "ours,ours-hijack,ours-scraped,baseline,centrifugo" {
		t.Fatalf("targets %v", got)
	}
	if r.Run == nil || r.Run.Repeat != 3 || r.Env.CPUModel != "Test CPU" {
		t.Fatalf("run %+v env %+v", r.Run, r.Env)
	}
	if len(r.Others) != 1 || r.Others[0] != "fanout" {
		t.Fatalf("other directories %v", r.Others)
	}
	for xs, want := range map[string]float64{"": 0, "5": 5, "3,1,2": 2, "4,1,3,2": 2.5} {
		var v []float64
		for _, f := range strings.Split(xs, ",") {
			var x float64
			if _, err := fmt.Sscan(f, &x); err == nil {
				v = append(v, x)
			}
		}
		if got := Median(v); got != want {
			t.Errorf("Median(%s) = %v, want %v", xs, got, want)
		}
	}
}

func TestGoals(t *testing.T) {
	r, err := Load(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	goals := r.Goals()
	// Scale: ours met, ours-hijack missed (0.33×); moderate: ours missed
	// (p99 at 100/s), ours-hijack met; idle met; hijack faster missed;
	// metrics met; NATS latency met, NATS CPU missed.
	want := []string{Met, Missed, Missed, Met, Met, Missed, Met, Met, Missed}
	if len(goals) != len(want) {
		t.Fatalf("%d goals, want %d", len(goals), len(want))
	}
	for i, g := range goals {
		if g.Status != want[i] {
			t.Errorf("goal %d (%s): %s (%s), want %s", i+1, g.Goal, g.Status, g.Measured, want[i])
		}
	}
	if !strings.Contains(goals[0].Measured, "**1.00×**") || !strings.Contains(goals[4].Measured, "**13.0 KiB** (ours: 31.0 KiB)") ||
		!strings.Contains(goals[6].Measured, "-3.0 %") || goals[7].Measured != "2.8 vs 2 ms at 500 events/s: 1.40×" ||
		goals[8].Measured != "10.0 µs vs 2.9 µs: 3.50×" {
		t.Errorf("measured: %q / %q / %q / %q / %q", goals[0].Measured, goals[4].Measured, goals[6].Measured,
			goals[7].Measured, goals[8].Measured)
	}
	// Without the cases a goal needs, it is not measured.
	empty := &Results{Stats: []Stats{{Case: Case{Scenario: ScenarioIngest, Target: "ours"}, PostsPerSec: 1}}}
	for _, g := range empty.Goals() {
		if g.Status != NotMeasured {
			t.Errorf("%s: %s", g.Goal, g.Status)
		}
	}
}

func TestMarkdownAndSummary(t *testing.T) {
	r, err := Load(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	goals := r.Goals()
	md := r.Markdown(goals, "results")
	for _, want := range []string{
		"`make bench-all` (`benchrun -repeat 3 all`) (2026-12-01 10:00 UTC, 31m0s)",
		"Test CPU, 2 cores, 24 GiB, Linux 6.18; go1.26.8; commit `0123456789ab`. Every figure is the median of 3 runs.",
		"| listeners: deliveries/s | ours | ours-hijack | ours-scraped | baseline | centrifugo |",
		"| 1,000 | 2M | 3M | 1.94M | 600k | - |",
		"| 10,000 | 12 / 40 | 3 / 10 | - | 30 / 100 | 90 / 300 |",
		"| goal | measured |  |",
		"centrifugo, 10,000 listeners: delivery ratio 0.9000 (median 1k events lost, 12 listeners disconnected)",
		"![deliveries/s and p99 against listeners](results/sweep.png)",
		"| 100: e2e p99 (ms) | 15 | 9 | 12 |",
		"| 50: server CPU (s) | 0.50 | 0.40 | 0.60 |",
		"| ours-hijack | 10,000 | 13.0 |",
		"- failed: centrifugo sweep L1000 r2: connect timeout",
		"- ingest ours: median of 1 runs only",
		"| ours | 128 B | 70k | 2.9 µs |",
		"| ours-nats | 1 | 0.84 ms | 2.8 ms | 0.20 s |",
		"| full speed, ours: deliveries/s at 10,000 listeners ≥ 0.8× the figure at 1,000 | 2M at 10,000 (4k POSTs/s, p99 40 ms) vs 2M at 1,000: **1.00×** | **met** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	sum := r.Summary(goals, "bench/README.md")
	for _, want := range []string{
		"| scenario | ours | ours-hijack | ours-scraped | ours-nats | baseline | centrifugo |",
		"| 1,000 listeners, full speed: deliveries/s (POSTs/s) | 2M (4k) | 3M (3k) | 1.94M (4k) | - | 600k (300) | - |",
		"| 1,000 listeners × 100 events/s: e2e p99, server CPU | 15 ms, 0.50 s | 9 ms, 0.40 s | - | - | 12 ms, 0.60 s | - |",
		"| 10,000 idle listeners: server memory each | 31.0 KiB | 13.0 KiB | - | - | - | - |",
		"| no listener: server CPU per POST | 2.9 µs | - | - | 10.0 µs | - | - |",
		"| a sparse stream (500 events/s): e2e p50 / p99 | 0.6 / 2 ms | - | - | 0.84 / 2.8 ms | - | - |",
		"Goals: 5 of 9 met.",
		"[bench/README.md](bench/README.md)",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := fixture(t)
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(dir, r.Goals()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{MarkdownFile, JSONFile, ChartName + ".svg", ChartName + ".png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The report's own files do not disturb a second load.
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("empty directory loaded")
	}
}

func TestUpdateSection(t *testing.T) {
	begin, end := Markers("bench:summary")
	tests := []struct {
		name, file, want string
		err              error
	}{
		{"replaces", "# T\n\nintro\n" + begin + "\nold\ntable\n" + end + "\n\nafter\n",
			"# T\n\nintro\n" + begin + "\nnew\n" + end + "\n\nafter\n", nil},
		{"empty section", "a\n" + begin + "\n" + end + "\nb\n", "a\n" + begin + "\nnew\n" + end + "\nb\n", nil},
		{"CRLF", "a\r\n" + begin + "\r\nold\r\n" + end + "\r\n", "a\r\n" + begin + "\nnew\n" + end + "\r\n", nil},
		{"no markers", "# T\n", "# T\n", ErrNoMarkers},
		{"markers quoted in the text are left alone", "see `" + begin + "`\n" + begin + "\nold\n" + end + "\n",
			"see `" + begin + "`\n" + begin + "\nnew\n" + end + "\n", nil},
		{"only quoted", "see `" + begin + "` and `" + end + "`\n", "see `" + begin + "` and `" + end + "`\n", ErrNoMarkers},
		{"end before begin", end + "\n" + begin + "\n", end + "\n" + begin + "\n", ErrNoMarkers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "README.md")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			err := UpdateSection(path, "bench:summary", "new\n\n")
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			b, _ := os.ReadFile(path)
			if string(b) != tc.want {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v", st.Mode())
			}
		})
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 950: "950", 1000: "1k", 125500: "126k", 1213000: "1.21M", 12.5: "12.5", 1.234: "1.23", 0.456: "0.46"} {
		if got := Count(v); got != want {
			t.Errorf("Count(%v) = %s, want %s", v, got, want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -5000: "-5,000"} {
		if got := Num(n); got != want {
			t.Errorf("Num(%d) = %s, want %s", n, got, want)
		}
	}
	tb := newTable("lr", "a", "b")
	tb.row("x|y")
	if got := tb.String(); got != "| a | b |\n|---|---:|\n| x\\|y | - |\n" {
		t.Errorf("table %q", got)
	}
}
