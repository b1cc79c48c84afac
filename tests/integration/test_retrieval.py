"""Feature retrieval through `FeatureStore`: online lookup across feature sets against a real
Redis (missing and expired entities), the point-in-time join on the embedded engine against a
brute-force pandas join (hypothesis), and retrieval specs.

The stores are filled directly: Redis through `OnlineStore.write` (the job's own writer), the
offline Delta tables with delta-rs, so each test controls exactly which rows exist.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import redis
from deltalake import write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_featurestore import FeatureStore, RetrievalSpec
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.retrieval import FeatureRef

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.redis_servers import free_port, start_server, stop, wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fraud"
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RISK_SPEC = """name: risk
version: 1
index_columns:
  - {name: accountID, type: string}
timestamp_column: timestamp
source: {format: parquet, path: data/source/risk}
features:
  - {name: credit_limit, type: double}
  - {name: risk_score, type: double}
temporal_join_lookback: 2d
materialization: {offline: true, online: true, online_ttl: 30d}
"""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FeatureStore]:
    """The fraud example plus `risk` (which shares the feature name credit_limit with accounts
    and has a 2-day temporal_join_lookback), with a project of its own in Redis."""
    yield from _store(tmp_path, monkeypatch, None)


@pytest.fixture
def sail_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FeatureStore]:
    """`store` on the embedded engine, as the spark-services fixture configures it."""
    yield from _store(tmp_path, monkeypatch, _engine_yaml(request, "embedded"))


@pytest.fixture
def spark_connect_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FeatureStore]:
    """`store` on a JVM Spark Connect server with delta-spark."""
    yield from _store(tmp_path, monkeypatch, _engine_yaml(request, "spark-connect"))


def _engine_yaml(request: pytest.FixtureRequest, engine: str) -> str:
    return request.getfixturevalue("spark_services").engine_yaml(engine)


def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str | None) -> Iterator[FeatureStore]:
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "model", "__pycache__"))
    project = f"r{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    text = config.read_text().replace("project: fraud", f"project: {project}")
    if engine is not None:
        text = text.partition("engine:\n")[0] + engine
    config.write_text(text)
    (root / "featuresets" / "risk.yaml").write_text(RISK_SPEC)
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    with FeatureStore(str(config), check_transformations=False) as opened:
        yield opened
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{project}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def write_online(store: FeatureStore, name: str, rows: list[dict]) -> None:
    spec = store.spec(name)
    online = store.online_store()
    try:
        online.write(store.online_layout(spec), pa.Table.from_pylist(rows))
    finally:
        online.close()


# ---- feature refs and retrieval specs ---------------------------------------------------------


def test_feature_refs_parse_and_print() -> None:
    assert FeatureRef.parse("accounts:credit_limit") == FeatureRef("accounts", "credit_limit")
    assert FeatureRef.parse(" accounts:v2:credit_limit ") == FeatureRef("accounts", "credit_limit", 2)
    assert str(FeatureRef("accounts", "credit_limit", 2)) == "accounts:v2:credit_limit"
    for bad in ["accounts", "accounts:", ":x", "accounts:v0:x", "a:b:c", "accounts:credit-limit", 7]:
        with pytest.raises(BadInput, match="is not a feature ref"):
            FeatureRef.parse(bad)


def test_a_retrieval_spec_round_trips_beside_a_model(tmp_path: Path, store: FeatureStore) -> None:
    spec = RetrievalSpec(("transactions:transaction_7d_count", "accounts:v1:credit_limit"))
    written = spec.save(tmp_path)
    assert written == tmp_path / "retrieval_spec.yaml"
    assert RetrievalSpec.load(tmp_path) == RetrievalSpec.load(written) == spec
    assert "transactions:transaction_7d_count" in written.read_text()
    write_online(store, "accounts", [_account("A1", datetime.now(UTC), 10.0)])
    [row] = store.get_online_features(spec, [{"accountID": "A1"}])
    assert row == {"accountID": "A1", "transaction_7d_count": None, "credit_limit": 10.0}
    (tmp_path / "bad.yaml").write_text("features: [accounts]\n")
    with pytest.raises(BadInput, match=r"bad.yaml: features: 'accounts' is not a feature ref"):
        RetrievalSpec.load(tmp_path / "bad.yaml")
    with pytest.raises(BadInput, match="cannot read the retrieval spec"):
        RetrievalSpec.load(tmp_path / "missing.yaml")


# ---- online lookup ----------------------------------------------------------------------------


def _account(account: str, when: datetime, limit: float, **more: object) -> dict:
    return {
        "accountID": account,
        "timestamp": when,
        "account_age_days": 100,
        "account_country": "NL",
        "num_payment_rejects_1d_per_user": 0,
        "credit_limit": limit,
        "is_premium": True,
        **more,
    }


def test_online_lookup_across_feature_sets_with_missing_and_expired_entities(store: FeatureStore) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ttl = store.spec("accounts").materialization.online_ttl
    assert ttl == 30 * 86400
    almost_expired = now - timedelta(seconds=ttl - 2)  # Redis expires it two seconds from now
    write_online(
        store,
        "accounts",
        [_account("A1", now - timedelta(hours=1), 500.0), _account("OLD", almost_expired, 900.0)],
    )
    write_online(
        store,
        "transactions",
        [
            {
                "accountID": "A1",
                "timestamp": now,
                "transaction_amount_7d_sum": 12.5,
                "transaction_7d_count": 3,
                "transaction_amount_7d_avg": 4.25,
            }
        ],
    )
    write_online(
        store, "risk", [{"accountID": "A2", "timestamp": now, "credit_limit": 7.0, "risk_score": 0.9}]
    )
    refs = [
        "transactions:transaction_7d_count",
        "accounts:v1:credit_limit",
        "accounts:is_premium",
        "risk:credit_limit",
        "risk:risk_score",
    ]
    entities = [{"accountID": "A1"}, {"accountID": "A2"}, {"accountID": "nobody"}, {"accountID": "OLD"}]
    first = store.get_online_features(refs, entities, event_timestamps=True)
    assert first[3]["accounts__credit_limit"] == 900.0  # still live
    time.sleep(3)
    rows = store.get_online_features(refs, entities, event_timestamps=True)
    assert [list(row) for row in rows] == [
        [
            "accountID",
            "transaction_7d_count",
            "transactions__event_timestamp",
            "accounts__credit_limit",
            "is_premium",
            "accounts__event_timestamp",
            "risk__credit_limit",
            "risk_score",
            "risk__event_timestamp",
        ]
    ] * 4
    a1, a2, nobody, old = rows
    assert a1["transaction_7d_count"] == 3 and isinstance(a1["transaction_7d_count"], int)
    assert a1["accounts__credit_limit"] == 500.0 and a1["is_premium"] is True
    assert (
        a1["risk__credit_limit"] is None and a1["risk_score"] is None and a1["risk__event_timestamp"] is None
    )
    assert a1["transactions__event_timestamp"] == now
    assert a1["accounts__event_timestamp"] == now - timedelta(hours=1)
    assert a2["risk__credit_limit"] == 7.0 and a2["risk_score"] == 0.9 and a2["transaction_7d_count"] is None
    assert all(v is None for k, v in nobody.items() if k != "accountID")
    assert all(v is None for k, v in old.items() if k != "accountID")  # expired in Redis
    # Without event timestamps, and each feature set alone: the same values.
    plain = store.get_online_features(["accounts:credit_limit", "accounts:account_country"], entities[:1])
    assert plain == [{"accountID": "A1", "credit_limit": 500.0, "account_country": "NL"}]


def test_online_lookup_is_one_round_trip_of_hmgets(
    store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted on a Redis server of its own, where no other client's commands mix in."""
    port = free_port()
    server = start_server(tmp_path / "redis", "--port", str(port))
    try:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        wait_until(client.ping, "the test's Redis server")
        monkeypatch.setenv("FEATURESTORE_REDIS_URL", url)
        with FeatureStore(store.config.config_path, check_transformations=False) as own:
            own.get_online_features(["accounts:credit_limit"], [{"accountID": "warm"}])  # connect first
            client.config_resetstat()
            own.get_online_features(
                ["accounts:credit_limit", "transactions:transaction_7d_count", "risk:risk_score"],
                [{"accountID": f"E{i}"} for i in range(50)],
            )
            stats = client.info("commandstats")
        client.close()
    finally:
        stop(server)
    calls = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    calls.pop("info", None)  # the test's own
    calls.pop("config|resetstat", None)
    assert calls == {"hmget": 150}  # 50 entities x 3 feature sets, nothing else


