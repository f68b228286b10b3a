package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/load"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
)

// smallEvent is the event size of every scenario but size.
const smallEvent = 128

// runSpec is one sseload invocation, run against every target.
type runSpec struct {
	file string   // result file name, between "<target>-" and "-r<repeat>"
	args []string // sseload flags besides -url, -server-pid, -label, -json-out
}

// specs returns a scenario's runs. Every target gets the same flags.
func specs(o *options, name string) []runSpec {
	dur, warm := o.duration.String(), o.warmup.String()
	itoa := strconv.Itoa
	fullSpeed := func(listeners, size int) runSpec {
		// Enough sampled frames for a p99 without parsing every frame.
		sample := min(max(listeners/10, 1), 256)
		return runSpec{file: fmt.Sprintf("L%05d-%dB", listeners, size), args: []string{
			"-listeners", itoa(listeners), "-producers", itoa(o.producers), "-size", itoa(size), "-sample", itoa(sample),
			"-duration", dur, "-warmup", warm, "-drain", "5s", "-connect-timeout", "120s"}}
	}
	var out []runSpec
	switch name {
	case report.ScenarioSweep:
		for _, l := range o.sweepL {
			out = append(out, fullSpeed(l, smallEvent))
		}
	case report.ScenarioSize:
		out = append(out, fullSpeed(o.sizeL, o.bigSize))
	case report.ScenarioRates:
		for _, r := range o.rates {
			out = append(out, runSpec{file: fmt.Sprintf("L%d-R%g", o.rateL, r), args: []string{
				"-listeners", itoa(o.rateL), "-producers", itoa(min(o.producers, 4)), "-rate", fmt.Sprint(r),
				"-size", itoa(smallEvent), "-sample", "1", "-duration", dur, "-warmup", warm, "-drain", "5s"}})
		}
	case report.ScenarioIngest:
		out = append(out, runSpec{file: fmt.Sprintf("ingest-%dB", smallEvent), args: []string{
			"-listeners", "0", "-producers", itoa(o.producers), "-size", itoa(smallEvent), "-duration", dur, "-warmup", warm}})
	case report.ScenarioSlow:
		for _, frac := range []float64{0, 0.1} {
			out = append(out, runSpec{file: fmt.Sprintf("L%d-slow%02.0f", o.rateL, frac*100), args: []string{
				"-listeners", itoa(o.rateL), "-slow", fmt.Sprint(frac), "-producers", itoa(o.producers),
				"-rate", fmt.Sprint(o.slowRate), "-size", itoa(smallEvent), "-sample", "4",
				"-duration", dur, "-warmup", warm, "-drain", "5s"}})
		}
	case report.ScenarioLatency:
		// A sparse stream: what a listener waits for each event.
		out = append(out, runSpec{file: fmt.Sprintf("L%d-R%g", o.latencyL, o.latencyRate), args: []string{
			"-listeners", itoa(o.latencyL), "-producers", itoa(min(o.producers, 4)), "-rate", fmt.Sprint(o.latencyRate),
			"-size", itoa(smallEvent), "-sample", "1", "-duration", dur, "-warmup", warm, "-drain", "5s"}})
	case report.ScenarioIdle:
		out = append(out, runSpec{file: fmt.Sprintf("idle-L%d", o.idleL), args: []string{
			"-idle", "-listeners", itoa(o.idleL), "-duration", dur, "-connect-timeout", "120s"}})
	}
	return out
}

// runScenario runs every spec of a scenario against every target, repeat
// after repeat (so that a drift of the machine touches every target
// alike), into a cleared <out>/<name>, then writes its summary.md. A run
// that fails is recorded in o.failures and the others go on.
func runScenario(ctx context.Context, o *options, name string, stdout io.Writer) error {
	dir := filepath.Join(o.out, name)
	if err := clearResults(dir); err != nil {
		return err
	}
	for rep := 1; rep <= o.repeat; rep++ {
		if name == report.ScenarioToolCeiling {
			if err := runCeiling(ctx, o, dir, rep, stdout); err != nil {
				o.failures = append(o.failures, fmt.Sprintf("%s r%d: %v", name, rep, err))
			}
			continue
		}
		for _, sp := range specs(o, name) {
			for i := range o.targets {
				t := &o.targets[i]
				if !t.runsIn(name) {
					continue
				}
				if err := runOne(ctx, o, dir, t, sp, rep, stdout); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					o.failures = append(o.failures, fmt.Sprintf("%s %s %s r%d: %v", name, t.name, sp.file, rep, err))
				}
			}
		}
	}
	return writeSummary(dir)
}

// clearResults empties a scenario directory of an earlier run's results.
func clearResults(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, pattern := range []string{"*.json", "*.txt", "summary.md"} {
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return os.RemoveAll(filepath.Join(dir, "logs"))
}

// runCeiling measures sseload against its trivial in-process server.
func runCeiling(ctx context.Context, o *options, dir string, rep int, stdout io.Writer) error {
	base := filepath.Join(dir, fmt.Sprintf("sseload-self-test-%dB-r%d", smallEvent, rep))
	args := []string{"-self-test", "-listeners", strconv.Itoa(o.ceilingL), "-producers", strconv.Itoa(o.producers),
		"-duration", o.duration.String(), "-size", strconv.Itoa(smallEvent), "-label", "sseload", "-json-out", base + ".json"}
	return o.g.Run(ctx, stdout, o.sseloadBin, args, base+".txt")
}

var errServerDied = errors.New("the server exited during the run")

// runOne starts a fresh server, runs sseload against it and stops it.
func runOne(ctx context.Context, o *options, dir string, t *target, sp runSpec, rep int, stdout io.Writer) error {
	base := fmt.Sprintf("%s-%s-r%d", t.name, sp.file, rep)
	r, err := startRunning(ctx, o, t, filepath.Join(dir, "logs", base))
	if err != nil {
		return err
	}
	defer r.stop()
	srv := r.main
	args := []string{"-url", "http://" + srv.Addr(), "-server-pid", strconv.Itoa(srv.PID()), "-label", t.name,
		"-json-out", filepath.Join(dir, base+".json")}
	args = append(args, r.loadFlags()...)
	args = append(args, t.load...)
	if t.name == "centrifugo" && o.centrifugo != nil {
		args = append(args, o.centrifugo.loadFlags()...)
	}
	args = append(args, sp.args...)
	// sseload bounds every phase itself; this is the backstop should a
	// server stall it anyway (the original blocks every POST behind a
	// listener that does not read).
	limit := runLimit(o, sp.args)
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err = o.g.Run(rctx, stdout, o.sseloadBin, args, filepath.Join(dir, base+".txt"))
	if dead := r.died(); dead != nil {
		return fmt.Errorf("%w; its standard error ends with:\n%s", errServerDied, dead.Stderr())
	}
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("sseload did not finish within %s and was stopped", limit)
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
