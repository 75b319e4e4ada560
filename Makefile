# Wren: `make demo` runs the stack on the bundled data, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARTIFACTS ?= artifacts
DATA ?= data/ml-latest-small
REPLICAS ?= 1

.PHONY: install demo test test-unit test-integration test-e2e test-deploy test-fast train protos lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

protos: install
	$(BIN)/python -m tools.protogen

train: install
	$(BIN)/wren train --data $(DATA) --out $(ARTIFACTS)

# Quiet recipe: once installed and trained, the first line printed is the web app's address.
demo: install
	@test -e $(ARTIFACTS)/current || $(BIN)/wren train --data $(DATA) --out $(ARTIFACTS)
	@$(BIN)/wren up --artifacts $(ARTIFACTS) --replicas $(REPLICAS)

# The whole suite: lint (style, format, types, layer contracts), then every test layer.
test: lint
	$(BIN)/python -m pytest -q

# One target per test layer (tests/<layer>/).
test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

test-e2e: install
	$(BIN)/python -m pytest -q tests/e2e

test-deploy: install
	$(BIN)/python -m pytest -q tests/deploy

test-fast: install
	$(BIN)/python -m pytest -q -m "not e2e and not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python -m benchmarks --suite all --quick --artifacts $(ARTIFACTS) --out bench-results

clean:
	rm -rf $(VENV) .pytest_cache bench-results
