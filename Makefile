# `make dev` and `make test` set everything up themselves on a machine that has only Python 3.11+.
# uv.lock is the only source of versions (the Modal image is built from it too); uv itself comes
# from PyPI into a small tools venv, pinned here.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOWEST := .venv-lowest

# uv reads none of pip's configuration: packages come from PyPI. Never download a Python build:
# use the interpreter named by PYTHON.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: dev test lint typecheck unit lowest lock bench clean

$(UV):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --locked: a pyproject.toml changed without `make lock` fails here instead of drifting.
$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --extra dev --python $(PYTHON)
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/wanctl dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

# The lowest versions pyproject.toml allows for our direct dependencies, in a separate venv (the
# lock is not touched), running the whole suite (LOWEST_TESTS=... to pick some).
lowest: $(UV)
	test -x $(LOWEST)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(LOWEST)
	$(UV) pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct -e '.[dev]'
	$(LOWEST)/bin/pytest -q -p no:cacheprovider $(LOWEST_TESTS)

# After editing dependencies in pyproject.toml.
lock: $(UV)
	$(UV) lock

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) $(LOWEST) .local .pytest_cache .mypy_cache .ruff_cache
