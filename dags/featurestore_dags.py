"""The feature store's DAGs, for Airflow's DAGs folder.

Point the Airflow Variable `featurestore_config` (or, failing it, FEATURESTORE_CONFIG) at your
featurestore.yaml. This file builds `featurestore_backfill` (triggered by hand, with a form),
one `featurestore_materialize__<feature set>` per feature set with a schedule, and
`featurestore_monitor` (lost state and freshness SLAs, on `monitor.schedule`). Parsing reads the
YAML only: no engine, Redis or database is touched.

Several feature stores: a JSON list of configs in the Variable builds every store's DAGs, each id
prefixed by its project (`fraud__featurestore_backfill`). Or one DAG file per store:
`build_dags("/path/to/featurestore.yaml", prefix_project=True)`.
"""

from airflow_provider_featurestore.airflow.dag_factory import build_dags

globals().update(build_dags())
