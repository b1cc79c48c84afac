"""The DAG ids of one or several feature stores in one Airflow, and the force flag's values."""

from __future__ import annotations

import pytest

from airflow_provider_featurestore.airflow.dag_ids import (
    backfill_dag_id,
    check_dag_id_part,
    dag_id_prefix,
    monitor_dag_id,
    prefix_of,
    scheduled_dag_id,
)
from airflow_provider_featurestore.core import form_values
from airflow_provider_featurestore.core.errors import BadInput, ConfigError


def test_one_store_keeps_the_plain_ids_and_several_take_their_project_as_prefix() -> None:
    assert backfill_dag_id(dag_id_prefix("fraud", False)) == "featurestore_backfill"
    prefix = dag_id_prefix("fraud", True)
    ids = [backfill_dag_id(prefix), scheduled_dag_id("transactions", prefix), monitor_dag_id(prefix)]
    assert ids == [
        "fraud__featurestore_backfill",
        "fraud__featurestore_materialize__transactions",
        "fraud__featurestore_monitor",
    ]
    assert [prefix_of(dag_id) for dag_id in ids] == [prefix] * 3
    assert prefix_of(scheduled_dag_id("transactions")) == prefix_of("featurestore_backfill") == ""


def test_a_project_that_cannot_be_part_of_a_dag_id_is_a_config_error_naming_the_file() -> None:
    check_dag_id_part("fraud-eu.v2", "a.yaml")
    with pytest.raises(ConfigError, match=r"^a\.yaml: project: 'fraud eu' cannot be part of a DAG id"):
        check_dag_id_part("fraud eu", "a.yaml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        ("true", True),
        ("True", True),
        (False, False),
        (None, False),
        ("", False),
        ("false", False),
    ],
)
def test_force_accepts_a_boolean_or_its_spelling_in_a_run_conf(value: object, expected: bool) -> None:
    assert form_values.flag("force", value) is expected


def test_force_refuses_anything_else_naming_it() -> None:
    with pytest.raises(BadInput, match="^force: 'maybe' is not true or false$"):
        form_values.flag("force", "maybe")
