# reintegra: `make run` and `make test` do their own set-up through `make install`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SPEC ?= georgia_parole
SYNTH_ROWS ?= 20000
SYNTH_SEED ?= 42
SYNTH := data/synthetic_$(notdir $(basename $(SPEC))).csv

.PHONY: help install run test lint synth validate train bootstrap bench bench-train bench-startup mlflow-ui serve dev-setup clean

install: $(STAMP)

help:
	@echo "make run          install, synthetic cohort, first champion, development keys, serve on 127.0.0.1:8000"
	@echo "make test         ruff check and the whole pytest suite (a process per core and one, at most 4)"
	@echo "make lint         ruff check and ruff format --check"
	@echo "make install      .venv with the project and its dev tools, pinned by constraints.txt (PYTHON=python3,"
	@echo "                  the interpreter that makes .venv: 3.11 or later)"
	@echo "make synth        the synthetic cohort, data/synthetic_<spec>.csv (SPEC, SYNTH_ROWS=20000, SYNTH_SEED=42;"
	@echo "                  made once: delete the file to make it again with other rows or seed)"
	@echo "make validate     validate that cohort against SPEC (default georgia_parole)"
	@echo "make train        train and register a candidate (DATA, default the cohort; SPEC; MODEL_NAME=reintegra)"
	@echo "make bootstrap    train and promote a first champion on the cohort, only when there is none"
	@echo "make dev-setup    bootstrap, then one API key per role in data/dev-keys.env and an example request"
	@echo "make serve        serve the champion (REINTEGRA_* settings, see README.md)"
	@echo "make mlflow-ui    MLflow UI on 127.0.0.1:5000 over mlflow/mlflow.db"
	@echo "make bench        API latency and throughput benchmark (about 3 minutes)"
	@echo "make bench-train  fit time on the Georgia file, or a synthetic one of its size"
	@echo "make bench-startup  time from starting python -m serving until /readyz answers (about 3 minutes)"
	@echo "make clean        remove .venv and what the next run rebuilds; keeps data/reintegra.db, keys, mlflow/"

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(SYNTH): | $(STAMP)
	mkdir -p data
	$(PY) -m features synth --spec $(SPEC) --rows $(SYNTH_ROWS) --seed $(SYNTH_SEED) --out $(SYNTH)

synth: $(SYNTH)

validate: $(SYNTH)
	$(PY) -m features validate --spec $(SPEC) --data $(SYNTH)

DATA ?= $(SYNTH)
MODEL_NAME ?= reintegra

train: $(if $(filter $(SYNTH),$(DATA)),$(SYNTH)) | $(STAMP)
	$(PY) -m training train --spec "$(SPEC)" --data "$(DATA)" --name "$(MODEL_NAME)"

# Trains and promotes a first champion on the synthetic cohort, only when none exists.
bootstrap: validate
	$(PY) -m training bootstrap --spec $(SPEC) --data $(SYNTH) --name $(MODEL_NAME)

bench: install
	$(PY) bench/api_benchmark.py

bench-train: install
	$(PY) bench/train_benchmark.py

bench-startup: install
	$(PY) bench/startup_benchmark.py

mlflow-ui: install
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///mlflow/mlflow.db

dev-setup: bootstrap
	$(PY) -m serving dev-setup

serve: install
	$(PY) -m serving

run: install bootstrap dev-setup serve

# Test files are shared among up to four processes (one per core); a file's tests stay together
# so its module fixtures (servers, stores) are built once. Files go out in the order tests/conftest.py
# gives them (slow ones first), not xdist's by number of tests, so no process idles at the end.
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Removes what the next run rebuilds; keeps the audit trail and keys (data/reintegra.db,
# data/audit.key, data/dev-keys.env) and the registered models (mlflow/): delete those by hand to start over.
clean:
	rm -rf $(VENV) data/synthetic_*.csv data/example-request.json test-output
	@echo "kept data/reintegra.db, data/audit.key, data/dev-keys.env and mlflow/ (audit trail, its key, keys, models)"
