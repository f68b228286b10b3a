// Command baseline runs the BASELINE server used for benchmark comparisons
// (see package bench/baseline): a conventional net/http + channel-per-listener
// SSE fan-out with the same endpoints and wire format as the Pillarbox Event
// Dispatcher, draining its channel before each flush (-flush frame: flushing
// every event). It is a yardstick, not the service.
//
//	go run ./bench/cmd/baseline -addr 127.0.0.1:9090
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/baseline"
)

func main() {
	if err := run(); err != nil {
		log.Printf("baseline: %v", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:9090", "listen address")
	buffer := flag.Int("buffer", 256, "per-listener channel capacity (events are dropped for a listener whose channel is full)")
	maxListeners := flag.Int("max-listeners", 0, "refuse listeners beyond this number with 503 (0 = unlimited)")
	heartbeat := flag.Duration("heartbeat", 30*time.Second, "interval of ': ping' comments (0 = none)")
	flush := flag.String("flush", "batch", "batch: write every waiting event, then flush once; frame: flush after every event (the naive variant)")
	quiet := flag.Bool("quiet", false, "do not log start and stop")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "baseline: conventional SSE fan-out server, a yardstick for benchmarks only.\n\nUsage: baseline [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *flush != "batch" && *flush != "frame" {
		return fmt.Errorf("-flush must be batch or frame, not %q", *flush)
	}

	srv := baseline.New(baseline.Options{Buffer: *buffer, MaxListeners: *maxListeners, Heartbeat: *heartbeat, FlushEach: *flush == "frame"})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if !*quiet {
		log.Printf("baseline: listening on http://%s (pid %d)", ln.Addr(), os.Getpid())
	}
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	srv.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if !*quiet {
		log.Printf("baseline: stopped")
	}
	return nil
}
