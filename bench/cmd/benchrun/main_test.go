package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

func TestExpandArgs(t *testing.T) {
	got := expandArgs("-port {addr} -max-listeners {max}  -x {port}", "127.0.0.1:5", 5, 100)
	want := []string{"-port", "127.0.0.1:5", "-max-listeners", "100", "-x", "5"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%q", got)
	}
}

func TestParseInts(t *testing.T) {
	got, err := parseInts(" 1, 100,5000,")
	if err != nil || len(got) != 3 || got[2] != 5000 {
		t.Fatal(got, err)
	}
	for _, bad := range []string{"", "x", "1,-2"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"-targets", "other", "ingest"}, {"-sizes", "x", "ingest"}} {
		if code := run(args); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
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

// TestBaselineScenarios runs two scenarios for real against the baseline
// binary: builds, start, health check, sseload, results, stop.
func TestBaselineScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts servers")
	}
	bin := buildBinaries(t, "baseline", "sseload")
	out := t.TempDir()
	code := run([]string{"-no-build", "-bin", bin, "-out", out, "-targets", "baseline", "-quick",
		"-idle-listeners", "50", "ingest", "idle"})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"ingest/baseline-ingest-128B.json", "idle/baseline-idle-L50.json", "ingest/summary.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	r, err := load.ReadReport(filepath.Join(out, "ingest", "baseline-ingest-128B.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Label != "baseline" || r.Load.Sent == 0 || r.Server == nil || r.Server.PID == 0 {
		t.Fatalf("ingest result %+v", r)
	}
	// The server was stopped: its PID is gone.
	if err := syscallKill0(r.Server.PID); err == nil {
		t.Fatalf("server pid %d still running", r.Server.PID)
	}
	children.Lock()
	n := len(children.procs)
	children.Unlock()
	if n != 0 {
		t.Fatalf("%d children still tracked", n)
	}
}

func TestRunLimit(t *testing.T) {
	o := &options{warmup: 2 * time.Second, duration: 10 * time.Second}
	// Defaults: connect 60s, drain 5s, POST timeout 10s.
	if got, want := runLimit(o, []string{"-listeners", "10"}), 60*time.Second+12*time.Second+30*time.Second+time.Minute; got != want {
		t.Errorf("default flags: %s, want %s", got, want)
	}
	if got, want := runLimit(o, []string{"-connect-timeout", "120s", "-drain", "1s"}), 120*time.Second+12*time.Second+22*time.Second+time.Minute; got != want {
		t.Errorf("explicit flags: %s, want %s", got, want)
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
	code := run([]string{"-no-build", "-bin", bin, "-out", out, "-targets", "original", "-quick",
		"-fanout-listeners", "5", "-idle-listeners", "20", "fanout", "idle"})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	r, err := load.ReadReport(filepath.Join(out, "fanout", "original-L00005-128B.json"))
	if err != nil {
		t.Fatal(err)
	}
	l := r.Load
	if r.Label != "original" || !r.Params.ReadyOnSend || l.Sent == 0 || l.HealthyListeners != 5 || l.Lost != 0 || l.DeliveryRatio != 1 {
		t.Fatalf("fanout result %+v %+v", r.Params, l)
	}
	var health struct{ Message string }
	if err := json.Unmarshal(r.Health, &health); err != nil || health.Message != "PONG" {
		t.Fatalf("health %s (%v)", r.Health, err)
	}
	idle, err := load.ReadReport(filepath.Join(out, "idle", "original-idle-L20.json"))
	if err != nil {
		t.Fatal(err)
	}
	if idle.Idle == nil || idle.Idle.Listeners != 20 || idle.Idle.Disconnected != 0 {
		t.Fatalf("idle result %+v", idle.Idle)
	}
	if err := syscallKill0(r.Server.PID); err == nil {
		t.Fatalf("server pid %d still running", r.Server.PID)
	}
}
