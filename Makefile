# One entry point for people and CI. `make quick` runs the notebook study on this CPU (reports/quick/);
# `make test` the tests.
# Both create a local virtual environment (.venv) first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Torch as the project's machines install it (from their local disk); elsewhere override, e.g.
#   make test TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Read-only data root (MNIST, Fashion-MNIST, CIFAR-10): $DFL_DATA_DIR, else the project's
# shared copy beside the repository (../shared/data/README.md) where it exists, else ./data,
# which `.venv/bin/python -m dfl_lib data --download` fills
DFL_DATA_DIR ?= $(if $(wildcard ../shared/data),../shared/data,data)
export DFL_DATA_DIR

PROFILE ?= quick

.PHONY: install test quick smoke study plan demo lab lab-screenshots bench gpu-check-data verify report site strip-notebooks clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m pip check
	touch $@

# two workers, one torch thread each (tests/conftest.py); a test file stays on one worker, so a
# module's fixtures (the smoke study) are built once, and files go out in collection order, the
# longest first (tests/conftest.py: LONGEST_FIRST). TEST_WORKERS=0: one process, as before.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

# the notebook study: plan (train + evaluate, one job at a time), then every notebook with
# papermill into reports/<profile>/ and its index README.md; interrupted, it resumes
quick: install
	$(PY) -m dfl_lib study --profile quick

# smoke reports are never committed: a tree with uncommitted changes may make them
smoke: install
	$(PY) -m dfl_lib study --profile smoke --allow-dirty

study: install
	$(PY) -m dfl_lib study --profile $(PROFILE)

# print the plan with estimated seconds (this CPU, and one H100 from the FLOP count)
plan: install
	$(PY) -m dfl_lib study --profile $(PROFILE) --plan-only

# the command-line demo of the engine (two MNIST runs, full attack suite)
demo: install
	$(PY) -m dfl_lib demo --profile quick

# JupyterLab on 127.0.0.1, the notebooks folder open (reports/ one click up); its kernel is this
# environment's Python (dfl_lib importable), ipywidgets' extension comes with the pip install.
# Opens no browser: follow the URL with the token that it prints. Root (containers) needs
# --allow-root. The data root is made absolute: kernels start in notebooks/.
# The kernel is the project's own ("dfl-study", this environment's Python: dfl_lib/study/kernel.py),
# found first whatever other kernels named python3 the user has installed elsewhere.
KERNEL_DATA := $(abspath $(VENV))/share/jupyter
lab: install
	$(PY) -c "from dfl_lib.study.kernel import install_kernel; install_kernel('$(abspath $(VENV))')"
	JUPYTER_PATH=$(KERNEL_DATA)$(if $(JUPYTER_PATH),:$(JUPYTER_PATH)) \
	DFL_STUDY_PYTHON=$(abspath $(PY)) DFL_DATA_DIR=$(abspath $(DFL_DATA_DIR)) \
	$(VENV)/bin/jupyter lab --no-browser \
		--ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) \
		--MappingKernelManager.default_kernel_name=dfl-study \
		--LabApp.default_url=/lab/tree/notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# the browser test (tests/test_lab.py) in the system's Chromium, its screenshots into reports/lab/;
# at LAB_PROFILE=quick it explores the quick study's runs (runs/quick; trained first if missing)
LAB_PROFILE ?= quick
lab-screenshots: install
	DFL_LAB_PROFILE=$(LAB_PROFILE) DFL_LAB_RUNS_DIR=$(CURDIR)/runs/$(LAB_PROFILE) \
		DFL_LAB_SCREENSHOTS=$(CURDIR)/reports/lab $(PY) -m pytest tests/test_lab.py -k chromium -rs

# speed measured side by side (ours vs torchattacks, vs a textbook training loop, AutoAttack and
# its parts): prints a table, writes benchmarks/results-<machine>.json (benchmarks/README.md)
bench: install
	$(PY) benchmarks/bench.py

# every committed report's tables, verdicts and checks re-derived from its record
# (reports/<profile>/record/) alone, without runs/; fails on any mismatch
# the tables from each report's record, the study report from its parts, then every study
# script's verdict page from the committed data it was judged from
verify: install
	$(PY) -m dfl_lib verify
	$(PY) studies/verify_pages.py

# the reports as a static site (site/index.html; tests/test_site.py opens it in Chromium)
site: install
	$(PY) -m dfl_lib site --out site

# the study report, reports/README.md: every claim's verdict from the parts under reports/
report: install
	$(PY) -m dfl_lib report

# the GPU check's inputs (studies/gpu_check.py): MNIST and the CIFAR-10 JPEG copy packed into
# gpu-check-data/ (about 31 MiB), and the pinned torchattacks wheel into .whl/
gpu-check-data: install
	$(PY) studies/gpu_check.py pack --data-dir $(DFL_DATA_DIR) --out gpu-check-data
	$(PY) -m pip download -q --no-deps --only-binary=:all: -d .whl torchattacks==3.3.0

strip-notebooks: install
	$(VENV)/bin/nbstripout --keep-id notebooks/*.ipynb

clean-venv:
	rm -rf $(VENV)
