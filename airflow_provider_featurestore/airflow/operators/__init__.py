"""Airflow operators of the feature store provider."""
