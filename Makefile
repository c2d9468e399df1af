# The one entry point for people, the README and CI. Every target sets up what it needs.
#   make render ENV=prod   render one environment into rendered/prod/ (no ENV: all of them)
#   make test              lint, type-check and run the tests (sets up the virtualenv and tools first)
#   make check             fail if rendered/ is stale or hand-edited
#   make tools             build the pinned kubeconform, kustomize and kube-linter into .tools/bin
#   make golden            accept the current output as the tests' golden bundles
#   make schema            copy the release and GPU tables' names into schemas/values.schema.json
#   make fuzz              10,000 generated values files through the pipeline
#   make bench             speed and memory of render and validation
#   make conformance       build the real kube-apiserver and KServe managers (cached), run tests/conformance on them

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?=

# Pinned tools, built from source with `go install` into a git-ignored folder.
TOOLS := $(CURDIR)/.tools/bin
KUBECONFORM_VERSION := v0.7.0
KUBECONFORM := $(TOOLS)/kubeconform-$(KUBECONFORM_VERSION)
KUSTOMIZE_VERSION := v5.8.1
KUSTOMIZE := $(TOOLS)/kustomize-$(KUSTOMIZE_VERSION)
KUBE_LINTER_VERSION := v0.8.3
KUBE_LINTER := $(TOOLS)/kube-linter-$(KUBE_LINTER_VERSION)

# CRDs for the schema check: ../shared/crds when it is there (CI), else LLMPACK_CRD_DIR,
# else what `llmpack schemas fetch` stored in .cache/llmpack/crds.
CRD_DIR ?= $(firstword $(wildcard $(CURDIR)/../shared/crds) $(LLMPACK_CRD_DIR))
export LLMPACK_CRD_DIR := $(if $(CRD_DIR),$(abspath $(CRD_DIR)))
export LLMPACK_KUBECONFORM := $(KUBECONFORM)
export LLMPACK_KUSTOMIZE := $(KUSTOMIZE)
export LLMPACK_KUBE_LINTER := $(KUBE_LINTER)

.PHONY: render test check lint fuzz bench golden schema setup tools prepare clean conformance

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "llmpack needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

$(KUBECONFORM):
	@command -v go >/dev/null || { echo "building kubeconform needs Go (https://go.dev/dl/)" >&2; exit 1; }
	GOBIN=$(TOOLS) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	mv $(TOOLS)/kubeconform $@

$(KUSTOMIZE):
	@command -v go >/dev/null || { echo "building kustomize needs Go (https://go.dev/dl/)" >&2; exit 1; }
	GOBIN=$(TOOLS) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(TOOLS)/kustomize $@

# kube-linter's module is served only under its GitHub path: tools/kube-linter/go.mod pins it.
$(KUBE_LINTER): tools/kube-linter/go.mod tools/kube-linter/go.sum
	@command -v go >/dev/null || { echo "building kube-linter needs Go (https://go.dev/dl/)" >&2; exit 1; }
	cd tools/kube-linter && go build -o $@ golang.stackrox.io/kube-linter/cmd/kube-linter

tools: $(KUBECONFORM) $(KUSTOMIZE) $(KUBE_LINTER)

# The virtualenv and the tools are independent: prepare them in parallel.
prepare:
	@$(MAKE) --no-print-directory -j4 setup tools

render:
	@$(MAKE) --no-print-directory -j2 setup $(KUBECONFORM)
	$(BIN)/llmpack render $(if $(ENV),--env $(ENV),--all)

lint: $(VENV)/.installed
	$(BIN)/ruff check generator tests vllm-runtime bench
	$(BIN)/mypy

# Two test workers: most tests wait on subprocesses (Ray, kubeconform, llmpack itself); the tests that
# start a Ray cluster share one worker (xdist_group "ray"), one cluster at a time.
test: prepare
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n 2 --dist loadgroup --ignore=tests/conformance

# Fails when rendered/ is stale or hand-edited (CI and pre-commit run it).
check:
	@$(MAKE) --no-print-directory -j2 setup $(KUBECONFORM)
	$(BIN)/llmpack check

# 10,000 generated values files: never a traceback, always a bundle or a located error.
fuzz: $(VENV)/.installed
	LLMPACK_HYPOTHESIS_PROFILE=fuzz LLMPACK_FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/test_fuzz.py

# Speed and memory of render and validation (prints a table; times nothing in the tests).
bench: prepare
	$(BIN)/python bench/bench.py

# etcd, kube-apiserver and one KServe manager per pinned release on 127.0.0.1 (built once, by version,
# into .tools/control-plane), then the tests that apply every bundle to them.
conformance: prepare
	$(BIN)/mypy --config-file= --strict --python-version 3.11 tests/conformance
	$(BIN)/python tools/control-plane/build all
	$(BIN)/pytest tests/conformance

schema: $(VENV)/.installed
	$(BIN)/python tools/schema-enums

golden: $(VENV)/.installed
	LLMPACK_UPDATE_GOLDEN=1 $(BIN)/pytest tests/test_golden.py

clean:
	rm -rf $(VENV) .tools .cache .mypy_cache .pytest_cache .ruff_cache .hypothesis
