# Sediment's build and test entry points. `make run` and `make test` are the
# contract on a fresh machine with only Go installed.

GO       ?= go
BIN      := $(CURDIR)/bin
SEDIMENT := $(BIN)/sediment
BENCH    := $(BIN)/sediment-bench
FUZZTIME ?= 2000x
PKGS     := ./...

export TESTCONTAINERS_RYUK_DISABLED := true

.PHONY: run cluster build image test test-deps test-image minio compose-deps standins up down fuzz bench profile lint clean

## run: build and start one broker with embedded etcd (data in ./data, Kafka on 127.0.0.1:9092)
run: build
	$(SEDIMENT) serve

## cluster: build and start three local brokers forming one cluster (etcd quorum of 3)
cluster: build
	SEDIMENT=$(SEDIMENT) ./scripts/cluster.sh

## build: the static broker binary (CGO_ENABLED=0) in ./bin
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(SEDIMENT) ./cmd/sediment

## image: the FROM scratch image deploy/Dockerfile describes, tagged $(IMAGE); its build
## context (bin/image) gets the stripped static binary, the host's CA bundle and the
## passwd/group entries of the unprivileged user (uid/gid 10001) that owns /data
IMAGE    ?= sediment:latest
IMAGECTX := $(BIN)/image
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
image:
	rm -rf $(IMAGECTX) && mkdir -p $(IMAGECTX)/etc $(IMAGECTX)/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(IMAGECTX)/sediment ./cmd/sediment
	cp $(CA_CERTS) $(IMAGECTX)/ca-certificates.crt
	printf 'root:x:0:0:root:/:/sbin/nologin\nsediment:x:10001:10001:sediment:/data:/sbin/nologin\n' >$(IMAGECTX)/etc/passwd
	printf 'root:x:0:\nsediment:x:10001:\n' >$(IMAGECTX)/etc/group
	docker build -q -t $(IMAGE) -f deploy/Dockerfile $(IMAGECTX)
	@docker image prune -f --filter label=org.opencontainers.image.title=sediment >/dev/null
	@docker image inspect $(IMAGE) --format '$(IMAGE): {{.Size}} bytes'

## test-image: `make image` where a Docker engine answers; without one, the container
## tests skip, except under CI=true, where this fails
test-image:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image standins; \
	elif [ "$$CI" = true ]; then echo "Docker is required by the tests in CI (CI=true)"; exit 1; \
	else echo "no Docker engine: the container tests (it/sedimenttc) will skip"; fi

## test: install what the tests need, then vet, unit, integration and brief fuzz runs
test: test-deps build test-image
	$(GO) vet $(PKGS)
	SEDIMENT_BIN=$(SEDIMENT) $(GO) test -race -count=1 -timeout 25m $(PKGS)
	cd deploy/deploytest && $(GO) vet ./... && SEDIMENT_BIN=$(SEDIMENT) $(GO) test -race -count=1 -timeout 10m ./...
	$(MAKE) fuzz

## test-deps: kcat (Debian package), the pinned MinIO server (./bin/minio) and the docker
## compose plugin when missing
test-deps: minio compose-deps
	@command -v kcat >/dev/null 2>&1 || { \
		echo "installing kcat"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq kcat >/dev/null; }
	@command -v kcat >/dev/null 2>&1 || { echo "kcat is required by the tests and could not be installed"; exit 1; }

## minio: build the pinned MinIO server into ./bin for the tier/s3 tests (skipped when current)
minio:
	@GO=$(GO) ./scripts/minio.sh

## compose-deps: the docker compose plugin, built from source when `docker compose` does not
## answer (scripts/compose-deps.sh)
compose-deps:
	@GO=$(GO) ./scripts/compose-deps.sh plugin

## standins: FROM scratch images named as deploy/compose.yaml's MinIO and Prometheus images,
## from ./bin/minio and the pinned Prometheus server built from source into ./bin/prometheus,
## where no image of those names exists (no registry); make test builds them with Docker only
standins: minio
	@GO=$(GO) ./scripts/compose-deps.sh images

## up: the compose stack of deploy/compose.yaml (3 brokers, MinIO, Prometheus) on loopback
## ports, waiting until every broker is healthy; down: stop it (keeping its volumes)
COMPOSE := docker compose -f deploy/compose.yaml
up: image
	@GO=$(GO) ./scripts/compose-deps.sh plugin
	$(COMPOSE) up -d --wait
	@echo "Kafka 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094; Prometheus http://127.0.0.1:9090; MinIO console http://127.0.0.1:9001"
down:
	$(COMPOSE) down

## fuzz: run every fuzz target briefly (FUZZTIME each)
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

## bench: Sediment against franz-go's kfake with the same franz-go workload (bin/sediment-bench; BENCH.md)
bench: build minio image
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BENCH) ./cmd/sediment-bench
	$(BENCH) --sediment-bin $(SEDIMENT) $(if $(KLITE),--klite-bin $(KLITE))

## profile: CPU and allocation profiles of the broker during the bench's produce and consume
## phases (--records PROFILE_RECORDS, default 1,000,000) in ./profiles, and their top 10 frames
PROFILE_RECORDS ?= 1000000
profile: build
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BENCH) ./cmd/sediment-bench
	GO=$(GO) ./scripts/profile.sh $(BENCH) $(SEDIMENT) $(CURDIR)/profiles --records $(PROFILE_RECORDS)

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
