// Command soak runs the service for a bounded time on loopback under a
// steady load with listener churn, and watches that its memory, goroutines
// and open descriptors stay flat.
//
// It starts the service binary on a free 127.0.0.1 port, then, for
// -duration: producers post events at a steady -rate to -listeners steady
// listeners (sseload's engine, which also checks that they lose nothing),
// while -churn workers connect to /events and go away again, each in its
// own way (reading then closing, reading then resetting, never reading,
// leaving at once). Every -interval it samples the server's RSS
// (/proc/PID/status), goroutines (GET /health, num_goroutines) and open
// descriptors (/proc/PID/fd) and prints a row. The verdict: after the
// warm-up, the median of the last third of the samples must be within the
// stated tolerance of the median of the first third; the steady listeners
// must have lost nothing; and once the load is gone the listener count must
// drop to 0 and the descriptors come back near where they started within
// -release, the goroutines within -settle. It exits 1 when any of this fails, and stops the service (by
// PID) whatever happens.
//
//	go run ./bench/cmd/soak -bin bin/event_dispatcher -duration 3m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/proc"
)

type options struct {
	bin, args                  string
	duration, interval, warmup time.Duration
	listeners, churn           int
	producers, size            int
	rate                       float64
	holdMin, holdMax           time.Duration
	release, settle            time.Duration
	lim                        limits
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, code := parseFlags(args, stderr)
	if o == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &proc.Group{Log: stderr}
	defer g.Signal(syscall.SIGKILL) // nothing should be left; belt and braces
	if _, err := load.RaiseFileLimit(uint64(o.listeners+o.churn) + 1024); err != nil {
		fmt.Fprintf(stderr, "soak: warning: %v\n", err)
	}
	ok, err := soak(ctx, o, g, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	}
	if !ok {
		fmt.Fprintln(stdout, "soak: NOT FLAT")
		return 1
	}
	fmt.Fprintln(stdout, "soak: flat")
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, int) {
	o := &options{}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin/event_dispatcher", "the service binary")
	fs.StringVar(&o.args, "args", "", "more arguments for the service (after -port and -log-level), e.g. \"-streamer hijack\"")
	fs.DurationVar(&o.duration, "duration", 3*time.Minute, "how long the load runs")
	fs.DurationVar(&o.interval, "interval", 0, "time between samples (0: duration/30, between 1s and 5s)")
	fs.DurationVar(&o.warmup, "warmup", 0, "samples left out of the verdict at the start (0: duration/6, between 5s and 30s)")
	fs.IntVar(&o.listeners, "listeners", 100, "steady listeners, connected for the whole run; they must lose nothing")
	fs.IntVar(&o.churn, "churn", 100, "churning listeners: workers that connect, behave, disconnect and start again")
	fs.IntVar(&o.producers, "producers", 2, "producers, one keep-alive connection each")
	fs.Float64Var(&o.rate, "rate", 200, "events/s over all producers")
	fs.IntVar(&o.size, "size", 256, "event size in bytes")
	fs.DurationVar(&o.holdMin, "hold-min", 500*time.Millisecond, "shortest time a churning listener stays")
	fs.DurationVar(&o.holdMax, "hold-max", 3*time.Second, "longest time a churning listener stays")
	fs.DurationVar(&o.release, "release", 5*time.Second, "how long the server may take, once the load is gone, to release every listener and its descriptors")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "how long its goroutines may take to come back down (fasthttp keeps idle workers up to twice its 10 s idle time)")
	fs.Float64Var(&o.lim.rel, "tolerance", 0.10, "relative growth allowed from the first third's median to the last third's")
	fs.Float64Var(&o.lim.rssMiB, "slack-rss", 8, "RSS growth allowed on top of -tolerance, MiB")
	fs.IntVar(&o.lim.goroutines, "slack-goroutines", 20, "goroutine growth allowed on top of -tolerance")
	fs.IntVar(&o.lim.fds, "slack-fds", 20, "descriptor growth allowed on top of -tolerance")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "soak — steady load with listener churn; the service's memory, goroutines and descriptors must stay flat.\n\nUsage: soak [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected arguments %v", fs.Args())
	case o.duration <= 0 || o.rate <= 0 || o.producers < 1 || o.listeners < 0 || o.churn < 0:
		bad = "-duration, -rate and -producers must be positive, -listeners and -churn not negative"
	case o.holdMin <= 0 || o.holdMax < o.holdMin:
		bad = "-hold-min must be positive and at most -hold-max"
	}
	if bad != "" {
		fmt.Fprintf(stderr, "soak: %s\n", bad)
		return nil, 2
	}
	if o.interval <= 0 {
		o.interval = min(max(o.duration/30, time.Second), 5*time.Second)
	}
	if o.warmup <= 0 {
		o.warmup = min(max(o.duration/6, 5*time.Second), 30*time.Second)
	}
	return o, 0
}

