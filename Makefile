# kubehpc: make help lists the targets.
SHELL := /bin/bash
MODULES := pkg ldap-configmap job-pod-reaper namespace-reaper namespace-bootstrap charts/tests e2e
TOOLS := ldap-configmap job-pod-reaper namespace-reaper namespace-bootstrap
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOTEST_FLAGS ?= -race -timeout 30m
export GOWORK := off

.PHONY: help build test lint demo bench deps tools clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## Build the four tools into bin/
	@mkdir -p bin
	@for t in $(TOOLS); do echo "go build $$t"; (cd $$t && go build -trimpath -ldflags "-X main.version=$(VERSION)" -o ../bin/$$t .) || exit 1; done

deps: ## Install what the tests need: slapd (Debian), the control plane, Helm and the Kyverno CLI (built from the Go module proxy, cached)
	@hack/install-deps.sh
	@hack/tool.sh kubebins >/dev/null
	@hack/tool.sh helm >/dev/null
	@hack/kyverno.sh >/dev/null

test: deps ## Run every unit, integration and end-to-end test (real kube-apiserver and slapd), with the race detector
	@hack/test.sh $(GOTEST_FLAGS)

lint: ## gofmt, go vet and staticcheck on every module
	@hack/lint.sh

demo: build ## Run the whole story on a local control plane and LDAP server (Ctrl-C stops everything)
	@hack/install-deps.sh
	@hack/tool.sh kubebins >/dev/null
	@hack/tool.sh helm >/dev/null
	@cd e2e && go run ./cmd/demo --bin ../bin --root .. $(DEMO_FLAGS)

bench: deps ## Run the scale benchmarks against the real servers and print figures
	@hack/bench.sh

clean: ## Remove bin/ (the cached control plane stays in ~/.cache/kubehpc)
	rm -rf bin
