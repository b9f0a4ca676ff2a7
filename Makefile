# keygate make targets. `make check` is what CI runs.
GO       ?= go
FUZZTIME ?= 1m
PKGS     := ./...

.PHONY: stress soak all build test test-deps vet fmt check fuzz fuzz-short demo bench bench-go clean image image-context image-check

all: check

# VERSION is what keygate version prints beside the VCS revision Go records.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/keygate ./cmd/keygate

# test is the README's test command. The tests start real redis-server
# processes; when it is missing, test-deps installs it with the system's
# package manager if run as root, and otherwise says what to install.
# -count=1: the tests drive real processes (redis-server, keygate itself),
# which Go's test cache cannot see, so a cached pass proves nothing.
test: test-deps
	$(GO) test -race -count=1 $(PKGS)

test-deps:
	@command -v redis-server >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "redis-server is missing: the tests start their own. Install it as root, e.g.:"; \
	  echo "  sudo apt-get install -y redis-server   (Debian, Ubuntu)"; \
	  echo "  sudo dnf install -y redis              (Fedora, RHEL)"; \
	  echo "  sudo apk add redis                     (Alpine)"; \
	  echo "  brew install redis                     (macOS)"; \
	  echo "or run make test as root to have it installed."; exit 1; \
	fi; \
	echo "== installing redis-server (the tests start their own processes)"; \
	if command -v apt-get >/dev/null 2>&1; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	elif command -v dnf >/dev/null 2>&1; then dnf install -y -q redis; \
	elif command -v yum >/dev/null 2>&1; then yum install -y -q redis; \
	elif command -v apk >/dev/null 2>&1; then apk add -q redis; \
	else echo "no known package manager: install redis-server (Redis 6 or later) and run make test again"; exit 1; fi; \
	if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi; \
	command -v redis-server >/dev/null 2>&1 || { echo "redis-server is still not on PATH"; exit 1; }

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

# bench runs the load harness (cmd/keygate-bench, about three minutes) with the
# settings of issue #14: on loopback a fast backend and, in front of it,
# keygate (with a real redis-server), the Go baseline (httputil.ReverseProxy
# with a pooled transport), Caddy (built once from its Go module in the tools
# module cmd/keygate-bench/peers, then cached) and nginx with one worker when
# installed; wrk (1 thread, 32 connections, 5 s, 2 interleaved rounds) at
# maximum load, the harness's open loop at half keygate's maximum; it prints
# a Markdown report ending with keygate's ratios and goals. Other runs:
# make bench BENCHFLAGS="-d 10s -rounds 4" or BENCHFLAGS="-loader go -json out.json"
# (go run ./cmd/keygate-bench -h lists the flags).
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
