"""Batched execution on the real embedded engine (Sail), real Delta tables and real Redis servers.

A backfill runs its daily chunks as one batch: one engine run, one Delta commit per chunk, and
one online write of the latest row per entity for the whole batch. These tests check that this
changes nothing users can see in the stores (the same rows and hashes as day-by-day backfills,
and as pandas), that it really writes each key once, and that failures and kills stay per chunk.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import redis
from support.redis_servers import free_port, start_server, stop, wait_until
from test_materialize import (  # noqa: F401 - `embedded_fraud` is a fixture
    DAY,
    FIRST_DAY,
    REDIS_URL,
    backfill,
    day,
    embedded_fraud,
    expected_rolling,
    offline_rows,
    sort_rows,
    statuses,
)

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.timeutil import iso


@pytest.fixture
def fraud(embedded_fraud: Path) -> Path:  # noqa: F811
    """The embedded engine's fraud store: batching on the JVM engines is the engine tier's part
    (test_materialize's multi-day test counts one application per batch on the cluster)."""
    return embedded_fraud


FEATURES = ["transaction_amount_7d_sum", "transaction_7d_count", "transaction_amount_7d_avg"]


def twin(root: Path) -> Path:
    """A second feature store over the same source data, with a project (key prefix) of its own."""
    other = root.parent / "twin"
    shutil.copytree(root, other, ignore=shutil.ignore_patterns("offline", "intervals.db*", "__pycache__"))
    config = other / "featurestore.yaml"
    project = FeatureStore(str(root / "featurestore.yaml")).config.project
    config.write_text(config.read_text().replace(f"project: {project}", f"project: {project}x"))
    return other


def hashes(root: Path) -> dict[str, dict[str, str]]:
    """Every online hash of the transactions feature set, by account, with its expiry."""
    store = FeatureStore(str(root / "featurestore.yaml"))
    prefix = store.config.online_key_prefix(store.spec("transactions"))
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    marker = store.online_layout(store.spec("transactions")).marker_key  # not an entity
    found = {}
    for key in client.scan_iter(f"{prefix}*", count=1000):
        if key == marker:
            continue
        found[key[len(prefix) :]] = {**client.hgetall(key), "expire_at": str(client.expiretime(key))}
    return found


def jobs(root: Path) -> list:
    return FeatureStore(str(root / "featurestore.yaml")).jobs("transactions")


def test_a_week_as_one_batch_equals_seven_daily_backfills_and_pandas(fraud: Path) -> None:  # noqa: F811
    daily = twin(fraud)
    assert backfill(fraud, "transactions", "--start", day(2), "--end", day(9)) == 0
    for offset in range(2, 9):
        assert backfill(daily, "transactions", "--start", day(offset), "--end", day(offset + 1)) == 0

    batched = sort_rows(offline_rows(fraud).drop(columns=["event_date"]))
    by_day = sort_rows(offline_rows(daily).drop(columns=["event_date"]))
    want = sort_rows(expected_rolling(fraud, FIRST_DAY + 2 * DAY, FIRST_DAY + 9 * DAY))
    assert len(batched) == len(want) == 7 * 300
    pd.testing.assert_frame_equal(batched, by_day)
    pd.testing.assert_frame_equal(batched[want.columns], want, check_dtype=False, rtol=1e-9)

    online = hashes(fraud)
    assert online == hashes(daily)
    latest = want.sort_values("timestamp").groupby("accountID").tail(1).set_index("accountID")
    assert set(online) == set(latest.index)
    for account, row in latest.iterrows():
        assert int(online[account]["_event_time"]) == row.timestamp.value // 1000
        assert int(online[account]["transaction_7d_count"]) == row.transaction_7d_count
        assert float(online[account]["transaction_amount_7d_sum"]) == pytest.approx(
            row.transaction_amount_7d_sum
        )

    week = jobs(fraud)
    assert len(week) == 7 and all(j.state == "succeeded" for j in week)
    assert sum(j.rows_written["online"] for j in week) == len(latest)  # each key once
    assert sum(j.rows_written["online"] for j in jobs(daily)) > 3 * len(latest)  # a write per day
    assert (
        statuses(fraud)
        == statuses(daily)
        == {
            "offline": [(day(2), day(9), "Complete")],
            "online": [(day(2), day(9), "Complete")],
        }
    )


@pytest.fixture
def own_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A Redis server of the test's own, publishing an event for every HSET of a key."""
    port = free_port()
    server = start_server(tmp_path / "redis", "--port", str(port), "--notify-keyspace-events", "Eh")
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis.Redis.from_url(url).ping(), "the test's Redis server")
    yield url
    stop(server)


