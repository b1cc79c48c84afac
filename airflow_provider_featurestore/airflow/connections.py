"""Airflow connections named in featurestore.yaml (`online_store.conn_id`, `engine.conn_id`).

Airflow is imported only inside these functions, and only when a config names a connection,
so the core still runs without it. Secrets stay inside the returned URL or hook; nothing here
logs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from airflow_provider_featurestore.core.config import FeatureStoreConfig
from airflow_provider_featurestore.core.errors import BadInput


def _connection(conn_id: str, field: str):  # type: ignore[no-untyped-def]
    """An Airflow connection, or BadInput naming the config field that names it."""
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - Airflow raises its own not-found type
        raise BadInput(
            f"{field}: Airflow connection {conn_id!r} not found ({type(exc).__name__}); create it "
            "(UI, CLI or AIRFLOW_CONN_* variable)"
        ) from None


def interval_table_url(config: FeatureStoreConfig) -> str:
    """The interval table's SQLAlchemy URL: `interval_table.conn_id`'s, else `interval_table.url`."""
    if not config.interval_table_conn_id:
        return config.interval_table_url
    conn = _connection(config.interval_table_conn_id, "interval_table.conn_id")
    uri = conn.get_uri()
    scheme, _, rest = uri.partition("://")
    drivers = {
        "postgres": "postgresql+psycopg2",
        "postgresql": "postgresql+psycopg2",
        "mysql": "mysql+pymysql",
    }
    return f"{drivers.get(scheme, scheme)}://{rest}"


def redis_url(config: FeatureStoreConfig) -> str | None:
    """The online store's URL: `online_store.redis_url`, or built from the Airflow connection."""
    if config.redis_url or not config.redis_conn_id:
        return config.redis_url
    conn = _connection(config.redis_conn_id, "online_store.conn_id")
    return redis_url_from_connection(
        host=conn.host, port=conn.port, login=conn.login, password=conn.password, extra=conn.extra_dejson
    )


def redis_url_from_connection(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, object],
) -> str:
    """A redis:// (or rediss:// with `ssl` in extra) URL from an Airflow Redis connection's fields."""
    scheme = "rediss" if str(extra.get("ssl", "")).lower() in ("true", "1", "yes") else "redis"
    auth = ""
    if password:
        auth = f"{quote(login or '', safe='')}:{quote(password, safe='')}@"
    db = extra.get("db", 0)
    return f"{scheme}://{auth}{host or 'localhost'}:{port or 6379}/{db}"


def spark_submit_via_airflow(conn_id: str):  # type: ignore[no-untyped-def]
    """A submitter that runs spark-submit through Airflow's SparkSubmitHook and `conn_id`: the
    same arguments, name and files as the plain submit (the hook logs its command line, and that
    line holds no secret: the batch goes as a file)."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    from airflow_provider_featurestore.core.materialization.engines import (
        Submission,
        cluster_deploy_mode,
        die_with_parent,
        entry_point,
        submit_environment,
    )

    def submit(submission: Submission) -> None:
        connection = _connection(conn_id, "engine.conn_id")
        deploy_mode = connection.extra_dejson.get("deploy-mode")
        hook = SparkSubmitHook(
            conn_id=conn_id,
            conf=dict(submission.conf),
            py_files=submission.py_files,
            files=submission.batch_file if cluster_deploy_mode(submission.conf, deploy_mode) else None,
            application_args=list(submission.args),
            name=submission.name,
        )
        # The hook runs `spark-submit` from SPARK_HOME or PATH, in the environment given here.
        environment = submit_environment("spark-submit", str(connection.host or ""))
        hook.submit(entry_point(), env=environment, preexec_fn=die_with_parent)

    return submit
