# Everything a fresh machine needs: `make demo` runs the service on the sample alerts,
# `make test` runs lint, type checks and the whole test suite. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
SHARED ?= ../shared
BIN := $(VENV)/bin
export BTSBOT_SHARED ?= $(abspath $(SHARED))

KUSTOMIZE_VERSION := v5.7.1

.PHONY: demo test lint typecheck pytest clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[export,quantize,dev]'
	touch $@

demo: $(BIN)/.installed
	deploy/demo/run.sh $(BIN)

lint: $(BIN)/.installed
	$(BIN)/ruff check service tests deploy
	$(BIN)/ruff format --check service tests deploy

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# kustomize renders the Kubernetes overlays for their schema tests (built once from the Go proxy).
$(BIN)/kustomize: | $(BIN)/.installed
	GOBIN=$(abspath $(BIN)) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

pytest: $(BIN)/.installed $(BIN)/kustomize
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
