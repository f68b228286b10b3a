package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExpandArgs(t *testing.T) {
	got := expandArgs("-port {addr} -max-listeners {max}  -x {port} -c {config}", "127.0.0.1:5", 5, 100, "/r/c.json")
	want := []string{"-port", "127.0.0.1:5", "-max-listeners", "100", "-x", "5", "-c", "/r/c.json"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%q", got)
	}
}

func TestRecordedArgs(t *testing.T) {
	got := recordedArgs([]string{"-out", "x", "-command=make bench-all", "-repeat", "3", "--out=y", "-command", "c", "all"})
	if strings.Join(got, " ") != "-repeat 3 all" {
		t.Fatalf("%q", got)
	}
}

func TestParseLists(t *testing.T) {
	got, err := parseInts(" 1, 100,5000,")
	if err != nil || len(got) != 3 || got[2] != 5000 {
		t.Fatal(got, err)
	}
	rates, err := parseFloats("50, 100,12.5")
	if err != nil || len(rates) != 3 || rates[2] != 12.5 {
		t.Fatal(rates, err)
	}
	for _, bad := range []string{"", "x", "1,-2"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("ints %q accepted", bad)
		}
	}
	for _, bad := range []string{"", "0", "x", "-5"} {
		if _, err := parseFloats(bad); err == nil {
			t.Errorf("rates %q accepted", bad)
		}
	}
}

func TestParseTargets(t *testing.T) {
	ta := targetArgs{ours: "-port {addr}", baseline: "-addr {addr}", original: "-addr {addr} -quiet"}
	ts, err := parseTargets("ours, ours-hijack,baseline,baseline-flush,original,centrifugo,ours", ta)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ours":           "-port {addr}",
		"ours-hijack":    "-port {addr} -streamer hijack",
		"baseline":       "-addr {addr}",
		"baseline-flush": "-addr {addr} -flush frame",
		"original":       "-addr {addr} -quiet",
		"centrifugo":     "-c {config} -a 127.0.0.1 -p {port}",
	}
	if len(ts) != len(want) {
		t.Fatalf("%d targets: %+v", len(ts), ts)
	}
	for _, tg := range ts {
		if tg.args != want[tg.name] {
			t.Errorf("%s: args %q, want %q", tg.name, tg.args, want[tg.name])
		}
	}
	if ts[4].load[0] != "-ready-on-send" || ts[1].hint == "" {
		t.Errorf("original load %v, ours-hijack hint %q", ts[4].load, ts[1].hint)
	}
	// ours-scraped is ours, its /metrics read every second, in the sweep
	// alone.
	sc, err := parseTargets("ours-scraped", ta)
	if err != nil || sc[0].args != "-port {addr}" || strings.Join(sc[0].load, " ") != "-scrape-interval 1s" ||
		!sc[0].runsIn(report.ScenarioSweep) || sc[0].runsIn(report.ScenarioRates) || !ts[0].runsIn(report.ScenarioRates) {
		t.Errorf("ours-scraped: %+v, %v", sc, err)
	}
	// The NATS targets are ours on a nats-server of their own, one instance
	// or three, in ingest and latency; the latency scenario is the
	// service's alone.
	nt, err := parseTargets("ours-nats,ours-nats3,baseline", ta)
	if err != nil || nt[0].instances != 1 || nt[1].instances != 3 || nt[0].args != "-port {addr}" ||
		!nt[0].runsIn(report.ScenarioIngest) || !nt[1].runsIn(report.ScenarioLatency) || nt[0].runsIn(report.ScenarioSweep) ||
		nt[2].runsIn(report.ScenarioLatency) || !ts[0].runsIn(report.ScenarioLatency) || nt[0].hint == "" {
		t.Errorf("NATS targets: %+v, %v", nt, err)
	}
	for _, bad := range []string{"", "nats", "ours,other"} {
		if _, err := parseTargets(bad, ta); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"-targets", "other", "ingest"}, {"-sweep-listeners", "x", "sweep"},
		{"-repeat", "0", "sweep"}, {"-rates", "-1", "rates"}, {"sweep", "all"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "all = tool-ceiling ingest sweep size rates idle") {
		t.Errorf("-help: %d %s", code, stderr.String())
	}
}

func TestModuleVersion(t *testing.T) {
	out := []byte("bin/tools/centrifugo: go1.26.8\n\tpath\tgithub.com/centrifugal/centrifugo/v6\n" +
		"\tmod\tgithub.com/centrifugal/centrifugo/v6\tv6.9.1\th1:x=\n\tdep\tgithub.com/x/y\tv1.0.0\n")
	if got := moduleVersion(out, centrifugoModule); got != "v6.9.1" {
		t.Fatalf("version %q", got)
	}
	if got := moduleVersion([]byte("not a go binary"), centrifugoModule); got != "" {
		t.Fatalf("version %q", got)
	}
}

