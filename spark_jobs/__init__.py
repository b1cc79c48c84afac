"""What spark-submit runs: the materialization job's entry point. Installed as
`airflow_provider_featurestore.spark_jobs` (setup.cfg's package_dir)."""