@pytest.mark.parametrize(
    ("features", "entities", "message"),
    [
        (["nope:x"], [{"accountID": "A"}], "features: nope:x: feature set 'nope' not found"),
        (["accounts:v9:credit_limit"], [{"accountID": "A"}], "no version 9"),
        (["accounts:nope"], [{"accountID": "A"}], "accounts v1 has no feature 'nope'"),
        (["accounts:credit_limit", "accounts:credit_limit"], [{"accountID": "A"}], "requested twice"),
        ([], [{"accountID": "A"}], "no feature refs"),
        ("accounts:credit_limit", [{"accountID": "A"}], "not one string"),
        (["accounts:credit_limit"], [{"account": "A"}], r"entity_rows\[0\]: missing index column"),
        (["accounts:credit_limit"], ["A"], r"entity_rows\[0\]: expected an object of index column values"),
    ],
)
def test_bad_lookups_name_what_is_wrong(store: FeatureStore, features, entities, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match=message):
        store.get_online_features(features, entities)


# ---- the point-in-time join -------------------------------------------------------------------

T0 = datetime(2024, 3, 1, tzinfo=UTC)
ACCOUNTS = ["A", "B", "C"]


def write_offline(store: FeatureStore, name: str, frame: pd.DataFrame) -> None:
    """The feature rows of a feature set version's offline table, as the job writes it."""
    frame = frame.assign(
        timestamp=frame["timestamp"].astype("datetime64[us, UTC]"), event_date=frame["timestamp"].dt.date
    )
    path = store.config.offline_table_path(store.spec(name))
    write_deltalake(path, frame, mode="overwrite", partition_by=["event_date"])