func TestSummary(t *testing.T) {
	dir := t.TempDir()
	env := load.Env{CPUModel: "cpu", Cores: 2, GoVersion: "go"}
	reports := []*load.Report{
		{Schema: load.Schema, Mode: load.ModeLoad, Label: "ours", Env: env,
			Params: load.Params{Listeners: 1000, Producers: 8, Size: 128, SlowFraction: 0.1},
			Load: &load.RunResult{PostsPerSec: 1234, DeliveriesPerSec: 2_500_000, DeliveryRatio: 1,
				E2E: load.Latency{P50Us: 300, P99Us: 2000}, Slow: &load.SlowResult{Listeners: 100, Disconnected: 100}},
			Server: &load.ServerStats{CPUCores: 1.2, PeakRSSKiB: 40960}},
		{Schema: load.Schema, Mode: load.ModeIdle, Label: "baseline", Env: env, Params: load.Params{Listeners: 10000},
			Idle: &load.IdleResult{Listeners: 10000, KiBPerListener: 12.5}},
		{Schema: load.Schema, Mode: load.ModeSelfTest, Env: env,
			SelfTest: &load.SelfTestResult{FrameBytes: 158, Listeners: 1000, DeliveriesPerSec: 5e6, Note: "note"}},
	}
	for i, r := range reports {
		if err := r.WriteJSONFile(filepath.Join(dir, string(rune('a'+i))+".json")); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeSummary(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{"| ours | 1000 | 10% | 8 | max | 128 B | 1234 |", "2.5M", "2ms", "40.0 MiB",
		"100 slow listeners", "100 were disconnected", "| baseline | 10000 |", "12.50", "| 158 B | 1000 | 5M |", "note"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

// buildBinaries builds the named commands (directories beside this one)
// into a temporary directory and returns it.
func buildBinaries(t *testing.T, names ...string) string {
	t.Helper()
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, name := range names {
		pkg := "../" + name
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, name), pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return bin
}

func gone(pid int) bool { return syscall.Kill(pid, 0) != nil }

// TestBaselineScenarios runs three scenarios for real, twice each, against
// both baselines: preflight, start, health check, sseload, results, stop,
// run.json, and a report computed from them.
func TestBaselineScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts servers")
	}
	bin := buildBinaries(t, "baseline", "sseload")
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-no-build", "-bin", bin, "-out", out, "-targets", "baseline,baseline-flush", "-quick",
		"-repeat", "2", "-idle-listeners", "50", "-sweep-listeners", "50", "-command", "go test", "ingest", "idle", "sweep"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	for _, f := range []string{"ingest/baseline-ingest-128B-r1.json", "ingest/baseline-flush-ingest-128B-r2.json",
		"idle/baseline-idle-L50-r2.json", "sweep/baseline-flush-L00050-128B-r1.json", "ingest/summary.md", "run.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	r, err := load.ReadReport(filepath.Join(out, "ingest", "baseline-ingest-128B-r1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Label != "baseline" || r.Load.Sent == 0 || r.Server == nil || r.Server.PID == 0 {
		t.Fatalf("ingest result %+v", r)
	}
	if !gone(r.Server.PID) {
		t.Fatalf("server pid %d still running", r.Server.PID)
	}
	flush, err := load.ReadReport(filepath.Join(out, "sweep", "baseline-flush-L00050-128B-r1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Implementation string }
	if err := json.Unmarshal(flush.Health, &health); err != nil || health.Implementation != "baseline-flush" || flush.Load.DeliveryRatio != 1 {
		t.Fatalf("baseline-flush: %s %+v (%v)", flush.Health, flush.Load, err)
	}
	res, err := report.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := res.Find(report.Case{Scenario: report.ScenarioSweep, Target: "baseline", Listeners: 50, Size: 128})
	if !ok || s.Runs != 2 || s.DeliveriesPerSec <= 0 || res.Run == nil || res.Run.Command != "go test" || res.Run.Repeat != 2 {
		t.Fatalf("report: %+v %+v", s, res.Run)
	}
}

// TestOriginalScenarios runs two scenarios for real against the replica of
// the original service, which sends nothing before the first event: the
// listeners must still count as connected, and every event reach them.
func TestOriginalScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts servers")
	}
	bin := buildBinaries(t, "original", "sseload")
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-no-build", "-bin", bin, "-out", out, "-targets", "original", "-quick",
		"-sweep-listeners", "5", "-idle-listeners", "20", "sweep", "idle"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	r, err := load.ReadReport(filepath.Join(out, "sweep", "original-L00005-128B-r1.json"))
	if err != nil {
		t.Fatal(err)
	}
	l := r.Load
	if r.Label != "original" || !r.Params.ReadyOnSend || l.Sent == 0 || l.HealthyListeners != 5 || l.Lost != 0 || l.DeliveryRatio != 1 {
		t.Fatalf("sweep result %+v %+v", r.Params, l)
	}
	var health struct{ Message string }
	if err := json.Unmarshal(r.Health, &health); err != nil || health.Message != "PONG" {
		t.Fatalf("health %s (%v)", r.Health, err)
	}
	idle, err := load.ReadReport(filepath.Join(out, "idle", "original-idle-L20-r1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if idle.Idle == nil || idle.Idle.Listeners != 20 || idle.Idle.Disconnected != 0 {
		t.Fatalf("idle result %+v", idle.Idle)
	}
	if !gone(r.Server.PID) {
		t.Fatalf("server pid %d still running", r.Server.PID)
	}
}

// TestTargetThatCannotStartFailsClearly stands a shell script in for the
// service: it serves (through the baseline) unless given -streamer, which
// it rejects the way Go's flag package does. The run must stop before
// measuring anything, name ours-hijack and say how to leave it out.
func TestTargetThatCannotStartFailsClearly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts servers")
	}
	bin := buildBinaries(t, "baseline", "sseload")
	script := "#!/bin/sh\n" +
		"for a in \"$@\"; do if [ \"$a\" = -streamer ]; then echo 'flag provided but not defined: -streamer' >&2; exit 2; fi; done\n" +
		"exec " + filepath.Join(bin, "baseline") + " -addr \"$2\" -quiet\n"
	if err := os.WriteFile(filepath.Join(bin, "event_dispatcher"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-no-build", "-bin", bin, "-out", out, "-targets", "ours,ours-hijack,baseline", "-quick", "ingest"}, &stdout, &stderr)
	msg := stderr.String()
	if code != exitNothingMeasured {
		t.Fatalf("exit %d:\n%s", code, msg)
	}
	for _, want := range []string{"target ours-hijack:", "flag provided but not defined: -streamer",
		"-streamer hijack", "BENCH_TARGETS=ours,baseline", "nothing was measured"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*", "*.json")); len(files) != 0 {
		t.Fatalf("results written: %v", files)
	}
}

// TestCentrifugoTarget runs the sweep against the real Centrifugo when it
// is installed where make bench-all installs it (bin/tools at the
// repository's root); CI machines do not have it.
func TestCentrifugoTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts servers")
	}
	tools, err := filepath.Abs("../../../bin/tools")
	if err != nil {
		t.Fatal(err)
	}
	if v := installedVersion(context.Background(), filepath.Join(tools, "centrifugo")); v != centrifugoVersion {
		t.Skipf("Centrifugo %s is not installed in %s (found %q): make bench-all installs it", centrifugoVersion, tools, v)
	}
	bin := buildBinaries(t, "sseload")
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-no-build", "-bin", bin, "-tools", tools, "-out", out, "-targets", "centrifugo", "-quick",
		"-sweep-listeners", "20", "-idle-listeners", "50", "sweep", "idle"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	r, err := load.ReadReport(filepath.Join(out, "sweep", "centrifugo-L00020-128B-r1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if l := r.Load; r.Params.Protocol != load.ProtocolCentrifugo || l.Sent == 0 || l.DeliveryRatio != 1 || l.Order.Checked == 0 ||
		l.Order.OutOfOrder != 0 || l.Order.Unparsed != 0 || l.E2E.Count == 0 {
		t.Fatalf("centrifugo sweep: %+v", l)
	}
	cfg, err := os.ReadFile(filepath.Join(out, centrifugoConfigFile))
	if err != nil || !bytes.Contains(cfg, []byte(`"address": "127.0.0.1"`)) {
		t.Fatalf("config %s (%v)", cfg, err)
	}
	if !strings.Contains(stderr.String(), "-api-key …") {
		t.Errorf("API key not redacted in the log:\n%s", stderr.String())
	}
	idle, err := load.ReadReport(filepath.Join(out, "idle", "centrifugo-idle-L50-r1.json"))
	if err != nil || idle.Idle == nil || idle.Idle.Listeners != 50 || idle.Idle.Disconnected != 0 {
		t.Fatalf("idle %+v (%v)", idle, err)
	}
}
