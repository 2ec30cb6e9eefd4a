# Sediment's build and test entry points. `make run` and `make test` are the
# contract on a fresh machine with only Go installed.

GO       ?= go
BIN      := $(CURDIR)/bin
SEDIMENT := $(BIN)/sediment
BENCH    := $(BIN)/sediment-bench
FUZZTIME ?= 2000x
PKGS     := ./...

export TESTCONTAINERS_RYUK_DISABLED := true

.PHONY: run cluster build test test-deps minio fuzz bench lint clean

## run: build and start one broker with embedded etcd (data in ./data, Kafka on 127.0.0.1:9092)
run: build
	$(SEDIMENT) serve

## cluster: build and start three local brokers forming one cluster (etcd quorum of 3)
cluster: build
	SEDIMENT=$(SEDIMENT) ./scripts/cluster.sh

## build: the static broker binary (CGO_ENABLED=0) in ./bin
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(SEDIMENT) ./cmd/sediment

## test: install what the tests need, then vet, unit, integration and brief fuzz runs
test: test-deps build
	$(GO) vet $(PKGS)
	SEDIMENT_BIN=$(SEDIMENT) $(GO) test -race -count=1 -timeout 25m $(PKGS)
	$(MAKE) fuzz

## test-deps: kcat (Debian package) and the pinned MinIO server (./bin/minio) when missing
test-deps: minio
	@command -v kcat >/dev/null 2>&1 || { \
		echo "installing kcat"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq kcat >/dev/null; }
	@command -v kcat >/dev/null 2>&1 || { echo "kcat is required by the tests and could not be installed"; exit 1; }

## minio: build the pinned MinIO server into ./bin for the tier/s3 tests (skipped when current)
minio:
	@GO=$(GO) ./scripts/minio.sh

## fuzz: run every fuzz target briefly (FUZZTIME each)
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

## bench: Sediment against franz-go's kfake with the same franz-go workload (bin/sediment-bench; BENCH.md)
bench: build minio
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BENCH) ./cmd/sediment-bench
	$(BENCH) --sediment-bin $(SEDIMENT)

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
