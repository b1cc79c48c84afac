"""Shared fixtures: real services only (PostgreSQL, Redis), started by `.ci/run` when missing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from jvm_worker import JvmWorker
from spark_cluster import SHORT_LIVED_JVM, SparkServices

from airflow_provider_featurestore.online import OnlineStore, OnlineStoreUnavailable

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("FEATURESTORE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
os.environ.setdefault("JAVA_TOOL_OPTIONS", SHORT_LIVED_JVM)  # the tests' JVMs (spark_cluster.py says why)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"fs_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:  # pragma: no cover - a broken test machine
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} (start it, or set FEATURESTORE_TEST_PG_URL): {exc}"
        )
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def table_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The interval table's URL on each supported database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/intervals.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store() -> Iterator[OnlineStore]:
    """The tests' Redis server as an `OnlineStore` (a module may define its own `store`)."""
    online = OnlineStore(REDIS_URL)
    try:
        online.ping()
    except OnlineStoreUnavailable as exc:  # pragma: no cover - a broken test machine
        pytest.fail(f"{exc} (or set FEATURESTORE_TEST_REDIS_URL)")
    yield online
    online.close()


ENGINES = ("embedded", "spark-submit", "spark-connect")


@pytest.fixture(scope="session")
def spark_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkServices]:
    """The session's standalone Spark cluster and Spark Connect server, each started on first use."""
    services = SparkServices(tmp_path_factory.mktemp("spark"))
    yield services
    services.stop()
    if services.started_s:
        print(
            "\nspark services started in: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in services.started_s.items())
        )


@pytest.fixture(scope="session")
def jvm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JvmWorker]:
    """A classic JVM session with delta-spark in a worker process, started once per test session
    (15-35 s on 2 cores) for the modules that compare Sail with delta-spark."""
    log = tmp_path_factory.mktemp("jvm") / "jvm-worker.log"
    try:
        worker = JvmWorker.start(log)
    except Exception as exc:  # pragma: no cover - a broken test machine
        pytest.fail(f"the JVM worker did not start ({exc}); its log: {log}")
    yield worker
    worker.close()
