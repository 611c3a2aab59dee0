# ClinicFlow developer commands. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
PYTEST_ARGS ?= -n 2

.PHONY: install lock run serve test lint format migrate seed worker bench contract openapi clean

# Installs exactly the pinned, hashed versions in the lock file (CI and the Dockerfile do too).
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ClinicFlow needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

lock: ## Re-resolve requirements/*.lock from pyproject.toml (after changing a dependency)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet -o requirements/runtime.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --quiet -o $(LOCK)

run: install ## Serve on the embedded SQLite database with demo data
	$(BIN)/clinicflow db upgrade
	$(BIN)/clinicflow seed
	@echo "Serving on http://127.0.0.1:8000 (docs: http://127.0.0.1:8000/docs)"
	$(BIN)/clinicflow serve --host 127.0.0.1 --port 8000

serve: install
	$(BIN)/clinicflow serve

test: install ## The whole suite; starts a throwaway PostgreSQL and Redis when none answers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

migrate: install
	$(BIN)/clinicflow db upgrade

seed: install
	$(BIN)/clinicflow seed

worker: install ## Deliver queued e-mails and webhooks (PostgreSQL; SQLite serve does it itself)
	$(BIN)/clinicflow worker

contract: install ## schemathesis --checks all over the OpenAPI document, as owner and API key (PostgreSQL)
	$(BIN)/python -m tests.contract --max-examples 5 $(if $(CONTRACT_SEED),--seed $(CONTRACT_SEED))

openapi: install
	$(BIN)/clinicflow openapi --output openapi.json

bench: install ## Issue 12 benchmark, short version (bench/README.md: the long one)
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