def test_a_multi_day_online_backfill_writes_each_key_once(
    fraud: Path,  # noqa: F811
    own_redis: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", own_redis)
    written: Counter[str] = Counter()
    listener = redis.Redis.from_url(own_redis, decode_responses=True).pubsub()
    listener.psubscribe("__keyevent@0__:hset")
    listener.get_message(timeout=5)  # the subscription's confirmation

    def listen() -> None:
        try:
            for message in listener.listen():
                if message["type"] == "pmessage":
                    written[message["data"]] += 1
        except (redis.ConnectionError, ValueError, AttributeError):  # closed at the end of the test
            return

    threading.Thread(target=listen, daemon=True).start()
    assert backfill(fraud, "transactions", "--start", day(3), "--end", day(9), "--store", "online") == 0
    want = expected_rolling(fraud, FIRST_DAY + 3 * DAY, FIRST_DAY + 9 * DAY)
    accounts = want["accountID"].nunique()
    wait_until(lambda: sum(written.values()) >= accounts, "the keyspace events")
    time.sleep(0.5)  # any late duplicate would arrive by now
    listener.close()

    assert len(written) == accounts and set(written.values()) == {1}, written.most_common(3)
    assert sum(j.rows_written["online"] for j in jobs(fraud)) == accounts
    assert statuses(fraud)["online"] == [(day(3), day(9), "Complete")]


def test_a_transformation_failing_for_one_day_fails_only_that_chunk(fraud: Path) -> None:  # noqa: F811
    bad_day = FIRST_DAY + 7 * DAY
    (fraud / "transforms" / "flaky.py").write_text(
        "from transforms.transactions import transform as rolling\n\n\n"
        "def transform(df, window):\n"
        f"    if int(window.start.timestamp()) == {bad_day}:\n"
        "        raise ValueError('the upstream feed for this day is corrupt')\n"
        "    return rolling(df, window)\n"
    )
    spec = fraud / "featuresets" / "transactions.yaml"
    spec.write_text(
        spec.read_text().replace("transforms.transactions:transform", "transforms.flaky:transform")
    )

    assert backfill(fraud, "transactions", "--start", day(6), "--end", day(9)) == 1
    assert statuses(fraud) == {
        "offline": [
            (day(6), day(7), "Complete"),
            (day(7), day(8), "Incomplete"),
            (day(8), day(9), "Complete"),
        ],
        "online": [
            (day(6), day(7), "Complete"),
            (day(7), day(8), "Incomplete"),
            (day(8), day(9), "Complete"),
        ],
    }
    by_start = {iso(j.start): j for j in jobs(fraud)}
    assert by_start[day(7)].state == "failed"
    assert "ValueError: the upstream feed for this day is corrupt" in by_start[day(7)].error
    assert by_start[day(6)].state == by_start[day(8)].state == "succeeded"
    assert by_start[day(6)].error is None and by_start[day(8)].error is None

    # Offline holds the good days only; online the latest row of the good days only.
    good = pd.concat(
        [expected_rolling(fraud, FIRST_DAY + d * DAY, FIRST_DAY + (d + 1) * DAY) for d in (6, 8)]
    )
    pd.testing.assert_frame_equal(
        sort_rows(offline_rows(fraud).drop(columns=["event_date"]))[good.columns],
        sort_rows(good),
        check_dtype=False,
        rtol=1e-9,
    )
    latest = good.sort_values("timestamp").groupby("accountID").tail(1).set_index("accountID")
    online = hashes(fraud)
    assert set(online) == set(latest.index)
    assert all(int(online[a]["_event_time"]) == r.timestamp.value // 1000 for a, r in latest.iterrows())


def test_a_killed_batch_keeps_its_committed_chunks_and_the_next_backfill_does_the_rest(fraud: Path) -> None:  # noqa: F811
    config = fraud / "featurestore.yaml"
    config.write_text(config.read_text().replace("interval_table:\n", "interval_table:\n  lease: 3s\n"))
    slow_from = FIRST_DAY + 6 * DAY
    (fraud / "transforms" / "slow.py").write_text(
        "import time\nfrom transforms.transactions import transform as rolling\n\n\n"
        "def transform(df, window):\n"
        f"    if int(window.start.timestamp()) >= {slow_from}:\n"
        "        time.sleep(120)\n"
        "    return rolling(df, window)\n"
    )
    spec = fraud / "featuresets" / "transactions.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("transforms.transactions:transform", "transforms.slow:transform"))
    argv = [str(Path(sys.executable).with_name("featurestore")), "backfill", "transactions"]
    argv += ["--start", day(3), "--end", day(9), "--config", str(config)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: statuses(fraud)["offline"][:1] == [(day(3), day(6), "Complete")],
            "three chunks committed",
            timeout=120,
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert statuses(fraud) == {
        "offline": [(day(3), day(6), "Complete"), (day(6), day(9), "Pending")],
        "online": [(day(3), day(9), "Pending")],
    }

    spec.write_text(original)
    time.sleep(3.5)  # the dead batch's leases run out
    assert backfill(fraud, "transactions", "--start", day(3), "--end", day(9)) == 0
    assert statuses(fraud) == {
        "offline": [(day(3), day(9), "Complete")],
        "online": [(day(3), day(9), "Complete")],
    }
    redone = [j for j in jobs(fraud) if j.state == "succeeded"]
    # Only the rest: the committed days online from the offline table, the others from source.
    assert sorted((iso(j.start), j.stores, j.reads) for j in redone) == [
        (day(3), ("online",), "offline"),
        (day(4), ("online",), "offline"),
        (day(5), ("online",), "offline"),
        (day(6), ("offline", "online"), "source"),
        (day(7), ("offline", "online"), "source"),
        (day(8), ("offline", "online"), "source"),
    ]
    got = sort_rows(offline_rows(fraud).drop(columns=["event_date"]))
    want = sort_rows(expected_rolling(fraud, FIRST_DAY + 3 * DAY, FIRST_DAY + 9 * DAY))
    assert len(got) == len(want) == 6 * 300  # no row twice
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, rtol=1e-9)
    dead = [j for j in jobs(fraud) if j.state == "failed"]
    assert len(dead) == 6 and all("lease expired" in j.error for j in dead)
