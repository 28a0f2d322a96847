# `make test`, `make run` and `make serve` install what they need on first use:
# .venv for the code and tests, .venv-sam for aws-sam-cli (it pins boto3 exactly).
PYTHON ?= python3.11
VENV ?= .venv
SAM_VENV ?= .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
INSTALLED := $(VENV)/.installed
SAM_INSTALLED := $(SAM_VENV)/.installed
REGION ?= us-east-1

.PHONY: install test lint unit template run serve sandbox bench clean

$(INSTALLED): requirements-dev.txt layers/shared/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(SAM_INSTALLED): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

install: $(INSTALLED) $(SAM_INSTALLED)

test: lint unit template

lint: $(INSTALLED)
	$(VENV)/bin/ruff check sandbox layers functions tests bench

unit: $(INSTALLED)
	$(PY) -m pytest

template: $(SAM_INSTALLED)
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region $(REGION)
	SAM_CLI_TELEMETRY=0 $(SAM) build --region $(REGION) --build-dir .aws-sam/build
	$(PYTHON) tests/check_layer.py .aws-sam/build/SharedLayer/python

run: $(INSTALLED)
	$(PY) -m sandbox.local run $(foreach file,$(FILES),--file $(file)) $(foreach setting,$(SETTINGS),--env $(setting))

serve: $(INSTALLED)
	$(PY) -m sandbox.local serve $(if $(LOG_LEVEL),--log-level $(LOG_LEVEL)) $(foreach setting,$(SETTINGS),--env $(setting))

sandbox: $(INSTALLED)
	$(PY) -m sandbox

bench: $(INSTALLED)
	$(PY) bench/sandbox_throughput.py
	$(PY) bench/monetate_file_throughput.py
	$(PY) bench/mona_export_throughput.py
	$(PY) bench/optimove_repeated_keys.py
	$(PY) bench/written_dates.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .sandbox
