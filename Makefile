# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the pinned lock (requirements.lock) on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test dev bench lock clean help home alertmanager

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Bytecode is compiled here, once: with PYTHONDONTWRITEBYTECODE=1 (set on many machines and images)
# every process would otherwise compile Dagster from source again, each spawned worker included.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 cvn_assets
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned dependencies

# The instance in DAGSTER_HOME uses the repository's dagster.yaml unless it has its own.
home:
	mkdir -p $(DAGSTER_HOME)
	test -e $(DAGSTER_HOME)/dagster.yaml || ln -s $(CURDIR)/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: $(STAMP) home  ## run a real campaign (defi group, synthetic data) and print the verdict
	$(BIN)/cvn campaign launch --group defi

# The alert tests talk to a real Prometheus Alertmanager: Debian's package, installed once
# (as root; a no-op when the binary is already there).
alertmanager:  ## install Prometheus Alertmanager (Debian package) for the alert tests, if missing
	@command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager; }

test: $(STAMP) alertmanager  ## run the whole test suite (moto server, PostgreSQL, Alertmanager, real Dagster instances)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# `dg dev` (dagster-dg-cli) reads the project from [tool.dg] in pyproject.toml; VIRTUAL_ENV names the
# project's .venv so that dg uses it (and says nothing about a mismatch).
dev: $(STAMP) home  ## open the Dagster UI (and daemon: sensors, schedules) on http://127.0.0.1:3000
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg dev -h 127.0.0.1 -p 3000

bench: $(STAMP)  ## transport benchmark: our IO manager vs S3PickleIOManager vs raw boto3 (JSON)
	$(BIN)/python bench/transport.py

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o requirements.lock

clean:  ## remove the virtualenv and the local Dagster home
	rm -rf $(VENV) .dagster_home
