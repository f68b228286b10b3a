# Benchmarks: the Pillarbox Event Dispatcher ("ours", "ours-hijack": the
# service started with -streamer hijack, "ours-nats" and "ours-nats3": one
# and three instances sharing a NATS JetStream stream) against two conventional net/http
# baselines (bench/baseline: drain the channel then flush, and
# "baseline-flush": flush every event), Centrifugo's unidirectional SSE and,
# on request, the replica of the original service (bench/original), all
# loaded by sseload; and a soak of the service. Included by the root
# Makefile (-include bench/bench.mk); bench/README.md describes the
# scenarios and how to read the results.
#
# The bench is its own Go module (bench/go.mod), joined to the service's by
# go.work; the tools are built from it with go build -C bench.
#
# Every scenario goes through bench/cmd/benchrun, which builds
# bin/event_dispatcher, bin/baseline, bin/sseload (bin/original), installs
# Centrifugo into bin/tools when it is a target, checks that every target
# starts, then for each repeat, scenario point and target starts a fresh
# server on a free 127.0.0.1 port (PID recorded), runs sseload against it
# and stops it by PID, also on Ctrl-C / SIGTERM (the kernel kills the
# servers should benchrun die). Results go to $(BENCH_OUT)/<scenario>/;
# bench/cmd/benchreport then takes the medians of the repeats, marks the
# goals, and writes $(BENCH_OUT)/report.md, report.json and sweep.svg/.png.
#
# Variables:
#   BENCH_TARGETS=...   servers: ours, ours-hijack, ours-scraped, ours-nats,
#                       ours-nats3, baseline, baseline-flush, centrifugo,
#                       original (default: all but original)
#   BENCH_REPEAT=3      runs of every scenario point; the report takes medians
#   BENCH_DURATION=5s   measured time of each run (idle: hold time)
#   BENCH_OUT=bench/results
#   BENCH_FLAGS=        more benchrun flags, e.g. -warmup 2s or
#                       -sweep-listeners 100,1000,5000,10000,20000
#   SOAK_DURATION=3m    how long make soak loads the service
#   SOAK_FLAGS=         more soak flags, e.g. -args "-streamer hijack"

BENCH_OUT      ?= bench/results
BENCH_TARGETS  ?= ours,ours-hijack,ours-scraped,ours-nats,ours-nats3,baseline,baseline-flush,centrifugo
BENCH_REPEAT   ?= 3
BENCH_DURATION ?= 5s
BENCH_FLAGS    ?=
SOAK_DURATION  ?= 3m
SOAK_FLAGS     ?=
BENCHRUN       := bin/benchrun
BENCHREPORT    := bin/benchreport

# The READMEs' generated sections are rewritten only from the committed
# results directory, so that their links and figures stay in the repository.
ifeq ($(BENCH_OUT),bench/results)
BENCH_README_FLAGS := -readme README.md -bench-readme bench/README.md
endif

.PHONY: bench-all bench-report bench-sweep bench-size bench-rates bench-idle bench-ingest bench-latency bench-slow bench-tool-ceiling bench-quick soak

# The flags every scenario target passes to benchrun.
BENCH_RUN_FLAGS = -targets '$(BENCH_TARGETS)' -repeat '$(BENCH_REPEAT)' -duration '$(BENCH_DURATION)' $(BENCH_FLAGS)

# $(call bench_run,<scenarios>,<benchrun flags>,<benchreport flags>,<out>):
# raise the open-file limit (10,000 listeners need as many descriptors in
# sseload and in the server, which inherit it), build benchrun and
# benchreport, run the scenarios, then write the report even when some runs
# failed (it lists them), and fail if they did. benchrun exits 3 when nothing
# was measured (a target did not start) and 130 when interrupted: no report.
define bench_run
	@ulimit -n 65536 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; \
	go build -C bench -o ../$(BENCHRUN) ./cmd/benchrun && go build -C bench -o ../$(BENCHREPORT) ./cmd/benchreport || exit 1; \
	status=0; \
	$(BENCHRUN) -out '$(4)' -command 'make $@' $(2) $(1) || status=$$?; \
	if [ "$$status" -le 1 ]; then $(BENCHREPORT) -results '$(4)' $(3) || status=1; fi; \
	exit $$status
endef

bench-all: ## Run every benchmark scenario BENCH_REPEAT times, write the report and rewrite the READMEs' benchmark sections (about 30 min)
	$(call bench_run,all,$(BENCH_RUN_FLAGS),$(BENCH_README_FLAGS),$(BENCH_OUT))

bench-report: ## Rewrite the report and the READMEs' benchmark sections from the results in BENCH_OUT
	go build -C bench -o ../$(BENCHREPORT) ./cmd/benchreport
	$(BENCHREPORT) -results '$(BENCH_OUT)' $(BENCH_README_FLAGS)

bench-sweep: ## Benchmark full speed at 100/1000/5000/10000 listeners, 8 producers, 128 B events
	$(call bench_run,sweep,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-size: ## Benchmark 1 KiB events at full speed, 1000 listeners
	$(call bench_run,size,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-rates: ## Benchmark 1000 listeners at 50/100/200 events/s: e2e p99 and server CPU
	$(call bench_run,rates,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-idle: ## Benchmark server memory per idle listener, 10000 listeners
	$(call bench_run,idle,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-ingest: ## Benchmark POST /api/events with no listener, 8 producers at full speed
	$(call bench_run,ingest,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-latency: ## Benchmark a sparse stream: 1 listener at 500 events/s, e2e p50/p99 (the service, single and NATS)
	$(call bench_run,latency,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-slow: ## Benchmark 1000 listeners at 100 events/s, with and without 10% that stop reading
	$(call bench_run,slow,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-tool-ceiling: ## Measure sseload's own ceiling against a trivial in-process server
	$(call bench_run,tool-ceiling,$(BENCH_RUN_FLAGS),,$(BENCH_OUT))

bench-quick: ## Check the benchmark set-up with tiny runs of every scenario into BENCH_OUT/quick (numbers meaningless)
	$(call bench_run,all,-targets '$(BENCH_TARGETS)' -quick $(BENCH_FLAGS),,$(BENCH_OUT)/quick)

soak: ## Soak the service: steady load with listener churn for SOAK_DURATION (3m); memory, goroutines and descriptors must stay flat
	@ulimit -n 65536 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; \
	go build -ldflags "$(LDFLAGS)" -o bin/$(BINARY) $(CMD) && go build -C bench -o ../bin/soak ./cmd/soak && \
	bin/soak -bin bin/$(BINARY) -duration '$(SOAK_DURATION)' $(SOAK_FLAGS)
