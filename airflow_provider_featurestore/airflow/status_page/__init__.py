"""The status page: an Airflow plugin showing each feature set version's interval timeline,
jobs and freshness, with a backfill action (Airflow layer: imports Airflow)."""
