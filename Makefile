# Pillarbox Event Dispatcher: development and release workflow.
#
# `make` (or `make help`) lists every target. Targets are documented by a
# trailing `## description` comment, here and in the included bench/bench.mk.
# .ci/run runs the same commands without make; keep the two in step.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

MODULE  := github.com/SRGSSR/pillarbox-event-dispatcher
BINARY  := event_dispatcher
CMD     := ./cmd/event_dispatcher

# VERSION is embedded in the binaries; a release passes the tag (vX.Y.Z).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X $(MODULE)/internal/app.Version=$(VERSION) -X $(MODULE)/internal/app.Commit=$(COMMIT)

# Release platforms, as GOOS/GOARCH.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

# Pinned tool versions; .ci/run reads them from these two lines.
GOLANGCI_LINT_VERSION := v2.15.0
ACTIONLINT_VERSION := v1.7.12
NATS_SERVER_VERSION := v2.15.2

# Where `make tools` installs: GOBIN, or the first GOPATH entry's bin.
TOOLS_BIN := $(or $(shell go env GOBIN),$(firstword $(subst :, ,$(shell go env GOPATH)))/bin)
GOLANGCI_LINT := $(TOOLS_BIN)/golangci-lint
ACTIONLINT := $(TOOLS_BIN)/actionlint

# Executions per fuzz target (Nx). A duration (20s) also works, but Go before
# 1.27 can fail such a run when it ends (go.dev/issue/75804).
FUZZTIME ?= 20000x
BENCH ?= .
IMAGE ?= pillarbox-event-dispatcher
ARGS ?=

.PHONY: help build dist check-dist run test race e2e-nats bench fuzz fmt lint lint-tools tools docker hooks clean

help: ## List the targets (default)
	@echo "Usage: make <target> [VAR=value ...]"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[A-Za-z0-9_.\/-]+:.*## / { printf "  %-22s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: VERSION=$(VERSION) FUZZTIME=$(FUZZTIME) BENCH=$(BENCH) IMAGE=$(IMAGE) ARGS=$(ARGS)"

build: ## Build the host binary into bin/event_dispatcher
	go build -ldflags "$(LDFLAGS)" -o bin/$(BINARY) $(CMD)

dist: ## Build static (CGO_ENABLED=0) release binaries into dist/event_dispatcher-<os>-<arch>
	@mkdir -p dist
	@rm -f dist/$(BINARY)-*
	@for platform in $(PLATFORMS); do \
		os="$${platform%/*}"; arch="$${platform#*/}"; \
		echo "==> dist/$(BINARY)-$$os-$$arch ($(VERSION))"; \
		CGO_ENABLED=0 GOOS="$$os" GOARCH="$$arch" \
			go build -ldflags "$(LDFLAGS)" -o "dist/$(BINARY)-$$os-$$arch" $(CMD); \
	done

check-dist: ## Verify GOOS/GOARCH, CGO_ENABLED=0 and VERSION of every dist/ binary
	scripts/check-dist.sh dist "$(VERSION)" $(PLATFORMS)

run: ## Run the dispatcher from source (pass flags with ARGS="-heartbeat 30s")
	go run -ldflags "$(LDFLAGS)" $(CMD) $(ARGS)

test: ## Run the test suite (the service and the bench module): go test -race -timeout 30m ./... ./bench/...
	go test -race -timeout 30m ./... ./bench/...

race: ## Run the test suite with the race detector, bypassing the test cache
	go test -race -count=1 -timeout 30m ./... ./bench/...

# CI=1 makes a missing nats-server binary fail the test instead of skipping it.
e2e-nats: ## Run the end-to-end scale-out test: nats-server and two dispatcher processes
	CI="$${CI:-1}" go test -race -count=1 -timeout 5m -run '^TestE2ENATS$$' -v ./internal/app/

bench: ## Run the ./pkg/... micro-benchmarks (BENCH=regexp to select)
	go test -run '^$$' -bench '$(BENCH)' -benchmem ./pkg/...

fuzz: ## Run every Fuzz target in the tree for FUZZTIME each (default 20000x executions), then list the failures
	scripts/fuzz.sh "$(FUZZTIME)" ./... ./bench/...

fmt: ## Format the Go code (gofmt -s, then golangci-lint fmt if installed)
	gofmt -s -w .
	@if [ -x "$(GOLANGCI_LINT)" ]; then echo "$(GOLANGCI_LINT) fmt"; "$(GOLANGCI_LINT)" fmt; \
	else echo "golangci-lint not installed (make tools): skipped goimports"; fi

lint: lint-tools ## Check gofmt, go vet, golangci-lint and actionlint (shellcheck if installed)
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted (run make fmt):"; echo "$$unformatted"; exit 1; fi
	go vet ./... ./bench/...
	"$(GOLANGCI_LINT)" run ./... ./bench/...
	"$(ACTIONLINT)"
	@if command -v shellcheck >/dev/null; then \
		echo "shellcheck .githooks/* .ci/run scripts/*.sh"; shellcheck .githooks/* .ci/run scripts/*.sh; \
	else echo "shellcheck not installed: skipped"; fi

# lint-tools fails early, with the remedy, when make tools has not been run.
lint-tools:
	@for tool in "$(GOLANGCI_LINT)" "$(ACTIONLINT)"; do \
		if [ ! -x "$$tool" ]; then echo "$$tool is not installed: run make tools (it installs the pinned linters)" >&2; exit 1; fi; \
	done

tools: ## Install the pinned golangci-lint, actionlint and nats-server (for the end-to-end tests) into GOBIN
	GOBIN="$(TOOLS_BIN)" go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	GOBIN="$(TOOLS_BIN)" go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	GOBIN="$(TOOLS_BIN)" go install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

docker: ## Build the container image IMAGE:VERSION and IMAGE:latest (needs a Docker engine)
	docker build --build-arg VERSION="$(VERSION)" --build-arg COMMIT="$(COMMIT)" -t "$(IMAGE):$(VERSION)" -t "$(IMAGE):latest" .

hooks: ## Use the repository's git hooks (.githooks)
	git config core.hooksPath .githooks

clean: ## Remove build outputs, test binaries and profiles
	rm -rf bin dist
	rm -f ./*.test ./*.out ./*.prof coverage.html

-include bench/bench.mk
