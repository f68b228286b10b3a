package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/metrics"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// BenchmarkScrape measures one scrape of /metrics, as the application wires
// it (Go runtime and process collectors, the histograms, the collector that
// reads the server's counters), with 0 to 5,000 listeners connected (each holds two descriptors here,
// the server's and the client's): what
// a Prometheus server scraping every second takes from the service. The
// bench's ours-scraped target measures the same end to end, under load.
func BenchmarkScrape(b *testing.B) {
	for _, listeners := range []int{0, 1000, 5000} {
		b.Run(fmt.Sprintf("listeners=%d", listeners), func(b *testing.B) {
			srv := startServer(b)
			connect(b, srv.addr, listeners)
			m := metrics.New()
			m.Watch(metrics.Sources{Server: srv.Server, Version: "bench", Commit: "bench"})
			handler := m.Handler()
			if got := srv.Listeners(); got != listeners {
				b.Fatalf("%d listeners connected, want %d", got, listeners)
			}
			var size int
			b.ReportAllocs()
			for b.Loop() {
				var ctx fasthttp.RequestCtx
				ctx.Request.SetRequestURI("/metrics")
				handler(&ctx)
				if ctx.Response.StatusCode() != fasthttp.StatusOK {
					b.Fatalf("/metrics: %d", ctx.Response.StatusCode())
				}
				size = len(ctx.Response.Body())
			}
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
}

type benchServer struct {
	*server.Server
	addr string
}

// startServer runs a server on a loopback port, stopped with the benchmark.
func startServer(b *testing.B) benchServer {
	b.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	ring := fanout.New(fanout.Options{Size: 4096})
	srv, err := server.New(&cfg, server.Deps{Ring: ring, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Drain()
		_ = ring.Close()
		if err := srv.Shutdown(ctx); err != nil {
			b.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
	return benchServer{Server: srv, addr: ln.Addr().String()}
}

// connect opens n listeners on addr and waits for each greeting; they are
// closed with the benchmark.
func connect(b *testing.B, addr string, n int) {
	b.Helper()
	conns := make([]net.Conn, 0, n)
	b.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				b.Fatalf("listener %d: %v", len(conns), err)
			}
			if strings.HasPrefix(line, ": connected") {
				break
			}
		}
	}
}
