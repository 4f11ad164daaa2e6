# DES — Datavision Easy Store operator. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

K8S_VERSION ?= v1.37.2
BIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(BIN)/controller-gen
GOLANGCI_LINT ?= $(BIN)/golangci-lint
export KUBEBUILDER_ASSETS ?= $(BIN)/k8s/$(K8S_VERSION)
# Seconds each fuzz target runs in `make fuzz` (CI); raise it for a real hunt.
FUZZTIME ?= 15s

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: fmt
fmt: ## Format Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: $(GOLANGCI_LINT) ## Run go vet and golangci-lint (.golangci.yml), also on the outside-module example.
	go vet ./...
	go vet -tags chaos ./internal/packer/
	$(GOLANGCI_LINT) run ./...
	cd test/outside && GOWORK=off go vet ./...

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code (zz_generated.deepcopy.go).
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs (config/crd/bases) and the manager's RBAC role (config/rbac).
	$(CONTROLLER_GEN) rbac:roleName=des-manager-role crd paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: verify-generated
verify-generated: $(CONTROLLER_GEN) ## Fail when generated code or manifests are stale.
	hack/verify-generated.sh

##@ Test

.PHONY: test-deps
test-deps: ## Install the system packages tests need (PostgreSQL, MariaDB, redis-server, containerd, runc, CNI plugins, from Debian) when missing.
	hack/test-deps.sh

.PHONY: test-assets
test-assets: ## Build the control plane, kubelet, kube-scheduler, versitygw, controller-gen, promtool, the prometheus-operator CRDs and the pause image into bin/
	hack/test-assets.sh

$(CONTROLLER_GEN) $(GOLANGCI_LINT):
	hack/test-assets.sh

.PHONY: test
test: test-deps test-assets image vet ## Run all tests against the real test world (PostgreSQL, S3, kube-apiserver).
	hack/run-tests.sh -count=1 -v ./test/testworld/
	hack/run-tests.sh -count=1 $$(go list ./... | grep -v -e '/test/testworld$$' -e /test/e2e)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each.
	hack/fuzz.sh $(FUZZTIME)

# The packer benchmark packs this many 4 KiB source objects (and GETs them as its baseline).
DES_PACKER_BENCH_FILES ?= 100000

.PHONY: bench
bench: test-assets ## Run the benchmarks (format vs tar/zip, sidecar vs direct GETs, packer vs GETs, names/s).
	DES_PACKER_BENCH_FILES=$(DES_PACKER_BENCH_FILES) hack/run-tests.sh -run '^$$' -bench . -benchmem -timeout 60m \
		$$(go list ./... | grep -v -e /test/e2e)

# The scale run (make test-scale; make test runs the same tests smaller: 1,000,000 rows, 256 shards,
# a 30 s window, no packer benchmark): catalog rows, the controller's shard counts and steady-state
# window, and the packer benchmark's container sizes.
DES_SCALE_ROWS ?= 10000000
DES_SCALE_SHARDS ?= 256,1024,4096
DES_SCALE_WINDOW ?= 60s
DES_SCALE_PACKER_FILES ?= 100000 1000000
# Packer runs again with the S3 server on a CPU of its own (DES_PACKER_BENCH_SPLIT), as a real store has.
DES_SCALE_PACKER_SPLIT_FILES ?= 100000

.PHONY: test-scale
test-scale: test-deps test-assets ## Run the scale measurements of docs/scale.md (catalog at DES_SCALE_ROWS rows, controller at DES_SCALE_SHARDS shards, packer at DES_SCALE_PACKER_FILES files, and at DES_SCALE_PACKER_SPLIT_FILES with the S3 server on a CPU of its own); reports in bin/scale/.
	mkdir -p $(BIN)/scale
	DES_SCALE_ROWS=$(DES_SCALE_ROWS) DES_SCALE_REPORT=$(BIN)/scale/catalog.md \
	DES_SCALE_SHARDS=$(DES_SCALE_SHARDS) DES_SCALE_WINDOW=$(DES_SCALE_WINDOW) DES_SCALE_CONTROLLER_REPORT=$(BIN)/scale/controller.md \
		hack/run-tests.sh -count=1 -v -timeout 60m ./test/scale/
	for n in $(DES_SCALE_PACKER_FILES); do \
		DES_PACKER_BENCH_FILES=$$n hack/run-tests.sh -run '^$$' -bench PackVsGet -benchtime 1x -timeout 90m ./internal/packer/ \
			> $(BIN)/scale/packer-$$n.txt 2>&1; rc=$$?; cat $(BIN)/scale/packer-$$n.txt; [ $$rc -eq 0 ] || exit $$rc; \
	done
	for n in $(DES_SCALE_PACKER_SPLIT_FILES); do \
		DES_PACKER_BENCH_SPLIT=1 DES_PACKER_BENCH_FILES=$$n hack/run-tests.sh -run '^$$' -bench PackVsGet -benchtime 1x -timeout 90m ./internal/packer/ \
			> $(BIN)/scale/packer-split-$$n.txt 2>&1; rc=$$?; cat $(BIN)/scale/packer-split-$$n.txt; [ $$rc -eq 0 ] || exit $$rc; \
	done

.PHONY: test-e2e
test-e2e: test-deps test-assets build image-chaos ## Run the end-to-end suite on a real node (DES installed with kubectl apply -k, faults injected).
	DES_MANAGER_IMAGE_TAR=$(BIN)/manager-chaos-image.tar hack/run-tests.sh -count=1 -timeout 30m -v ./test/e2e/

##@ Demo

.PHONY: demo
# The demo's catalog database: postgres, or mysql (a MariaDB server).
CATALOG ?= postgres

demo: test-deps test-assets build image ## Run DES end to end on this machine: a local stack, a few thousand files packed and read back (CATALOG=mysql: on MariaDB).
	go build -o $(BIN)/demo ./test/demo
	DES_DEMO_CATALOG=$(CATALOG) hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop the demo stack.
	hack/demo.sh down

##@ Build

# The version stamped into binaries (des --version); GOFLAGS has -buildvcs=false here, so the
# binaries carry no VCS stamp of their own.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_LDFLAGS = -X github.com/datavision/des/internal/version.Version=$(VERSION)

.PHONY: build
build: ## Build the manager, des and kubectl-des (the kubectl plugin) binaries into bin/, stamped with VERSION (default: git describe).
	go build -ldflags "$(VERSION_LDFLAGS)" -o $(BIN)/ ./cmd/...

# The tag `make image` writes into the tarball (IfNotPresent pull policy: not :latest).
IMAGE ?= des.datavision.io/manager:dev

.PHONY: image
image: ## Build the manager image as a tarball, bin/manager-image.tar (no Docker engine needed: docker load or ctr images import).
	IMAGE=$(IMAGE) VERSION=$(VERSION) hack/image.sh manager $(BIN)/manager-image.tar

.PHONY: image-chaos
image-chaos: ## Build the e2e's manager image, bin/manager-chaos-image.tar: the same, plus the fault hooks of build tag chaos (skewed packer clocks).
	IMAGE=$(IMAGE) VERSION=$(VERSION) GO_BUILD_TAGS=chaos hack/image.sh manager $(BIN)/manager-chaos-image.tar
