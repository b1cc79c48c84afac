"""`featurestore serve`, the HTTP feature server, run as users run it: the installed console
script in a subprocess over a copy of the fraud example, asked over HTTP on loopback.

The copy gets a project name of its own, so its Redis keys (written here with
`OnlineStore.write`) cannot meet those of any other test; they are purged afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import redis
import requests

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.online import online_store_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud"
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"
TTL = 30 * 86400  # online_ttl of both example feature sets
NOW = datetime.now(UTC).replace(microsecond=0)
LIVE = NOW - timedelta(hours=1)  # A1, A2: well inside the TTL
LIVE_US = LIVE + timedelta(microseconds=250_000)  # accounts of A1: a sub-second event time
STALE = NOW - timedelta(days=31)  # A3's transactions: expired before the test started
FEATURES = [
    "transactions:transaction_7d_count",
    "transactions:transaction_amount_7d_sum",
    "accounts:credit_limit",
    "accounts:v1:account_country",
    "accounts:is_premium",
    "accounts:account_age_days",
]
REF = "transactions:transaction_7d_count"


@dataclass
class Example:
    config: str
    project: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_example(root: Path, redis_url: str) -> Example:
    """A copy of the fraud example with a project name of its own, reading `redis_url`."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    project = f"serve_{uuid.uuid4().hex[:10]}"
    config = root / "featurestore.yaml"
    text = config.read_text()
    text = re.sub(r"(?m)^project: fraud\b", f"project: {project}", text)
    text = re.sub(r"(?m)^  redis_url: .*$", f"  redis_url: {redis_url}", text)
    config.write_text(text)
    return Example(str(config), project)


def timestamps(*values: datetime) -> pa.Array:
    return pa.array(list(values), pa.timestamp("us", tz="UTC"))


