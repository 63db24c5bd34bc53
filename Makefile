# `make data train` is the main job; `make test` runs the suite. Both build .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIPELINE ?= pipelines/zh_reviews.yaml
TORCH_VERSION ?= 2.13.0

.PHONY: setup data train test bench lint clean

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

train: setup
	$(VENV)/bin/dataprep run $(PIPELINE) --until $(MODEL_NODE)
	@cd "$$($(VENV)/bin/dataprep path $(PIPELINE) $(MODEL_NODE))" && cat report.md efficiency.md

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py --out BENCHMARKS.md

lint: setup
	$(VENV)/bin/ruff check dataprep tests bench

clean:
	rm -rf runs bench/out
