"""The feature store's DAG ids, in a module that imports nothing heavy: the DAG factory builds the DAGs
under them, and the status page (which never needs the operators or engines) links to them.

One feature store in an Airflow gets the plain ids. Several (the Variable featurestore_config
holding a list, or several DAG files) each take their config's `project` as a prefix,
`<project>__featurestore_backfill`, so no two build the same DAG.
"""

import re

BACKFILL_DAG_ID = "featurestore_backfill"
SCHEDULED_PREFIX = "featurestore_materialize__"  # + the feature set's name
MONITOR_DAG_ID = "featurestore_monitor"
PROJECT_SEPARATOR = "__"


def dag_id_prefix(project: str, several: bool) -> str:
    """What every DAG id of one feature store starts with: its project, when it is one of several."""
    return f"{project}{PROJECT_SEPARATOR}" if several else ""


def backfill_dag_id(prefix: str = "") -> str:
    return prefix + BACKFILL_DAG_ID


def scheduled_dag_id(feature_set: str, prefix: str = "") -> str:
    return f"{prefix}{SCHEDULED_PREFIX}{feature_set}"


def monitor_dag_id(prefix: str = "") -> str:
    return prefix + MONITOR_DAG_ID


DAG_ID_CHARACTERS = re.compile(r"[A-Za-z0-9_.-]+")


def check_dag_id_part(project: str, config_file: str) -> None:
    """ConfigError (naming the file) unless `project` may stand in a DAG id: letters, digits,
    `_`, `-` and `.` only (the config loader allows less; a config built in code may not)."""
    if not DAG_ID_CHARACTERS.fullmatch(project):
        from airflow_provider_featurestore.core.errors import ConfigError

        raise ConfigError(
            config_file, "project", f"{project!r} cannot be part of a DAG id: use letters, digits, _, - or ."
        )


def prefix_of(dag_id: str) -> str:
    """The store prefix of one of our DAG ids ("" for the plain ids, `<project>__` otherwise)."""
    for marker in (SCHEDULED_PREFIX, BACKFILL_DAG_ID, MONITOR_DAG_ID):
        if marker in dag_id:
            return dag_id[: dag_id.index(marker)]
    return ""
