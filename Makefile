# The two commands of the README: `make demo` and `make test`. Both create .venv and install once.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: install demo docs test test-nbs test-py bench export clean-nbs report

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

# The documentation site (_docs/index.html): each paper notebook WITH the outputs of its newest finished run in runs/
# (make demo makes them when there are none), the labs executed by `medrepro lab` (made when there are none), the library
# notebooks and the report. Static HTML, offline.
docs: install
	@test -d runs || { echo "no runs/ yet: make demo runs every paper at profile quick first"; $(MAKE) demo; }
	@test -d runs/labs || { echo "no executed labs yet: medrepro lab all runs each lab once (a few minutes each)"; $(BIN)/medrepro lab all --runs-dir runs -q; }
	$(BIN)/medrepro docs --runs-dir runs --out _docs

# The tests: notebook tests (nbdev_test), then the integration tests (pytest).
test: install test-nbs test-py

test-nbs: install
	$(BIN)/nbdev_test --n_workers 2

test-py: install
	$(BIN)/pytest -q -ra tests

bench: install
	$(BIN)/python -m benchmarks.run

export: install
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean
