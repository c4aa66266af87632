# The commands of the README: `make demo`, `make test` and `make test-all`. Each creates .venv and installs once.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: install demo docs docs-student docs-inputs test test-all test-nbs test-py test-py-all bench export clean-nbs report

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@# plotly's static PNG export (kaleido) needs a Chromium; as root on Debian/Ubuntu it is installed, else figures stay HTML only
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "note: no Chromium found or installable: figures are written as HTML only (install chromium for PNG copies)"
	touch $(STAMP)

install: $(STAMP)

# The demo: every paper notebook that exists, profile `quick`, on the CPU, then the HTML report.
# Data: $(MEDREPRO_DATA) when set (e.g. MEDREPRO_DATA=../shared/data), else the embedded synthetic data.
demo: install
	$(BIN)/medrepro batch --profiles quick --devices cpu; rc=$$?; \
	$(BIN)/medrepro report --out reports/index.html && exit $$rc

# The course book (_docs/index.html; no source folder is kept), built by Sphinx + myst-nb + sphinx-book-theme, offline:
# each paper notebook WITH the outputs of its newest finished run in runs/ (make demo makes them when there are none), the
# labs executed by `medrepro lab` (made when there are none), the report, the library notebooks and, set apart, the
# lecturer's part (each lab's instructor notes and answers). make docs-student: the students' half alone (_docs/student/index.html).
docs: install docs-inputs
	$(BIN)/medrepro docs --runs-dir runs --out _docs

docs-student: install docs-inputs
	$(BIN)/medrepro docs --runs-dir runs --audience student --out _docs/student

docs-inputs: install
	@test -d runs || { echo "no runs/ yet: make demo runs every paper at profile quick first"; $(MAKE) demo; }
	@test -d runs/labs || { echo "no executed labs yet: medrepro lab all runs each lab once (a few minutes each)"; $(BIN)/medrepro lab all --runs-dir runs -q; }

# The tests, in two tiers (tests/conftest.py and pyproject.toml's markers say which test is where).
# make test (<= 10 min on 2 idle cores): the notebook tests (nbdev_test), then pytest without the slow tests: unit tests,
#   the CLI on tiny notebooks, the faults, and one paper run end to end (iconvnext smoke, shared by its checks).
# make test-all (CI): the notebook tests, then every test: also the papermill runs of the four papers (synthetic and
#   real data), the learning tests, the labs, the browser, SLURM, DDP and `make demo` in a fresh folder.
test: install test-nbs test-py

test-all: install test-nbs test-py-all

test-nbs: install
	$(BIN)/nbdev_test --n_workers 2

test-py: install
	$(BIN)/pytest -q -ra -m "not slow" --durations=15 tests

test-py-all: install
	$(BIN)/pytest -q -ra --durations=30 tests

bench: install
	$(BIN)/python -m benchmarks.run

export: install
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean
