# One entry point for humans. `make help` lists every target.
# Tests, DAG tasks and these targets call the same Python functions.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv

# Airflow runs from a project-local home on SQLite, without the example DAGs.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: help
help: ## List every target with a one-line description
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

# --compile-bytecode: packages arrive with their .pyc files. Where PYTHONDONTWRITEBYTECODE is set
# (CI here), nothing else would ever write them, and every process (each Airflow task, each
# test) would recompile what it imports: importing Great Expectations took 12 s of CPU, not 5.
$(VENV)/.runtime: $(VENV)/bin/activate requirements.txt constraints.txt pyproject.toml
	$(UV) pip install --python $(PY) --quiet --compile-bytecode -r requirements.txt -c constraints.txt
	$(UV) pip install --python $(PY) --quiet --no-deps -e .
	@touch $@

# The Spark warehouse's extra: pyspark and dbt-spark from PyPI, a Java runtime from Debian's
# packages where none is present. Installed for CX_WAREHOUSE_TARGET=spark and for the tests.
$(VENV)/.spark: $(VENV)/.runtime requirements-spark.txt constraints.txt
	scripts/java.sh install >/dev/null
	$(UV) pip install --python $(PY) --quiet --compile-bytecode -r requirements-spark.txt -c constraints.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime $(VENV)/.spark requirements-dev.txt requirements-spark.txt
	$(UV) pip install --python $(PY) --quiet --compile-bytecode -r requirements-dev.txt -c constraints.txt
	@touch $@

.PHONY: install
install: $(VENV)/.runtime $(if $(filter spark,$(CX_WAREHOUSE_TARGET)),$(VENV)/.spark) ## Create .venv and install the pinned runtime (and Spark's, with CX_WAREHOUSE_TARGET=spark)

.PHONY: install-spark
install-spark: $(VENV)/.spark ## Add the Spark warehouse's packages and a Java runtime (as root: Debian's)

.PHONY: install-dev
install-dev: $(VENV)/.dev ## Install the runtime plus test and lint tools

.PHONY: run
run: install ## Run the whole pipeline on the configured sources (the sample, generated if missing, by default)
	$(PY) -m pipeline run

.PHONY: sample
sample: install ## (Re)generate the sample sources under data/sample
	$(PY) -m sample_data.generate

.PHONY: ingest
ingest: install ## Run the enabled sources' ingestion DAGs once, for the as-of date
	$(PY) -m pipeline run --only ingest

.PHONY: programs
programs: install ## Run a programs cycle on the current scores: assign, export, measure, report
	$(PY) -m programs run

.PHONY: programs-check
programs-check: install ## Check programs/programs.yml and programs/cases.yml (columns, priorities, rules)
	$(PY) -m programs check
	$(PY) -m programs.cases check

.PHONY: cases-check
cases-check: install ## Check programs/cases.yml (triggers, conditions, severities, closers)
	$(PY) -m programs.cases check

.PHONY: cases
cases: install ## Open, close and deliver the CX team's cases on the current warehouse
	$(PY) -m programs.cases run

.PHONY: report
report: install ## Regenerate the segment report (data/reports/segment-report.html)
	$(PY) -m programs report

.PHONY: chromium
chromium: ## Install Debian's Chromium (as root) for the report's browser test
	scripts/chromium.sh install

.PHONY: settings
settings: install ## Print the effective settings (passwords masked)
	$(PY) -m pipeline settings

.PHONY: config-docs
config-docs: install ## Regenerate the settings table in docs/configuration.md from config/settings.py
	$(PY) -m config.docs

.PHONY: lint
lint: install-dev ## ruff on Python, SQLFluff on the dbt SQL
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: format
format: install-dev ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: bench
bench: install $(if $(SPARK),$(VENV)/.spark) ## Benchmark the pipeline at 100k and 1M members (SPARK=1: the dbt build on Spark too); figures in bench/results/ (slow)
	$(PY) -m bench $(if $(SIZES),--sizes $(SIZES)) $(if $(DBT_TASKS),--dbt-tasks $(DBT_TASKS)) $(if $(SPARK),--spark)

.PHONY: eval
eval: install ## The pipeline on each sample shape (and LOYALTY_URL): churn champion vs baselines, sentiment vs VADER (slow)
	$(PY) -m ml.eval_shapes $(if $(MEMBERS),--members $(MEMBERS)) $(if $(SHAPES),--shapes $(SHAPES)) \
		$(foreach url,$(LOYALTY_URL),--loyalty-url '$(url)')

.PHONY: sentiment
sentiment: install ## Label a CSV's text: make sentiment IN=comments.csv COLUMN=text OUT=labelled.csv
	@test -n "$(IN)" -a -n "$(COLUMN)" -a -n "$(OUT)" || \
		{ echo "usage: make sentiment IN=<csv> COLUMN=<name> OUT=<csv>"; exit 2; }
	$(PY) -m warehouse.text sentiment --in '$(IN)' --column '$(COLUMN)' --out '$(OUT)'

.PHONY: docs
docs: install ## Build the dbt docs (models, columns, tests, lineage) and serve them on 127.0.0.1:8580
	$(PY) -m warehouse docs

.PHONY: freshness
freshness: install ## How old the newest landed row of each source is (dbt source freshness)
	$(PY) -m warehouse freshness

.PHONY: erase
erase: install ## Erase members everywhere, and keep them out: make erase MEMBER_IDS="M0000042 M0000043"
	@test -n "$(MEMBER_IDS)" || { echo "usage: make erase MEMBER_IDS=\"<id> [<id> ...]\""; exit 2; }
	$(PY) -m privacy erase --member-id $(MEMBER_IDS)

.PHONY: privacy-scan
privacy-scan: install ## Look for the sources' emails and phones in marts, task logs, MLflow and exports
	$(PY) -m privacy scan

.PHONY: postgres
postgres: ## Install (Debian packages) and start the local PostgreSQL used by the tests
	scripts/postgres.sh start

.PHONY: postgres-stop
postgres-stop: ## Stop the local PostgreSQL
	scripts/postgres.sh stop

.PHONY: up
up: install ## Start Airflow for real on 127.0.0.1: scheduler, dag-processor, triggerer, API server, MLflow
	@scripts/postgres.sh start >/dev/null || echo "make up: no local PostgreSQL, so the metadata database is SQLite"
	$(PY) -m pipeline.stack up

.PHONY: down
down: ## Stop everything `make up` started (not PostgreSQL)
	$(PY) -m pipeline.stack down

.PHONY: stack-status
stack-status: ## Print the pids and health of what `make up` runs
	$(PY) -m pipeline.stack status

.PHONY: airflow
airflow: install ## Run the Airflow CLI against `make up`'s stack: make airflow ARGS="dags list"
	$(PY) -m pipeline.stack airflow $(ARGS)

.PHONY: test-scheduler
test-scheduler: install-dev ## Only the end-to-end test on the real scheduler and the UI's browser test
	scripts/chromium.sh install >/dev/null
	CX_TEST_POSTGRES_URL=$$(scripts/postgres.sh start) $(PY) -m pytest -m scheduler tests/integration/test_real_scheduler.py tests/ui

.PHONY: test
test: install-dev lint ## Lint, start PostgreSQL, and run the whole test suite
	scripts/chromium.sh install >/dev/null
	CX_TEST_POSTGRES_URL=$$(scripts/postgres.sh start) $(PY) -m pytest

.PHONY: lock
lock: $(VENV)/bin/activate ## Re-pin every transitive package into constraints.txt
	$(UV) pip compile requirements-dev.txt --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header -o constraints.txt

.PHONY: clean
clean: ## Remove generated data, Airflow home and caches (keeps .venv)
	rm -rf data .airflow dbt_project/target dbt_project/logs .pytest_cache .ruff_cache

.PHONY: distclean
distclean: clean ## Also remove the virtual environment
	rm -rf $(VENV)
