package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// writeRun writes one sweep result of target at listeners into results.
func writeRun(t *testing.T, results, target string, listeners int, deliveries float64) {
	t.Helper()
	r := &load.Report{Schema: load.Schema, Mode: load.ModeLoad, Label: target,
		Env:    load.Env{CPUModel: "cpu", Cores: 2, GoVersion: "go1.26.8"},
		Params: load.Params{Listeners: listeners, Size: 128},
		Load:   &load.RunResult{DeliveriesPerSec: deliveries, PostsPerSec: deliveries / float64(listeners), DeliveryRatio: 1}}
	name := filepath.Join(results, report.ScenarioSweep, target+"-"+report.Num(listeners)+".json")
	if err := r.WriteJSONFile(name); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateRewritesTheREADMEs(t *testing.T) {
	root := t.TempDir()
	results := filepath.Join(root, "bench", "results")
	writeRun(t, results, "ours", 1000, 2e6)
	writeRun(t, results, "ours", 10000, 1.8e6)
	writeRun(t, results, "baseline", 1000, 3e5)
	begin, end := report.Markers(summarySection)
	readme := filepath.Join(root, "README.md")
	if err := os.WriteFile(readme, []byte("# Service\n\n## Benchmarks\n\n"+begin+"\nold table\n"+end+"\n\n## Layout\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rb, re := report.Markers(reportSection)
	benchReadme := filepath.Join(root, "bench", "README.md")
	if err := os.WriteFile(benchReadme, []byte("# bench\n\n## Results\n\n"+rb+"\n"+re+"\n\n## Notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-results", results, "-readme", readme, "-bench-readme", benchReadme}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "met          full speed, ours") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	top, _ := os.ReadFile(readme)
	for _, want := range []string{"## Benchmarks\n\n" + begin + "\nGenerated from one run of `benchrun`",
		"| 10,000 listeners, full speed: deliveries/s (POSTs/s) | 1.8M (180) | - |",
		"[bench/README.md](bench/README.md)", end + "\n\n## Layout\n"} {
		if !strings.Contains(string(top), want) {
			t.Errorf("README.md lacks %q:\n%s", want, top)
		}
	}
	if strings.Contains(string(top), "old table") {
		t.Error("old table kept")
	}
	bench, _ := os.ReadFile(benchReadme)
	for _, want := range []string{"![deliveries/s and p99 against listeners](results/sweep.png)", "| 1,000 | 2M | 300k |", re + "\n\n## Notes\n"} {
		if !strings.Contains(string(bench), want) {
			t.Errorf("bench/README.md lacks %q:\n%s", want, bench)
		}
	}
	for _, f := range []string{report.MarkdownFile, report.JSONFile, report.ChartName + ".png"} {
		if _, err := os.Stat(filepath.Join(results, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-results", t.TempDir()}, &stdout, &stderr); code != 1 {
		t.Fatalf("empty results: %d", code)
	}
	if code := run([]string{"extra"}, &stdout, &stderr); code != 2 {
		t.Fatalf("argument: %d", code)
	}
	results := t.TempDir()
	writeRun(t, results, "ours", 1000, 1e6)
	noMarkers := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(noMarkers, []byte("# x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run([]string{"-results", results, "-readme", noMarkers}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "<!-- bench:summary:begin -->") {
		t.Fatalf("no markers: %d %s", code, stderr.String())
	}
}
