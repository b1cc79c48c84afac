"""The Airflow assets a feature set version's stores stand for.

A finished materialization emits an event on `feature_asset(project, name, version, store)`, so
a training DAG can be scheduled on "transactions v1 offline updated":

    schedule=[feature_asset("fraud", "transactions", 1, "offline")]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Asset

ALIAS = "featurestore"  # the tasks emit through this alias: the feature set is known only at run time


def asset_name(project: str, name: str, version: int, store: str) -> str:
    return f"featurestore.{project}.{name}.v{version}.{store}"


def asset_uri(project: str, name: str, version: int, store: str) -> str:
    return f"featurestore://{project}/{name}/v{version}/{store}"


def feature_asset(project: str, name: str, version: int, store: str) -> Asset:
    """The Airflow `Asset` of one store of one feature set version."""
    from airflow.sdk import Asset

    return Asset(name=asset_name(project, name, version, store), uri=asset_uri(project, name, version, store))
