"""`AirflowConnections`: the core's `ConnectionResolver` under Airflow, the hook's part that
owns the connections a config names, read by Airflow's own hooks.

- `online_store.conn_id`: `RedisHook` builds the client from the connection and its extras
  (db, ssl, ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_check_hostname); the
  URL handed to the core carries the same settings, so the materialization job reopens the
  same TLS connection.
- `engine.conn_id`: `SparkSubmitHook` runs spark-submit; `SparkConnectHook` gives the sc:// URL.
- `interval_table.conn_id`: the connection's URI, with the SQLAlchemy driver.
- the Variable `featurestore_config`, where this context may read Variables.

Every secret resolved here is masked in task logs before it is handed on. Registered as the
entry point `airflow_provider_featurestore.connection_resolver` for the CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from airflow_provider_featurestore.core.connection_resolver import Submission, Submitter
from airflow_provider_featurestore.core.materialization.engines import (
    cluster_deploy_mode,
    die_with_parent,
    ended_on,
    entry_point,
    submit_environment,
)

# The TLS settings RedisHook reads from a connection's extras, in the URL as redis-py reads them.
REDIS_TLS_SETTINGS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
SQLALCHEMY_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
}


def _connection(conn_id: str) -> Any:
    """The Airflow connection, or LookupError saying how to create it (the core names the field)."""
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - Airflow raises its own not-found types
        raise LookupError(
            f"Airflow connection {conn_id!r} not found ({type(exc).__name__}); create it "
            "(UI, CLI or AIRFLOW_CONN_* variable)"
        ) from None


def redis_url_of_client(client: Any) -> str:
    """The URL of a redis-py client RedisHook built: host, port, credentials, db and TLS settings."""
    import redis

    if isinstance(client, redis.RedisCluster):
        client = client.get_default_node().redis_connection
    pool = client.connection_pool
    settings = pool.connection_kwargs
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    auth = ""
    if settings.get("password"):
        auth = f"{quote(settings.get('username') or '', safe='')}:{quote(settings['password'], safe='')}@"
    tls = {name: settings[name] for name in REDIS_TLS_SETTINGS if settings.get(name) is not None}
    query = f"?{urlencode(tls)}" if tls else ""
    host, port = settings.get("host") or "localhost", settings.get("port") or 6379
    return f"{scheme}://{auth}{host}:{port}/{settings.get('db') or 0}{query}"


class AirflowConnections:
    """Resolves a config's conn_ids through Airflow's hooks (see the module docstring)."""

    def redis_url(self, conn_id: str) -> str:
        from airflow.providers.redis.hooks.redis import RedisHook

        _mask(_connection(conn_id).password)
        return redis_url_of_client(RedisHook(redis_conn_id=conn_id).get_conn())

    def database_url(self, conn_id: str) -> str:
        conn = _connection(conn_id)
        _mask(conn.password)
        scheme, _, rest = conn.get_uri().partition("://")
        return f"{SQLALCHEMY_DRIVERS.get(scheme, scheme)}://{rest}"

    def spark_connect_remote(self, conn_id: str) -> str:
        from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

        _mask(_connection(conn_id).password)  # the token
        return SparkConnectHook(conn_id=conn_id).get_connection_url()

    def spark_submitter(self, conn_id: str) -> Submitter:
        """spark-submit through SparkSubmitHook: the same arguments, name and files as the plain
        submit (the hook logs its command line, and that line holds no secret: the batch goes as
        a file)."""
        connection = _connection(conn_id)

        def submit(submission: Submission) -> None:
            from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

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
            with ended_on(submission.stop, hook.on_kill):  # its jobs cancelled: the hook's own kill
                hook.submit(entry_point(), env=environment, preexec_fn=die_with_parent)

        return submit

    def variable(self, name: str) -> str | None:
        """The Variable as the Task SDK reads it (tasks, the DAG processor: through the supervisor),
        else from the metadata database where this process has it (the API server serving the
        status page, the CLI on an Airflow host): the SDK sees only environment and secrets
        backends there."""
        from airflow.sdk import Variable

        try:
            value = Variable.get(name, default=None)
        except Exception:  # noqa: BLE001 - no Variable access through the SDK in this context
            value = None
        if value is not None:
            return str(value)
        try:
            from airflow.models.variable import Variable as StoredVariable

            with _quiet("airflow.models.variable"):
                stored = StoredVariable.get(name, default_var=None)
        except Exception:  # noqa: BLE001 - no metadata database here (or not allowed from a task)
            return None
        return None if stored is None else str(stored)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger for the duration: Airflow logs a metadata database without tables (a
    host where Airflow is installed but never set up, as on a newcomer's machine running the
    CLI) as an error with its traceback before answering None, and that fallback is optional."""
    logger = logging.getLogger(logger_name)
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


def _mask(secret: str | None) -> None:
    """Mask a secret in task logs, as given and as it appears URL-quoted in a URL."""
    if secret:
        mask_secret(secret)
        mask_secret(quote(secret, safe=""))
