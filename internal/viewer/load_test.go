//go:build !race

package viewer_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/browsertest"
)

// TestViewerUnderLoad measures the viewer's main thread while the service
// receives VIEWER_LOAD events per second (0: as fast as 8 loopback posters
// go) for VIEWER_LOAD_SECONDS (default 6):
//
//	VIEWER_LOAD=5000 go test -run TestViewerUnderLoad -v ./internal/viewer/
//
// It is a measurement, not a check, and runs only when VIEWER_LOAD is set:
// it logs the main thread's busy time (Chromium's Performance metrics),
// frame intervals, long tasks and how long a click on Pause takes to show,
// and fails only if the page loses its stream. Without the race detector:
// it would slow the posters, not the page.
func TestViewerUnderLoad(t *testing.T) {
	rateEnv, ok := os.LookupEnv("VIEWER_LOAD")
	if !ok {
		t.Skip("set VIEWER_LOAD (events per second, 0: unbounded) to measure")
	}
	rate, err := strconv.Atoi(rateEnv)
	if err != nil || rate < 0 {
		t.Fatalf("VIEWER_LOAD=%q: want a number of events per second", rateEnv)
	}
	seconds := 6
	if s := os.Getenv("VIEWER_LOAD_SECONDS"); s != "" {
		if seconds, err = strconv.Atoi(s); err != nil || seconds <= 0 || seconds > 120 {
			t.Fatalf("VIEWER_LOAD_SECONDS=%q: want 1 to 120", s)
		}
	}

	svc := startService(t, "127.0.0.1:0", nil)
	ctx := browsertest.New(t)
	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state open", stateIs("open"))
	// Frame intervals and long tasks, recorded by the page itself.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		window.__frames = []; let last = performance.now();
		const loop = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(loop); };
		requestAnimationFrame(loop);
		window.__long = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
			.observe({entryTypes: ['longtask']});
		return true; })()`)); err != nil {
		t.Fatal(err)
	}
	enable := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, performance.Enable, performance.EnableParams{})
		return chromedp.Void{}, err
	}
	do(t, ctx, enable)
	before := mainThread(t, ctx)

	sent, failed := postLoad(svc.url(), rate, time.Duration(seconds)*time.Second)
	after := mainThread(t, ctx)
	start := time.Now()
	do(t, ctx, chromedp.Click(chromedp.ID("pause")))
	until(t, ctx, waitFor, "pause pressed", `document.querySelector('#pause').getAttribute('aria-pressed') === 'true'`)
	click := time.Since(start)
	until(t, ctx, waitFor, "still open", stateIs("open"))

	page, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](`(() => {
		const f = window.__frames.slice(5).sort((a, b) => a - b), q = (p) => f[Math.min(f.length - 1, Math.floor(f.length * p))];
		return {frames: f.length, frameP50: q(0.5), frameP99: q(0.99), frameMax: f[f.length - 1],
			longTasks: window.__long.length, longMax: Math.max(0, ...window.__long),
			nodes: document.querySelectorAll('#events *').length,
			received: Number(document.querySelector('#received').textContent.replace(/\D/g, ''))};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	d := float64(seconds)
	t.Logf("posted %d events in %ds (%.0f/s, %d failed); the page received %.0f", sent, seconds, float64(sent)/d, failed, page["received"])
	t.Logf("main thread busy %.0f%% (script %.0f%%, style %.0f%%, layout %.0f%%)",
		100*(after["TaskDuration"]-before["TaskDuration"])/d, 100*(after["ScriptDuration"]-before["ScriptDuration"])/d,
		100*(after["RecalcStyleDuration"]-before["RecalcStyleDuration"])/d, 100*(after["LayoutDuration"]-before["LayoutDuration"])/d)
	t.Logf("frames: %.0f, interval p50 %.1f ms, p99 %.1f ms, max %.1f ms; long tasks %.0f (longest %.0f ms); %.0f nodes in the list",
		page["frames"], page["frameP50"], page["frameP99"], page["frameMax"], page["longTasks"], page["longMax"], page["nodes"])
	t.Logf("click on Pause shown after %v (through the DevTools protocol)", click.Round(time.Millisecond))
}

// mainThread returns Chromium's cumulative Performance metrics of the tab
// (TaskDuration, ScriptDuration, ... in seconds).
func mainThread(tb testing.TB, ctx context.Context) map[string]float64 { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	m, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (map[string]float64, error) {
		r, err := cdp.Call(ctx, tg, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		out := make(map[string]float64, len(r.Metrics))
		for _, x := range r.Metrics {
			out[x.Name] = x.Value
		}
		return out, nil
	})
	if err != nil {
		tb.Fatalf("performance metrics: %v", err)
	}
	return m
}

// postLoad POSTs a player heartbeat to base from 8 goroutines for d, at
// rate events per second in all (0: as fast as they go), and returns how
// many were accepted and how many failed.
func postLoad(base string, rate int, d time.Duration) (sent, failed int64) {
	const posters = 8
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	body := heartbeat(sessionC, 1764172800123, 30_000, 0)
	for range posters {
		wg.Go(func() {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: waitFor}
			var tick *time.Ticker
			if rate > 0 {
				tick = time.NewTicker(time.Second * posters / time.Duration(rate))
				defer tick.Stop()
			}
			for time.Now().Before(deadline) {
				if tick != nil {
					<-tick.C
				}
				resp, err := c.Post(base+"/api/events", "application/json", strings.NewReader(body))
				if err != nil {
					bad.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return ok.Load(), bad.Load()
}
