# Wren: `make demo` runs the stack on the bundled data, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARTIFACTS ?= artifacts
DATA ?= data/ml-latest-small
REPLICAS ?= 1

.PHONY: install demo test test-fast train protos lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

protos: install
	$(BIN)/python -m wren.protogen

train: install
	$(BIN)/wren train --data $(DATA) --out $(ARTIFACTS)

# Quiet recipe: once installed and trained, the first line printed is the web app's address.
demo: install
	@test -e $(ARTIFACTS)/current || $(BIN)/wren train --data $(DATA) --out $(ARTIFACTS)
	@$(BIN)/wren up --artifacts $(ARTIFACTS) --replicas $(REPLICAS)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not e2e and not slow"

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/wren bench --suite all --quick --artifacts $(ARTIFACTS) --out bench-results

clean:
	rm -rf $(VENV) .pytest_cache bench-results
