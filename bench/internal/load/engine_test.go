package load

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/baseline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's idle-connection cleaner sleeps until MaxIdleConnDuration
		// even after CloseIdleConnections.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	)
}

// startBaseline runs the baseline server in-process on 127.0.0.1:0.
func startBaseline(t *testing.T, opts baseline.Options) (*baseline.Server, string) {
	t.Helper()
	srv := baseline.New(opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return srv, ts.URL
}

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Listeners = 5
	cfg.Producers = 2
	cfg.Events = 300
	cfg.Duration = 30 * time.Second // bounded by Events
	cfg.Warmup = 0
	cfg.Drain = 10 * time.Second
	cfg.DrainQuiet = 5 * time.Second
	cfg.ConnectTimeout = 10 * time.Second
	cfg.Sample = 1
	cfg.Label = "test"
	cfg.ServerPID = os.Getpid() // the baseline runs in this process
	return cfg
}

// runWarnings returns the report's warnings about the run itself, leaving
// out the one about other processes using the CPU, which says only that the
// machine is busy.
func runWarnings(rep *Report) []string {
	var w []string
	for _, x := range rep.Warnings {
		if !strings.HasPrefix(x, "other processes used") {
			w = append(w, x)
		}
	}
	return w
}

func checkExactlyOnce(t *testing.T, rep *Report, healthy int, events int64) {
	t.Helper()
	l := rep.Load
	if l == nil {
		t.Fatal("no load result")
	}
	if l.Sent != events || l.PostErrors != 0 {
		t.Fatalf("sent %d (errors %d), want %d", l.Sent, l.PostErrors, events)
	}
	if l.HealthyListeners != healthy || l.Expected != events*int64(healthy) {
		t.Fatalf("healthy %d expected %d", l.HealthyListeners, l.Expected)
	}
	if l.Delivered != l.Expected || l.Lost != 0 || l.Extra != 0 || l.DeliveryRatio != 1 || !l.Complete {
		t.Fatalf("delivered %d of %d (lost %d, extra %d, ratio %v, complete %v)", l.Delivered, l.Expected, l.Lost, l.Extra, l.DeliveryRatio, l.Complete)
	}
	if l.PerListenerMin != events || l.PerListenerMax != events || l.PerListenerMed != events {
		t.Fatalf("per listener %d/%d/%d, want %d each", l.PerListenerMin, l.PerListenerMed, l.PerListenerMax, events)
	}
	o := l.Order
	if o.Checked != l.Delivered || o.OutOfOrder != 0 || o.Duplicates != 0 || o.SeqGaps != 0 || o.Foreign != 0 || o.Unparsed != 0 {
		t.Fatalf("order check %+v (delivered %d)", o, l.Delivered)
	}
	if l.E2E.Count != l.Delivered || l.E2E.P50Us <= 0 || l.E2E.MaxUs < l.E2E.P99Us {
		t.Fatalf("e2e latency %+v", l.E2E)
	}
	if l.PostLatency.Count != events {
		t.Fatalf("post latency count %d", l.PostLatency.Count)
	}
	if l.GapEvents != 0 || l.Disconnected != 0 {
		t.Fatalf("gaps %d disconnected %d", l.GapEvents, l.Disconnected)
	}
	if l.PostsPerSec <= 0 || l.DeliveriesPerSec <= 0 {
		t.Fatalf("rates %v %v", l.PostsPerSec, l.DeliveriesPerSec)
	}
}

