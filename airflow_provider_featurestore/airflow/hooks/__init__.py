"""Airflow hooks of the feature store provider."""
