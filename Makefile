# tlcvm — a drop-in qemu-system-x86_64 in Go. `make help` lists the targets.
SHELL   := /bin/bash
GO      ?= go
BIN     := bin/qemu-system-x86_64
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X tlcvm/compat.PackageVersion=$(VERSION)
FUZZTIME ?= 5s
GOBIN   := $(shell go env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck

.PHONY: help build run test fuzz lint bench deps clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/qemu-system-x86_64
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/qemu-system-x86_64

run: build ## the main job: a VM with the (qemu) prompt on this terminal, running the default workload
	@mkdir -p run
	./$(BIN) -name tlcvm-demo -machine pc -m 1G -smp 2 -nodefaults -display none \
	    -monitor stdio -serial file:run/serial.log -qmp unix:run/qmp.sock,server=on,wait=off

deps: ## install the Debian packages the tests need (only those missing)
	@scripts/deps.sh

test: deps lint build ## everything: lint, unit tests with -race, short fuzz runs, end-to-end and differential tests
	$(GO) test -race -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz

fuzz: ## run every fuzz target briefly ($(FUZZTIME) each)
	@scripts/fuzz.sh $(FUZZTIME)

$(STATICCHECK):
	GOBIN=$(GOBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: $(STATICCHECK) ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	@$(STATICCHECK) ./...

bench: deps build ## benchmarks beside QEMU 7.2 in the same run; figures go to BENCHMARKS.md
	bench/run.sh

clean: ## remove build output
	rm -rf bin run
