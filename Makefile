# calico-p4 — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...

.PHONY: all build test unit-test e2e-test demo bench bench-dataplane lint fmt generate clean deps

all: build

## build: every binary under cmd/ into bin/
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

## test: the README's test command (unit tests, then the privileged end-to-end tests when root)
test: build lint unit-test e2e-test

unit-test:
	$(GO) test -count=1 -timeout 20m $(PKGS)

e2e-test: build
	@if [ "$$(id -u)" = 0 ]; then \
	  CALICO_P4_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 40m -tags e2e ./e2e/... ; \
	else echo "e2e-test: skipped (needs root for network namespaces)"; fi

## demo: network-namespace pods, the manager on the embedded target, a Felix stream, a reachability table
demo: build
	./hack/demo.sh

## bench: every Go benchmark (figures go to docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## bench-dataplane: pod-to-pod TCP_RR and bulk TCP, softswitch vs kernel veth + iptables (root)
bench-dataplane: build
	@if [ "$$(id -u)" != 0 ]; then echo "bench-dataplane: needs root (network namespaces)"; exit 1; fi
	$(GO) run ./hack/benchdataplane --softswitch $(BIN)/calico-p4-softswitch --duration 5s

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if command -v kubectl >/dev/null 2>&1; then kubectl kustomize manifests/example >/dev/null && echo "manifests render"; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

generate:
	$(GO) generate ./...

deps:
	./hack/install-deps.sh

clean:
	rm -rf $(BIN)
