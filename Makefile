# Every target creates .venv on first use. torch is installed first from its CPU wheel:
# a looser pin would pull a multi-GB CUDA build.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Real datasets for test-slow and bench; left empty when ../shared/data does not exist.
DAYZERO_DATA ?= $(wildcard $(abspath ../shared/data))
export DAYZERO_DATA
# The PostgreSQL event-store tests run when this is set (.ci/run sets it from
# scripts/start_postgres.sh, which prints the URL) and skip otherwise.
DAYZERO_TEST_POSTGRES_URL ?=
export DAYZERO_TEST_POSTGRES_URL
export HF_HUB_OFFLINE = 1

.PHONY: demo test test-slow bench lint install clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/dayzero demo

test: install
	$(BIN)/python -m pytest -q tests $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -q -m slow tests $(PYTEST_ARGS)

# Every benchmark in BENCHMARKS.md (about four hours on 2 cores); each writes bench/results/*.json.
bench: install
	$(BIN)/python bench/baselines.py
	$(BIN)/python bench/encode_throughput.py
	$(BIN)/python bench/ml1m_coldstart.py
	$(BIN)/python bench/cross_encoder.py
	$(BIN)/python bench/tallrec_fewshot.py
	$(BIN)/python bench/german_credit_kshot.py
	$(BIN)/python bench/sentiment.py
	$(BIN)/python bench/steam.py --epochs 10 --max-users 1000 --lora
	$(BIN)/python bench/warmup_curve.py
	$(BIN)/python bench/index.py
	$(BIN)/python bench/serve_load.py
	$(BIN)/python bench/store_ingest.py

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
