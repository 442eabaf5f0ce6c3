# StreamHouse developer commands. Everything runs from a local .venv built from pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test bench lint services clean

$(STAMP): pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# Runs one StreamHouse agent with embedded defaults: SQLite metadata and files under ./data.
serve: $(STAMP)
	$(BIN)/streamhouse serve $(SERVE_ARGS)

# Starts what the tests need (PostgreSQL on 127.0.0.1:5432); the S3 server is started by a fixture.
services:
	@bash scripts/ensure-postgres.sh

test: $(STAMP) services
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP) services
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
