# The one front door: `make run` for the main job, `make test` for the whole suite.
# Both build .venv from setup.cfg first; nothing else needs to be installed by hand.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# The test suite talks to real servers on loopback (see README, "Configuration").
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/strangler
TEST_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint venv bench clean secrets

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## run: the migration walk-through on the embedded default (SQLite + filesystem broker): the step-2
## stack, client traffic, the playbook 0 -> 1 -> 2 through every gated stage, each step rolled back
## and walked forward again; then the stack stays up with its URLs until Ctrl-C.
run: $(STAMP)
	$(BIN)/strangler demo

## lint: ruff (rules and formatting) and the import boundaries
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

TEST_ENV := BROKER_URL=$(TEST_BROKER_URL) REDIS_URL=$(TEST_REDIS_URL)

## test: lint, then the whole suite against PostgreSQL, RabbitMQ and Redis.
## Each Django project is tested in its own pytest run (pytest-django configures one settings
## module per run): the monolith and the shared parts first, then each extracted service.
test: lint
	$(TEST_ENV) DATABASE_URL=$(TEST_DATABASE_URL) \
		$(BIN)/pytest --ignore=tests/extracted $(PYTEST_ARGS)
	$(TEST_ENV) DATABASE_URL=$(TEST_DATABASE_URL)_payments \
		$(BIN)/pytest tests/extracted/payments --ds=extracted.payments.settings $(PYTEST_ARGS)
	$(TEST_ENV) DATABASE_URL=$(TEST_DATABASE_URL)_orders \
		$(BIN)/pytest tests/extracted/orders --ds=extracted.orders.settings $(PYTEST_ARGS)
	$(TEST_ENV) DATABASE_URL=$(TEST_DATABASE_URL)_users \
		$(BIN)/pytest tests/extracted/users --ds=extracted.users.settings $(PYTEST_ARGS)

## secrets: write the secrets compose.yaml requires into .env (mode 0600), generating the missing
## ones and keeping the others; needs only Python, no virtualenv (docs/running.md, "On Docker").
secrets:
	$(PYTHON) -m migrations_playbook.compose_secrets

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
