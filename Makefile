# keygate make targets. `make check` is what CI runs.
GO       ?= go
FUZZTIME ?= 1m
PKGS     := ./...

.PHONY: all build test vet fmt check fuzz fuzz-short demo clean

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

# fuzz-short is the brief run CI does.
fuzz-short:
	$(MAKE) fuzz FUZZTIME=5s

clean:
	rm -rf bin
