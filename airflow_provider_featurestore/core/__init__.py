"""The feature store without Airflow: specs and config, intervals and planning, the interval table
and job records, materialization (job model, runner, engines and the Spark job), the online and
offline stores, retrieval, the CLI and the feature server.

Nothing here imports Airflow or `airflow_provider_featurestore.airflow` (an import-linter contract
in CI checks it): the CLI, the feature server and Spark executors run without an Airflow
installation.
"""

__version__ = "0.1.0"