def brute_force(
    observations: pd.DataFrame, features: pd.DataFrame, names: list[str], lookback: timedelta | None
):
    """Per observation, the latest feature row of its account at or before its time (and after
    time - lookback): a loop over rows, nothing clever."""
    out = []
    for _, obs in observations.iterrows():
        rows = features[
            (features["accountID"] == obs["accountID"]) & (features["timestamp"] <= obs["timestamp"])
        ]
        if lookback is not None:
            rows = rows[rows["timestamp"] > obs["timestamp"] - lookback]
        if rows.empty:
            out.append(dict.fromkeys(names))
        else:
            latest = rows.sort_values("timestamp").iloc[-1]
            out.append({name: latest[name] for name in names})
    return out


feature_times = st.lists(st.integers(0, 200), min_size=0, max_size=12, unique=True)


join_examples = {
    "accounts_times": st.fixed_dictionaries({a: feature_times for a in ACCOUNTS}),
    "risk_times": st.fixed_dictionaries({a: feature_times for a in ACCOUNTS}),
    "observations": st.lists(
        st.tuples(st.sampled_from([*ACCOUNTS, "Z"]), st.integers(-5, 210)), min_size=1, max_size=25
    ),
}
fixture_settings = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@settings(max_examples=12, **fixture_settings)  # type: ignore[arg-type]
@given(**join_examples)
def test_the_point_in_time_join_equals_a_brute_force_join_on_sail(
    sail_store: FeatureStore, accounts_times: dict, risk_times: dict, observations: list
) -> None:
    check_point_in_time_join(sail_store, accounts_times, risk_times, observations)


