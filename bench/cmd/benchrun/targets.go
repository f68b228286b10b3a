package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/proc"
	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
)

// targetNames are the servers benchrun knows, in report order.
var targetNames = []string{"ours", "ours-hijack", "ours-scraped", "ours-nats", "ours-nats3", "baseline", "baseline-flush", "original", "centrifugo"}

// targetArgs are the argument templates given on the command line.
type targetArgs struct{ ours, baseline, original string }

// target is a server implementation to benchmark.
type target struct {
	name string // label stored in the results
	bin  string // file name in -bin (-tools for Centrifugo)
	dir  string // module directory the package is built in
	pkg  string // package to build ("" when installed instead)
	args string // template: {addr} {port} {max} {config} are substituted
	// load are sseload flags this target needs to be loaded at all (how a
	// listener counts as connected), added to the scenario's flags, which
	// are the same for every target.
	load []string
	// hint is added to the error when the target does not start.
	hint string
	// only, when set, names the scenarios the target runs in; it is
	// skipped in the others.
	only []string
	// instances, for a NATS target, is how many instances share the stream
	// of a nats-server started for each run (see nats.go); 0 otherwise.
	instances int
}

// runsIn says whether the target is measured in scenario. The latency
// scenario compares the service's modes: the other servers skip it.
func (t *target) runsIn(scenario string) bool {
	if scenario == report.ScenarioLatency && !strings.HasPrefix(t.name, "ours") {
		return false
	}
	return len(t.only) == 0 || slices.Contains(t.only, scenario)
}

func parseTargets(list string, ta targetArgs) ([]target, error) {
	var out []target
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || slices.ContainsFunc(out, func(t target) bool { return t.name == name }) {
			continue
		}
		t := target{name: name}
		switch name {
		case "ours", "ours-hijack", "ours-scraped", "ours-nats", "ours-nats3":
			t.bin, t.dir, t.pkg, t.args = "event_dispatcher", ".", "./cmd/event_dispatcher", ta.ours
			switch name {
			case "ours-hijack":
				t.args += " -streamer hijack"
				t.hint = "ours-hijack is the service started with -streamer hijack: a service without that flag cannot be measured as ours-hijack"
			case "ours-nats", "ours-nats3":
				// The scale-out mode: one instance, or three sharing the
				// stream (nats.go). It is compared where it differs: the
				// cost of a POST, and the latency of a sparse stream.
				t.instances = 1
				if name == "ours-nats3" {
					t.instances = 3
				}
				t.only = []string{report.ScenarioIngest, report.ScenarioLatency}
				t.hint = "the NATS targets need nats-server: go install github.com/nats-io/nats-server/v2@v2.15.2"
			case "ours-scraped":
				// The service as ours, its /metrics read every second
				// during the measured phase, as Prometheus would: the
				// difference with ours is what being scraped costs.
				// The sweep alone answers that question.
				t.load = []string{"-scrape-interval", "1s"}
				t.only = []string{report.ScenarioSweep}
			}
		case "baseline", "baseline-flush":
			t.bin, t.dir, t.pkg, t.args = "baseline", "bench", "./cmd/baseline", ta.baseline
			if name == "baseline-flush" {
				t.args += " -flush frame"
			}
		case "original":
			// The original sends no byte, not even the response head, before
			// the first event: its listeners count as connected once their
			// request is sent (the warm-up lets it register them).
			t.bin, t.dir, t.pkg, t.args = "original", "bench", "./cmd/original", ta.original
			t.load = []string{"-ready-on-send"}
		case "centrifugo":
			t.bin = "centrifugo"
			t.args = "-c {config} -a 127.0.0.1 -p {port}"
		default:
			return nil, fmt.Errorf("unknown target %q (known: %s)", name, strings.Join(targetNames, ", "))
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("no target")
	}
	return out, nil
}

func (t *target) path(o *options) string {
	if t.name == "centrifugo" {
		return filepath.Join(o.toolsDir, t.bin)
	}
	return filepath.Join(o.binDir, t.bin)
}

