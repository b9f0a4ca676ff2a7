# keygate make targets. `make check` is what CI runs.
GO       ?= go
FUZZTIME ?= 1m
PKGS     := ./...

.PHONY: stress soak all build test vet fmt check fuzz fuzz-short demo bench bench-go clean image image-context image-check

all: check

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/keygate ./cmd/keygate

test:
	$(GO) test -race $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

check: fmt vet test

demo:
	$(GO) run ./cmd/keygate demo

# fuzz runs every fuzz target for FUZZTIME each (go test runs one target at a time).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# fuzz-short is the brief run CI does: a fixed number of inputs per target (a time
# budget can end mid-input and report a spurious "context deadline exceeded").
fuzz-short:
	$(MAKE) fuzz FUZZTIME=20000x

# bench runs the load harness (cmd/keygate-bench, about two minutes): a fast
# backend, a stock ReverseProxy, keygate with a real redis-server and, when
# installed, nginx, all on loopback; it prints a Markdown report. Longer or
# narrower runs: make bench BENCHFLAGS="-d 10s -rounds 6" (go run
# ./cmd/keygate-bench -h lists the flags).
BENCHFLAGS ?=
bench:
	$(GO) run ./cmd/keygate-bench $(BENCHFLAGS)

# bench-go runs the Go benchmarks of the handler chain and the limiters.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./proxy ./ratelimit ./policy

clean:
	rm -rf bin

# image builds the container image IMAGE (default keygate:dev) from deploy/Dockerfile with podman, or docker
# where podman is missing, offline: go build here (static, -trimpath, VERSION stamped, time zone data
# embedded), then an image FROM scratch with the binary, the CA bundle and passwd/group entries for 65532.
# ARCHES="amd64 arm64" builds a podman manifest list; image-context only prepares bin/image for docker buildx.
# image-check builds it and runs it as Kubernetes would (deploy/image/check.sh).
IMAGE   ?= keygate:dev
VERSION ?=
ARCHES  ?=
image:
	IMAGE=$(IMAGE) VERSION=$(VERSION) ARCHES="$(ARCHES)" bash deploy/image/build.sh build

image-context:
	VERSION=$(VERSION) ARCHES="$(ARCHES)" bash deploy/image/build.sh context

image-check:
	VERSION=$(VERSION) bash deploy/image/check.sh

# soak runs keygate with Redis at a fixed rate for SOAK (default 3m), restarting Redis half-way, and checks the
# contract, goroutines and RSS.
SOAK ?= 3m
soak:
	$(GO) test -tags soak -run '^TestSoak$$' -timeout 30m -v ./cmd/keygate -soak.duration $(SOAK)

# stress runs the whole suite RUNS times (default 10) with -race while a CPU hog keeps one core busy, stopping at
# the first red run. Use it after touching anything concurrent or timed, and before relying on a new test in CI.
RUNS ?= 10
stress:
	RUNS=$(RUNS) bash .ci/stress
