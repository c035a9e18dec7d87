# Everything installs into .venv from this repo's own files; `make run` and `make test` are the two entry points.
PYTHON ?= python3
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= $(or $(ASKSCIENCE_CSV),data/askscience_data.csv)
LLM ?= embedded
# llama.cpp built for a portable x86-64 feature set (AVX2/FMA/F16C) instead of -march=native: a native build
# on a CPU that reports AMX (Sapphire Rapids and later) compiles AMX kernels, and a VM that does not grant
# the AMX tile state kills the process with a general protection fault at the first matrix product (seen
# here with llama-cpp-python 0.3.36). pip's own wheel cache ignores CMAKE_ARGS, so the wheel is built once
# into a cache directory named by version and flags, and installed from there.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
LLAMA_WHEELS := $(HOME)/.cache/hybrid-scorer/llama-wheels/$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)

.PHONY: install lock run test test-fast lint bench clean

$(STAMP): pyproject.toml requirements.lock requirements-llama.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The embedded LLM's bindings first: llama.cpp built once from the hash-checked sdist (3-8 min on
	# 2 cores, see LLAMA_WHEELS); installed, it satisfies the lock's pin of the same version.
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' CMAKE_BUILD_PARALLEL_LEVEL=$(shell nproc) \
	  $(BIN)/python -m pip wheel --quiet --no-cache-dir --no-deps --require-hashes -w $(LLAMA_WHEELS) -r requirements-llama.lock
	$(BIN)/python -m pip install --quiet --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	# Then exactly the locked set, every file checked against its hash (`make lock` writes the lock),
	# and the project itself.
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## The lock files, re-resolved (newest versions the pins allow); then `make install` and the tests.
lock: install
	$(BIN)/python -m pip install --quiet 'uv>=0.8'
	$(BIN)/uv pip compile requirements.in --upgrade --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-emit-package hybrid-scorer \
	  -o requirements.lock
	$(BIN)/uv pip compile requirements-llama.in --no-deps --generate-hashes --python-version 3.11 -o requirements-llama.lock

install: $(STAMP)

## The main job: a content model first (predict and serve work within a minute or two), then LLM
## extraction (cached) -> ablation report (and the results tables of README and DISCUSSION, re-rendered
## from it) -> final hybrid + content models, registered in MLflow -> champion. Each step says how long it
## took; the served models' cross-fits are computed once (cache/fits: the ablation's are train's).
run: install
	@set -e; SECONDS=0; \
	step() { echo "==> $$*"; started=$$SECONDS; "$$@"; echo "    ($$((SECONDS - started)) s)"; }; \
	step $(BIN)/hybrid-scorer train --data $(DATA) --llm none --no-register; \
	echo "content model ready: $(BIN)/hybrid-scorer predict --title 'Why is the sky blue?'  (the LLM work follows)"; \
	step $(BIN)/hybrid-scorer extract --data $(DATA) --llm $(LLM) --out reports/extraction; \
	step $(BIN)/hybrid-scorer ablate --data $(DATA) --llm $(LLM) --out reports --docs README.md DISCUSSION.md; \
	step $(BIN)/hybrid-scorer train --data $(DATA) --llm $(LLM); \
	step $(BIN)/hybrid-scorer promote --llm $(LLM); \
	echo "make run: $$((SECONDS / 60)) min $$((SECONDS % 60)) s"; \
	echo "report: reports/ablation.md   models: models/current/{hybrid,content} (registry: models:/hybrid-scorer@champion)"; \
	echo "try: $(BIN)/hybrid-scorer predict --title 'Why is the sky blue?'   or   $(BIN)/hybrid-scorer serve  (the page: http://127.0.0.1:8000/)"

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not integration"

lint: install
	$(BIN)/ruff check hybrid_scorer tests bench scripts notebooks
	$(BIN)/ruff format --check hybrid_scorer tests bench scripts notebooks/build_walkthrough.py
	$(BIN)/mypy hybrid_scorer

bench: install
	mkdir -p reports/bench
	$(BIN)/python bench/train.py --data $(DATA)
	$(BIN)/python bench/extract.py --data $(DATA) -n 60 --compare --batching 2>/dev/null | tee reports/bench/extract.txt
	$(BIN)/python bench/extract.py --data $(DATA) -n 60 --pooling 2>/dev/null | tee reports/bench/extract_pooling.txt
	$(BIN)/python bench/predict.py --data $(DATA) 2>/dev/null | tee reports/bench/predict.txt
	$(BIN)/python bench/flair.py --data $(DATA) 2>/dev/null | tee reports/bench/flair.txt
	$(BIN)/python bench/load.py --data $(DATA) 2>/dev/null | tee reports/bench/load.txt
	$(BIN)/python bench/load.py --data $(DATA) --modes a,b --no-check 2>/dev/null | tee reports/bench/load_unchecked.txt
	$(BIN)/python bench/threads.py --data $(DATA) 2>/dev/null | tee reports/bench/threads.txt

clean:
	rm -rf $(VENV) cache models mlruns mlflow.db logs
