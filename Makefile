# One entry point for people and CI. `make quick` runs the notebook study on this CPU (reports/quick/);
# `make test` the tests.
# Both create a local virtual environment (.venv) first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Torch as the project's machines install it (from their local disk); elsewhere override, e.g.
#   make test TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Read-only data root (MNIST, Fashion-MNIST, CIFAR-10); see ../shared/data/README.md
DFL_DATA_DIR ?= ../shared/data
export DFL_DATA_DIR

PROFILE ?= quick

.PHONY: install test quick smoke study plan demo strip-notebooks clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m pip check
	touch $@

test: install
	$(PY) -m pytest

# the notebook study: plan (train + evaluate, one job at a time), then every notebook with
# papermill into reports/<profile>/ and its index README.md; interrupted, it resumes
quick: install
	$(PY) -m dfl_lib study --profile quick

smoke: install
	$(PY) -m dfl_lib study --profile smoke

study: install
	$(PY) -m dfl_lib study --profile $(PROFILE)

# print the plan with estimated seconds (this CPU, and one H100 from the FLOP count)
plan: install
	$(PY) -m dfl_lib study --profile $(PROFILE) --plan-only

# the command-line demo of the engine (two MNIST runs, full attack suite)
demo: install
	$(PY) -m dfl_lib demo --profile quick

strip-notebooks: install
	$(VENV)/bin/nbstripout --keep-id notebooks/*.ipynb

clean-venv:
	rm -rf $(VENV)
