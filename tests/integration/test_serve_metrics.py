"""`GET /metrics` of `featurestore serve`, scraped as Prometheus scrapes it: the installed console
script in a subprocess over a copy of the fraud example, real Redis, real uvicorn, real
loopback TCP, and the text parsed by prometheus-client's own parser.

A burst of requests of every kind moves each counter and histogram by exactly what was sent;
the freshness gauge says what `featurestore status --json` says; only the right keys (or, without
keys, only loopback clients) may scrape; with `--workers 2`, a scrape sums both workers.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from test_serve import FEATURESTORE, LIVE, NOW, REDIS_URL, Server, copy_example, timestamps
from test_serve_security import FULL_KEY, KEY_ENV, SCOPED_KEY, keyed_example

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import StreamKey
from airflow_provider_featurestore.core.online import online_store_for
from airflow_provider_featurestore.core.serving import api_keys

METRICS_KEY = "fsk_prometheus-scrape-key-for-tests-3"
ROUTE = "/get-online-features"
ACCOUNTS = ["accounts:credit_limit", "accounts:account_country"]
COMPLETE_UNTIL = NOW - timedelta(hours=5)  # accounts v1, both stores

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server, key: str | None = METRICS_KEY, host: str | None = None) -> Samples:
    """Every sample of one scrape, by name and labels, parsed by prometheus-client's parser."""
    url = server.url if host is None else f"http://{host}:{server.port}"
    response = requests.get(url + "/metrics", headers={"X-API-Key": key} if key else {}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    wanted = (name, tuple(sorted(labels.items())))
    return after.get(wanted, 0.0) - before.get(wanted, 0.0)


def write_accounts(store: FeatureStore, accounts: list[str]) -> None:
    layout = store.online_layout(store.spec("accounts"))
    with online_store_for(REDIS_URL) as online:
        rows = {
            "accountID": accounts,
            "timestamp": timestamps(*[LIVE] * len(accounts)),
            "account_age_days": pa.array([400] * len(accounts), pa.int32()),
            "account_country": ["DE"] * len(accounts),
            "num_payment_rejects_1d_per_user": pa.array([0] * len(accounts), pa.int64()),
            "credit_limit": [5000.0] * len(accounts),
            "is_premium": [True] * len(accounts),
        }
        assert online.write(layout, pa.table(rows)).written == len(accounts)


def purge(store: FeatureStore) -> None:
    with online_store_for(REDIS_URL) as online:
        for spec in store.config.feature_sets:
            online.purge(store.online_layout(spec))
    store.close()


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A keyed server (a full key, a key scoped to accounts, a key of the @metrics scope) whose
    Redis holds accounts A0..A9, and whose interval table has accounts v1 Complete (both stores)
    until COMPLETE_UNTIL, transactions v1 offline with nothing Complete, and transactions v1
    online switched off (`disable-online`)."""
    root = tmp_path_factory.mktemp("metered")
    config = keyed_example(root / "fraud")
    with open(root / "fraud" / "server-keys.txt", "a") as keys:
        keys.write(f"{api_keys.hash_line(METRICS_KEY, metrics=True)}  # prometheus\n")
    patch = pytest.MonkeyPatch()
    patch.setenv(KEY_ENV, FULL_KEY)
    store = FeatureStore(config, check_transformations=False)
    write_accounts(store, [f"A{n}" for n in range(10)])
    until = int(COMPLETE_UNTIL.timestamp())
    for job in store.table.claim(
        StreamKey("accounts", 1), until - 86400, until, {"None"}, ("offline", "online"), 86400
    ):
        store.table.start_job(job.id)
        store.table.finish_job(job.id, {"offline": True, "online": True}, error=None)
    store.table.set_disabled(StreamKey("transactions", 1), "online", True)
    running = Server(config, root / "serve.log")
    yield running
    try:
        assert running.stop() == 0, running.output()
    finally:
        purge(store)
        patch.undo()


def post(server: Server, body: object, key: str | None = FULL_KEY) -> requests.Response:
    headers = {} if key is None else {"X-API-Key": key}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.http.post(server.url + ROUTE, data=data, headers=headers, timeout=30)


def declared_too_large(server: Server) -> int:
    """A POST declaring a 20 MB body and sending none: refused (413) from the headers alone."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest("POST", ROUTE)
        connection.putheader("X-API-Key", FULL_KEY)
        connection.putheader("Content-Length", str(20_000_000))
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_burst_moves_every_counter_and_histogram_by_what_was_sent(metered: Server) -> None:
    before = scrape(metered)
    sizes = [1, 1, 2, 3, 5, 8, 10, 20, 50, 100, 1, 7]
    for size in sizes:
        entities = [{"accountID": f"A{n % 12}"} for n in range(size)]  # A10, A11: unknown
        response = post(metered, {"features": ACCOUNTS, "entities": entities})
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == size
    for body in (b"not json", b"[]", b'{"features": "x"}'):
        assert post(metered, body).status_code == 400
    assert post(metered, {"features": ACCOUNTS, "entities": []}, key=None).status_code == 401
    assert (
        post(metered, {"features": ACCOUNTS, "entities": []}, key="fsk_no-such-key-000000").status_code == 401
    )
    transactions = {"features": ["transactions:transaction_7d_count"], "entities": [{"accountID": "A1"}]}
    assert post(metered, transactions, key=SCOPED_KEY).status_code == 403
    assert declared_too_large(metered) == 413
    for path in ("/nope", "/wp-admin/x.php", "/a/b/c"):  # random paths: one label, `other`
        assert (
            requests.get(metered.url + path, headers={"X-API-Key": FULL_KEY}, timeout=30).status_code == 404
        )
    assert requests.get(metered.url + "/scan-me", timeout=30).status_code == 401
    assert requests.get(metered.url + ROUTE, headers={"X-API-Key": FULL_KEY}, timeout=30).status_code == 405
    after = scrape(metered)

    requests_by = {
        (ROUTE, "200"): len(sizes),
        (ROUTE, "400"): 3,
        (ROUTE, "401"): 2,
        (ROUTE, "403"): 1,
        (ROUTE, "413"): 1,
        (ROUTE, "405"): 1,
        ("other", "404"): 3,
        ("other", "401"): 1,
        ("/metrics", "200"): 1,  # the first scrape (a scrape is counted once answered)
    }
    for (route, code), sent in requests_by.items():
        assert delta(before, after, "featurestore_http_requests_total", route=route, code=code) == sent
    moved = {
        (dict(labels)["route"], dict(labels)["code"])
        for (name, labels), value in after.items()
        if name == "featurestore_http_requests_total" and value != before.get((name, labels), 0.0)
    }
    assert moved == set(requests_by)  # nothing else moved
    for route in (ROUTE, "other", "/metrics"):
        sent = sum(n for (r, _code), n in requests_by.items() if r == route)
        assert delta(before, after, "featurestore_http_request_duration_seconds_count", route=route) == sent
        assert (
            delta(before, after, "featurestore_http_request_duration_seconds_bucket", route=route, le="+Inf")
            == sent
        )
    errors = {
        (ROUTE, "bad_request"): 3,
        (ROUTE, "unauthorized"): 2,
        (ROUTE, "forbidden"): 1,
        (ROUTE, "too_large"): 1,
        (ROUTE, "method_not_allowed"): 1,
        ("other", "not_found"): 3,
        ("other", "unauthorized"): 1,
    }
    for (route, kind), sent in errors.items():
        assert delta(before, after, "featurestore_http_errors_total", route=route, kind=kind) == sent

    # only the 200s reached the lookup: their sizes, bucket by bucket
    assert delta(before, after, "featurestore_lookup_entities_count") == len(sizes)
    assert delta(before, after, "featurestore_lookup_entities_sum") == sum(sizes)
    for bound in ("1.0", "2.0", "5.0", "10.0", "20.0", "50.0", "100.0", "+Inf"):
        within = sum(1 for size in sizes if size <= float(bound))
        assert delta(before, after, "featurestore_lookup_entities_bucket", le=bound) == within, bound
    assert delta(before, after, "featurestore_lookup_features_count") == len(sizes)
    assert delta(before, after, "featurestore_lookup_features_sum") == len(ACCOUNTS) * len(sizes)
    assert delta(before, after, "featurestore_lookup_features_bucket", le="1.0") == 0
    assert delta(before, after, "featurestore_lookup_features_bucket", le="2.0") == len(sizes)
    assert delta(before, after, "featurestore_redis_round_trip_seconds_count") == len(sizes)
    assert delta(before, after, "featurestore_redis_round_trip_seconds_sum") > 0


def test_only_a_metrics_key_or_a_full_key_may_scrape(metered: Server) -> None:
    url = metered.url + "/metrics"
    anonymous = requests.get(url, timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "featurestore_" not in anonymous.text
    scoped = requests.get(url, headers={"X-API-Key": SCOPED_KEY}, timeout=30)
    assert scoped.status_code == 403
    assert scoped.json() == {
        "detail": "/metrics: this API key may not read it; scrape with a key of the @metrics scope "
        "(featurestore api-key --metrics)"
    }
    assert "featurestore_" not in scoped.text
    full = requests.get(url, headers={"Authorization": f"Bearer {FULL_KEY}"}, timeout=30)
    assert full.status_code == 200
    if shutil.which("promtool"):  # Debian's prometheus package; CI does not install it
        linted = subprocess.run(
            ["promtool", "check", "metrics"], input=full.text, capture_output=True, text=True
        )
        assert linted.returncode == 0 and not linted.stdout.strip(), linted
    # the metrics key reads metrics and no feature set
    assert scrape(metered, METRICS_KEY)
    refused = post(metered, {"features": ACCOUNTS, "entities": [{"accountID": "A1"}]}, key=METRICS_KEY)
    assert refused.status_code == 403, refused.text


def test_freshness_gauge_says_what_featurestore_status_says(metered: Server, tmp_path: Path) -> None:
    config = metered.process.args[3]  # featurestore serve --config CONFIG
    env = {**os.environ, KEY_ENV: FULL_KEY}
    status = subprocess.run(
        [FEATURESTORE, "status", "--config", config, "--json"], capture_output=True, text=True, env=env
    )
    assert status.returncode in (0, 3), status.stderr
    rows = json.loads(status.stdout)
    gauge = {
        (dict(labels)["feature_set"], dict(labels)["version"], dict(labels)["store"]): value
        for (name, labels), value in scrape(metered).items()
        if name == "featurestore_feature_freshness_seconds"
    }
    assert set(gauge) == {(row["feature_set"], str(row["version"]), row["store"]) for row in rows}
    assert ("transactions", "1", "online") not in gauge  # disabled: left out by both
    for row in rows:
        value = gauge[(row["feature_set"], str(row["version"]), row["store"])]
        if row["lag_s"] is None:  # nothing Complete: infinitely stale
            assert value == math.inf, row
        else:
            assert abs(value - row["lag_s"]) <= 5, (row, value)  # the seconds between the two reads
    assert {row["feature_set"] for row in rows if row["lag_s"] is not None} == {"accounts"}
    assert gauge[("accounts", "1", "online")] >= 5 * 3600


# ---------------------------------------------------------------------------------------
# Several workers, and a server without keys
# ---------------------------------------------------------------------------------------


def worker_counts(parent_pid: int) -> tuple[str, dict[int, float]]:
    """The PROMETHEUS_MULTIPROC_DIR the workers of `parent_pid` write, and each worker's 200s on
    the lookup route, read from its own file."""
    with open(f"/proc/{parent_pid}/task/{parent_pid}/children") as listing:
        children = [int(pid) for pid in listing.read().split()]
    folder = ""
    for pid in children:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            found = [v for v in environ.read().split(b"\0") if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
        if found:
            folder = found[0].split(b"=", 1)[1].decode()
    assert folder, "no worker has PROMETHEUS_MULTIPROC_DIR"
    counts = {}
    for pid in children:
        file = Path(folder) / f"counter_{pid}.db"
        if file.exists():
            samples = [s for m in MultiProcessCollector.merge([str(file)]) for s in m.samples]
            counts[pid] = sum(
                s.value
                for s in samples
                if s.name == "featurestore_http_requests_total"
                and s.labels == {"route": ROUTE, "code": "200"}
            )
    return folder, counts


def beyond_loopback() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent: only a route is chosen
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_two_workers_sum_in_every_scrape_and_strangers_cannot_scrape(tmp_path: Path) -> None:
    copy = copy_example(tmp_path / "fraud", REDIS_URL)
    store = FeatureStore(copy.config, check_transformations=False)
    write_accounts(store, ["A1"])
    running = Server(copy.config, tmp_path / "serve.log", "--workers", "2", "--host", "0.0.0.0")
    try:
        body = {"features": ACCOUNTS, "entities": [{"accountID": "A1"}]}

        def one(_n: int) -> int:  # a fresh connection each: the workers take turns accepting
            return requests.post(running.url + ROUTE, json=body, timeout=30).status_code

        before = scrape(running, key=None)
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            for _burst in range(10):  # which worker accepts is the kernel's choice: until both have
                statuses = Counter(pool.map(one, range(40)))
                assert statuses == {200: 40}
                sent += 40
                folder, counts = worker_counts(running.process.pid)
                if len(counts) == 2 and all(counts.values()):
                    break
        after = scrape(running, key=None)
        assert len(counts) == 2 and all(counts.values()), counts
        assert delta(before, after, "featurestore_http_requests_total", route=ROUTE, code="200") == sent
        assert after[("featurestore_http_requests_total", (("code", "200"), ("route", ROUTE)))] == sum(
            counts.values()
        )
        assert delta(before, after, "featurestore_lookup_entities_count") == sent
        assert delta(before, after, "featurestore_redis_round_trip_seconds_count") == sent

        # without keys: loopback only; a client behind a proxy on this machine is not loopback
        proxied = requests.get(
            running.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30
        )
        assert proxied.status_code == 403
        assert proxied.json()["detail"].startswith("/metrics: only loopback clients may read it")
        assert "featurestore_" not in proxied.text
        address = beyond_loopback()
        if address is not None:  # the same machine over a non-loopback address: a stranger
            stranger = requests.get(f"http://{address}:{running.port}/metrics", timeout=30)
            assert stranger.status_code == 403, stranger.text
            assert requests.post(f"http://{address}:{running.port}{ROUTE}", json=body, timeout=30).ok
    finally:
        assert running.stop() == 0, running.output()
        purge(store)
    assert not Path(folder).exists()  # the parent removed the workers' files
