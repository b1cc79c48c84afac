"""Shared fixtures (real services only: PostgreSQL, Redis, Spark, started by `scripts/services.sh`)
and the tiers.

A test's tier is its folder: `unit/` needs no service, `integration/` uses a real Redis,
PostgreSQL, Delta tables and the embedded engine (Sail), `system/` a running Airflow, a browser
or a JVM Spark (the cluster tier). One exception, for tests written once for every engine: a
case of an integration test that runs on a cluster engine (a `spark-submit` or `spark-connect`
parameter, or the `spark_services` fixture) is a system case. `-m unit|integration|system`
selects a tier.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from support.jvm_worker import JvmWorker
from support.spark_cluster import SHORT_LIVED_JVM, SparkServices

from airflow_provider_featurestore.core.interval_table import engine_url
from airflow_provider_featurestore.core.online import OnlineStoreUnavailable, RedisOnlineStore

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("FEATURESTORE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
os.environ.setdefault("JAVA_TOOL_OPTIONS", SHORT_LIVED_JVM)  # the tests' JVMs (spark_cluster.py says why)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"fs_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(engine_url(PG_URL), isolation_level="AUTOCOMMIT")  # psycopg2, as the package
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
def store() -> Iterator[RedisOnlineStore]:
    """The tests' Redis server as a `RedisOnlineStore` (a module may define its own `store`)."""
    online = RedisOnlineStore(REDIS_URL)
    try:
        online.ping()
    except OnlineStoreUnavailable as exc:  # pragma: no cover - a broken test machine
        pytest.fail(f"{exc} (or set FEATURESTORE_TEST_REDIS_URL)")
    yield online
    online.close()


ENGINES = ("embedded", "spark-submit", "spark-connect")
CLUSTER_ENGINES = {"spark-submit", "spark-connect"}
TIERS = ("unit", "integration", "system")


def tier_of(item: pytest.Item) -> str:
    """The folder's tier, except a cluster-engine case of an integration test, which is system."""
    tier = next((part for part in item.path.parts if part in TIERS), "integration")
    params = getattr(getattr(item, "callspec", None), "params", {})
    on_cluster = any(value in CLUSTER_ENGINES for value in params.values() if isinstance(value, str))
    if tier == "integration" and (on_cluster or "spark_services" in getattr(item, "fixturenames", ())):
        return "system"
    return tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of(item)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (`CI=true`) a skipped test fails: CI has every service, so a skip there is a test
    that silently stopped testing."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]  # pluggy's hook wrapper result
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every service is there: {report.longrepr}"


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
