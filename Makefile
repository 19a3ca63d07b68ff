# genrl_lite: two commands from a fresh clone.
#   make demo   build .venv if missing, then run every notebook on the embedded defaults
#               (outputs in build/notebooks; FAST=1 make demo for the seconds-long CI budgets)
#   make test   build .venv if missing, then unit tests + every notebook under nbval in fast mode
# Other targets: make lab (JupyterLab), make figures, make data (full datasets into data/,
# git-ignored), make models (retrain the shipped world models), make bench (benchmark scripts
# that print their figures).

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CELL_TIMEOUT ?= 900
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
export MUJOCO_GL ?= egl
export PYTHONHASHSEED ?= 0

.PHONY: venv demo test unit notebooks lab figures data models bench benchmark clean-venv

venv: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# grep drops this machine's harmless "Location ... is ignored" lines from pip's local mirrors.
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-lock.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	@# scripts/run_notebooks.py, not nbconvert --execute, which can hang for good after a widget cell
	GENRL_LITE_FAST=$${FAST:-0} $(PY) scripts/run_notebooks.py --timeout 0 --out-dir build/notebooks $(NOTEBOOKS)
	@echo "Executed notebooks are in build/notebooks/ (open them with: make lab)"

test: $(STAMP)
	GENRL_LITE_FAST=1 $(PY) -m pytest tests $(NOTEBOOKS) --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider

unit: $(STAMP)
	GENRL_LITE_FAST=1 $(PY) -m pytest tests -p no:cacheprovider

notebooks: $(STAMP)
	GENRL_LITE_FAST=1 $(PY) -m pytest $(NOTEBOOKS) --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

figures: $(STAMP)
	$(PY) scripts/make_figures.py

data: $(STAMP)
	$(PY) scripts/collect_data.py --all

# The shipped world models + connectors + aligners (needs `make data` first; ~70-80 min per domain
# on one core: run domains side by side on a 2-core machine with `make -j2 models`).
MODEL_DOMAINS := walker cheetah quadruped stickman
models: $(addprefix model-,$(MODEL_DOMAINS))
model-%: $(STAMP)
	$(PY) scripts/train_models.py --domain $* --wm-minutes 60 --conn-minutes 20 --threads 1
	$(PY) scripts/bench_world_model.py --quality $* --json data/models/$*/quality.json
	$(PY) scripts/bench_prompts.py --domain $*

bench: $(STAMP)
	$(PY) scripts/bench_collection.py
	$(PY) scripts/bench_vlm.py
	$(PY) scripts/bench_world_model.py
	for d in $(MODEL_DOMAINS); do $(PY) scripts/bench_world_model.py --quality $$d || exit 1; done
	for d in $(MODEL_DOMAINS); do mkdir -p build/bench; $(PY) scripts/bench_prompts.py --domain $$d --json build/bench/prompts_$$d.json || exit 1; done
	$(PY) scripts/bench_behaviour.py --aggregate-only --tasks walker_stand walker_walk walker_run cheetah_run quadruped_stand quadruped_walk quadruped_run --modes data datafree --seeds 0 1 2

# The benchmark (issue 7): methods x tasks x 3 seeds at the laptop preset, one core per policy,
# resumable (tens of CPU-hours; `python scripts/benchmark.py --dry-run` lists what is left), then its figures and the README tables.
benchmark: $(STAMP)
	$(PY) scripts/benchmark.py --preset laptop --seeds 0 1 2 --readme
	$(PY) scripts/figures_benchmark.py

clean-venv:
	rm -rf $(VENV)
