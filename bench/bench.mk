# Benchmarks: the Pillarbox Event Dispatcher ("ours") against the
# conventional baseline server (bench/baseline) and, on request, the replica
# of the original service's design (bench/original), loaded by sseload.
# Included by the root Makefile (-include bench/bench.mk); bench/README.md
# describes the scenarios and how to read the results.
#
# Every scenario goes through bench/cmd/benchrun, which builds
# bin/event_dispatcher, bin/baseline (bin/original), bin/sseload and
# bin/benchplot, starts each server on a free 127.0.0.1 port (PID recorded),
# runs sseload with the same flags against each, writes JSON + text results
# and a summary.md under $(BENCH_OUT)/<scenario>/, and stops every process it
# started by PID, also on Ctrl-C / SIGTERM (and the kernel kills the servers
# should benchrun die).
#
# Variables:
#   BENCH_TARGETS=ours,baseline   which servers: ours, baseline, original
#                                 (baseline alone while the service does
#                                 not build; add original to measure the
#                                 original's design in the same run)
#   BENCH_OUT=bench/results       results directory
#   BENCH_DURATION=10s            measured time of each run
#   BENCH_FLAGS=                  more benchrun flags, e.g. -warmup 3s or
#                                 -fanout-listeners 1,100,1000,5000,10000

BENCH_OUT      ?= bench/results
BENCH_TARGETS  ?= ours,baseline
BENCH_DURATION ?= 10s
BENCH_FLAGS    ?=
BENCHRUN       := bin/benchrun

.PHONY: bench-fanout bench-latency bench-ingest bench-slow bench-idle bench-tool-ceiling bench-chart bench-all bench-quick

# $(call bench_run,<targets>,<scenarios>): raise the open-file limit (10,000
# listeners need as many descriptors in sseload and in the server, which
# inherit it), build benchrun and run it.
define bench_run
	@ulimit -n 65536 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; \
	go build -o $(BENCHRUN) ./bench/cmd/benchrun; \
	$(BENCHRUN) -out '$(BENCH_OUT)' -targets '$(1)' -duration '$(BENCH_DURATION)' $(BENCH_FLAGS) $(2)
endef

bench-fanout: ## Benchmark fan-out: 1/100/1000/5000 listeners, 128 B and 1 KiB events, 8 producers at full speed
	$(call bench_run,$(BENCH_TARGETS),fanout)

bench-latency: ## Benchmark end-to-end latency: 1000 listeners at 200 events/s, every frame timed
	$(call bench_run,$(BENCH_TARGETS),latency)

bench-ingest: ## Benchmark ingestion: POST /api/events with no listener, 8 producers at full speed
	$(call bench_run,$(BENCH_TARGETS),ingest)

bench-slow: ## Benchmark slow listeners: 1000 listeners at 100 events/s, 10% stop reading, against the same run without
	$(call bench_run,$(BENCH_TARGETS),slow)

bench-idle: ## Benchmark idle memory: 10000 idle listeners, server KiB per listener
	$(call bench_run,$(BENCH_TARGETS),idle)

bench-tool-ceiling: ## Measure sseload's own ceiling against a trivial in-process server
	$(call bench_run,,tool-ceiling)

bench-chart: ## Chart the fanout results (deliveries/s and p99 vs listeners) into fanout.svg and fanout.png
	go run ./bench/cmd/benchplot -o '$(BENCH_OUT)/fanout/fanout' '$(BENCH_OUT)/fanout'

bench-all: ## Run every benchmark scenario, then the chart (about 15 minutes)
	$(call bench_run,$(BENCH_TARGETS),all)

bench-quick: ## Check the benchmark set-up with tiny runs (numbers meaningless)
	$(call bench_run,$(BENCH_TARGETS),-quick -out '$(BENCH_OUT)/quick' all)
