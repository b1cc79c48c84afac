"""Airflow sensors of the feature store provider."""

from airflow_provider_featurestore.airflow.sensors.featurestore import FeatureStoreSensor

__all__ = ["FeatureStoreSensor"]
