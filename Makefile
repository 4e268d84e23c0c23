# The two commands a newcomer needs: `make demo` and `make test` (`make unit` for the quick loop). Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck unit format install bench bench-ingest bench-worker bench-load bench-rebuild bench-api bench-table bench-backlog chaos fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rolesync demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

# Unit tests only (pure or in-process: no process, no Redis server; ~25 s); `make test` runs all three kinds.
unit: $(STAMP)
	$(BIN)/pytest -m unit -q

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: bench-ingest bench-worker bench-load

# Chaos suites (duplicates, worker crashes, Redis restart, Kinde faults) then the secrets grep over their logs.
chaos: $(STAMP)
	$(BIN)/python -m chaos all

fuzz: $(STAMP)
	$(BIN)/python -m chaos fuzz

bench-ingest: $(STAMP)
	$(BIN)/python -m bench ingest

bench-worker: $(STAMP)
	$(BIN)/python -m bench worker

# The customer-index rebuild on a 50,000-user / 2,000-org tenant at 10 req/s with 429s (~5 min).
bench-rebuild: $(STAMP)
	$(BIN)/python -m bench rebuild

# Bulk without starvation: a 10,000-customer reconcile, then 5,000 plan changes at once, with a sign-up
# every 2 s throughout (~23 min at R = 50 on 2 CPUs); figures in docs/benchmarks.md.
bench-backlog: $(STAMP)
	$(BIN)/python -m bench backlog

# The read API at 1,000 req/s from Redis (target p99 <= 5 ms); figures in docs/benchmarks.md.
bench-api: $(STAMP)
	$(BIN)/python -m bench api

# What the optional Postgres entitlements table adds per snapshot write; figures in docs/benchmarks.md.
bench-table: $(STAMP)
	$(BIN)/python -m bench table

# Ingest vs the Express + @kinde/webhooks peer (needs node+npm), then the whole pipe held >= 2 min.
bench-load: $(STAMP)
	$(BIN)/python -m bench load

clean:
	rm -rf $(VENV) .rolesync .mypy_cache .pytest_cache .ruff_cache
