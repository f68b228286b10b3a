package load

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatters(t *testing.T) {
	counts := map[float64]string{0: "0", 12: "12", 12.34: "12.3", 9999: "9999", 12345: "12.3k", 1_500_000: "1.5M", 2_000_000_000: "2G"}
	for v, want := range counts {
		if got := FormatCount(v); got != want {
			t.Errorf("FormatCount(%v) = %q, want %q", v, got, want)
		}
	}
	micros := map[float64]string{0.5: "0.5µs", 250: "250µs", 1500: "1.5ms", 2_500_000: "2.5s"}
	for v, want := range micros {
		if got := FormatMicros(v); got != want {
			t.Errorf("FormatMicros(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	h := newHist()
	for i := int64(1); i <= 1000; i++ {
		recordClamped(h, i*1000) // 1µs .. 1ms
	}
	l := summarize(h, 1_000_000)
	near := func(got, want float64) bool { return got >= want*0.99 && got <= want*1.01 }
	if l.Count != 1000 || !near(l.P50Us, 500) || !near(l.P90Us, 900) || !near(l.P99Us, 990) || !near(l.P999Us, 999) || l.MaxUs != 1000 {
		t.Fatalf("%+v", l)
	}
	if got := summarize(newHist(), 0); got.Count != 0 || got.P99Us != 0 {
		t.Fatalf("empty: %+v", got)
	}
	sh := newShardedHist(3)
	for i := 0; i < 300; i++ {
		sh.record(i, int64(i+1)*1000)
	}
	m, hmax := sh.merged()
	if m.TotalCount() != 300 || hmax != 300_000 {
		t.Fatalf("merged %d max %d", m.TotalCount(), hmax)
	}
	sh.reset()
	if m, _ := sh.merged(); m.TotalCount() != 0 {
		t.Fatal("reset")
	}
}

func TestCountStats(t *testing.T) {
	if a, b, c := countStats([]int64{5, 1, 9, 3}); a != 1 || b != 4 || c != 9 {
		t.Fatal(a, b, c)
	}
	if a, b, c := countStats([]int64{5, 1, 9}); a != 1 || b != 5 || c != 9 {
		t.Fatal(a, b, c)
	}
	if a, b, c := countStats(nil); a != 0 || b != 0 || c != 0 {
		t.Fatal(a, b, c)
	}
}

func TestReportTableAndJSONRoundTrip(t *testing.T) {
	rep := &Report{
		Schema: Schema, Mode: ModeLoad, Label: "baseline",
		Params: Params{URL: "http://127.0.0.1:1", Listeners: 10, Producers: 2, DurationSec: 1, Size: 128, Sample: 1, Client: ClientRaw},
		Env:    Env{CPUModel: "cpu", Cores: 2, GoVersion: "go", GitCommit: "0123456789abcdef"},
		Load: &RunResult{Sent: 100, PostsPerSec: 100, Delivered: 1000, Expected: 1000, DeliveryRatio: 1, DeliveriesPerSec: 1000,
			HealthyListeners: 10, E2E: Latency{Count: 10, P50Us: 120, P99Us: 2500},
			Slow: &SlowResult{Listeners: 1}},
		Server:   &ServerStats{PID: 42, PeakRSSKiB: 20480},
		Warnings: []string{"careful"},
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"sseload load [baseline]", "1000/s", "p99 2.5ms", "0123456789ab", "slow listeners", "pid 42", "WARNING", "careful"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	path := filepath.Join(t.TempDir(), "sub", "r.json")
	if err := rep.WriteJSONFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Label != "baseline" || back.Load.DeliveriesPerSec != 1000 || back.Load.E2E.P99Us != 2500 || back.Server.PID != 42 {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestProcParsing(t *testing.T) {
	rss, hwm := parseStatus([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	if rss != 1024 || hwm != 2048 {
		t.Fatal(rss, hwm)
	}
	stat := "123 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0"
	cpu, err := parseStatCPU([]byte(stat))
	if err != nil || cpu != 3.0 {
		t.Fatal(cpu, err)
	}
	if _, err := parseStatCPU([]byte("nonsense")); err == nil {
		t.Fatal("want error")
	}
	self, err := ReadProc(0)
	if err != nil || self.RSSKiB <= 0 {
		t.Fatalf("ReadProc(self): %+v %v", self, err)
	}
	before, err := CountFDs(os.Getpid())
	if err != nil || before < 3 {
		t.Fatalf("CountFDs: %d %v", before, err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := CountFDs(0)
	f.Close()
	if after != before+1 {
		t.Fatalf("descriptors %d, then %d after opening one", before, after)
	}
	if got := parseMemTotal([]byte("MemFree: 1 kB\nMemTotal:       24576000 kB\n")); got != 24576000 {
		t.Fatalf("MemTotal %d", got)
	}
}

func TestIsSlowSpread(t *testing.T) {
	for _, tc := range []struct {
		n    int
		f    float64
		want int
	}{{10, 0.1, 1}, {100, 0.1, 10}, {7, 0.5, 4}, {5, 0, 0}, {5, 1, 5}} {
		got := 0
		for i := 0; i < tc.n; i++ {
			if isSlow(i, tc.n, tc.f) {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("n=%d f=%v: %d slow, want %d", tc.n, tc.f, got, tc.want)
		}
	}
}

func TestHostBusyParsing(t *testing.T) {
	busy, total, err := parseHostBusy([]byte("cpu  100 5 50 800 40 1 2 3 7 0\ncpu0 1 2 3\n"))
	if err != nil || total != 10.01 || busy != 1.61 {
		t.Fatal(busy, total, err)
	}
	if _, _, err := parseHostBusy([]byte("nope")); err == nil {
		t.Fatal("want error")
	}
	if v := loadAvg(); v < 0 {
		t.Skip("no /proc/loadavg")
	}
}
