# kubehpc: make help lists the targets.
SHELL := /bin/bash
TOOLS := ldap-configmap job-pod-reaper namespace-reaper namespace-bootstrap
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOTEST_FLAGS ?= -race -timeout 30m
export GOWORK := off

.PHONY: help build test lint demo bench deps tools clean images chart

# Images and chart (README "Images and releases"). The image tag and the
# chart's appVersion are VERSION; every timestamp is the commit time.
IMAGES_DIR ?= build/images
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_LICENSES ?= NOASSERTION
# REGISTRY=registry.example.org/kubehpc also pushes <REGISTRY>/<tool>:<VERSION>.
REGISTRY ?=
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
CHART_DIR ?= build/chart
# CHART_REGISTRY=oci://registry.example.org/charts also pushes the packaged chart.
CHART_REGISTRY ?=
# Extra flags of helm push, e.g. --plain-http for a registry without TLS.
HELM_PUSH_FLAGS ?=
HELM ?= $(shell hack/tool.sh helm)

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

images: ## Build an OCI image per tool (linux/amd64 + arm64, no daemon) into build/images; REGISTRY=host/path pushes them
	@cd hack/images && go run . --root $(CURDIR) --out $(abspath $(IMAGES_DIR)) --version $(VERSION) \
		--revision $(REVISION) --created $(SOURCE_DATE_EPOCH) --licenses $(IMAGE_LICENSES) \
		--platforms $(IMAGE_PLATFORMS) --registry "$(REGISTRY)" $(TOOLS)

chart: ## Package the umbrella chart (appVersion VERSION) into build/chart; CHART_REGISTRY=oci://host/path pushes it
	@HELM="$(HELM)" hack/images/chart.sh "$(VERSION)" "$(CHART_DIR)" "$(CHART_REGISTRY)" $(HELM_PUSH_FLAGS)

build: ## Build the four tools into bin/
	@mkdir -p bin
	@for t in $(TOOLS); do echo "go build $$t"; (cd $$t && go build -trimpath -ldflags "-X main.version=$(VERSION)" -o ../bin/$$t .) || exit 1; done

deps: ## Install what the tests need: slapd (Debian), the control plane, Helm and Kyverno's CLI and admission controller (built from the Go module proxy, cached)
	@hack/install-deps.sh
	@hack/tool.sh kubebins >/dev/null
	@hack/tool.sh helm >/dev/null
	@hack/tool.sh kyverno >/dev/null

test: deps ## Run every unit, integration and end-to-end test (real kube-apiserver and slapd), with the race detector
	@hack/test.sh $(GOTEST_FLAGS)

lint: ## gofmt, go vet, staticcheck and one client-go version on every module (what CI runs before make test)
	@hack/lint.sh

demo: build ## Run the whole story on a local control plane and LDAP server (Ctrl-C stops everything)
	@hack/install-deps.sh
	@hack/tool.sh kubebins >/dev/null
	@hack/tool.sh helm >/dev/null
	@cd e2e && go run ./cmd/demo --bin ../bin --root .. $(DEMO_FLAGS)

bench: deps ## Run the scale benchmarks against the real servers and print figures
	@hack/bench.sh

clean: ## Remove bin/ and build/ (the cached control plane stays in ~/.cache/kubehpc)
	rm -rf bin build
