# The two commands of the README: `make demo` (the main job end to end on the embedded
# defaults) and `make test`. Both set up .venv first; nothing needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo fraud test test-unit test-integration test-system lint bench bench-feast airflow clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	eval "$$(scripts/services.sh redis)" && $(PY) scripts/demo.py

# The fraud example's model end to end: backfill, point-in-time training data, a scikit-learn
# model saved with its retrieval spec (examples/fraud/model/), online scoring via score.py.
fraud: setup
	eval "$$(scripts/services.sh redis)" && $(PY) examples/fraud/run_example.py

# Every tier (tests/unit, tests/integration, tests/system); the services they need are started.
test: setup
	eval "$$(scripts/services.sh)" && $(PY) -m pytest -q --durations=40

# No service at all (no Redis, PostgreSQL, Java or Spark): under a minute.
test-unit: setup
	$(PY) -m pytest -q -m unit tests/unit

test-integration: setup
	eval "$$(scripts/services.sh redis postgresql)" && $(PY) -m pytest -q -m integration

test-system: setup
	eval "$$(scripts/services.sh)" && $(PY) -m pytest -q -m system

# Style, the layers and cycles (import-linter, pyproject.toml), and types of the core (mypy).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: setup
	eval "$$(scripts/services.sh)" && $(PY) benchmarks/intervals.py && \
	  $(PY) benchmarks/online.py && \
	  $(PY) benchmarks/online_write.py && $(PY) benchmarks/materialize.py && $(PY) benchmarks/status_page.py && \
	  $(PY) benchmarks/online_check.py && \
	  $(PY) benchmarks/source_check.py && \
	  $(PY) benchmarks/quality_checks.py

# Feast 0.67 side by side (installed into benchmarks/.feast-venv on first use) and what chunked
# backfills cost against bare pipelines and one JVM job; both start a throwaway redis-server.
bench-feast: setup
	$(PY) benchmarks/vs_feast.py && $(PY) benchmarks/batches.py

# Airflow in one process tree (SQLite metadata under .airflow/) over the demo's feature store:
# the DAGs, and the status page under Browse -> Feature store. The admin password is printed.
airflow: setup
	eval "$$(scripts/services.sh redis)" && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  AIRFLOW_HOME="$${AIRFLOW_HOME:-$(CURDIR)/.airflow}" AIRFLOW__CORE__LOAD_EXAMPLES=False \
	  AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" \
	  FEATURESTORE_CONFIG="$(CURDIR)/examples/fraud/featurestore.yaml" airflow standalone

clean:
	rm -rf $(VENV) examples/fraud/data .pytest_cache .ruff_cache .hypothesis
