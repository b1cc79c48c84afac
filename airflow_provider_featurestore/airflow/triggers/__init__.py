"""Airflow triggers of the feature store provider (they run in the triggerer)."""

from airflow_provider_featurestore.airflow.triggers.featurestore import FeatureStoreReadinessTrigger

__all__ = ["FeatureStoreReadinessTrigger"]
