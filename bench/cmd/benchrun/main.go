// Command benchrun runs the benchmark scenarios of bench/bench.mk: it builds
// the service, the baselines and the tools (and installs Centrifugo when it
// is a target), checks that every target starts, then for each scenario,
// repeat and target starts a fresh server on a free loopback port, runs
// sseload against it with the same flags as for every other target, and
// stops it by PID. Results go to <out>/<scenario>/ (sseload's JSON and text,
// server logs, a summary.md per scenario) with <out>/run.json saying how
// they were made; benchreport turns them into the report.
//
//	go run ./bench/cmd/benchrun [flags] sweep size rates idle ingest slow tool-ceiling | all
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/proc"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
)

// allScenarios is what "all" runs, in order; ScenarioSlow runs on request.
var allScenarios = []string{report.ScenarioToolCeiling, report.ScenarioIngest, report.ScenarioSweep,
	report.ScenarioSize, report.ScenarioRates, report.ScenarioIdle, report.ScenarioLatency}

// exitNothingMeasured is the exit status when the preparation failed
// (a build, Centrifugo's installation, or a target that does not start):
// no scenario ran. Some runs failing gives 1; an interruption 130.
const exitNothingMeasured = 3

// defaultTargets are the servers "all" compares.
const defaultTargets = "ours,ours-hijack,ours-scraped,ours-nats,ours-nats3,baseline,baseline-flush,centrifugo"

type options struct {
	out, binDir, toolsDir string
	command               string // how benchrun was started, for the report
	targets               []target
	duration, warmup      time.Duration
	repeat                int
	quick, noBuild        bool
	maxListen             int
	producers             int
	sweepL                []int
	rates                 []float64
	rateL                 int // listeners of the rates and slow scenarios
	sizeL, bigSize        int // listeners and event size of the size scenario
	idleL                 int
	slowRate              float64
	ceilingL              int
	latencyL              int     // listeners of the latency scenario
	latencyRate           float64 // events/s of the latency scenario
	sseloadBin            string
	natsServer            string // nats-server, for the NATS targets

	g          *proc.Group
	centrifugo *centrifugo // set up when a target needs it
	failures   []string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, scenarios, code := parseFlags(args, stderr)
	if o == nil {
		return code
	}
	o.g = &proc.Group{Log: stderr}
	// Children inherit the limit: servers and sseload need one descriptor
	// per listener each.
	most := max(o.idleL, o.rateL, o.ceilingL, o.sizeL, slices.Max(o.sweepL))
	if _, err := load.RaiseFileLimit(uint64(most + 1024)); err != nil {
		fmt.Fprintf(stderr, "benchrun: warning: %v\n", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	go func() {
		select {
		case sig := <-sigc:
			fmt.Fprintf(stderr, "benchrun: %v: stopping what was started\n", sig)
			cancel()
			o.g.Signal(syscall.SIGTERM)
		case <-ctx.Done():
		}
	}()
	defer o.g.Signal(syscall.SIGKILL) // nothing should be left; belt and braces

	if err := prepare(ctx, o, scenarios); err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return exitNothingMeasured
	}
	meta := &report.Run{Command: o.command, Args: recordedArgs(args), Repeat: o.repeat, DurationSec: o.duration.Seconds(),
		WarmupSec: o.warmup.Seconds(), Started: time.Now().UTC()}
	for _, t := range o.targets {
		meta.Targets = append(meta.Targets, t.name)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	for _, s := range scenarios {
		if err := runScenario(ctx, o, s, stdout); err != nil {
			fmt.Fprintf(stderr, "benchrun: scenario %s: %v\n", s, err)
			o.failures = append(o.failures, fmt.Sprintf("%s: %v", s, err))
		}
		if ctx.Err() != nil {
			return 130
		}
	}
	meta.Finished = time.Now().UTC()
	meta.Failures = o.failures
	if err := report.WriteRun(o.out, meta); err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	if len(o.failures) > 0 {
		fmt.Fprintf(stderr, "benchrun: %d run(s) failed:\n  %s\n", len(o.failures), strings.Join(o.failures, "\n  "))
		return 1
	}
	return 0
}

// parseFlags returns the options and scenarios, or nil and the exit code.
func parseFlags(args []string, stderr io.Writer) (*options, []string, int) {
	o := &options{}
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "out", "bench/results", "results directory (one sub-directory per scenario)")
	fs.StringVar(&o.binDir, "bin", "bin", "where the binaries are built")
	fs.StringVar(&o.toolsDir, "tools", "bin/tools", "where Centrifugo is installed (go install) when it is a target")
	fs.StringVar(&o.command, "command", "", "how this run was started, recorded in run.json for the report (e.g. \"make bench-all\")")
	targets := fs.String("targets", defaultTargets, "servers to benchmark, comma-separated: "+strings.Join(targetNames, ", "))
	ta := targetArgs{}
	fs.StringVar(&ta.ours, "ours-args", "-port {addr} -max-listeners {max} -log-level warn", "arguments of the service ({addr}, {port}, {max} are substituted); ours-hijack adds -streamer hijack")
	fs.StringVar(&ta.baseline, "baseline-args", "-addr {addr} -max-listeners {max} -quiet", "arguments of the baseline; baseline-flush adds -flush frame")
	fs.StringVar(&ta.original, "original-args", "-addr {addr} -quiet", "arguments of the replica of the original service")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured duration of each run (idle: hold time)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up of each load run")
	fs.IntVar(&o.repeat, "repeat", 3, "runs of each scenario point and target; the report takes their medians")
	fs.IntVar(&o.producers, "producers", 8, "producers at full speed (sweep, size, ingest, slow)")
	sweep := fs.String("sweep-listeners", "100,1000,5000,10000", "listener counts of the sweep scenario")
	rates := fs.String("rates", "50,100,200", "total events/s of the rates scenario")
	fs.IntVar(&o.rateL, "rate-listeners", 1000, "listeners of the rates and slow scenarios")
	fs.IntVar(&o.sizeL, "size-listeners", 1000, "listeners of the size scenario")
	fs.IntVar(&o.bigSize, "size", 1024, "event size in bytes of the size scenario (the others use 128)")
	fs.IntVar(&o.idleL, "idle-listeners", 10000, "listeners of the idle scenario")
	fs.Float64Var(&o.slowRate, "slow-rate", 100, "total events/s of the slow scenario")
	fs.IntVar(&o.ceilingL, "ceiling-listeners", 1000, "listeners of the tool-ceiling scenario")
	fs.IntVar(&o.latencyL, "latency-listeners", 1, "listeners of the latency scenario")
	fs.Float64Var(&o.latencyRate, "latency-rate", 500, "events/s of the latency scenario")
	fs.IntVar(&o.maxListen, "max-listeners", 20000, "value for the servers' -max-listeners")
	fs.BoolVar(&o.noBuild, "no-build", false, "use the binaries already in -bin (and -tools)")
	fs.BoolVar(&o.quick, "quick", false, "tiny runs (1 s, few listeners, one repeat) to check the set-up, not for numbers")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "benchrun — run benchmark scenarios against the service, the baselines and Centrifugo.\n\n"+
			"Usage: benchrun [flags] scenario...\n\nScenarios: %s, %s; all = %s\n\n",
			strings.Join(allScenarios, ", "), report.ScenarioSlow, strings.Join(allScenarios, " "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, 0
		}
		return nil, nil, 2
	}
	scenarios, err := parseScenarios(fs.Args())
	if err == nil {
		o.sweepL, err = parseInts(*sweep)
	}
	if err == nil {
		o.rates, err = parseFloats(*rates)
	}
	if err == nil {
		o.targets, err = parseTargets(*targets, ta)
	}
	if err == nil && o.repeat < 1 {
		err = errors.New("-repeat must be at least 1")
	}
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		if len(fs.Args()) == 0 {
			fs.Usage()
		}
		return nil, nil, 2
	}
	if o.quick {
		quickDefaults(fs, o)
	}
	return o, scenarios, 0
}

