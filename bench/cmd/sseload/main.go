// Command sseload load-tests a Pillarbox Event Dispatcher deployment (or any
// server with the same wire format, or Centrifugo's unidirectional SSE with
// -protocol centrifugo): L listeners on GET /events, P producers on POST
// /api/events, and a report of throughput, delivery and latency.
//
//	go run ./bench/cmd/sseload -url http://127.0.0.1:8080 -listeners 1000 -producers 8 -duration 10s
//
// See -help for all flags, bench/README.md for the scenarios.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := load.DefaultConfig()
	fs := flag.NewFlagSet("sseload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "base URL of the service (events at <url>/events, posts to <url>/api/events; see -protocol)")
	protocol := fs.String("protocol", load.ProtocolDispatcher, "server API: dispatcher (GET /events, POST /api/events) or centrifugo (GET /connection/uni_sse with -token, POST /api/publish with -api-key to -channel)")
	cf := load.Centrifugo{}
	fs.StringVar(&cf.Channel, "channel", "bench", "centrifugo: channel the events are published to")
	fs.StringVar(&cf.APIKey, "api-key", "", "centrifugo: HTTP API key (X-API-Key) for the producers")
	fs.StringVar(&cf.Token, "token", "", "centrifugo: connection JWT for the listeners, subscribing them to -channel (its \"channels\" claim)")
	fs.IntVar(&cfg.Listeners, "listeners", cfg.Listeners, "number of SSE listeners")
	fs.IntVar(&cfg.Producers, "producers", cfg.Producers, "number of producers, one keep-alive connection each")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "total events/s over all producers (0 = as fast as possible)")
	fs.Int64Var(&cfg.Events, "events", 0, "stop the measured phase after this many events in total, if before -duration (0 = no limit)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured duration (in -idle mode: how long to hold the listeners)")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "approximate JSON event size in bytes (producer id, sequence number, send timestamp, padding)")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "produce this long before measuring (not counted)")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "longest wait for stragglers after the producers stop")
	fs.DurationVar(&cfg.DrainQuiet, "drain-quiet", cfg.DrainQuiet, "stop draining early after this long without any delivery")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "time allowed for all listeners to connect and receive the greeting")
	fs.DurationVar(&cfg.PostTimeout, "post-timeout", cfg.PostTimeout, "timeout of one POST")
	fs.IntVar(&cfg.Sample, "sample", cfg.Sample, "parse 1 in N data frames for latency and order checks (0 = none)")
	fs.Float64Var(&cfg.SlowFraction, "slow", cfg.SlowFraction, "fraction of listeners that connect and then stop reading (reported separately)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "PID of the server process (on this machine) to sample RSS and CPU from /proc")
	fs.Func("extra-pids", "comma-separated PIDs of more server processes (other instances) whose RSS and CPU are added to -server-pid's", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("bad PID %q", f)
			}
			cfg.ExtraPIDs = append(cfg.ExtraPIDs, pid)
		}
		return nil
	})
	fs.Func("post-url", "comma-separated base URLs the producers post to, round-robin (default -url): instances sharing one NATS stream, whose listeners on -url then receive what is posted to the others", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				cfg.PostURLs = append(cfg.PostURLs, u)
			}
		}
		return nil
	})
	fs.DurationVar(&cfg.ScrapeInterval, "scrape-interval", 0, "GET <url>/metrics this often during the measured phase, as Prometheus would (0 = never)")
	fs.StringVar(&cfg.Label, "label", "", "label stored in the result (e.g. ours, baseline); benchplot names series by it")
	fs.StringVar(&cfg.Client, "client", cfg.Client, "listener implementation: raw (own HTTP/1.1 + chunked decoder) or nethttp")
	fs.IntVar(&cfg.SourceIPs, "source-ips", 0, "spread listeners over 127.0.0.1..N source addresses (0 = auto above 20,000 listeners)")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", cfg.DialConcurrency, "listeners connecting at the same time")
	fs.BoolVar(&cfg.WaitGreeting, "greeting", cfg.WaitGreeting, "wait for a first SSE block (the greeting comment) before a listener counts as connected")
	fs.BoolVar(&cfg.ReadyOnSend, "ready-on-send", false, "count a listener as connected once its request is sent, without waiting for any response byte: for servers that send no header before the first event (the original service); keep a -warmup so that the server registers every listener before the measured phase (raw client only)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "do not verify TLS certificates (https URLs)")
	fs.IntVar(&cfg.FramesPerChunk, "self-test-frames-per-chunk", cfg.FramesPerChunk, "frames per HTTP chunk written by the -self-test server")
	idle := fs.Bool("idle", false, "idle mode: open the listeners, hold them for -duration, report server memory per listener")
	selfTest := fs.Bool("self-test", false, "measure the tool's own ceiling against a trivial in-process server (ignores -url)")
	jsonOut := fs.Bool("json", false, "also print the result as JSON on stdout")
	jsonFile := fs.String("json-out", "", "write the JSON result to this file")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of sseload itself to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `sseload — load tool for the Pillarbox Event Dispatcher (SSE fan-out).

Opens -listeners SSE connections to <url>/events, waits until every one is
greeted, then runs -producers producers posting JSON events to
<url>/api/events (as fast as possible, or -rate events/s in total) for
-duration, waits up to -drain for stragglers, and prints a report.

Usage: sseload [flags]

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sseload: unexpected arguments %v\n", fs.Args())
		return 2
	}
	switch *protocol {
	case load.ProtocolDispatcher:
	case load.ProtocolCentrifugo:
		cfg.Centrifugo = &cf
	default:
		fmt.Fprintf(stderr, "sseload: -protocol must be %s or %s\n", load.ProtocolDispatcher, load.ProtocolCentrifugo)
		return 2
	}
	if !*quiet {
		cfg.Progress = stderr
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "sseload: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "sseload: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var rep *load.Report
	var err error
	switch {
	case *selfTest:
		rep, err = load.RunSelfTest(ctx, cfg)
	case *idle:
		rep, err = load.RunIdle(ctx, cfg)
	default:
		rep, err = load.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sseload: %v\n", err)
		return 1
	}
	if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "sseload: %v\n", err)
		return 1
	}
	if *jsonOut {
		if err := rep.WriteJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "sseload: %v\n", err)
			return 1
		}
	}
	if *jsonFile != "" {
		if err := rep.WriteJSONFile(*jsonFile); err != nil {
			fmt.Fprintf(stderr, "sseload: %v\n", err)
			return 1
		}
	}
	return 0
}
