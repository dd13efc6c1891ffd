# Two commands on a fresh machine: `make demo` (set up + run the main study), `make test` (set up + tests).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUIET_PIP := { grep -v -e "is ignored: it is neither a file nor a directory" || true; }

# Debian packages of the tests that use real components (a one-node SLURM, a headless browser): installed by
# `make test` when missing and it runs as root with apt-get (CI); elsewhere those tests skip, saying what to install.
SYSTEM_PACKAGES := slurmctld slurmd slurm-client munge chromium

.PHONY: setup system-packages demo test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip<=26.2" 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install -q "torch==2.13.0" 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install -q -e ".[test]" "torch==2.13.0" 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import torch, devito, prefect, zarr, segyio; assert torch.__version__.startswith('2.13.0')"
	touch $(STAMP)

demo: setup
	$(BIN)/strata run seismic_imaging

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { command -v slurmctld && command -v slurmd \
	    && command -v munged && command -v sbatch && command -v chromium; } >/dev/null 2>&1; then \
	  echo "installing $(SYSTEM_PACKAGES) with apt-get (the SLURM and browser tests use them)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); } \
	    >/dev/null 2>&1 || echo "apt-get could not install them: the SLURM and browser tests will skip"; \
	fi

test: setup system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 tests

bench: setup
	$(BIN)/python tests/benchmarks/bench_catalog.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) strata-data
