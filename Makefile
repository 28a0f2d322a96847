# `make test` and `make run` install what they need into .venv on first use.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install test run sandbox bench clean

$(INSTALLED): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(INSTALLED)

test: install
	$(PY) -m pytest

run: sandbox

sandbox: install
	$(PY) -m sandbox

bench: install
	$(PY) bench/sandbox_throughput.py

clean:
	rm -rf $(VENV) .sandbox
