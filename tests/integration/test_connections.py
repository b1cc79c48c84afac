"""`online_store.conn_id`: the online store reached through an Airflow Redis connection."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from airflow_provider_featurestore.airflow.hooks.connections import AirflowConnections
from airflow_provider_featurestore.core.cli import main as cli_main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud"
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_a_connection_becomes_a_url_with_its_secret_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """RedisHook reads the connection; the URL carries what it read, TLS settings included."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_CACHE_TLS",
        json.dumps(
            {
                "conn_type": "redis",
                "host": "cache",
                "port": 6380,
                "password": "p@ss:word",
                "extra": {"db": 2, "ssl": True, "ssl_ca_certs": "/etc/ca.pem"},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_CACHE_PLAIN", json.dumps({"conn_type": "redis", "host": "cache"}))
    connections = AirflowConnections()
    assert connections.redis_url("cache_tls") == (
        "rediss://:p%40ss%3Aword@cache:6380/2"
        "?ssl_cert_reqs=required&ssl_ca_certs=%2Fetc%2Fca.pem&ssl_check_hostname=True"
    )
    assert connections.redis_url("cache_plain") == "redis://cache:6379/0"
    with pytest.raises(LookupError, match="Airflow connection 'nowhere' not found"):
        connections.redis_url("nowhere")


def test_a_backfill_writes_through_an_airflow_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"c{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    text = config.read_text().replace("project: fraud", f"project: {project}")
    start = text.index("  redis_url:")
    end = text.index("\n", start)
    config.write_text(text[:start] + "  conn_id: featurestore_redis" + text[end:])
    spec = root / "featuresets" / "accounts.yaml"
    spec.write_text(spec.read_text().replace("online_ttl: 30d", "online_ttl: 3650d"))
    target = urlsplit(REDIS_URL)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEATURESTORE_REDIS",
        json.dumps(
            {
                "conn_type": "redis",
                "host": target.hostname,
                "port": target.port or 6379,
                "extra": {"db": int(target.path.strip("/") or 0)},
            }
        ),
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("gen", EXAMPLE / "generate_data.py")
    generator = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(generator)  # type: ignore[union-attr]
    generator.generate(str(root / "data"), accounts=5, transactions_per_day=10, start="2024-01-01", days=2)

    assert (
        cli_main(
            ["backfill", "accounts", "--start", "2024-01-01", "--end", "2024-01-02", "--config", str(config)]
        )
        == 0
    )
    client = redis.Redis.from_url(REDIS_URL)
    keys = sorted(client.scan_iter(f"{project}:*"))
    try:
        marker = f"{project}:accounts:v1::_written"  # the online marker, beside the entities
        assert [k.decode() for k in keys] == [marker] + [f"{project}:accounts:v1:A{i:04d}" for i in range(5)]
    finally:
        if keys:
            client.delete(*keys)


def test_the_interval_table_through_an_airflow_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    from sqlalchemy.engine import make_url

    from airflow_provider_featurestore.core.featurestore import FeatureStore

    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    text = config.read_text()
    config.write_text(text.replace("interval_table:\n", "interval_table:\n  conn_id: featurestore_db\n"))
    url = make_url(pg_url)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEATURESTORE_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": url.host,
                "port": url.port,
                "login": url.username,
                "schema": url.database,
                "extra": dict(url.query),
            }
        ),
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    store = FeatureStore(str(config), check_transformations=False)
    request = store.backfill_request("transactions", "2024-01-01", "2024-01-03")
    assert len(store.claim(request)) == 2
    assert store.table.engine.dialect.name == "postgresql"
    store.close()
    import sqlalchemy as sa

    from airflow_provider_featurestore.core.interval_table import create_engine

    engine = create_engine(pg_url)
    with engine.connect() as conn:  # the jobs are in the connection's database and schema
        assert conn.execute(sa.text("select count(*) from fs_jobs")).scalar() == 2
    engine.dispose()
