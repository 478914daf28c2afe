# signal-freshdesk: local tasks. Needs Python 3.13 (python3.13 on PATH, or installed with pyenv).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON313 := $(shell devtools/find-python313)
VENV := .venv
TOOLS := .tools/sam
PY := $(VENV)/bin/python
SAM := $(TOOLS)/bin/sam
# checkov in its own venv (it pins its own dependencies); pinned, because new releases add checks.
CHECKOV_TOOLS := .tools/checkov
CHECKOV := $(CHECKOV_TOOLS)/bin/checkov
CHECKOV_VERSION := 3.3.30
export SAM_CLI_TELEMETRY := 0

.PHONY: help demo test lint unit build validate tools venv clean serve explain check dlq-list dlq-replay bench ledger
help:
	@echo "make demo      run every sample event through the real handlers (local sandbox + embedded AWS)"
	@echo "make test      install what the tests need, then lint (ruff, mypy) and run them all (unit, integration, template)"
	@echo "make lint      ruff (lint and format check) and mypy (strict for the core)"
	@echo "make build     sam build (arm64, python3.13) into .aws-sam/"
	@echo "make validate  sam validate --lint and cfn-lint"
	@echo "make bench     performance benchmark (a few minutes): table and BENCH line, written to bench/results.md"
	@echo "make serve     local webhook on http://127.0.0.1:3000/events (sandbox + embedded AWS; ARGS=\"--port N\")"
	@echo "make explain EVENT=events/signed-up.json [MAPPING=path]   what the mapping in use does with an event: the request, each field's rule"
	@echo "make check     read-only Freshdesk check: credentials, then the mapping against the account's fields (FRESHDESK_DOMAIN + FRESHDESK_API_KEY, STACK=name, or ARGS=--sandbox; MAPPING=path)"
	@echo "make dlq-list  list the dead-letter queue of make serve, or of STACK=name [REGION=r]"
	@echo "make dlq-replay  send parked events back to the retry queue (ARGS=\"--status 400 --outcome rejected --message-id ID --dry-run\")"
	@echo "make ledger   reliability ledger: 1,000 faulty events through the handlers, every one accounted for (EVENTS=n SEED=n)"

$(PY):
	@if [ -z "$(PYTHON313)" ]; then echo "Python 3.13 not found: install it (python3.13 on PATH, or 'pyenv install 3.13')" >&2; exit 1; fi
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(PY) layers/connector/pyproject.toml devtools/pyproject.toml pyproject.toml
	$(PY) -m pip install --quiet -e 'layers/connector[aws]' -e 'devtools[test]'
	@touch $@

venv: $(VENV)/.installed

$(SAM): | $(PY)
	$(PYTHON313) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet aws-sam-cli

$(CHECKOV): | $(PY)
	$(PYTHON313) -m venv $(CHECKOV_TOOLS)
	$(CHECKOV_TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_TOOLS)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'

tools: $(SAM) $(CHECKOV)

demo: venv
	$(PY) -m signal_freshdesk_dev.demo

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: venv tools lint
	SAM_CLI=$(abspath $(SAM)) CFN_LINT=$(abspath $(TOOLS)/bin/cfn-lint) CHECKOV=$(abspath $(CHECKOV)) $(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

validate: tools
	AWS_DEFAULT_REGION=eu-west-1 $(SAM) validate --lint
	$(TOOLS)/bin/cfn-lint template.yaml

# sam build needs a python3.13 with pip on PATH: the project's venv provides one.
build: venv tools
	PATH="$(abspath $(VENV))/bin:$$PATH" $(SAM) build

clean:
	rm -rf .aws-sam .local .pytest_cache

# Local development tools (README: "Local development tools"). ARGS passes further options through;
# STACK (and REGION) point check and the DLQ targets at a deployed stack instead of the local run.
STACK_ARGS = $(if $(STACK),--stack $(STACK)$(if $(REGION), --region $(REGION)))

serve: venv
	$(PY) -m signal_freshdesk_dev.serve $(ARGS)

explain: venv
	@if [ -z "$(EVENT)" ]; then echo "usage: make explain EVENT=events/signed-up.json [MAPPING=path] [ARGS=--json]" >&2; exit 2; fi
	$(PY) -m signal_freshdesk_dev.explain $(EVENT) $(if $(MAPPING),--mapping $(MAPPING)) $(ARGS)

check: venv
	$(PY) -m signal_freshdesk_dev.check $(STACK_ARGS) $(if $(MAPPING),--mapping $(MAPPING)) $(ARGS)

dlq-list: venv
	$(PY) -m signal_freshdesk_dev.dlq list $(or $(STACK_ARGS),--local) $(ARGS)

dlq-replay: venv
	$(PY) -m signal_freshdesk_dev.dlq replay $(or $(STACK_ARGS),--local) $(ARGS)

# The performance benchmark (README: "Performance"). The naive baseline it measures against needs
# aws-lambda-powertools[tracer], from devtools' `bench` extra. ARGS=--quick for a smoke run.
$(VENV)/.bench-installed: $(VENV)/.installed devtools/pyproject.toml
	$(PY) -m pip install --quiet -e 'devtools[bench]'
	@touch $@

bench: $(VENV)/.bench-installed
	$(PY) -m signal_freshdesk_dev.bench $(ARGS)

# The reliability ledger (tests/reliability): EVENTS events (default 1000) through the real handlers
# with random faults, then every event accounted for; SEED replays a stream. Exit status 1 on a problem.
ledger: venv
	$(PY) -m signal_freshdesk_dev.ledger --events $(or $(EVENTS),1000) $(if $(SEED),--seed $(SEED)) $(ARGS)
