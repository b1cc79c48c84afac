"""The hook owns the connections: an Airflow Redis connection with TLS extras, read by RedisHook,
carries a backfill's online write and its reads to a redis-server that speaks TLS only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
from support.fraud import DAY, FIRST_DAY, day, fraud_store
from support.redis_servers import start_tls_server, stop

from airflow_provider_featurestore.airflow.hooks.featurestore import FeatureStoreHook

CONN_ID = "featurestore_tls_redis"


@pytest.fixture
def fraud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from fraud_store(tmp_path, monkeypatch, None)


def test_a_tls_redis_connection_carries_the_online_store_through_the_hook(
    fraud: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    process, port, ca = start_tls_server(tmp_path / "tls")
    try:
        with pytest.raises(redis.ConnectionError):  # the port refuses a plain-text client
            redis.Redis("127.0.0.1", port, socket_timeout=5).ping()
        config = fraud / "featurestore.yaml"
        text = config.read_text()
        online = "  redis_url: ${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}"
        assert online in text
        config.write_text(text.replace(online, f"  conn_id: {CONN_ID}"))
        extra = {"db": 0, "ssl": True, "ssl_cert_reqs": "required", "ssl_ca_certs": str(ca)}
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": port, "extra": extra}),
        )

        hook = FeatureStoreHook(str(config))
        try:
            assert hook.location.source == "config_path"
            store = hook.store
            assert store.connections.redis_url.startswith(f"rediss://127.0.0.1:{port}/0?")
            done = store.backfill(store.backfill_request("accounts", day(8), day(9), stores="online"))
            assert [r.state for r in done] == ["succeeded"]
            source = pq.read_table(fraud / "data" / "source" / "accounts").to_pandas()
            seconds = source["timestamp"].astype("int64") // 10**6
            inside = source[(seconds >= FIRST_DAY + 8 * DAY) & (seconds < FIRST_DAY + 9 * DAY)]
            latest = inside.sort_values("timestamp").groupby("accountID").last()
            keys = [{"accountID": account} for account in latest.index]
            served = store.get_online("accounts", keys, features="credit_limit")
            assert len(served) == 40
            assert {row["accountID"]: row["credit_limit"] for row in served} == latest[
                "credit_limit"
            ].to_dict()
        finally:
            hook.close()

        client = redis.Redis("127.0.0.1", port, ssl=True, ssl_ca_certs=str(ca))
        project = store.config.project
        assert len(list(client.scan_iter(f"{project}:accounts:v1:A*"))) == 40  # the data landed there
    finally:
        stop(process)