func TestRunAgainstBaselineExactlyOnce(t *testing.T) {
	for _, client := range []string{ClientRaw, ClientNetHTTP} {
		t.Run(client, func(t *testing.T) {
			// Buffer > events: the baseline can never drop, so every event
			// must reach every listener exactly once, in order. Heartbeats
			// interleave comment blocks that must not be counted.
			srv, url := startBaseline(t, baseline.Options{Buffer: 1024, Heartbeat: 5 * time.Millisecond})
			cfg := testConfig(url)
			cfg.Client = client
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, rep, 5, 300)
			if rep.Load.Comments == 0 {
				t.Error("no heartbeat comment blocks seen")
			}
			if published, dropped := srv.Stats(); published != 300 || dropped != 0 {
				t.Fatalf("baseline published %d dropped %d", published, dropped)
			}
			if rep.Server == nil || rep.Server.PeakRSSKiB <= 0 || rep.Label != "test" || rep.Mode != ModeLoad {
				t.Fatalf("report header/server: %+v %+v", rep.Server, rep)
			}
		})
	}
}

func TestRunWithWarmupAndRate(t *testing.T) {
	_, url := startBaseline(t, baseline.Options{Buffer: 4096})
	cfg := testConfig(url)
	cfg.Events = 0
	cfg.Rate = 400
	cfg.Duration = 500 * time.Millisecond
	cfg.Warmup = 200 * time.Millisecond
	cfg.Sample = 3
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Load
	// 400/s for 0.5s: about 200 events, warm-up events excluded.
	if l.Sent < 150 || l.Sent > 210 {
		t.Fatalf("sent %d at 400/s for 0.5s", l.Sent)
	}
	if l.Lost != 0 || l.Extra != 0 || l.Delivered != l.Sent*5 {
		t.Fatalf("delivered %d of %d (lost %d extra %d)", l.Delivered, l.Expected, l.Lost, l.Extra)
	}
	if l.Order.OutOfOrder != 0 || l.Order.Duplicates != 0 || l.Order.Checked == 0 {
		t.Fatalf("order %+v", l.Order)
	}
}

func TestRunSlowListeners(t *testing.T) {
	// 2 of 10 listeners stop reading after the greeting. The healthy ones
	// must be counted alone; the slow ones are reported apart.
	srv, url := startBaseline(t, baseline.Options{Buffer: 1024})
	cfg := testConfig(url)
	cfg.Listeners = 10
	cfg.SlowFraction = 0.2
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, rep, 8, 300)
	s := rep.Load.Slow
	if s == nil || s.Listeners != 2 {
		t.Fatalf("slow result %+v", s)
	}
	if s.Delivered != 0 {
		t.Fatalf("slow listeners counted %d deliveries", s.Delivered)
	}
	if _, dropped := srv.Stats(); dropped != 0 {
		t.Logf("baseline dropped %d events for the slow listeners", dropped)
	}
}

func TestRunSlowListenersDropped(t *testing.T) {
	// With a tiny baseline buffer and many events, the slow listeners'
	// socket buffers fill up and the baseline drops their events; the
	// healthy listeners (which read) still get everything as long as they
	// keep up, so only check the accounting.
	if testing.Short() {
		t.Skip("short")
	}
	srv, url := startBaseline(t, baseline.Options{Buffer: 4})
	cfg := testConfig(url)
	cfg.Listeners = 4
	cfg.SlowFraction = 0.5
	cfg.Events = 3000
	cfg.Size = 2048
	cfg.Sample = 10
	cfg.Drain = 2 * time.Second
	cfg.DrainQuiet = 300 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Load
	if l.Slow.Listeners != 2 || l.HealthyListeners != 2 || l.Expected != 2*l.Sent {
		t.Fatalf("%+v", l)
	}
	if l.Delivered+l.Lost-l.Extra != l.Expected {
		t.Fatalf("accounting: delivered %d lost %d extra %d expected %d", l.Delivered, l.Lost, l.Extra, l.Expected)
	}
	if _, dropped := srv.Stats(); dropped == 0 {
		t.Fatal("the baseline dropped nothing for listeners that stopped reading")
	}
}