// prepare builds what the scenarios need, sets Centrifugo up when it is a
// target, and checks that every target starts and answers its health
// check, so that a target that cannot run fails the run at once rather
// than after the others' scenarios.
func prepare(ctx context.Context, o *options, scenarios []string) error {
	o.sseloadBin = filepath.Join(o.binDir, "sseload")
	if !o.noBuild {
		built := map[string]bool{}
		builds := make([]target, 0, 1+len(o.targets))
		builds = append(builds, target{bin: "sseload", dir: "bench", pkg: "./cmd/sseload"})
		builds = append(builds, o.targets...)
		for _, t := range builds {
			if t.pkg == "" || built[t.bin] {
				continue
			}
			built[t.bin] = true
			fmt.Fprintf(os.Stderr, "benchrun: go build -o %s %s (in %s)\n", filepath.Join(o.binDir, t.bin), t.pkg, t.dir)
			if err := proc.Build(ctx, t.dir, filepath.Join(o.binDir, t.bin), t.pkg); err != nil {
				return err
			}
		}
	}
	if slices.ContainsFunc(o.targets, func(t target) bool { return t.instances > 0 }) {
		// A missing nats-server fails those targets' start below, with a
		// hint; the others go on.
		o.natsServer, _ = findNATSServer(ctx)
	}
	if slices.ContainsFunc(o.targets, func(t target) bool { return t.name == "centrifugo" }) {
		cf, err := setupCentrifugo(ctx, o)
		if err != nil {
			return err
		}
		o.centrifugo = cf
		o.g.Redact = append(o.g.Redact, cf.apiKey, cf.secret, cf.token)
	}
	if len(scenarios) == 1 && scenarios[0] == report.ScenarioToolCeiling {
		return nil // no server needed
	}
	var failed []string
	for i := range o.targets {
		t := &o.targets[i]
		r, err := startRunning(ctx, o, t, "")
		if err != nil {
			if t.hint != "" && !strings.Contains(err.Error(), t.hint) {
				err = fmt.Errorf("%w\n%s", err, t.hint)
			}
			failed = append(failed, err.Error())
			continue
		}
		r.stop()
	}
	if len(failed) > 0 {
		var keep []string
		for _, t := range o.targets {
			if !slices.ContainsFunc(failed, func(f string) bool { return strings.HasPrefix(f, "target "+t.name+":") }) {
				keep = append(keep, t.name)
			}
		}
		return fmt.Errorf("%s\n(nothing was measured; to leave the failing targets out: BENCH_TARGETS=%s, or benchrun -targets %s)",
			strings.Join(failed, "\n"), strings.Join(keep, ","), strings.Join(keep, ","))
	}
	return nil
}

// startTarget starts a fresh server of t on a free loopback port, logging
// to logPath (nowhere when empty), and waits until it is healthy.
func startTarget(ctx context.Context, o *options, t *target, logPath string) (*proc.Server, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	config := ""
	var env []string
	if o.centrifugo != nil && t.name == "centrifugo" {
		config = o.centrifugo.config
		env = o.centrifugo.env()
	}
	srv, err := o.g.StartServer(ctx, proc.ServerSpec{
		Name: t.name, Bin: t.path(o), Args: expandArgs(t.args, addr, port, o.maxListen, config),
		Env: env, Addr: addr, LogPath: logPath,
	})
	if err != nil {
		if t.hint != "" {
			return nil, fmt.Errorf("target %s: %w\n%s", t.name, err, t.hint)
		}
		return nil, fmt.Errorf("target %s: %w", t.name, err)
	}
	return srv, nil
}

// expandArgs splits the argument template on spaces and substitutes the
// placeholders.
func expandArgs(tmpl, addr string, port, maxListeners int, config string) []string {
	r := strings.NewReplacer("{addr}", addr, "{port}", strconv.Itoa(port), "{max}", strconv.Itoa(maxListeners), "{config}", config)
	return strings.Fields(r.Replace(tmpl))
}
