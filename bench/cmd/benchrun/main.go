// Command benchrun runs the benchmark scenarios of bench/bench.mk: it builds
// the service, the baseline (and, when asked, the replica of the original
// service) and the tools, starts each server on a free
// loopback port (PIDs recorded), runs sseload with identical flags against
// each, writes the JSON results under <out>/<scenario>/ with a summary.md,
// and stops every process it started, by PID, on exit or on a signal.
//
//	go run ./bench/cmd/benchrun [flags] fanout latency ingest slow idle tool-ceiling chart | all
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
)

// target is a server implementation to benchmark.
type target struct {
	name string // label stored in the results
	bin  string
	pkg  string
	args string // with {addr} {port} {max} placeholders
	// load are sseload flags this target needs to be loaded at all (how a
	// listener counts as connected), added to the scenario's flags, which
	// are the same for every target.
	load []string
}

type options struct {
	out        string
	binDir     string
	targets    []target
	duration   time.Duration
	warmup     time.Duration
	quick      bool
	noBuild    bool
	maxListen  int
	fanoutL    []int
	sizes      []int
	idleL      int
	slowRate   float64
	latencyL   int
	latencyR   float64
	ceilingL   int
	producers  int
	sseloadBin string
	plotBin    string
}

var scenarioOrder = []string{"tool-ceiling", "ingest", "fanout", "latency", "slow", "idle", "chart"}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o := options{}
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "bench/results", "results directory (one sub-directory per scenario)")
	fs.StringVar(&o.binDir, "bin", "bin", "where the binaries are built")
	targets := fs.String("targets", "ours,baseline", "servers to benchmark, comma-separated: ours, baseline, original (the replica of the original service)")
	oursArgs := fs.String("ours-args", "-port {addr} -max-listeners {max} -log-level warn", "arguments of the service ({addr}, {port}, {max} are substituted)")
	baseArgs := fs.String("baseline-args", "-addr {addr} -max-listeners {max} -quiet", "arguments of the baseline")
	origArgs := fs.String("original-args", "-addr {addr} -quiet", "arguments of the replica of the original service")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each run (idle: hold time)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up of each load run")
	fs.IntVar(&o.producers, "producers", 8, "producers of the fanout, ingest and slow scenarios")
	fanout := fs.String("fanout-listeners", "1,100,1000,5000", "listener counts of the fanout scenario")
	sizes := fs.String("sizes", "128,1024", "event sizes in bytes of the fanout and ingest scenarios")
	fs.IntVar(&o.idleL, "idle-listeners", 10000, "listeners of the idle scenario")
	fs.IntVar(&o.latencyL, "latency-listeners", 1000, "listeners of the latency and slow scenarios")
	fs.IntVar(&o.ceilingL, "ceiling-listeners", 1000, "listeners of the tool-ceiling scenario")
	fs.Float64Var(&o.latencyR, "latency-rate", 200, "total events/s of the latency scenario")
	fs.Float64Var(&o.slowRate, "slow-rate", 100, "total events/s of the slow scenario (fixed and low enough for both servers to keep up, so that only the slow listeners can cause loss)")
	fs.IntVar(&o.maxListen, "max-listeners", 20000, "value for the servers' -max-listeners")
	fs.BoolVar(&o.noBuild, "no-build", false, "use the binaries already in -bin")
	fs.BoolVar(&o.quick, "quick", false, "tiny runs (1 s, few listeners) to check the set-up, not for numbers")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "benchrun — run benchmark scenarios against the service and the baseline.\n\n"+
			"Usage: benchrun [flags] scenario...\n\nScenarios: %s, all\n\n", strings.Join(scenarioOrder, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	scenarios := fs.Args()
	if len(scenarios) == 0 {
		fs.Usage()
		return 2
	}
	if len(scenarios) == 1 && scenarios[0] == "all" {
		scenarios = scenarioOrder
	}
	for _, s := range scenarios {
		if !contains(scenarioOrder, s) {
			fmt.Fprintf(os.Stderr, "benchrun: unknown scenario %q (known: %s, all)\n", s, strings.Join(scenarioOrder, ", "))
			return 2
		}
	}
	var err error
	if o.fanoutL, err = parseInts(*fanout); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: -fanout-listeners: %v\n", err)
		return 2
	}
	if o.sizes, err = parseInts(*sizes); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: -sizes: %v\n", err)
		return 2
	}
	for _, name := range strings.Split(*targets, ",") {
		switch strings.TrimSpace(name) {
		case "ours":
			o.targets = append(o.targets, target{name: "ours", bin: "event_dispatcher", pkg: "./cmd/event_dispatcher", args: *oursArgs})
		case "baseline":
			o.targets = append(o.targets, target{name: "baseline", bin: "baseline", pkg: "./bench/cmd/baseline", args: *baseArgs})
		case "original":
			// The original sends no byte, not even the response head, before
			// the first event: its listeners count as connected once their
			// request is sent (the warm-up lets it register them).
			o.targets = append(o.targets, target{name: "original", bin: "original", pkg: "./bench/cmd/original", args: *origArgs,
				load: []string{"-ready-on-send"}})
		case "":
		default:
			fmt.Fprintf(os.Stderr, "benchrun: unknown target %q (ours, baseline, original)\n", name)
			return 2
		}
	}
	if o.quick { // small defaults, for flags not given explicitly
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quick("duration", func() { o.duration = time.Second })
		quick("warmup", func() { o.warmup = 300 * time.Millisecond })
		quick("fanout-listeners", func() { o.fanoutL = []int{1, 10, 50} })
		quick("sizes", func() { o.sizes = []int{128} })
		quick("idle-listeners", func() { o.idleL = 200 })
		quick("latency-listeners", func() { o.latencyL = 50 })
		quick("ceiling-listeners", func() { o.ceilingL = 50 })
		quick("producers", func() { o.producers = 2 })
	}
	o.sseloadBin = filepath.Join(o.binDir, "sseload")
	o.plotBin = filepath.Join(o.binDir, "benchplot")

	// Children inherit the limit: servers and sseload need one descriptor
	// per listener each.
	most := max(o.idleL, o.latencyL, o.ceilingL)
	for _, l := range o.fanoutL {
		most = max(most, l)
	}
	if _, err := load.RaiseFileLimit(uint64(most + 1024)); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: warning: %v\n", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	go func() {
		select {
		case sig := <-sigc:
			fmt.Fprintf(os.Stderr, "benchrun: %v: stopping what was started\n", sig)
			cancel()
			stopAll(syscall.SIGTERM)
		case <-ctx.Done():
		}
	}()
	defer stopAll(syscall.SIGKILL) // nothing should be left; belt and braces

	if !o.noBuild {
		pkgs := map[string]string{"sseload": "./bench/cmd/sseload", "benchplot": "./bench/cmd/benchplot"}
		for _, t := range o.targets {
			pkgs[t.bin] = t.pkg
		}
		if err := build(ctx, o.binDir, pkgs); err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: %v\n(the service may not build yet: run with -targets baseline, or BENCH_TARGETS=baseline with make)\n", err)
			return 1
		}
	}
	failed := false
	for _, s := range scenarios {
		if err := runScenario(ctx, &o, s); err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: scenario %s: %v\n", s, err)
			failed = true
			if ctx.Err() != nil {
				return 130
			}
		}
	}
	if failed {
		return 1
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// run is one sseload invocation against one target.
type runSpec struct {
	file string   // result file name (without .json)
	args []string // sseload flags besides -url, -server-pid, -label, -json-out
}

func runScenario(ctx context.Context, o *options, name string) error {
	if name == "chart" {
		return runTool(ctx, o.plotBin, []string{"-o", filepath.Join(o.out, "fanout", "fanout"), "-title", "SSE fan-out", filepath.Join(o.out, "fanout")}, "")
	}
	dir := filepath.Join(o.out, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dur := o.duration.String()
	warm := o.warmup.String()
	common := []string{"-producers", strconv.Itoa(o.producers), "-duration", dur, "-warmup", warm, "-drain", "5s"}
	var specs []runSpec
	switch name {
	case "tool-ceiling":
		for _, size := range o.sizes {
			file := filepath.Join(dir, fmt.Sprintf("self-test-%dB", size))
			args := []string{"-self-test", "-listeners", strconv.Itoa(o.ceilingL), "-producers", strconv.Itoa(o.producers),
				"-duration", dur, "-size", strconv.Itoa(size), "-label", "sseload", "-json-out", file + ".json"}
			if err := runTool(ctx, o.sseloadBin, args, file+".txt"); err != nil {
				return err
			}
		}
		return writeSummary(dir)
	case "fanout":
		for _, size := range o.sizes {
			for _, l := range o.fanoutL {
				sample := min(max(l/10, 1), 256)
				specs = append(specs, runSpec{
					file: fmt.Sprintf("L%05d-%dB", l, size),
					args: append([]string{"-listeners", strconv.Itoa(l), "-size", strconv.Itoa(size), "-sample", strconv.Itoa(sample)}, common...),
				})
			}
		}
	case "latency":
		specs = append(specs, runSpec{file: fmt.Sprintf("L%d-R%g", o.latencyL, o.latencyR), args: []string{
			"-listeners", strconv.Itoa(o.latencyL), "-producers", strconv.Itoa(min(o.producers, 4)), "-rate", fmt.Sprint(o.latencyR),
			"-duration", dur, "-warmup", warm, "-drain", "5s", "-size", "128", "-sample", "1"}})
	case "ingest":
		for _, size := range o.sizes {
			specs = append(specs, runSpec{file: fmt.Sprintf("ingest-%dB", size),
				args: append([]string{"-listeners", "0", "-size", strconv.Itoa(size)}, common...)})
		}
	case "slow":
		l := o.latencyL
		for _, frac := range []float64{0, 0.1} {
			specs = append(specs, runSpec{file: fmt.Sprintf("L%d-slow%02.0f", l, frac*100), args: []string{
				"-listeners", strconv.Itoa(l), "-slow", fmt.Sprint(frac), "-producers", strconv.Itoa(o.producers),
				"-rate", fmt.Sprint(o.slowRate), "-duration", dur, "-warmup", warm, "-drain", "5s", "-size", "128", "-sample", "4"}})
		}
	case "idle":
		specs = append(specs, runSpec{file: fmt.Sprintf("idle-L%d", o.idleL), args: []string{
			"-idle", "-listeners", strconv.Itoa(o.idleL), "-duration", dur, "-connect-timeout", "120s"}})
	}
	for _, t := range o.targets {
		for _, sp := range specs {
			if err := runOne(ctx, o, dir, t, sp); err != nil {
				return err
			}
		}
	}
	return writeSummary(dir)
}

// runOne starts a fresh server, runs sseload against it and stops it.
func runOne(ctx context.Context, o *options, dir string, t target, sp runSpec) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := expandArgs(t.args, addr, port, o.maxListen)
	base := t.name + "-" + sp.file
	srv, err := startServer(ctx, t.name, filepath.Join(o.binDir, t.bin), args, addr, filepath.Join(dir, "logs", base+".log"))
	if err != nil {
		return err
	}
	defer srv.stop()
	sargs := append([]string{"-url", "http://" + addr, "-server-pid", strconv.Itoa(srv.pid()), "-label", t.name,
		"-json-out", filepath.Join(dir, base+".json")}, t.load...)
	sargs = append(sargs, sp.args...)
	// sseload bounds every phase itself; this is the backstop should a
	// server stall it anyway (the original blocks every POST behind a
	// listener that does not read).
	limit := runLimit(o, sp.args)
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err = runTool(rctx, o.sseloadBin, sargs, filepath.Join(dir, base+".txt"))
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: sseload did not finish within %s and was stopped", t.name, sp.file, limit)
	}
	return err
}

// runLimit is the longest an sseload run may take: every phase it bounds
// (connect, warm-up, measured phase, the last POSTs' timeouts, drains,
// health checks) plus a minute.
func runLimit(o *options, args []string) time.Duration {
	flagDur := func(name string, def time.Duration) time.Duration {
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-"+name {
				if d, err := time.ParseDuration(args[i+1]); err == nil {
					return d
				}
			}
		}
		return def
	}
	def := load.DefaultConfig()
	connect := flagDur("connect-timeout", def.ConnectTimeout)
	drain := flagDur("drain", def.Drain)
	post := flagDur("post-timeout", def.PostTimeout)
	return connect + o.warmup + o.duration + 2*(drain+post) + time.Minute
}

// expandArgs splits the argument template on spaces and substitutes the
// placeholders.
func expandArgs(tmpl, addr string, port, maxListeners int) []string {
	r := strings.NewReplacer("{addr}", addr, "{port}", strconv.Itoa(port), "{max}", strconv.Itoa(maxListeners))
	return strings.Fields(r.Replace(tmpl))
}
