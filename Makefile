# Switchboard: `make run` starts the suite, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

# Runtime packages (what deploy/docker/Dockerfile installs) and the dev tooling (never in an image).
PACKAGES := libs/tmf_models libs/service_kit services/ordering services/billing services/trouble_ticket services/payment libs/dev_kit

.PHONY: install run token test test-unit test-integration test-e2e test-contract lint fmt typecheck check models openapi migrate bench bench-models clean

install: $(STAMP)

$(STAMP): constraints.txt requirements-dev.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages into $(VENV) (first run takes a minute)..."
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt $(foreach p,$(PACKAGES),-e $(p))
	@touch $(STAMP)

# The Helm CLI for the chart tests (tests/static/test_deploy.py); see the script for where it comes from.
$(VENV)/bin/helm: deploy/helm/install_helm.py | $(STAMP)
	$(PY) deploy/helm/install_helm.py $@

run: install
	$(PY) -m switchboard_dev.launcher run

test: install $(VENV)/bin/helm
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -m "not e2e and not contract and not fault" $(PYTEST_ARGS)

models: install
	$(PY) libs/tmf_models/scripts/generate.py

openapi: install  ## openapi/*.json and contracts/ (AsyncAPI + event schemas)
	$(PY) -m switchboard_dev.export

token: install  ## a bearer token for the suite `make run` started: make token ROLE=agent (customer: PARTY=<id>)
	@$(PY) -m switchboard_dev.issuer $(or $(ROLE),agent) $(if $(PARTY),--party $(PARTY))

migrate: install
	$(PY) -m switchboard_dev.launcher migrate

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy --strict libs/tmf_models/src/tmf_models
	$(VENV)/bin/mypy --strict libs/service_kit/src/switchboard_kit libs/dev_kit/src/switchboard_dev services/ordering/src/ordering services/billing/src/billing services/trouble_ticket/src/trouble_ticket services/payment/src/payment

check: lint typecheck

bench-models: install
	$(PY) bench/bench_models.py

bench: install bench-models
	$(PY) bench/bench_ordering.py

clean:
	rm -rf $(VENV) .data
