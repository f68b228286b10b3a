package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRenderWritesSVGAndPNG(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "charts", "sweep")
	series := []Series{
		{Name: "ours", Points: []Point{{100, 1e6, 5}, {1000, 2e6, 20}, {10000, 1.5e6, 0}}},
		{Name: "centrifugo", Points: []Point{{100, 3e5, 8}, {1000, 0, 40}}},
		{Name: "nothing measured"},
	}
	if err := Render(prefix, "SSE fan-out", "test machine", series); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(prefix + ".svg")
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("centrifugo")) {
		t.Fatalf("svg: %v (%d bytes)", err, len(svg))
	}
	png, err := os.ReadFile(prefix + ".png")
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("png: %v", err)
	}
}

func TestRenderWithAnEmptyPanel(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "sweep")
	// Deliveries but no latency measured: the latency panel is empty.
	if err := Render(prefix, "t", "", []Series{{Name: "ours", Points: []Point{{1000, 1e6, 0}}}}); err != nil {
		t.Fatal(err)
	}
	if err := Render(prefix, "t", "", nil); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(prefix + ".svg")
	if err != nil || !bytes.Contains(svg, []byte("no data")) {
		t.Fatalf("svg: %v", err)
	}
}

func TestLogTicks(t *testing.T) {
	var labels []string
	for _, tk := range (LogTicks{}).Ticks(0.8, 120) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, ","); got != "1,2,5,10,20,50,100" {
		t.Fatalf("labels %s", got)
	}
	for v, want := range map[float64]string{2_000_000: "2M", 5000: "5k", 20: "20", 2.5e6: "2.5M"} {
		if got := TickLabel(v); got != want {
			t.Errorf("TickLabel(%v) = %s, want %s", v, got, want)
		}
	}
	if (LogTicks{}).Ticks(0, 1) != nil {
		t.Fatal("non-positive range")
	}
}
