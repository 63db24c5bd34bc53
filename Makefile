# `make data train` is the main job; `make test` runs the suite. Both build .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIPELINE ?= pipelines/zh_reviews.yaml
TORCH_VERSION ?= 2.13.0

.PHONY: setup data train test chromium bench lint clean

# The stamp file is the target so a half-built venv (interrupted install) is rebuilt, not trusted.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: anything that pulls torch as a dependency would otherwise take a multi-GB CUDA build.
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

setup: $(VENV)/.installed

DATA_NODE  ?= balanced
MODEL_NODE ?= adapter

# `data` stops at the cleaned, balanced dataset; `train` runs the rest of the same DAG (the LoRA adapter).
data: setup
	$(VENV)/bin/dataprep run $(PIPELINE) --until $(DATA_NODE)

# `train` also writes the run report (`dataprep report`) beside the adapter: report.html next to its model/
# directory in the node's cache entry. The entry's manifest does not list it (like stats.json it holds measured
# times), so the adapter's files and key are untouched; a rerun writes it again.
train: setup
	$(VENV)/bin/dataprep run $(PIPELINE) --until $(MODEL_NODE)
	@cd "$$($(VENV)/bin/dataprep path $(PIPELINE) $(MODEL_NODE))" && cat report.md efficiency.md
	@model="$$($(VENV)/bin/dataprep path $(PIPELINE) $(MODEL_NODE))" && \
	  $(VENV)/bin/dataprep report $(PIPELINE) -o "$$(dirname "$$model")/report.html"

test: setup chromium
	$(PY) -m pytest -q

# tests/test_report.py opens the run report in headless Chromium (Debian's `chromium`): installed here when it is
# missing and this runs as root with apt-get (CI); otherwise the browser tests skip, saying why.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get) for the report's browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	      echo "could not install chromium: the browser tests will skip"; \
	  else \
	    echo "chromium is missing and installing it needs root and apt-get: the browser tests will skip"; \
	  fi; \
	fi

bench: setup
	$(PY) bench/run.py --out BENCHMARKS.md

lint: setup
	$(VENV)/bin/ruff check dataprep tests bench

clean:
	rm -rf runs bench/out
