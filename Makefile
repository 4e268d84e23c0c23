# The two commands a newcomer needs: `make demo` and `make test` (`make unit` for the quick loop). Both build .venv
# themselves, from requirements.lock only (hash-checked): a fresh machine gets exactly what CI passed with.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
LATEST := .venv-latest

.PHONY: demo test lint typecheck unit format install lock test-latest bench bench-ingest bench-worker bench-load bench-rebuild bench-api bench-table bench-backlog chaos fuzz image-test clean

# A changed lock rebuilds the venv from nothing, so it holds the lock and only the lock. The package itself is
# installed without build isolation: its build backend (setuptools) comes from the lock too.
$(STAMP): pyproject.toml $(LOCK)
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rolesync demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite mostly waits on real processes (sandbox, ingest, Dramatiq workers, Redis restarts), so 3 pytest workers
# on 2 cores take it from ~11 to ~4.5 min (docs/benchmarks.md, "Test suite timing"). Each worker starts its own
# Valkey and PostgreSQL (tests/conftest.py); a file stays whole on one worker (--dist loadfile), so a module's pipe
# still starts once, and the slow files go out first (tests/conftest.py). `make test PYTEST_WORKERS=0` runs it in one
# process (needed with TEST_REDIS_URL/TEST_POSTGRES_URL).
# mypy --strict runs beside the suite rather than before it: on a clean clone it has no cache and needs ~9 s of one
# core, which the waiting suite has to spare. Its report is printed after the suite's, and either one failing fails
# `make test` (`make typecheck` alone still answers first).
PYTEST_WORKERS ?= 3

test: lint
	@$(BIN)/mypy > $(VENV)/typecheck.out 2>&1 & typecheck=$$!; \
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder; tests=$$?; \
	wait $$typecheck; typed=$$?; echo "mypy --strict:"; cat $(VENV)/typecheck.out; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

# Unit tests only (pure or in-process: no process, no Redis server; ~25 s); `make test` runs all three kinds.
unit: $(STAMP)
	$(BIN)/pytest -m unit -q

# Re-resolve both locks to the newest versions pyproject allows and print what moved (docs/dependencies.md).
lock: $(STAMP)
	$(BIN)/python -m devtools.lock

# Today's newest versions, unlocked, in a venv of their own: upstream drift shows here as a named failure.
test-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade -e '.[test,build]'
	$(LATEST)/bin/python -m devtools.drift
	$(LATEST)/bin/ruff check .
	$(LATEST)/bin/ruff format --check .
	$(LATEST)/bin/mypy
	$(LATEST)/bin/pytest -m unit -q

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

# Build the image (docker, or podman from a Debian base where no engine or registry is reachable) and run
# it end to end: CLI, contents, sandbox + ingest + worker + api in their own containers (docs/deploy.md).
image-test: $(STAMP)
	$(BIN)/python -m devtools.image_test

clean:
	rm -rf $(VENV) $(LATEST) .rolesync .mypy_cache .pytest_cache .ruff_cache