@settings(max_examples=3, **fixture_settings)  # type: ignore[arg-type]
@given(**join_examples)
def test_the_point_in_time_join_equals_a_brute_force_join_on_spark_connect(
    spark_connect_store: FeatureStore, accounts_times: dict, risk_times: dict, observations: list
) -> None:
    """Fewer examples than on Sail: each costs 7-12 s on the JVM; the join's logic is explored
    on Sail, and this shows Spark with delta-spark gives the same answers."""
    check_point_in_time_join(spark_connect_store, accounts_times, risk_times, observations)


def check_point_in_time_join(
    store: FeatureStore, accounts_times: dict, risk_times: dict, observations: list
) -> None:
    """Hours since T0: account snapshots (no lookback) and risk rows (2-day lookback) at random
    distinct times per account; observations at random times, some before every row, some of
    an account with no rows at all."""
    hour = timedelta(hours=1)
    rng = np.random.default_rng(len(observations))
    accounts = pd.DataFrame(
        [
            _account(a, T0 + h * hour, float(1000 * h + i), account_age_days=h)
            for i, a in enumerate(ACCOUNTS)
            for h in accounts_times[a]
        ]
        or [_account("nobody", T0, 0.0)]
    )
    risk = pd.DataFrame(
        [
            {
                "accountID": a,
                "timestamp": T0 + h * hour,
                "credit_limit": float(h),
                "risk_score": float(rng.random()),
            }
            for a in ACCOUNTS
            for h in risk_times[a]
        ]
        or [{"accountID": "nobody", "timestamp": T0, "credit_limit": 0.0, "risk_score": 0.0}]
    )
    for frame in (accounts, risk):
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    write_offline(store, "accounts", accounts)
    write_offline(store, "risk", risk)
    obs = pd.DataFrame(
        {
            "accountID": [a for a, _h in observations],
            "timestamp": pd.to_datetime([T0 + h * hour for _a, h in observations], utc=True),
            "label": range(len(observations)),
        }
    )
    refs = ["accounts:credit_limit", "accounts:account_age_days", "risk:credit_limit", "risk:risk_score"]
    got = store.get_historical_features(obs, refs).toPandas()

    assert list(got.columns) == [
        "accountID",
        "timestamp",
        "label",
        "accounts__credit_limit",
        "account_age_days",
        "risk__credit_limit",
        "risk_score",
    ]
    assert got["label"].tolist() == obs["label"].tolist()  # the observations' order, every row once
    expected_accounts = brute_force(obs, accounts, ["credit_limit", "account_age_days"], None)
    expected_risk = brute_force(obs, risk, ["credit_limit", "risk_score"], timedelta(days=2))
    for i, (acc, rsk) in enumerate(zip(expected_accounts, expected_risk, strict=True)):
        row = got.iloc[i]
        assert _value(row["accounts__credit_limit"]) == _value(acc["credit_limit"]), (i, row, acc)
        assert _value(row["account_age_days"]) == _value(acc["account_age_days"]), (i, row, acc)
        assert _value(row["risk__credit_limit"]) == _value(rsk["credit_limit"]), (i, row, rsk)
        assert _value(row["risk_score"]) == _value(rsk["risk_score"]), (i, row, rsk)


