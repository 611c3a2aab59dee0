# ClinicFlow developer commands. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?= -n 2

.PHONY: install run serve test lint format migrate seed worker bench openapi clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ClinicFlow needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install ## Serve on the embedded SQLite database with demo data
	$(BIN)/clinicflow db upgrade
	$(BIN)/clinicflow seed
	@echo "Serving on http://127.0.0.1:8000 (docs: http://127.0.0.1:8000/docs)"
	$(BIN)/clinicflow serve --host 127.0.0.1 --port 8000

serve: install
	$(BIN)/clinicflow serve

test: install ## The whole suite: PostgreSQL (needed at 127.0.0.1:5432) and the SQLite smoke suite
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

openapi: install
	$(BIN)/clinicflow openapi --output openapi.json

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
