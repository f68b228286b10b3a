package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

func writeReport(t *testing.T, dir, label string, size, listeners int, deliv, p99us float64, at time.Time) {
	t.Helper()
	r := &load.Report{
		Schema: load.Schema, Mode: load.ModeLoad, Label: label, StartedAt: at,
		Params: load.Params{Listeners: listeners, Producers: 8, Size: size},
		Env:    load.Env{CPUModel: "test cpu", Cores: 2, GoVersion: "go1.x"},
		Load:   &load.RunResult{DeliveriesPerSec: deliv, DeliveryRatio: 1, E2E: load.Latency{Count: 10, P99Us: p99us}},
	}
	name := filepath.Join(dir, label+"-"+time.Duration(listeners).String()+"-"+sizeName(size)+".json")
	if err := r.WriteJSONFile(name); err != nil {
		t.Fatal(err)
	}
}

func TestBenchplotEndToEnd(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, l := range []int{1, 100, 1000, 5000} {
		for _, size := range []int{128, 1024} {
			writeReport(t, dir, "ours", size, l, float64(l)*1e4, 500+float64(l), now)
			writeReport(t, dir, "baseline", size, l, float64(l)*3e3, 900+float64(l)*4, now)
		}
	}
	// Repeats of a point are combined by their median: with the run above,
	// 1M deliveries/s at 100 listeners, and these two, 1 and 5M, it is 1M.
	writeReport(t, filepath.Join(dir, "r2"), "ours", 128, 100, 1, 1, now.Add(-time.Hour))
	writeReport(t, filepath.Join(dir, "r3"), "ours", 128, 100, 5e6, 1, now.Add(time.Hour))
	// Non-load results and foreign JSON files are skipped.
	idle := &load.Report{Schema: load.Schema, Mode: load.ModeIdle, Params: load.Params{Listeners: 10}, Idle: &load.IdleResult{}}
	if err := idle.WriteJSONFile(filepath.Join(dir, "idle.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.json"), []byte(`{"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "charts", "fanout")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-o", out, dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	table := stdout.String()
	for _, want := range []string{"ours 128B", "baseline 1KiB", "5000", "1M"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Count(table, "ours 128B") != 4 || !strings.Contains(table, "ours 128B        100            1M") {
		t.Errorf("repeats not combined by their median:\n%s", table)
	}
	svg, err := os.ReadFile(out + ".svg")
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("baseline 1KiB")) {
		t.Fatalf("svg: %v (%d bytes)", err, len(svg))
	}
	png, err := os.ReadFile(out + ".png")
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("png: %v", err)
	}
}

func TestBenchplotErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	if code := run([]string{t.TempDir()}, &stdout, &stderr); code != 1 {
		t.Fatalf("empty dir: %d", code)
	}
	if code := run([]string{"/nonexistent/x"}, &stdout, &stderr); code != 1 {
		t.Fatalf("missing path: %d", code)
	}
}