def _value(value: object) -> object:
    """NaN and None alike (pandas turns a missing number into NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value)


def test_historical_features_take_a_spark_frame_and_check_the_observations(
    store: FeatureStore, tmp_path: Path
) -> None:
    accounts = pd.DataFrame([_account("A", T0, 1.0), _account("A", T0 + timedelta(days=1), 2.0)])
    accounts["timestamp"] = pd.to_datetime(accounts["timestamp"], utc=True)
    write_offline(store, "accounts", accounts)
    obs = pd.DataFrame(
        {
            "accountID": ["A", "A"],
            "ts": pd.to_datetime([T0 + timedelta(hours=1), T0 + timedelta(days=2)], utc=True),
        }
    )
    spark = store._spark()
    frame = spark.createDataFrame(obs)
    got = store.get_historical_features(frame, ["accounts:credit_limit"], timestamp_column="ts").toPandas()
    assert got["credit_limit"].tolist() == [1.0, 2.0]
    # A frame read from a folder of parquet files holds strings in several Arrow chunks.
    folder = tmp_path / "observations"
    folder.mkdir()
    obs.iloc[:1].to_parquet(folder / "a.parquet")
    obs.iloc[1:].to_parquet(folder / "b.parquet")
    chunked = pd.read_parquet(folder).sort_values("ts")
    got = store.get_historical_features(chunked, ["accounts:credit_limit"], timestamp_column="ts").toPandas()
    assert got["credit_limit"].tolist() == [1.0, 2.0]
    with pytest.raises(BadInput, match=r"observations: missing column\(s\) timestamp"):
        store.get_historical_features(obs, ["accounts:credit_limit"])
    with pytest.raises(BadInput, match="already have column"):
        store.get_historical_features(
            obs.assign(credit_limit=1.0), ["accounts:credit_limit"], timestamp_column="ts"
        )
    with pytest.raises(BadInput, match="expected a Spark or pandas DataFrame"):
        store.get_historical_features([1, 2], ["accounts:credit_limit"])


def test_offline_reads_are_exact_where_a_file_holds_one_value(store: FeatureStore) -> None:
    """A double whose column is constant within a file (here: a one-row partition) reads back
    bit for bit: Sail's own Delta reader takes such a value from the file's JSON statistics and
    returns 0.9560017096289752 for 0.9560017096289753 (see spark_job.offline_read._sail_files)."""
    value = 0.9560017096289753
    risk = pd.DataFrame(
        [
            {"accountID": "A", "timestamp": T0, "credit_limit": value, "risk_score": value},
            {"accountID": "B", "timestamp": T0 + timedelta(days=1), "credit_limit": 1.0, "risk_score": 0.5},
        ]
    )
    risk["timestamp"] = pd.to_datetime(risk["timestamp"], utc=True)
    write_offline(store, "risk", risk)
    obs = pd.DataFrame({"accountID": ["A"], "timestamp": pd.to_datetime([T0 + timedelta(hours=1)], utc=True)})
    got = store.get_historical_features(obs, ["risk:risk_score", "risk:credit_limit"]).toPandas()
    assert got["risk_score"].tolist() == [value] and got["credit_limit"].tolist() == [value]


@pytest.mark.parametrize("engine", ["embedded", "spark-connect"])
def test_on_demand_features_are_computed_after_the_join(engine: str, request: pytest.FixtureRequest) -> None:
    """transaction_risk (amount / the 7-day average at the observation's time) on Sail and on a
    JVM Spark Connect server: its input is joined without being returned, and null where there
    is no earlier row or the average is 0."""
    store = request.getfixturevalue("sail_store" if engine == "embedded" else "spark_connect_store")
    day = timedelta(days=1)
    transactions = pd.DataFrame(
        {
            "accountID": ["A", "A", "B"],
            "timestamp": pd.to_datetime([T0, T0 + day, T0], utc=True),
            "transaction_amount_7d_sum": [10.0, 40.0, 0.0],
            "transaction_7d_count": [1, 2, 1],
            "transaction_amount_7d_avg": [10.0, 20.0, 0.0],
        }
    )
    write_offline(store, "transactions", transactions)
    hour = timedelta(hours=1)
    obs = pd.DataFrame(
        {
            "accountID": ["A", "A", "A", "B", "Z"],
            "timestamp": pd.to_datetime([T0 - hour, T0 + hour, T0 + 2 * day, T0 + hour, T0], utc=True),
            "amount": [5.0, 5.0, 30.0, 7.0, 1.0],
        }
    )
    got = store.get_historical_features(obs, ["transaction_risk:amount_vs_7d_avg"]).toPandas()
    assert list(got.columns) == ["accountID", "timestamp", "amount", "amount_vs_7d_avg"]
    assert [_value(v) for v in got["amount_vs_7d_avg"]] == [None, 0.5, 1.5, None, None]
