"""The feature store's DAGs, for Airflow's DAGs folder.

Set FEATURESTORE_CONFIG to your featurestore.yaml. This file builds `featurestore_backfill`
(triggered by hand, with a form) and one `featurestore_materialize__<feature set>` per feature
set with a schedule. Parsing reads the YAML only: no engine, Redis or database is touched.
"""

from airflow_provider_featurestore.airflow.dag_factory import build_dags

globals().update(build_dags())