func TestRunIdle(t *testing.T) {
	srv, url := startBaseline(t, baseline.Options{})
	cfg := testConfig(url)
	cfg.Listeners = 20
	cfg.Duration = 200 * time.Millisecond
	rep, err := RunIdle(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != ModeIdle || rep.Idle.Listeners != 20 || rep.Idle.Disconnected != 0 || rep.Idle.RSSWithKiB <= 0 {
		t.Fatalf("%+v", rep.Idle)
	}
	// Listeners are closed when RunIdle returns.
	deadline := time.Now().Add(5 * time.Second)
	for srv.Listeners() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.Listeners(); n != 0 {
		t.Fatalf("%d listeners still connected", n)
	}
}

func TestRunSelfTest(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listeners = 4
	cfg.Producers = 2
	cfg.Duration = 300 * time.Millisecond
	rep, err := RunSelfTest(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.SelfTest
	if s.DeliveriesPerSec <= 0 || s.PostsPerSec <= 0 || s.FrameBytes <= cfg.Size {
		t.Fatalf("%+v", s)
	}
}

func TestConnectFailures(t *testing.T) {
	// A server that answers 503 to GET /events.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "full", http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	cfg := testConfig(ts.URL)
	cfg.ConnectTimeout = 2 * time.Second
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("want an error when listeners get 503")
	}
	// Nothing listening.
	cfg.URL = "http://127.0.0.1:1"
	cfg.ConnectTimeout = 300 * time.Millisecond
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("want an error when nothing listens")
	}
	cfg.URL = "ftp://x"
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("want an error for a bad URL")
	}
}

func TestSourceIPSpreading(t *testing.T) {
	srv := baseline.New(baseline.Options{Buffer: 1024})
	var mu sync.Mutex
	sources := map[string]int{}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			mu.Lock()
			sources[host]++
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	defer srv.Close()
	cfg := testConfig(ts.URL)
	cfg.SourceIPs = 3
	cfg.Listeners = 6
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, rep, 6, 300)
	mu.Lock()
	defer mu.Unlock()
	if len(sources) != 3 || sources["127.0.0.1"] != 2 || sources["127.0.0.2"] != 2 || sources["127.0.0.3"] != 2 {
		t.Fatalf("listener source addresses %v, want 2 each from 127.0.0.1-3", sources)
	}
}

func TestPeerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if closed, known := peerClosed(c); !known {
		t.Skip("TCP state not available on this platform")
	} else if closed {
		t.Fatal("open connection reported closed")
	}
	s.Close()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if closed, _ := peerClosed(c); closed {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("server close not detected")
}

func TestRunOverTLS(t *testing.T) {
	srv := baseline.New(baseline.Options{Buffer: 1024})
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()
	cfg := testConfig(ts.URL)
	cfg.Insecure = true // httptest's self-signed certificate
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, rep, 5, 300)
}

// With ScrapeInterval, the tool reads the server's /metrics during the
// measured phase (and only then), and reports how many times it did.
func TestRunScrapesMetrics(t *testing.T) {
	srv := baseline.New(baseline.Options{Buffer: 4096})
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "# TYPE x counter\nx 1\n")
	})
	mux.Handle("/", srv.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	cfg := testConfig(ts.URL)
	cfg.Events = 0
	cfg.Rate = 200
	cfg.Duration = 600 * time.Millisecond
	cfg.ScrapeInterval = 100 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := rep.Scrape
	if sc == nil || sc.Scrapes < 1 || sc.Errors != 0 || sc.Bytes != int64(len("# TYPE x counter\nx 1\n")) || sc.IntervalSec != 0.1 {
		t.Fatalf("scrape stats %+v", sc)
	}
	if got := hits.Load(); got != int64(sc.Scrapes) {
		t.Fatalf("server saw %d scrapes, report says %d", got, sc.Scrapes)
	}
	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "metrics scrapes") {
		t.Fatalf("table lacks the scrape row:\n%s", table.String())
	}
	// Without it, nothing is scraped.
	cfg.ScrapeInterval = 0
	before := hits.Load()
	if rep, err = Run(context.Background(), cfg); err != nil || rep.Scrape != nil || hits.Load() != before {
		t.Fatalf("unscraped run: %v, %+v, %d hits", err, rep.Scrape, hits.Load()-before)
	}
}
