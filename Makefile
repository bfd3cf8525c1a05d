# Everything a fresh machine needs: `make demo` runs the service on the sample alerts,
# `make test` runs lint, type checks and the whole test suite. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
SHARED ?= ../shared
BIN := $(VENV)/bin
export BTSBOT_SHARED ?= $(abspath $(SHARED))

# uv installs exactly uv.lock's versions; `make lock` refreshes the lock after a change
# to pyproject.toml. docker/Dockerfile* pin the same uv (ARG UV_VERSION).
UV_VERSION := 0.13.9
UV := $(BIN)/uv

# Test tools, built once from the Go module proxy into a cache outside the clone, so a
# fresh clone on the same machine reuses them (cold: ~5 minutes of compiling, mostly
# promtool; warm: nothing).
TOOLS ?= $(HOME)/.cache/btsbot-stream/tools
KUSTOMIZE_VERSION := v5.7.1
# Prometheus' Go module versions: v0.316.0 is Prometheus 3.16.0. `remove_all_sd` leaves
# out the service-discovery plugins promtool's rule tests never use (a third of the build).
PROMTOOL_VERSION := v0.316.0
# Upstream CRDs (OpenAPI schemas) the Kubernetes tests validate the custom resources with.
KEDA_VERSION := v2.21.0
PROMETHEUS_OPERATOR_VERSION := v0.85.0

.PHONY: demo test lint typecheck pytest tools lock k8s-monitoring clean

$(BIN)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv==$(UV_VERSION)
	@# --locked: a lock that no longer matches pyproject.toml stops here (run `make lock`).
	@# --inexact keeps pip and uv, which are not project dependencies.
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync -q --locked --inexact --extra export --extra quantize --extra dev
	touch $@

# Re-resolve uv.lock from pyproject.toml (after adding or bumping a dependency).
lock:
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q uv==$(UV_VERSION); }
	$(UV) lock

demo: $(BIN)/.installed
	deploy/demo/run.sh $(BIN)

lint: $(BIN)/.installed
	$(BIN)/ruff check service tests deploy
	$(BIN)/ruff format --check service tests deploy

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# --- tools for the deployment tests ---------------------------------------------------
$(TOOLS)/kustomize-$(KUSTOMIZE_VERSION):
	GOBIN=$@.d go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $@.d/kustomize $@ && rmdir $@.d

$(TOOLS)/promtool-$(PROMTOOL_VERSION):
	GOBIN=$@.d go install -tags remove_all_sd \
	    github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	mv $@.d/promtool $@ && rmdir $@.d

$(BIN)/%: | $(BIN)/.installed
	ln -sf $< $@

$(BIN)/kustomize: $(TOOLS)/kustomize-$(KUSTOMIZE_VERSION)
$(BIN)/promtool: $(TOOLS)/promtool-$(PROMTOOL_VERSION)

# `docker compose config` without Docker: the compose-spec loader it is built on
# (version in tests/deploy/compose_check/go.mod).
$(BIN)/compose-check: tests/deploy/compose_check/main.go tests/deploy/compose_check/go.mod | $(BIN)/.installed
	cd tests/deploy/compose_check && go build -o $(abspath $@) .

# The CRD files of the KEDA and Prometheus Operator releases, from their Go modules.
CRDS := $(VENV)/crds
$(CRDS)/.$(KEDA_VERSION)-$(PROMETHEUS_OPERATOR_VERSION): | $(BIN)/.installed
	rm -rf $(CRDS) && mkdir -p $(CRDS)
	keda=$$(go mod download -json github.com/kedacore/keda/v2@$(KEDA_VERSION) | $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') \
	    && cp $$keda/config/crd/bases/keda.sh_{scaledobjects,triggerauthentications}.yaml $(CRDS)/
	operator=$$(go mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) | $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') \
	    && cp $$operator/example/prometheus-operator-crd/monitoring.coreos.com_{podmonitors,prometheusrules}.yaml $(CRDS)/
	chmod u+w $(CRDS)/*.yaml && touch $@

tools: $(BIN)/kustomize $(BIN)/promtool $(BIN)/compose-check $(CRDS)/.$(KEDA_VERSION)-$(PROMETHEUS_OPERATOR_VERSION)

# The Prometheus Operator / Grafana sidecar copies of the rules and the dashboard.
k8s-monitoring: $(BIN)/.installed
	$(BIN)/python deploy/k8s/components/monitoring/generate.py

pytest: $(BIN)/.installed tools
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache

# Debian's chromium drives the web page's browser tests (Playwright uses it; no download).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
pytest: $(CHROMIUM)
