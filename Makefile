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

.PHONY: bench-credit demo test test-slow bench bench-retrieval bench-deps ray-deps docs lint install clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# The `bench` extra: the peer library LightFM (implicit is a core dependency). LightFM 1.17 ships only
# an sdist whose setup.py sets `__builtins__.__LIGHTFM_SETUP__`, which fails in every PEP 517
# build (there `__builtins__` is a dict), and pip >= 25.3 has no other way to build it. So pip
# 25.2 (in build/legacy-pip, outside the venv) builds the wheel by its legacy `setup.py
# bdist_wheel` path from the venv's setuptools (the C sources are shipped: no Cython needed; a C
# compiler with OpenMP is), without -march=native / -ffast-math (LIGHTFM_NO_CFLAGS) so results do
# not depend on the CPU; the extra then installs from build/wheels.
LEGACY_PIP := build/legacy-pip
WHEELS := build/wheels
$(BIN)/.bench-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet --upgrade --target $(LEGACY_PIP) 'pip>=24,<25.3' 'wheel>=0.43,<1'
	LIGHTFM_NO_CFLAGS=1 PYTHONPATH=$(LEGACY_PIP) $(BIN)/python -m pip wheel --quiet --no-deps \
		--no-build-isolation --no-cache-dir 'lightfm>=1.17,<1.18' -w $(WHEELS)
	$(BIN)/pip install --quiet --find-links $(WHEELS) -e '.[dev,bench]'
	touch $@

bench-deps: $(BIN)/.bench-installed

# The `ray` extra (dayzero.distributed: Ray Data, Train, Serve; wheels, about 70 MB).
$(BIN)/.ray-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $@

ray-deps: $(BIN)/.ray-installed

# The documentation site (mkdocs.yml, docs/) into site/, warnings as errors; the `docs` extra
# (MkDocs, Material, mkdocstrings) is installed on first use. NO_MKDOCS_2_WARNING=1 keeps
# Material's end-of-life banner out of the output (the build passes either way).
$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $@

docs: $(BIN)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

demo: install
	$(BIN)/dayzero demo

test: install
	$(BIN)/python -m pytest -q tests $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -q -m slow tests $(PYTEST_ARGS)

# Every benchmark in BENCHMARKS.md (about four hours on 2 cores); each writes bench/results/*.json.
bench: bench-deps
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
	$(MAKE) bench-retrieval

# Issue 12's full-catalogue tables (BENCHMARKS.md, "Full-catalogue cold start"); hours on 2 cores.
RETRIEVAL_DATASETS ?= ml-1m ml-1m-warmup ml-100k citeulike steam-reviews steam-200k restaurant
bench-retrieval: bench-deps
	for d in $(RETRIEVAL_DATASETS); do \
		$(BIN)/python bench/retrieval.py --dataset $$d && \
		$(BIN)/python bench/retrieval_two_tower.py --dataset $$d \
			--models two-tower-retrieval two-tower-retrieval+floor --append && \
		$(BIN)/python bench/retrieval_peers.py --dataset $$d && \
		BENCH_RESULTS=bench/results/hybrid $(BIN)/python bench/retrieval.py --dataset $$d \
			--models hybrid hybrid-shared $$([ $$d = steam-200k ] && echo hybrid-release) \
			|| exit 1; \
	done
	for d in ml-100k steam-200k steam-reviews ml-1m; do \
		BENCH_RESULTS=bench/results/contrastive $(BIN)/python bench/retrieval_two_tower.py \
			--dataset $$d --models two-tower-retrieval two-tower-retrieval+contrastive \
			--max-users 2000 || exit 1; \
	done
	$(BIN)/python bench/retrieval_profile.py --label main
	$(BIN)/python bench/retrieval_cost.py --repeats 3
	$(BIN)/python bench/retrieval_verdict.py
	$(BIN)/python bench/retrieval_verdict.py --against-parts

# Issue 14's credit tables (BENCHMARKS.md, risk sections): public tables kept outside the repo in
# $DAYZERO_CREDIT_DATA (bench/_credit_data.py says where each comes from); about an hour.
bench-credit: install
	$(BIN)/python bench/risk_tabular.py --subset-seeds 3 \
		--datasets taiwan-default,hmeq,credit-data,bbbrisk-bloan,lending-club-2016,australian,japanese-crx
	$(BIN)/python bench/risk_tabular.py --datasets csx-consumer-loans --subset 100000
	$(BIN)/python bench/risk_speed.py
	$(BIN)/python bench/text_credit.py
	$(BIN)/python bench/credit_prior.py

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
