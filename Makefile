# walletd — the two commands a fresh machine needs are `make run` and `make test`.
GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
# `make run` is for a developer's machine: a fixed key so the README's curl
# walk-through works verbatim. Production sets WALLET_API_KEYS itself.
WALLET_API_KEYS ?= dev-key
export WALLET_API_KEYS

.PHONY: all build run test test-short lint fmt vet fuzz bench bench-micro clean

all: lint test build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run: build
	./$(BIN)/walletd

# Everything, with the race detector. Tests that need Postgres or Redis skip
# loudly when those are not reachable — except under CI=true, where they fail.
# The in-process cluster members skip under -race (Proto.Actor races with
# itself; see cluster/node_test.go): the last line runs them without it.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -timeout 5m -run 'TestMember|TestGrain' ./cluster/

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Longer fuzzing than the corpus run inside `make test`.
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzApply -fuzztime=$(FUZZTIME) ./wallet/
	$(GO) test -run='^$$' -fuzz=FuzzParseAmount -fuzztime=$(FUZZTIME) ./wallet/

# The side-by-side load suite (docs/benchmarks.md): walletd on both stores,
# the naive row-lock baseline and the no-op ceiling, over HTTP, every run
# checked for lost or double-applied money; about 3 minutes. Needs Postgres
# on 127.0.0.1:5432 (user postgres, trust; BENCH_PG overrides). Writes
# bench/results/<date>.{md,json,svg} and <date>-cpu.prof; exits 1 on any
# discrepancy.
BENCH_PG   ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
BENCH_ARGS ?=
bench:
	$(GO) build -o $(BIN)/walletbench ./cmd/walletbench
	./$(BIN)/walletbench suite -pg '$(BENCH_PG)' -out bench/results $(BENCH_ARGS)

# Microbenchmarks of the engine (figures are printed, never asserted).
bench-micro:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

clean:
	rm -rf $(BIN)
