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

.PHONY: help setup toolchain venv demo test test-fast bench models sweep sweeps clean distclean doctor synapse \
        sweep-ir-drop sweep-write-disturb sweep-engines fuzz render-memory program-train program-32 \
        program-8-engines programming

help:
	@echo "make setup     install ngspice (OSDI), libngspice and the Python venv"
	@echo "make demo      run testbenches/vteam_sine.xbar in both engines and compare"
	@echo "make test      run the test suite, SPICE co-simulation included"
	@echo "make bench     run the benchmarks (ratios measured side by side)"
	@echo "make sweep SWEEP=sweeps/X.toml   run one parameter sweep (resumable)"
	@echo "make sweeps    run the shipped sweeps (sweep-ir-drop, sweep-write-disturb, sweep-engines)"
	@echo "make models    compile every verilog_a/*.va to OSDI (cached)"
	@echo "make programming  VCM programming study: 32x32 predictor vs write-and-verify vs ISPP, 8x8 in both engines"
	@echo "make doctor    check the toolchain"
	@echo "make fuzz      100,000 generated/mutated descriptions through load and the renderer (FUZZ_CASES=N)"
	@echo "make render-memory  peak memory of generating a 2048x2048 netlist (< 1 GB)"
	@echo "make clean     remove build outputs (keeps the venv)"

setup: toolchain venv

toolchain:
	@bash scripts/setup-toolchain.sh

# Byte-compile circuitkit (only changed files; ~0.1 s): with PYTHONDONTWRITEBYTECODE set, as on some CI
# images, every process would otherwise compile ~50 modules from source (0.2 s per command, measured).
venv: $(STAMP)
	@$(PY) -m compileall -q -j 0 circuitkit benchmarks $(VENV)/lib/python3*/site-packages/__editable__*finder.py >/dev/null

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

# programming study (docs/programming.md): predictor vs write-and-verify vs ISPP on the VCM model with c2c noise
PROGRAM_DESC := examples/programming/program_vcm.xbar
PROGRAM_MODEL := examples/programming/vcm_predictor.npz
PROGRAM_C2C := --c2c kset=0.1 --c2c kreset=0.1 --c2c-seed 11
PROGRAM_POLICIES := predictor,verify,ispp

# retrain the shipped predictor: 16x16 training array with its own devices, states and c2c seed
program-train: setup
	$(CK) program train $(PROGRAM_DESC) --set n=16 --set devices=101 --set found=11 --c2c kset=0.1 \
	    --c2c kreset=0.1 --c2c-seed 1001 --rounds 12 --seed 5 --out $(PROGRAM_MODEL)

program-32: setup
	$(CK) program $(PROGRAM_DESC) --set n=32 --targets examples/programming/targets_32x32.csv \
	    --policy $(PROGRAM_POLICIES) --model $(PROGRAM_MODEL) $(PROGRAM_C2C) --max-rounds 40 --out build/programming/32x32

# the same run on 8x8 in both engines (1 ns step): per-cell pulse counts must be identical
program-8-engines: setup
	$(CK) program $(PROGRAM_DESC) --set n=8 --set step=1n --targets examples/programming/targets_8x8.csv \
	    --policy $(PROGRAM_POLICIES) --model $(PROGRAM_MODEL) $(PROGRAM_C2C) --max-rounds 100 \
	    --engine behavioural --out build/programming/8x8-behavioural
	$(CK) program $(PROGRAM_DESC) --set n=8 --set step=1n --targets examples/programming/targets_8x8.csv \
	    --policy $(PROGRAM_POLICIES) --model $(PROGRAM_MODEL) $(PROGRAM_C2C) --max-rounds 100 \
	    --engine spice --out build/programming/8x8-spice
	$(CK) program compare build/programming/8x8-behavioural build/programming/8x8-spice

programming: program-32 program-8-engines

# multi-mechanism synapse: characterisation in both engines and the short-term-memory task (docs/synapse.md)
SYN_OUT ?= build/synapse
synapse: setup
	$(CK) characterise testbenches/multisynapse_train.xbar --protocol ppf --engines behavioural,spice --out $(SYN_OUT)
	$(CK) characterise testbenches/multisynapse_train.xbar --protocol decay --engines behavioural,spice --out $(SYN_OUT)
	$(CK) characterise testbenches/multisynapse_train.xbar --protocol ltp --engines behavioural,spice --out $(SYN_OUT)
	$(CK) characterise testbenches/multisynapse_train.xbar --protocol meta --engines behavioural,spice --out $(SYN_OUT)
	$(CK) cue-task --trials 40 --spread 0.1,0.3,0.5 --out $(SYN_OUT)

# device models: declarations, portability rule and numeric lockstep; ngspice stress runs
.PHONY: models-check models-stress
models-check: setup
	$(CK) models check

models-stress: setup
	$(PY) -m circuitkit.devices.stress

# neural network on tiled crossbars (docs/networks.md): train the digits MLP once, run it with one
# tile per layer checked in ngspice, then sweep accuracy against wire resistance and ADC bits
DIGITS := examples/digits

$(DIGITS)/weights.npz $(DIGITS)/test.npz: $(DIGITS)/train.py | $(STAMP)
	$(PY) $(DIGITS)/train.py

.PHONY: infer-digits
infer-digits: setup $(DIGITS)/weights.npz
	$(CK) infer $(DIGITS)/network.toml --data $(DIGITS)/test.npz --verify-tiles 1 --out results/digits
	$(CK) infer-sweep examples/digits/digits_accuracy.toml --out results/sweeps/digits_accuracy

# -- spiking networks (docs/snn.md) ----------------------------------------------
.PHONY: snn-window snn-learn snn-sweep bench-snn
snn-window: setup
	$(PY) -m circuitkit stdp testbenches/stdp_vteam.xbar --out build/snn/window_vteam
	$(PY) -m circuitkit stdp testbenches/stdp_yakopcic.xbar --out build/snn/window_yakopcic

snn-learn: setup
	$(PY) -m circuitkit snn testbenches/snn_coincidence.toml --out build/snn/learn
	$(PY) -m circuitkit snn testbenches/snn_eligibility.toml --out build/snn/learn_eligibility

SNN_CONDITIONS ?= --spread=0.3 --spread=0.5 --c2c=0.3
snn-sweep: setup
	for c in $(SNN_CONDITIONS); do \
	  $(PY) -m circuitkit snn testbenches/snn_coincidence.toml $$c --out build/snn/sweep/vteam$$c && \
	  $(PY) -m circuitkit snn testbenches/snn_eligibility.toml $$c --out build/snn/sweep/volatile$$c || exit 1; done

bench-snn: setup
	$(PY) -m benchmarks.snn $(BENCH_SNN_ARGS)

# hostile-input fuzz: generated and mutated descriptions through load and the renderer, in chunks;
# prints a report of tracebacks, hangs, unlocated errors, injected netlist lines (build/fuzz/report.json)
FUZZ_CASES ?= 100000
fuzz: setup
	nice $(PY) tests/fuzzkit.py --cases $(FUZZ_CASES) --chunk 2000