// soak runs the whole thing and reports whether every check passed.
func soak(ctx context.Context, o *options, g *proc.Group, stdout, stderr io.Writer) (bool, error) {
	port, err := proc.FreePort()
	if err != nil {
		return false, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	srvArgs := append([]string{"-port", addr, "-log-level", "warn"}, strings.Fields(o.args)...)
	srv, err := g.StartServer(ctx, proc.ServerSpec{Name: "service", Bin: o.bin, Args: srvArgs, Addr: addr})
	if err != nil {
		return false, err
	}
	defer srv.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	base, err := take(ctx, client, addr, srv.PID())
	if err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "soak: %s %s (pid %d): %d steady listeners, %d churning, %d producers at %s events/s of %d B, for %s;"+
		" a sample every %s, the first %s left out of the verdict\n",
		o.bin, strings.Join(srvArgs, " "), srv.PID(), o.listeners, o.churn, o.producers, strconv.FormatFloat(o.rate, 'f', -1, 64),
		o.size, o.duration, o.interval, o.warmup)

	samples, steady, ch, err := drive(ctx, o, addr, srv, client, stdout)
	if err != nil {
		return false, err
	}
	ok := true
	checks, err := judge(samples, o.warmup, o.lim)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "\nverdict (%s):\n", o.lim)
	for _, c := range checks {
		fmt.Fprintf(stdout, "  %s\n", c)
		ok = ok && c.ok
	}
	ok = reportSteady(stdout, steady) && ok
	ok = reportChurn(stdout, ch) && ok
	ok = released(ctx, o, client, addr, srv.PID(), base, stdout) && ok
	srv.Stop()
	if err := srv.ExitErr(); err != nil {
		fmt.Fprintf(stdout, "  shutdown: the service ended with %v after SIGTERM\n", err)
		ok = false
	} else {
		fmt.Fprintln(stdout, "  shutdown: the service exited 0 after SIGTERM")
	}
	return ok, nil
}

// drive runs the steady load and the churn for the duration, sampling the
// server every interval, and returns the samples, the steady listeners'
// report and the churn.
func drive(ctx context.Context, o *options, addr string, srv *proc.Server, client *http.Client, stdout io.Writer) ([]sample, *load.Report, *churn, error) {
	start := time.Now()
	loadCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	cfg := load.DefaultConfig()
	cfg.URL, cfg.Listeners, cfg.Producers, cfg.Rate = "http://"+addr, o.listeners, o.producers, o.rate
	// The steady load outlives the sampling by one interval, so that no
	// sample sees its listeners leave.
	cfg.Duration, cfg.Warmup, cfg.Size, cfg.Label = o.duration+o.interval, 0, o.size, "soak-steady"
	cfg.ConnectTimeout = 30 * time.Second
	type result struct {
		rep *load.Report
		err error
	}
	steady := make(chan result, 1)
	go func() {
		rep, err := load.Run(ctx, cfg)
		steady <- result{rep, err}
	}()
	ch := newChurn(addr, o.holdMin, o.holdMax)
	ch.start(loadCtx, o.churn)

	fmt.Fprintf(stdout, "\n%8s %9s %11s %12s %10s %12s\n", "time", "RSS MiB", "goroutines", "descriptors", "listeners", "connections")
	var samples []sample
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for loadCtx.Err() == nil {
		select {
		case <-loadCtx.Done():
			continue
		case <-srv.Done():
			cancel()
			ch.wait()
			return nil, nil, nil, fmt.Errorf("the service exited during the soak; its standard error ends with:\n%s", srv.Stderr())
		case <-tick.C:
		}
		s, err := take(ctx, client, addr, srv.PID())
		if err != nil {
			fmt.Fprintf(stdout, "%8s sample failed: %v\n", time.Since(start).Round(min(o.interval, time.Second)), err)
			continue
		}
		s.at, s.connections = time.Since(start), ch.total()
		samples = append(samples, s)
		note := ""
		if s.at < o.warmup {
			note = "  (warm-up)"
		}
		fmt.Fprintf(stdout, "%8s %9.1f %11d %12d %10d %12d%s\n", s.at.Round(min(o.interval, time.Second)), float64(s.rssKiB)/1024,
			s.goroutines, s.fds, s.listeners, s.connections, note)
	}
	ch.wait()
	res := <-steady
	if res.err != nil {
		return nil, nil, nil, fmt.Errorf("steady load: %w", res.err)
	}
	return samples, res.rep, ch, nil
}

