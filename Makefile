# The two commands of the README. Each creates the virtualenv it needs (.venv) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.installed-run-stamp

.PHONY: run test lint install clean bench

# What running needs: the package and its dependencies, no developer tools.
$(RUN_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(RUN_STAMP)

# What testing needs besides: the developer tools (pytest, ruff, mypy, import-linter, ...).
$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: the daemon on the embedded SQLite default, with demo wards and beds.
run: $(RUN_STAMP)
	$(BIN)/wardbulk init --demo
	$(BIN)/wardbulk run

## lint: ruff (lint + format), mypy strict, the import-linter layer contract.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: the linters, then the whole suite on SQLite and on PostgreSQL.
test: lint
	$(BIN)/pytest --cov --cov-report=term

## bench: the benchmark suite, each case beside its raw limit (long at full scale: see bench/README.md).
## It rewrites bench/RESULTS.md and bench/results.json; e.g. BENCH_ARGS="--scale 0.01" for a quick run.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