class Server:
    """`featurestore serve` in a subprocess, on a free loopback port."""

    def __init__(self, config: str, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        argv = [FEATURESTORE, "serve", "--config", config, "--port", str(self.port), *extra]
        env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_CONFIG"}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.http = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"featurestore serve exited {self.process.returncode}: {self.output()}")
            try:
                self.http.get(self.url + "/health", timeout=5)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(
                        f"featurestore serve did not answer in 60 s: {self.output()}"
                    ) from None
                time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def post(self, body: object) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(
            self.url + "/get-online-features",
            data=data,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )

    def lookup(self, entities: list[dict[str, object]], **options: object) -> list[dict[str, object]]:
        response = self.post({"features": FEATURES, "entities": entities, **options})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()["results"]

    def stop(self) -> int:
        """SIGTERM: uvicorn shuts down gracefully, then ends the process by the signal it got
        (exit status -SIGTERM, 143 in a shell); returns the status, 0 for a clean one."""
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                self.process.kill()
                self.process.wait()
        return 0 if self.process.returncode == -signal.SIGTERM else self.process.returncode


def accounts_rows() -> pa.Table:
    """The accounts of A1, A2 (without a country) and A3, all live."""
    return pa.table(
        {
            "accountID": ["A1", "A2", "A3"],
            "timestamp": timestamps(LIVE_US, LIVE, LIVE),
            "account_age_days": pa.array([400, 3, 90], pa.int32()),
            "account_country": ["DE", None, "FR"],
            "num_payment_rejects_1d_per_user": pa.array([0, 2, 1], pa.int64()),
            "credit_limit": [5000.0, 250.75, 1e-7],
            "is_premium": [True, False, False],
        }
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    """The example copy, its Redis holding: transactions of A1 (live) and A3 (expired), accounts
    of A1 and A2 (A2 without a country) and A3 (live). Nothing of `nobody`."""
    copy = copy_example(tmp_path_factory.mktemp("serve") / "fraud", REDIS_URL)
    store = FeatureStore(copy.config, check_transformations=False)
    online = online_store_for(REDIS_URL)
    transactions = store.online_layout(store.spec("transactions"))
    accounts = store.online_layout(store.spec("accounts"))
    written = online.write(
        transactions,
        pa.table(
            {
                "accountID": ["A1"],
                "timestamp": timestamps(LIVE),
                "transaction_amount_7d_sum": [1234.5],
                "transaction_7d_count": pa.array([7], pa.int64()),
                "transaction_amount_7d_avg": [176.357],
            }
        ),
    )
    assert written.written == 1
    # Written as if it were 31 days ago (a write at the real now would skip it as expired):
    # its EXPIREAT is already past, so Redis drops it at once, exactly as a key whose TTL ran out.
    expired = online.write(
        transactions,
        pa.table(
            {
                "accountID": ["A3"],
                "timestamp": timestamps(STALE),
                "transaction_amount_7d_sum": [99.0],
                "transaction_7d_count": pa.array([1], pa.int64()),
                "transaction_amount_7d_avg": [99.0],
            }
        ),
        now=int(STALE.timestamp()) + 60,
    )
    assert expired.written == 1
    assert online.write(accounts, accounts_rows()).written == 3
    yield copy
    for layout in (transactions, accounts):
        online.purge(layout)
    online.close()
    store.close()


@pytest.fixture(scope="module")
def server(example: Example, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(example.config, tmp_path_factory.mktemp("log") / "serve.log")
    yield running
    assert running.stop() == 0, running.output()


@pytest.fixture(scope="module")
def dead_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose config points at a port where no Redis listens."""
    root = tmp_path_factory.mktemp("dead")
    copy = copy_example(root / "fraud", DEAD_REDIS_URL)
    running = Server(copy.config, root / "serve.log")
    yield running
    running.stop()


# ---------------------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------------------


def test_startup_line_names_the_url_and_feature_sets(server: Server, example: Example) -> None:
    first = server.output().splitlines()[0]
    assert first.startswith(f"featurestore serve: {server.url} serving project {example.project} ")
    assert "(accounts v1, transactions v1)" in first


def test_lookup_across_both_feature_sets_missing_and_expired(server: Server) -> None:
    results = server.lookup(
        [{"accountID": "A1"}, {"accountID": "nobody"}, {"accountID": "A3"}, {"accountID": "A2"}]
    )
    assert results == [
        {
            "accountID": "A1",
            "transaction_7d_count": 7,
            "transaction_amount_7d_sum": 1234.5,
            "credit_limit": 5000.0,
            "account_country": "DE",
            "is_premium": True,
            "account_age_days": 400,
        },
        {  # never written: every feature null
            "accountID": "nobody",
            "transaction_7d_count": None,
            "transaction_amount_7d_sum": None,
            "credit_limit": None,
            "account_country": None,
            "is_premium": None,
            "account_age_days": None,
        },
        {  # transactions expired (TTL passed), accounts live
            "accountID": "A3",
            "transaction_7d_count": None,
            "transaction_amount_7d_sum": None,
            "credit_limit": 1e-7,
            "account_country": "FR",
            "is_premium": False,
            "account_age_days": 90,
        },
        {  # no transactions ever; accounts live, one feature null
            "accountID": "A2",
            "transaction_7d_count": None,
            "transaction_amount_7d_sum": None,
            "credit_limit": 250.75,
            "account_country": None,
            "is_premium": False,
            "account_age_days": 3,
        },
    ]


def test_event_timestamps_are_iso_utc_with_z(server: Server) -> None:
    response = server.post(
        {
            "features": ["accounts:credit_limit", REF],
            "entities": [{"accountID": "A1"}, {"accountID": "A2"}, {"accountID": "A3"}],
            "event_timestamps": True,
        }
    )
    assert response.status_code == 200, response.text
    live = LIVE.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert response.json() == {
        "results": [
            {
                "accountID": "A1",
                "credit_limit": 5000.0,
                "accounts__event_timestamp": LIVE.strftime("%Y-%m-%dT%H:%M:%S.250000Z"),
                "transaction_7d_count": 7,
                "transactions__event_timestamp": live,
            },
            {
                "accountID": "A2",
                "credit_limit": 250.75,
                "accounts__event_timestamp": live,
                "transaction_7d_count": None,
                "transactions__event_timestamp": None,
            },
            {
                "accountID": "A3",
                "credit_limit": 1e-7,
                "accounts__event_timestamp": live,
                "transaction_7d_count": None,
                "transactions__event_timestamp": None,
            },
        ]
    }


def test_no_entities_no_results_and_duplicates_kept_in_order(server: Server) -> None:
    assert server.post({"features": [REF], "entities": []}).json() == {"results": []}
    results = server.lookup([{"accountID": "A2", "extra": 1}, {"accountID": "A1"}, {"accountID": "A2"}])
    assert [(r["accountID"], r["credit_limit"]) for r in results] == [
        ("A2", 250.75),
        ("A1", 5000.0),
        ("A2", 250.75),
    ]


def test_values_turn_null_once_their_ttl_passes(server: Server, example: Example) -> None:
    store = FeatureStore(example.config, check_transformations=False)
    layout = store.online_layout(store.spec("transactions"))
    expires_at = int(time.time()) + 4
    event = datetime.fromtimestamp(expires_at - TTL, UTC)
    with online_store_for(REDIS_URL) as online:
        assert (
            online.write(
                layout,
                pa.table(
                    {
                        "accountID": ["soon"],
                        "timestamp": timestamps(event),
                        "transaction_amount_7d_sum": [5.0],
                        "transaction_7d_count": pa.array([2], pa.int64()),
                        "transaction_amount_7d_avg": [2.5],
                    }
                ),
            ).written
            == 1
        )
    body = {"features": [REF], "entities": [{"accountID": "soon"}], "event_timestamps": True}
    assert server.post(body).json()["results"] == [
        {
            "accountID": "soon",
            "transaction_7d_count": 2,
            "transactions__event_timestamp": event.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ]
    deadline = time.monotonic() + 15
    while server.post(body).json()["results"][0]["transaction_7d_count"] is not None:
        assert time.monotonic() < deadline, "the key outlived its TTL"
        time.sleep(0.25)
    assert server.post(body).json()["results"] == [
        {"accountID": "soon", "transaction_7d_count": None, "transactions__event_timestamp": None}
    ]
    with redis.Redis.from_url(REDIS_URL) as raw:
        assert not raw.exists(layout.key(["soon"]))
    store.close()


def test_non_finite_floats_are_strings_as_in_protobuf_json(server: Server, example: Example) -> None:
    store = FeatureStore(example.config, check_transformations=False)
    layout = store.online_layout(store.spec("transactions"))
    with online_store_for(REDIS_URL) as online:
        table = pa.table(
            {
                "accountID": ["odd"],
                "timestamp": timestamps(LIVE),
                "transaction_amount_7d_sum": [float("inf")],
                "transaction_7d_count": pa.array([0], pa.int64()),
                "transaction_amount_7d_avg": [float("nan")],
            }
        )
        assert online.write(layout, table).written == 1
    store.close()
    response = server.post(
        {
            "features": ["transactions:transaction_amount_7d_sum", "transactions:transaction_amount_7d_avg"],
            "entities": [{"accountID": "odd"}, {"accountID": "A1"}],
        }
    )
    assert response.status_code == 200, response.text
    assert "NaN" not in response.text.replace('"NaN"', "")  # strict JSON: no bare NaN
    assert response.json()["results"] == [
        {"accountID": "odd", "transaction_amount_7d_sum": "Infinity", "transaction_amount_7d_avg": "NaN"},
        {"accountID": "A1", "transaction_amount_7d_sum": 1234.5, "transaction_amount_7d_avg": 176.357},
    ]


def test_on_demand_features_from_the_request_and_the_looked_up_inputs(server: Server) -> None:
    """transaction_risk (the example's on-demand set): amount / transaction_amount_7d_avg of A1's
    live row (176.357), null where the average is missing (expired A3, unknown nobody); its input
    is looked up without being returned, unless asked for."""
    risk = "transaction_risk:amount_vs_7d_avg"
    entities = [
        {"accountID": "A1", "amount": 352.714},
        {"accountID": "A3", "amount": 10},
        {"accountID": "nobody", "amount": 1.5},
    ]
    response = server.post({"features": [risk, "accounts:is_premium"], "entities": entities})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {"accountID": "A1", "is_premium": True, "amount_vs_7d_avg": 352.714 / 176.357},
        {"accountID": "A3", "is_premium": False, "amount_vs_7d_avg": None},
        {"accountID": "nobody", "is_premium": None, "amount_vs_7d_avg": None},
    ]
    both = server.post(
        {"features": [risk, "transactions:transaction_amount_7d_avg"], "entities": entities[:1]}
    )
    assert both.json()["results"] == [
        {"accountID": "A1", "transaction_amount_7d_avg": 176.357, "amount_vs_7d_avg": 2.0}
    ]
    for entity, detail in [
        (
            {"accountID": "A1"},
            "entities[1]: missing request field amount (double), an input of transaction_risk",
        ),
        ({"accountID": "A1", "amount": None}, "entities[1].amount: is null; give a double"),
        (
            {"accountID": "A1", "amount": "12"},
            "entities[1].amount: expected a double (a request field of transaction_risk), got the string '12'",
        ),
    ]:
        refused = server.post({"features": [risk], "entities": [entities[0], entity]})
        assert refused.status_code == 400, refused.text
        assert refused.json() == {"detail": detail} or refused.json()["detail"].startswith(detail)


# ---------------------------------------------------------------------------------------
# Bad requests
# ---------------------------------------------------------------------------------------

GOOD = {"features": [REF], "entities": [{"accountID": "A1"}]}
BAD_REQUESTS = [
    ("malformed JSON", b'{"features": ["transactions:transaction_7d_count"', "body: not JSON"),
    ("not UTF-8", b'{"features": ["\xff"]}', "body: not JSON"),
    ("not an object", [GOOD], "body: expected a JSON object"),
    ("unknown field", {**GOOD, "entity_rows": []}, "entity_rows: unknown field (fields: features, entities,"),
    ("features missing", {"entities": GOOD["entities"]}, "features: is required"),
    ("features a string", {**GOOD, "features": REF}, "features: expected a list"),
    ("features null", {**GOOD, "features": None}, "features: expected a list"),
    ("a ref not a string", {**GOOD, "features": [REF, 7]}, "features[1]: expected a feature ref"),
    ("features empty", {**GOOD, "features": []}, "features: no feature refs given"),
    ("ref syntax", {**GOOD, "features": ["transactions"]}, "features: 'transactions' is not a feature ref"),
    ("unknown feature set", {**GOOD, "features": ["payments:amount"]}, "features: payments:amount:"),
    ("unknown feature", {**GOOD, "features": ["transactions:nope"]}, "features: transactions:nope:"),
    (
        "unknown version",
        {**GOOD, "features": ["accounts:v9:credit_limit"]},
        "features: accounts:v9:credit_limit",
    ),
    ("ref twice", {**GOOD, "features": [REF, REF]}, f"features: {REF} is requested twice"),
    ("entities missing", {"features": [REF]}, "entities: is required"),
    ("entities an object", {**GOOD, "entities": {"accountID": "A1"}}, "entities: expected a list"),
    (
        "entity not an object",
        {**GOOD, "entities": [{"accountID": "A1"}, "A2"]},
        "entities[1]: expected an object of index column values, got the string 'A2'",
    ),
    (
        "index column missing",
        {**GOOD, "entities": [{"accountID": "A1"}, {"account": "A2"}]},
        "entities[1]: missing index column(s) accountID",
    ),
    (
        "index value null",
        {**GOOD, "entities": [{"accountID": "A1"}, {"accountID": "A2"}, {"accountID": None}]},
        "entities[2].accountID: is null; give a string",
    ),
    (
        "index value of the wrong type",
        {**GOOD, "entities": [{"accountID": "A1"}, {"accountID": "A2"}, {"accountID": 42}]},
        "entities[2].accountID: expected a string (accountID is a string index column), got the number 42",
    ),
    (
        "index value a boolean",
        {**GOOD, "entities": [{"accountID": True}]},
        "entities[0].accountID: expected a string (accountID is a string index column), got true",
    ),
    (
        "index value a list",
        {**GOOD, "entities": [{"accountID": ["A1"]}]},
        "entities[0].accountID: expected a string (accountID is a string index column), got a list",
    ),
    (
        "too many entities",
        {**GOOD, "entities": [{"accountID": f"E{i}"} for i in range(10_001)]},
        "entities: 10,001 given; at most 10,000 per request",
    ),
    (
        "event_timestamps not a boolean",
        {**GOOD, "event_timestamps": "yes"},
        "event_timestamps: expected true or false",
    ),
]


@pytest.mark.parametrize(
    ("body", "detail"),
    [(body, detail) for _, body, detail in BAD_REQUESTS],
    ids=[n for n, _, _ in BAD_REQUESTS],
)
def test_bad_requests_are_400_with_one_line_naming_the_field(
    server: Server, body: object, detail: str
) -> None:
    response = server.post(body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert set(document) == {"detail"}
    assert document["detail"].startswith(detail), document["detail"]
    assert "\n" not in document["detail"] and len(document["detail"]) <= 500


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_limits_of_an_app_built_in_process(example: Example) -> None:
    """create_app as a library call: its limits, and the same answers as the server's."""
    from fastapi.testclient import TestClient

    from airflow_provider_featurestore.core.serving.server import create_app

    store = FeatureStore(example.config, check_transformations=False)
    app = create_app(store, max_entities=2, max_body_bytes=200, close_store=True)
    with TestClient(app) as client:
        response = client.post("/get-online-features", json={**GOOD, "entities": [{"accountID": "A1"}] * 3})
        assert response.status_code == 400
        assert response.json() == {"detail": "entities: 3 given; at most 2 per request"}
        response = client.post("/get-online-features", json={**GOOD, "padding": "x" * 200})
        assert response.status_code == 413
        assert (
            response.json()["detail"].startswith("body: ")
            and "at most 200 per request" in response.json()["detail"]
        )
        response = client.post("/get-online-features", json=GOOD)
        assert response.status_code == 200
        assert response.json() == {"results": [{"accountID": "A1", "transaction_7d_count": 7}]}
    assert not store.online.is_open  # closed with the app


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_fraction_for_an_integer_key_is_refused_not_truncated(tmp_path: Path) -> None:
    """The online store's key builder turns 1.5 into the key of entity 1; the server refuses it."""
    from fastapi.testclient import TestClient

    from airflow_provider_featurestore.core.serving.server import create_app

    copy = copy_example(tmp_path / "fraud", REDIS_URL)
    (tmp_path / "fraud" / "featuresets" / "cards.yaml").write_text(
        "name: cards\nversion: 1\nindex_columns:\n  - {name: cardID, type: long}\n"
        "timestamp_column: timestamp\nsource: {format: parquet, path: data/source/cards}\n"
        "features:\n  - {name: limit, type: double}\nmaterialization: {offline: false, online: true}\n"
    )
    store = FeatureStore(copy.config, check_transformations=False)
    layout = store.online_layout(store.spec("cards"))
    with online_store_for(REDIS_URL) as online:
        table = pa.table(
            {"cardID": pa.array([1], pa.int64()), "timestamp": timestamps(LIVE), "limit": [10.0]}
        )
        assert online.write(layout, table).written == 1
        try:
            with TestClient(create_app(store, close_store=True)) as client:
                body = {"features": ["cards:limit"], "entities": [{"cardID": 2}, {"cardID": 1.5}]}
                response = client.post("/get-online-features", json=body)
                assert response.status_code == 400
                assert response.json() == {
                    "detail": "entities[1].cardID: expected an integer (cardID is a long index column), "
                    "got the number 1.5"
                }
                body = {
                    "features": ["cards:limit"],
                    "entities": [{"cardID": 1.0}, {"cardID": "1"}, {"cardID": 2}],
                }
                assert client.post("/get-online-features", json=body).json() == {
                    "results": [
                        {"cardID": 1.0, "limit": 10.0},
                        {"cardID": "1", "limit": 10.0},
                        {"cardID": 2, "limit": None},
                    ]
                }
        finally:
            online.purge(layout)


def test_the_limit_is_inclusive(server: Server) -> None:
    entities = [{"accountID": f"E{i}"} for i in range(9_999)] + [{"accountID": "A1"}]
    results = server.lookup(entities)
    assert len(results) == 10_000
    assert results[-1]["credit_limit"] == 5000.0 and results[0]["credit_limit"] is None


def test_unknown_route_and_method(server: Server) -> None:
    assert server.http.get(server.url + "/get-online-features", timeout=10).status_code == 405
    assert server.http.get(server.url + "/nope", timeout=10).status_code == 404


# ---------------------------------------------------------------------------------------
# Health and an unreachable Redis
# ---------------------------------------------------------------------------------------


def test_health_ok(server: Server) -> None:
    response = server.http.get(server.url + "/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_dead_redis_is_503_naming_it(dead_server: Server) -> None:
    response = dead_server.http.get(dead_server.url + "/health", timeout=10)
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("cannot reach the online store at redis://127.0.0.1:1/0: "), detail
    response = dead_server.post(GOOD)
    assert response.status_code == 503
    assert response.json()["detail"] == detail
    # Requests that are bad in themselves are still told so, without Redis.
    response = dead_server.post({**GOOD, "features": ["transactions:nope"]})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("features: transactions:nope:")


# ---------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_CONFIG"}
    return subprocess.run(
        [FEATURESTORE, "serve", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr == f"featurestore serve: {tmp_path / 'missing.yaml'}: file not found\n"
    assert result.stdout == ""


def test_port_in_use_exits_2_with_one_line(server: Server, example: Example) -> None:
    result = run_cli("--config", example.config, "--port", str(server.port))
    assert result.returncode == 2
    assert result.stderr == (
        f"featurestore serve: --port: cannot listen on 127.0.0.1:{server.port}: Address already in use\n"
    )


def test_bad_port_exits_2(example: Example) -> None:
    result = run_cli("--config", example.config, "--port", "70000")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--port" in result.stderr


def test_several_workers_serve_and_stop_cleanly(example: Example, tmp_path: Path) -> None:
    running = Server(example.config, tmp_path / "serve.log", "--workers", "2")
    try:
        for _ in range(4):
            results = running.lookup([{"accountID": "A1"}])
            assert results[0]["transaction_7d_count"] == 7 and results[0]["account_country"] == "DE"
        assert running.http.get(running.url + "/health", timeout=10).json() == {"status": "ok"}
    finally:
        assert running.stop() == 0, running.output()
    assert "2 worker(s)" in running.output()


# ---------------------------------------------------------------------------------------
# HTTP details
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "shown"),
    [
        ("Transfer-Encoding: gzip, chunked", "gzip, chunked"),
        ("Transfer-Encoding: deflate,chunked", "deflate, chunked"),
        ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", "gzip, chunked"),
    ],
    ids=["gzip", "deflate", "two-headers"],
)
def test_a_transfer_coding_other_than_chunked_is_501(server: Server, head: str, shown: str) -> None:
    """RFC 9112 6.1: a coding the server does not implement is 501, not a body read as plain."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(
            f"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{head}\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode()
        )
        connection.settimeout(10)
        reply = b""
        while chunk := connection.recv(4096):
            reply += chunk
    text = reply.decode()
    assert text.startswith("HTTP/1.1 501 Not Implemented\r\n"), text
    assert text.endswith(
        json.dumps({"detail": f"request head: Transfer-Encoding {shown}: only chunked is implemented"})
    ), text
    assert server.lookup([{"accountID": "A1"}])[0]["credit_limit"] == 5000.0  # the server is fine


def test_lookups_go_on_when_the_interval_table_cannot_be_reached(
    example: Example, caplog: pytest.LogCaptureFixture
) -> None:
    """Which stores are disabled lives in the interval table; a lookup does not need it to be
    up: it is logged, and the last set read (none yet) holds."""
    text = Path(example.config).read_text()
    dead = re.sub(r"(?m)^  url: .*$", "  url: postgresql://fs:secret@127.0.0.1:1/nothing", text, count=1)
    assert dead != text
    config = Path(example.config).with_name("dead-table.yaml")
    config.write_text(dead)
    with FeatureStore(str(config), check_transformations=False) as store:
        assert store.get_online_features(["accounts:credit_limit"], [{"accountID": "A1"}]) == [
            {"accountID": "A1", "credit_limit": 5000.0}
        ]
    [warning] = [r.getMessage() for r in caplog.records if "disabled was not read" in r.getMessage()]
    assert "127.0.0.1:1" in warning and "secret" not in warning, warning


# ---------------------------------------------------------------------------------------
# A disabled online store (last: it purges the accounts keys, then writes them back)
# ---------------------------------------------------------------------------------------


def featurestore(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_CONFIG"}
    return subprocess.run([FEATURESTORE, *args], capture_output=True, text=True, timeout=120, env=env)


def until(server: Server, body: object, status: int) -> requests.Response:
    """The first answer with `status`, asked every 0.2 s: the server reads which stores are
    disabled every DISABLED_MAX_AGE seconds, never per request."""
    from airflow_provider_featurestore.core.online_reader import DISABLED_MAX_AGE

    deadline = time.monotonic() + DISABLED_MAX_AGE + 20
    while (response := server.post(body)).status_code != status:
        assert time.monotonic() < deadline, (response.status_code, response.text)
        time.sleep(0.2)
    return response


def test_a_disabled_online_store_is_refused_until_enabled(server: Server, example: Example) -> None:
    from airflow_provider_featurestore.core.online_reader import OnlineDisabled

    config = ["--config", example.config]
    refusal = "the online store of accounts v1 is disabled: run `featurestore enable-online accounts`, then backfill it"
    accounts = {"features": ["accounts:credit_limit"], "entities": [{"accountID": "A1"}]}
    disabled = featurestore("disable-online", "accounts", *config)
    assert disabled.returncode == 0, disabled.stderr
    assert "3 keys purged" in disabled.stdout

    got = featurestore("get-online", "accounts", "--key", "accountID=A1", *config)
    assert (got.returncode, got.stdout) == (2, ""), got
    assert got.stderr == f"featurestore get-online: {refusal}\n"
    response = until(server, accounts, 409)
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": refusal}
    both = server.post({**accounts, "features": [REF, "accounts:credit_limit"]})
    assert (both.status_code, both.json()) == (409, {"detail": refusal})  # any set disabled: refused
    only_transactions = server.post({"features": [REF], "entities": [{"accountID": "A1"}]})
    assert only_transactions.json() == {"results": [{"accountID": "A1", "transaction_7d_count": 7}]}
    with (
        FeatureStore(example.config, check_transformations=False) as store,
        pytest.raises(OnlineDisabled) as raised,
    ):
        store.get_online_features(["accounts:credit_limit"], [{"accountID": "A1"}])
    assert str(raised.value) == refusal

    with (
        online_store_for(REDIS_URL) as online,
        FeatureStore(example.config, check_transformations=False) as store,
    ):
        assert store.set_online("accounts", enabled=True) == 0  # enable-online
        layout = store.online_layout(store.spec("accounts"))
        assert online.write(layout, accounts_rows()).written == 3  # what a backfill writes
        assert store.get_online("accounts", [{"accountID": "A1"}], features="credit_limit") == [
            {"accountID": "A1", "credit_limit": 5000.0}
        ]
    assert until(server, accounts, 200).json() == {"results": [{"accountID": "A1", "credit_limit": 5000.0}]}