// reportSteady prints what the steady listeners received; they must have
// lost nothing.
func reportSteady(w io.Writer, rep *load.Report) bool {
	l := rep.Load
	ok := l.Lost == 0 && l.Disconnected == 0 && l.Order.OutOfOrder == 0 && l.Order.Duplicates == 0
	fmt.Fprintf(w, "  steady:      %d listeners received %d of %d events (lost %d, %d disconnected, %d out of order); %s posts/s, e2e p99 %s: %s\n",
		l.HealthyListeners, l.Delivered, l.Expected, l.Lost, l.Disconnected, l.Order.OutOfOrder,
		load.FormatCount(l.PostsPerSec), load.FormatMicros(l.E2E.P99Us), okWord(ok))
	return ok
}

// reportChurn prints what the churning listeners did; a churning listener
// refused, or whose stream ended early, is a failure.
func reportChurn(w io.Writer, ch *churn) bool {
	parts := make([]string, 0, numKinds)
	for k := range numKinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, ch.connects[k].Load()))
	}
	errs := ch.errors.Load()
	fmt.Fprintf(w, "  churn:       %d connections (%s), %d events read through sseclient, %d errors",
		ch.total(), strings.Join(parts, ", "), ch.events.Load(), errs)
	if p := ch.firstErr.Load(); p != nil {
		fmt.Fprintf(w, " (first: %v)", *p)
	}
	fmt.Fprintf(w, ": %s\n", okWord(errs == 0))
	return errs == 0
}

// released checks what the server holds once the load is gone: within
// -release, no listener left and the descriptors back near where they
// started; within -settle, the goroutines too.
func released(ctx context.Context, o *options, client *http.Client, addr string, pid int, base sample, w io.Writer) bool {
	start := time.Now()
	freed := func(s sample) bool { return s.listeners == 0 && s.fds <= base.fds+o.lim.fds }
	s, err := waitFor(ctx, o.release, client, addr, pid, freed)
	if err != nil {
		fmt.Fprintf(w, "  after:       %v: FAIL\n", err)
		return false
	}
	ok1 := freed(s)
	fmt.Fprintf(w, "  released:    %d listeners, %d descriptors (%d before the load) after %s: %s\n",
		s.listeners, s.fds, base.fds, time.Since(start).Round(100*time.Millisecond), okWord(ok1))
	settled := func(s sample) bool { return s.goroutines <= base.goroutines+o.lim.goroutines }
	s, err = waitFor(ctx, o.settle, client, addr, pid, settled)
	if err != nil {
		fmt.Fprintf(w, "  settled:     %v: FAIL\n", err)
		return false
	}
	ok2 := settled(s)
	fmt.Fprintf(w, "  settled:     %d goroutines (%d before), %.1f MiB RSS (%.1f before) after %s: %s\n",
		s.goroutines, base.goroutines, float64(s.rssKiB)/1024, float64(base.rssKiB)/1024,
		time.Since(start).Round(100*time.Millisecond), okWord(ok2))
	return ok1 && ok2
}

// waitFor samples the server every 100 ms until done holds or limit has
// passed, and returns the last sample.
func waitFor(ctx context.Context, limit time.Duration, client *http.Client, addr string, pid int, done func(sample) bool) (sample, error) {
	deadline := time.Now().Add(limit)
	for {
		s, err := take(ctx, client, addr, pid)
		if err != nil || done(s) || time.Now().After(deadline) || ctx.Err() != nil {
			return s, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}
