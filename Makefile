# circuitkit — set-up, demo, tests, benchmarks and parameter sweeps.
# Every target installs what it needs first; a second run installs nothing.

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
CK      := $(VENV)/bin/circuitkit
STAMP   := $(VENV)/.installed
TOOLCHAIN_STAMP := build/.toolchain
SWEEP   ?= sweeps/ir_drop.toml
PYTEST_ARGS ?=

.PHONY: help setup toolchain venv demo test test-fast bench models sweep sweeps clean distclean doctor \
        sweep-ir-drop sweep-write-disturb sweep-engines render-memory

help:
	@echo "make setup     install ngspice (OSDI), libngspice and the Python venv"
	@echo "make demo      run testbenches/vteam_sine.xbar in both engines and compare"
	@echo "make test      run the test suite, SPICE co-simulation included"
	@echo "make bench     run the benchmarks (ratios measured side by side)"
	@echo "make sweep SWEEP=sweeps/X.toml   run one parameter sweep (resumable)"
	@echo "make sweeps    run the shipped sweeps (sweep-ir-drop, sweep-write-disturb, sweep-engines)"
	@echo "make models    compile every verilog_a/*.va to OSDI (cached)"
	@echo "make doctor    check the toolchain"
	@echo "make render-memory  peak memory of generating a 2048x2048 netlist (< 1 GB)"
	@echo "make clean     remove build outputs (keeps the venv)"

setup: toolchain venv

toolchain:
	@bash scripts/setup-toolchain.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip 2>/dev/null || true
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,dask]'
	@touch $(STAMP)

doctor: setup
	$(CK) doctor

models: setup
	$(CK) models compile

demo: setup
	@mkdir -p build/demo
	$(CK) compare testbenches/vteam_sine.xbar --report build/demo/report.json --plot build/demo/iv_loop.png

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks

sweep: setup
	$(CK) sweep run $(SWEEP)

# shipped sweeps; `make -j3 sweeps` runs them side by side (each writes its own table)
sweep-ir-drop: setup
	$(CK) sweep run sweeps/ir_drop.toml

sweep-write-disturb: setup
	$(CK) sweep run sweeps/write_disturb.toml

sweep-engines: setup
	$(CK) sweep run sweeps/engines_vs_size.toml

sweeps: sweep-ir-drop sweep-write-disturb sweep-engines

clean:
	rm -rf build results .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info

# peak memory of rendering a 2048x2048 netlist (must stay under 1 GB; takes a few minutes)
render-memory: setup
	@bash scripts/render-memory.sh 2048 spice

# device models: declarations, portability rule and numeric lockstep; ngspice stress runs
.PHONY: models-check models-stress
models-check: setup
	$(CK) models check

models-stress: setup
	$(PY) -m circuitkit.devices.stress
