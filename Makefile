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

data: setup
	$(VENV)/bin/dataprep run $(PIPELINE)

# The LoRA trainer node (train_lora) is not built yet: until it lands, `train` stops after the data path.
train: data
	@echo "train: no train_lora node in $(PIPELINE) yet (the trainer is the next issue); data is ready in runs/"

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py --out BENCHMARKS.md

lint: setup
	$(VENV)/bin/ruff check dataprep tests bench

clean:
	rm -rf runs bench/out
