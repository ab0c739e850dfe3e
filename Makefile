# posd: set-up and test entry points. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo dev docs lint typecheck unit system bench chaos rehearse clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "installing into $(VENV) (about 2 minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint cloud/template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy

# The fast tier: every test but the system ones (daemon processes, kills, netns, chaos, bench,
# the demo end to end; tests/conftest.py names them), spread over the cores (pytest-xdist).
# `make test` runs every test, serially: the system tests time real processes.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not system" -n auto

system: $(STAMP)
	$(BIN)/python -m pytest -q -m system

test: lint typecheck
	$(BIN)/python -m pytest -q

# The demo is not part of the posd package (it needs the cloud side and the local AWS
# stand-ins): run it from the checkout. DEMO_ARGS="--sync-api v2 --payments 500" for more.
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/python -m demo $(DEMO_ARGS)

# The local AWS stand-ins for a daemon on config/dev.toml (moto on its [aws] endpoint_url, the
# bus routed to a queue, the watermark table): prints what to export and the command to run,
# then serves until Ctrl-C. DEV_CONFIG=path for another development config.
DEV_CONFIG ?= config/dev.toml
dev: $(STAMP)
	$(BIN)/python -m demo.dev --config $(DEV_CONFIG)

# docs/configuration.md, generated from the config dataclasses (tests/test_docs.py checks it).
docs: $(STAMP)
	$(BIN)/python -m posd.config_reference

# The long chaos soak (docs/reliability.md). POSD_CHAOS_SECONDS=1800 make chaos for 30 minutes;
# POSD_CHAOS_API=v2 delivers through EventBridge v2 (the queue must then hold no duplicates).
POSD_CHAOS_SECONDS ?= 1800
POSD_CHAOS_API ?= v1
chaos: $(STAMP)
	POSD_CHAOS_SECONDS=$(POSD_CHAOS_SECONDS) POSD_CHAOS_API=$(POSD_CHAOS_API) $(BIN)/python -m tests.chaos.soak

# 72 hours without the WAN on a simulated clock (tests/rehearsal/rehearse.py): the real
# daemons, a lane's day of payments, a nightly restart and SIGKILLs, the drain in a lunch rush;
# the hourly table, a JSON summary, bench/results/rehearsal-default.png. About 5 minutes.
# REHEARSE_ARGS="--limit max_pending_age_seconds=86400 --label strict" for other limits.
REHEARSE_ARGS ?=
rehearse: $(STAMP)
	@$(BIN)/python -m tests.rehearsal.rehearse $(REHEARSE_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
