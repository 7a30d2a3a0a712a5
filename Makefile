# BioSync developer and CI entry points. Nothing here is machine-specific:
# services for tests come from the environment (see deploy/testbackend) or
# from in-process stand-ins; `make ci` provisions real ones first.

GO ?= go

.PHONY: run test fuzz-roundtrip bench lint generate ci

## run: start the single binary with its embedded defaults (kfake, PostgreSQL, miniredis)
run:
	$(GO) run ./cmd/biosync serve

## test: the whole suite; -p 2 matches the 2-core CI machine and bounds the
## number of throwaway PostgreSQL clusters running at once
test:
	$(GO) test -p 2 -count=1 -timeout 25m ./...
	$(MAKE) --no-print-directory fuzz-roundtrip

## fuzz-roundtrip: a bounded budget of the round-trip fuzz target (any accepted
## push reads back through every query); the committed corpus already ran in
## the line above. Longer: FUZZTIME=10m make fuzz-roundtrip
FUZZTIME ?= 150x
fuzz-roundtrip:
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzAcceptedPushesReadBack$$' -fuzztime $(FUZZTIME) -parallel 2 ./cmd/biosync/

## bench: the ratio benchmarks (rebuild, ingest, freshness, dashboard), each
## beside a baseline measured in the same run; table on stdout, JSON in
## BENCH_OUT (default bench-results.json). Flags: go run ./cmd/biosync-bench -h
bench:
	$(GO) run ./cmd/biosync-bench

## lint: go vet plus a gofmt check
lint:
	$(GO) vet ./...
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l reports unformatted files:"; echo "$$unformatted"; exit 1; fi

## generate: regenerate code (go:generate directives)
generate:
	$(GO) generate ./...

## ci: what CI runs: provision real Kafka/PostgreSQL/Redis, then make test
ci:
	bash .ci/run