func parseScenarios(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("no scenario given")
	}
	if len(args) == 1 && args[0] == "all" {
		return allScenarios, nil
	}
	for _, s := range args {
		if !slices.Contains(allScenarios, s) && s != report.ScenarioSlow {
			return nil, fmt.Errorf("unknown scenario %q (known: %s, %s, all)", s, strings.Join(allScenarios, ", "), report.ScenarioSlow)
		}
	}
	return args, nil
}

// quickDefaults shrinks every flag not given explicitly.
func quickDefaults(fs *flag.FlagSet, o *options) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	quick := func(name string, apply func()) {
		if !set[name] {
			apply()
		}
	}
	quick("duration", func() { o.duration = time.Second })
	quick("warmup", func() { o.warmup = 300 * time.Millisecond })
	quick("repeat", func() { o.repeat = 1 })
	quick("sweep-listeners", func() { o.sweepL = []int{10, 50} })
	quick("rates", func() { o.rates = []float64{50} })
	quick("rate-listeners", func() { o.rateL = 50 })
	quick("size-listeners", func() { o.sizeL = 20 })
	quick("idle-listeners", func() { o.idleL = 200 })
	quick("ceiling-listeners", func() { o.ceilingL = 50 })
	quick("producers", func() { o.producers = 2 })
}

// recordedArgs are the arguments worth recording for the report: all but
// -out and -command, which say nothing about the measurement.
func recordedArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "out" || name == "command") {
			if !hasValue {
				i++ // skip the value too
			}
			continue
		}
		out = append(out, a)
	}
	return out
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

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}
