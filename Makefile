# The two commands of the README: `make run` and `make test`. Everything installs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TRADEPULSE_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(TRADEPULSE_HOME)/dagster

.PHONY: install run test test-fast test-production test-ui bench-gates bench-indicators bench-simulator bench-stream bench-ticks bench-pipeline bench-startup peers clean

# uv installs the same pins as pip in half the time (29 s against 64 s from a cold cache on 2 cores)
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev]"
	touch $@

# numba kernels compiled once into their on-disk cache (not in the first Dagster run); redone when they change
$(VENV)/.numba-warm: $(VENV)/.installed $(wildcard tradepulse_assets/indicators/*.py)
	$(PY) -m tradepulse_assets.indicators.warmup
	touch $@

install: $(VENV)/.installed $(VENV)/.numba-warm

## make run: Dagster UI + daemon on http://127.0.0.1:3000 with a simulated vendor (Ctrl-C stops all)
run: install
	exec $(PY) -m tradepulse_assets.cli.devserver

## make test: the whole suite on two workers (the long tests mostly wait on the servers they start)
test: install
	$(PY) -m pytest -n 2 --dist worksteal --durations=20

## make test-fast: skip the tests that start real servers
test-fast: install
	$(PY) -m pytest -m "not slow"

## make test-production: PostgreSQL + S3 path (starts a throwaway PostgreSQL like CI does)
test-production: install
	source .ci/services.sh && $(PY) -m pytest tradepulse_assets_tests/production -q

## make test-ui: the browser test in Debian's Chromium
test-ui: install
	$(PY) -m pytest -m browser tradepulse_assets_tests/ui -q

## benchmarks: one command each, peers side by side, ratios printed (see benchmarks/README.md)
bench-gates: install
	$(PY) benchmarks/bench_gates.py

bench-indicators: install peers
	$(PY) benchmarks/bench_indicators.py

bench-simulator: install
	$(PY) benchmarks/bench_simulator.py

bench-stream: install
	$(PY) benchmarks/bench_stream.py

bench-ticks: install
	$(PY) benchmarks/bench_ticks.py

bench-pipeline: install
	$(PY) benchmarks/bench_pipeline.py

bench-startup: install
	$(PY) benchmarks/bench_startup.py

## make peers: the separate environment of benchmark peers (they pin old scipy/numpy)
$(VENV)-peers/.installed: benchmarks/requirements-peers.txt
	$(PYTHON) -m venv $(VENV)-peers
	$(VENV)-peers/bin/pip install --quiet --upgrade pip
	$(VENV)-peers/bin/pip install --quiet -r benchmarks/requirements-peers.txt
	touch $@

peers: $(VENV)-peers/.installed

clean:
	rm -rf var build *.egg-info
