"""The feature server against strangers and hostile clients: API keys, body and head limits,
timeouts, and a bounded load. The installed `featurestore serve` in a subprocess over a copy of
the fraud example, with `feature_server` configured as a user would: one key by `${ENV}` and a
key file holding a key scoped to one feature set. Every request goes over real loopback TCP.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from test_serve import FEATURESTORE, LIVE, REDIS_URL, Server, copy_example, timestamps

from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.online import online_store_for
from airflow_provider_featurestore.core.serving import api_keys
from airflow_provider_featurestore.core.serving.server import exposure_warning

FULL_KEY = "fsk_full-access-key-for-tests-0001"
SCOPED_KEY = "fsk_accounts-only-key-for-tests-02"
KEY_ENV = "FEATURESTORE_TEST_SERVER_KEY"
ROUTE = "/get-online-features"
MISSING = "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
ACCOUNTS = {
    "features": ["accounts:credit_limit", "accounts:account_country"],
    "entities": [{"accountID": "A1"}],
}
TRANSACTIONS = {"features": ["transactions:transaction_7d_count"], "entities": [{"accountID": "A1"}]}
HEADER_TIMEOUT = BODY_TIMEOUT = 2  # seconds, set in the config below
SERVER_SECTION = f"""
feature_server:
  api_keys:
    - ${{{KEY_ENV}}}
  api_key_file: server-keys.txt
  header_timeout: {HEADER_TIMEOUT}s
  body_timeout: {BODY_TIMEOUT}s
"""


def keyed_example(root: Path) -> str:
    copy = copy_example(root, REDIS_URL)
    with open(copy.config, "a") as config:
        config.write(SERVER_SECTION)
    (root / "server-keys.txt").write_text(
        "# keys of the fraud model's servers\n"
        f"{api_keys.hash_line(SCOPED_KEY, ['accounts'])}  # the scoring service: accounts only\n"
    )
    return copy.config


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A keyed server whose Redis holds the accounts row of A1."""
    root = tmp_path_factory.mktemp("keyed")
    config = keyed_example(root / "fraud")
    patch = pytest.MonkeyPatch()
    patch.setenv(KEY_ENV, FULL_KEY)
    store = FeatureStore(config, check_transformations=False)
    layout = store.online_layout(store.spec("accounts"))
    online = online_store_for(REDIS_URL)
    row = {
        "accountID": ["A1"],
        "timestamp": timestamps(LIVE),
        "account_age_days": pa.array([400], pa.int32()),
        "account_country": ["DE"],
        "num_payment_rejects_1d_per_user": pa.array([0], pa.int64()),
        "credit_limit": [5000.0],
        "is_premium": [True],
    }
    assert online.write(layout, pa.table(row)).written == 1
    running = Server(config, root / "serve.log")
    yield running
    try:
        assert running.stop() == 0, running.output()
    finally:
        online.purge(layout)
        online.close()
        store.close()
        patch.undo()


def post(server: Server, body: object, key: str | None = None, **headers: str) -> requests.Response:
    if key is not None:
        headers["X-API-Key"] = key
    return requests.post(server.url + ROUTE, json=body, headers=headers, timeout=30)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


# ---------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------


def test_the_start_line_says_keys_are_required(keyed: Server) -> None:
    assert "2 API key(s) required" in keyed.output()
    assert "WARNING" not in keyed.output()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", ROUTE), ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nope"), ("GET", ROUTE)],
)
def test_every_route_but_health_needs_a_key(keyed: Server, method: str, path: str) -> None:
    response = requests.request(method, keyed.url + path, json=ACCOUNTS, timeout=30)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {"detail": MISSING}
    assert "credit_limit" not in response.text and "5000" not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "fsk_not-a-key-of-this-server-00"},
        {"Authorization": f"Bearer {FULL_KEY}x"},
        {"Authorization": f"Bearer {FULL_KEY[:-1]}"},
        {"Authorization": f"Basic {FULL_KEY}"},  # only Bearer carries a key
        {"X-API-Key": api_keys.hash_line(SCOPED_KEY)[len("sha256:") :]},  # the hash is not the key
    ],
    ids=["unknown", "longer", "prefix", "basic-scheme", "the-hash"],
)
def test_a_wrong_key_is_401(keyed: Server, headers: dict[str, str]) -> None:
    response = requests.post(keyed.url + ROUTE, json=ACCOUNTS, headers=headers, timeout=30)
    assert response.status_code == 401, response.text
    expected = MISSING if "Basic" in str(headers) else "the API key is not valid"
    assert response.json() == {"detail": expected}
    assert response.headers["connection"] == "close"


def test_health_stays_open(keyed: Server) -> None:
    response = requests.get(keyed.url + "/health", timeout=30)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    response = requests.get(keyed.url + "/health/", timeout=30)  # only /health itself is open
    assert response.status_code == 401 and response.json() == {"detail": MISSING}


def test_both_headers_carry_a_key(keyed: Server) -> None:
    by_header = post(keyed, ACCOUNTS, FULL_KEY)
    by_bearer = post(keyed, ACCOUNTS, Authorization=f"Bearer {FULL_KEY}")
    for response in (by_header, by_bearer):
        assert response.status_code == 200, response.text
        assert response.json() == {
            "results": [{"accountID": "A1", "credit_limit": 5000.0, "account_country": "DE"}]
        }
    response = requests.get(keyed.url + "/openapi.json", headers={"X-API-Key": FULL_KEY}, timeout=30)
    assert response.status_code == 200 and ROUTE in response.json()["paths"]
    response = post(keyed, {"features": "x"}, FULL_KEY)  # a valid key still gets the usual 400s
    assert response.status_code == 400
    assert response.json() == {
        "detail": "features: expected a list of feature refs ('feature_set:feature'), got the string 'x'"
    }


def test_a_scoped_key_reads_its_feature_sets_only(keyed: Server) -> None:
    response = post(keyed, ACCOUNTS, SCOPED_KEY)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["credit_limit"] == 5000.0
    for body in (TRANSACTIONS, {**ACCOUNTS, "features": [*ACCOUNTS["features"], *TRANSACTIONS["features"]]}):
        response = post(keyed, body, SCOPED_KEY)
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "features: this API key may not read feature set 'transactions'"}
    # Nor does it learn what another feature set holds, or whether one exists.
    for ref, name in (("transactions:nope", "transactions"), ("secret:x", "secret"), ("nope:v9:x", "nope")):
        response = post(keyed, {**ACCOUNTS, "features": [ref]}, SCOPED_KEY)
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": f"features: this API key may not read feature set {name!r}"}
    response = post(keyed, TRANSACTIONS, FULL_KEY)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [{"accountID": "A1", "transaction_7d_count": None}]}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ([("X-API-Key", FULL_KEY), ("X-API-Key", FULL_KEY)], "two X-API-Key headers: send the API key once"),
        (
            [("X-API-Key", SCOPED_KEY), ("X-API-Key", FULL_KEY)],
            "two X-API-Key headers: send the API key once",
        ),
        (
            [("Authorization", f"Bearer {SCOPED_KEY}"), ("Authorization", f"Bearer {FULL_KEY}")],
            "two Authorization headers: send the API key once",
        ),
        (
            [("Authorization", f"Bearer {SCOPED_KEY}"), ("X-API-Key", FULL_KEY)],
            "Authorization and X-API-Key carry different keys: send the API key once",
        ),
    ],
    ids=["x-api-key-twice", "two-x-api-keys", "two-authorizations", "both-differ"],
)
def test_two_key_headers_are_400(keyed: Server, headers: list[tuple[str, str]], detail: str) -> None:
    """Which of two keys would count is a guess (the first won before): refused, 400."""
    connection = http.client.HTTPConnection("127.0.0.1", keyed.port, timeout=30)
    try:
        connection.putrequest("POST", ROUTE)
        for name, value in [*headers, ("Content-Type", "application/json")]:
            connection.putheader(name, value)
        body = json.dumps(TRANSACTIONS).encode()
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert (response.status, answer) == (400, {"detail": detail})
    assert response.getheader("connection") == "close"


def test_openapi_names_only_the_feature_sets_of_the_key(keyed: Server) -> None:
    scoped = requests.get(keyed.url + "/openapi.json", headers={"X-API-Key": SCOPED_KEY}, timeout=30)
    assert scoped.status_code == 200, scoped.text
    assert scoped.json()["info"]["description"] == "Live feature values of accounts v1."
    assert "transactions" not in scoped.text and ROUTE in scoped.json()["paths"]
    full = requests.get(keyed.url + "/openapi.json", headers={"X-API-Key": FULL_KEY}, timeout=30)
    assert full.json()["info"]["description"] == "Live feature values of accounts v1, transactions v1."
    assert {key: value for key, value in full.json().items() if key != "info"} == {
        key: value for key, value in scoped.json().items() if key != "info"
    }


# ---------------------------------------------------------------------------------------
# Bodies and heads
# ---------------------------------------------------------------------------------------


def upload_chunked(port: int, key: str | None, total: int) -> tuple[str, int]:
    """POST `total` bytes of JSON-ish body with Transfer-Encoding: chunked (no Content-Length),
    1 MiB a chunk, reading while sending: stops at the server's answer (or its close). Returns
    the answer and how many body bytes were sent."""
    block = b"[" + b"0," * (2**19 - 1) + b"0]"  # 1 MiB
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    head = f"POST {ROUTE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    head += f"X-API-Key: {key}\r\n" if key else ""
    sent, reply = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode() + b"\r\n")
        connection.setblocking(False)
        pending = memoryview(chunk)
        deadline = time.monotonic() + 60
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([connection], [connection], [], 1)
            if readable:
                break
            if writable:
                try:
                    pending = pending[connection.send(pending) :]
                except (BrokenPipeError, ConnectionResetError):
                    break
                if not pending:
                    sent, pending = sent + len(block), memoryview(chunk)
        connection.setblocking(True)
        connection.settimeout(10)
        try:
            while data := connection.recv(65536):
                reply += data
        except (ConnectionResetError, TimeoutError):
            pass
    return reply.decode(errors="replace"), sent


def test_a_1_gib_chunked_upload_is_cut_off_in_bounded_memory(keyed: Server) -> None:
    """No Content-Length: the limit is counted as the body arrives. The server's memory (its
    RSS from /proc, sampled every 10 ms through the uploads) stays within 100 MiB of idle."""
    pid = keyed.process.pid
    idle = rss_mib(pid)
    peak, done = [idle], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with_key, sent_with_key = upload_chunked(keyed.port, FULL_KEY, 2**30)
        without_key, sent_without_key = upload_chunked(keyed.port, None, 2**30)
    finally:
        done.set()
        sampler.join()
    print(
        f"\n1 GiB chunked upload: server RSS idle {idle:.1f} MiB, peak {peak[0]:.1f} MiB "
        f"(+{peak[0] - idle:.1f}); sent {sent_with_key / 2**20:.0f} MiB with a key (413), "
        f"{sent_without_key / 2**20:.0f} MiB without (401)"
    )
    assert with_key.startswith("HTTP/1.1 413 "), with_key[:300]
    assert with_key.endswith('{"detail": "body: more than 16,777,216 bytes; at most 16,777,216 per request"}')
    assert without_key.startswith("HTTP/1.1 401 "), without_key[:300]
    assert without_key.endswith(json.dumps({"detail": MISSING}))
    assert sent_with_key < 2**30 and sent_without_key < 2**30, "the whole upload was read"
    assert peak[0] - idle < 100, f"server RSS {idle:.0f} MiB idle, {peak[0]:.0f} MiB peak"
    assert requests.get(keyed.url + "/health", timeout=30).status_code == 200


def test_a_declared_oversized_body_is_413_before_reading(keyed: Server) -> None:
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        connection.sendall(
            f"POST {ROUTE} HTTP/1.1\r\nHost: x\r\nX-API-Key: {FULL_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {2**34}\r\n\r\n{{".encode()
        )
        reply, _ = read_reply(connection, 10)
    assert reply.startswith("HTTP/1.1 413 "), reply
    assert reply.endswith('{"detail": "body: 17,179,869,184 bytes; at most 16,777,216 per request"}'), reply


def test_json_nested_100k_deep_is_400(keyed: Server) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"features":' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        response = requests.post(
            keyed.url + ROUTE,
            data=body,
            headers={"X-API-Key": FULL_KEY, "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        assert response.json() == {"detail": "body: JSON nested too deeply"}
    assert post(keyed, ACCOUNTS, FULL_KEY).status_code == 200


def read_reply(connection: socket.socket, within: float) -> tuple[str, float]:
    """Everything the server sends until it closes, and how long that took."""
    began = time.monotonic()
    connection.settimeout(within)
    chunks = []
    while chunk := connection.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace"), time.monotonic() - began


def error_reply(status: int, detail: str) -> tuple[str, str]:
    """The start and end of an error answer."""
    return f"HTTP/1.1 {status} ", json.dumps({"detail": detail})


def test_a_head_dripped_slowly_is_408_after_the_header_timeout(keyed: Server) -> None:
    """A header line every 0.25 s, never the blank line, until the server answers."""
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        began = time.monotonic()
        connection.sendall(f"POST {ROUTE} HTTP/1.1\r\n".encode())
        for number in range(80):  # 20 s at most
            if select.select([connection], [], [], 0.25)[0]:
                break
            connection.sendall(f"X-Drip-{number}: y\r\n".encode())
        reply, _ = read_reply(connection, 5)
        waited = time.monotonic() - began
    start, end = error_reply(408, f"request head: not received within {HEADER_TIMEOUT} s")
    assert reply.startswith(start) and reply.endswith(end), reply
    assert "connection: close" in reply
    print(f"\nhead dripped: 408 after {waited:.2f} s (header_timeout {HEADER_TIMEOUT} s)")
    assert HEADER_TIMEOUT - 0.1 <= waited < HEADER_TIMEOUT + 10, waited  # not before the timeout; no hang


def test_a_silent_connection_is_closed_after_the_header_timeout(keyed: Server) -> None:
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        reply, waited = read_reply(connection, HEADER_TIMEOUT + 10)
    print(f"\nsilent connection: closed after {waited:.2f} s")
    assert reply == "" and HEADER_TIMEOUT - 0.5 <= waited < HEADER_TIMEOUT + 10


def test_a_kept_alive_connection_dripping_blank_lines_is_closed(keyed: Server) -> None:
    """After a response, bytes that start no request (CRLFs, which the parser skips) reset
    uvicorn's keep-alive timer; the head clock, started at the response's end, still runs."""
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):
            answer += connection.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        began, closed = time.monotonic(), False
        for _ in range(40):  # 20 s at most
            if select.select([connection], [], [], 0.5)[0]:
                closed = connection.recv(4096) == b""
                break
            try:
                connection.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        waited = time.monotonic() - began
    print(f"\nblank lines on a kept-alive connection: closed after {waited:.2f} s")
    assert closed and waited < HEADER_TIMEOUT + 10, waited


def test_an_endless_header_is_431(keyed: Server) -> None:
    """1 MiB of one header value: refused once 64 KiB arrived without the head ending."""
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2**20 + b"\r\n\r\n")
        reply, _ = read_reply(connection, 10)
    start, end = error_reply(431, "request head: more than 65,536 bytes")
    assert reply.startswith(start) and reply.endswith(end), reply


def test_a_large_head_in_one_piece_is_431(keyed: Server) -> None:
    """70,000 bytes of headers arriving in one read are refused as well as dripped ones."""
    response = requests.get(keyed.url + "/health", headers={"X-Big": "a" * 70_000}, timeout=30)
    assert response.status_code == 431, response.text
    assert response.json() == {"detail": "request head: more than 65,536 bytes"}
    assert requests.get(keyed.url + "/health", headers={"X-Big": "a" * 60_000}, timeout=30).status_code == 200


def test_endless_trailers_are_cut_off(keyed: Server) -> None:
    """A chunked body of one byte, then a trailer that never ends: the connection is closed
    once 64 KiB piled up (the app's answer is already under way, so no 431 of its own)."""
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        head = (
            f"POST {ROUTE} HTTP/1.1\r\nHost: x\r\nX-API-Key: {FULL_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(head.encode() + b"1\r\n{\r\n0\r\nX-Trailer: " + b"a" * 2**20)
        reply, waited = read_reply(connection, 10)
    assert reply == "" and waited < BODY_TIMEOUT, (reply, waited)
    assert post(keyed, ACCOUNTS, FULL_KEY).status_code == 200


def test_a_body_sent_slowly_is_408_after_the_body_timeout(keyed: Server) -> None:
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        connection.sendall(
            f"POST {ROUTE} HTTP/1.1\r\nHost: x\r\nX-API-Key: {FULL_KEY}\r\nContent-Length: 100\r\n\r\n{{".encode()
        )
        reply, waited = read_reply(connection, BODY_TIMEOUT + 10)
    start, end = error_reply(408, f"body: not received within {BODY_TIMEOUT} s")
    assert reply.startswith(start) and reply.endswith(end), reply
    print(f"\nslow body: 408 after {waited:.2f} s (body_timeout {BODY_TIMEOUT} s)")
    assert BODY_TIMEOUT - 0.1 <= waited < BODY_TIMEOUT + 10, waited


def test_a_body_nobody_reads_is_not_drained(keyed: Server) -> None:
    """/health answers at once; a slow body it never reads closes the connection."""
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=10) as connection:
        connection.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
        reply, waited = read_reply(connection, 10)
    assert reply.startswith("HTTP/1.1 405 ") and reply.endswith('{"detail":"Method Not Allowed"}'), reply
    assert waited < 5, waited  # closed at once, not after the body or a timeout


def test_several_workers_each_require_keys_and_bound_heads(tmp_path: Path) -> None:
    """--workers 2: each spawned worker loads the keys and the header timeout itself."""
    config = keyed_example(tmp_path / "fraud")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, FULL_KEY)
        running = Server(config, tmp_path / "serve.log", "--workers", "2")
    try:
        for _ in range(4):
            response = requests.post(running.url + ROUTE, json=ACCOUNTS, timeout=30)
            assert response.status_code == 401 and response.json() == {"detail": MISSING}
            response = post(running, ACCOUNTS, FULL_KEY)
            assert response.status_code == 200, response.text
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as connection:
            connection.sendall(f"POST {ROUTE} HTTP/1.1\r\n".encode())
            reply, waited = read_reply(connection, HEADER_TIMEOUT + 10)
        start, end = error_reply(408, f"request head: not received within {HEADER_TIMEOUT} s")
        assert reply.startswith(start) and reply.endswith(end), reply
    finally:
        assert running.stop() == 0, running.output()
    assert "2 worker(s)" in running.output() and "2 API key(s) required" in running.output()


# ---------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------

CLIENTS, REQUESTS_EACH = 8, 2000


def client_run(port: int, count: int) -> tuple[list[float], list[str]]:
    """One client process: `count` keyed lookups on one keep-alive connection (http.client:
    little client CPU on a shared machine); the latency of each and every unexpected answer."""
    latencies, errors = [], []
    body = json.dumps(ACCOUNTS).encode()
    headers = {"X-API-Key": FULL_KEY, "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(count):
            began = time.perf_counter()
            try:
                connection.request("POST", ROUTE, body, headers)
                response = connection.getresponse()
                text = response.read()
                latencies.append(time.perf_counter() - began)
                if response.status != 200 or json.loads(text)["results"][0]["credit_limit"] != 5000.0:
                    errors.append(f"{response.status} {text[:200]!r}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                latencies.append(time.perf_counter() - began)
                errors.append(repr(exc))
                connection.close()
    finally:
        connection.close()
    return latencies, errors


def test_bounded_loopback_load_with_keys_has_no_errors(keyed: Server) -> None:
    """8 client processes x 2,000 requests at once; every answer right. The latencies are
    printed (`pytest -s`), never asserted."""
    began = time.perf_counter()
    with ProcessPoolExecutor(CLIENTS) as pool:
        runs = list(pool.map(client_run, [keyed.port] * CLIENTS, [REQUESTS_EACH] * CLIENTS))
    elapsed = time.perf_counter() - began
    latencies = sorted(latency for run, _ in runs for latency in run)
    errors = [error for _, run_errors in runs for error in run_errors]
    assert len(latencies) == CLIENTS * REQUESTS_EACH
    assert errors == [], errors[:5]
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(
        f"\nload: {CLIENTS} clients x {REQUESTS_EACH:,} requests in {elapsed:.1f} s "
        f"({len(latencies) / elapsed:,.0f}/s), p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"
    )


# ---------------------------------------------------------------------------------------
# Start-up
# ---------------------------------------------------------------------------------------


def serve(
    config: str, *args: str, env: dict[str, str] | None = None, wait: float = 120
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_CONFIG"} | (env or {})
    return subprocess.run(
        [FEATURESTORE, "serve", "--config", config, *args],
        capture_output=True,
        text=True,
        timeout=wait,
        env=environment,
    )


@pytest.mark.parametrize(
    ("key_env", "keys_file", "needle"),
    [
        ("", None, "feature_server.api_keys[0]: is empty (is the environment variable it names set?)"),
        ("short", None, "feature_server.api_keys[0]: a key of 5 characters is too easy to guess"),
        (
            FULL_KEY,
            "sha256:abc accounts\n",
            "server-keys.txt:1: expected 'sha256:<64 hex digits> [feature_set,...]'",
        ),
        (
            FULL_KEY,
            f"{api_keys.hash_line(SCOPED_KEY, ['nope'])}\n",
            "server-keys.txt:1: no feature set 'nope'",
        ),
        (FULL_KEY, b"\xff\xfe\x00garbage", "server-keys.txt: not UTF-8 text"),
        (FULL_KEY, "MISSING", "feature_server.api_key_file: cannot read"),
    ],
    ids=["empty-env-key", "short-key", "bad-line", "unknown-feature-set", "binary-file", "missing-file"],
)
def test_bad_key_configuration_exits_2_before_listening(
    tmp_path: Path, key_env: str, keys_file: str | bytes | None, needle: str
) -> None:
    config = keyed_example(tmp_path / "fraud")
    keys = tmp_path / "fraud" / "server-keys.txt"
    if keys_file == "MISSING":
        keys.unlink()
    elif isinstance(keys_file, bytes):
        keys.write_bytes(keys_file)
    elif keys_file is not None:
        keys.write_text(keys_file)
    result = serve(config, "--port", "1", env={KEY_ENV: key_env})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr, result.stderr
    assert key_env not in result.stderr or not key_env  # a key is never echoed
    validated = subprocess.run(
        [FEATURESTORE, "validate", "--config", config],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, KEY_ENV: key_env},
    )
    assert validated.returncode == 2 and needle in validated.stderr


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("0.0.0.0", True),
        ("::", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("localhost", False),
        ("127.0.0.2", False),
    ],
)
def test_a_host_beyond_loopback_without_keys_is_warned_of(host: str, warned: bool) -> None:
    keys = api_keys.load([FULL_KEY], None, ())
    assert exposure_warning(host, 6566, keys, "fs.yaml") is None
    warning = exposure_warning(host, 6566, api_keys.load([], None, ()), "fs.yaml")
    assert (warning is not None) == warned, warning
    if warned:
        assert warning == (
            f"WARNING: --host {host} is beyond loopback and no API keys are configured: anyone who can "
            "reach port 6566 reads every feature. Set feature_server.api_keys or api_key_file in fs.yaml "
            "(featurestore api-key makes one)"
        )


def test_serve_warns_before_listening_beyond_loopback(tmp_path: Path) -> None:
    """The warning comes before the listen check; the port is held on loopback here, so that
    the wildcard bind fails and nothing ever listens beyond loopback."""
    copy = copy_example(tmp_path / "fraud", REDIS_URL)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = serve(copy.config, "--host", "0.0.0.0", "--port", str(port))
    assert result.returncode == 2, result.stderr
    warning, refusal = result.stderr.splitlines()
    assert warning.startswith(
        "featurestore serve: WARNING: --host 0.0.0.0 is beyond loopback and no API keys"
    )
    assert refusal == f"featurestore serve: --port: cannot listen on 0.0.0.0:{port}: Address already in use"


def test_api_key_prints_a_key_and_its_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [FEATURESTORE, "api-key", "--feature-sets", "accounts"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("fsk_") and len(key) >= 40
    line, comment = result.stderr.strip().split("  # ")
    assert line == api_keys.hash_line(key, ["accounts"]) and comment.startswith("featurestore api-key, ")
    loaded = api_keys.load([], str(_written(tmp_path / "keys.txt", result.stderr)), {"accounts"})
    found = loaded.find(key)
    assert found is not None and found.may_read("accounts") and not found.may_read("transactions")


def _written(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path


def test_api_key_refuses_bad_feature_set_names(tmp_path: Path) -> None:
    config = copy_example(tmp_path / "fraud", REDIS_URL).config
    for args, detail in (
        (["--feature-sets", "Accounts"], "--feature-sets: 'Accounts' is not a feature set name"),
        (
            ["--feature-sets", "nope", "--config", config],
            "--feature-sets: no feature set 'nope'; known: accounts",
        ),
    ):
        result = subprocess.run([FEATURESTORE, "api-key", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and result.stdout == "", result
        assert result.stderr.startswith(f"featurestore api-key: {detail}") and result.stderr.count("\n") == 1


def test_a_key_file_without_keys_is_refused_when_it_is_the_only_source(tmp_path: Path) -> None:
    empty = _written(tmp_path / "keys.txt", "# no keys yet")
    with pytest.raises(BadInput) as refused:
        api_keys.load([], str(empty), {"accounts"})
    assert str(refused.value) == f"{empty}: holds no key (featurestore api-key prints a key and its line)"
    assert api_keys.load([FULL_KEY], str(empty), {"accounts"}).required
    twice = _written(tmp_path / "twice.txt", api_keys.hash_line(FULL_KEY))
    with pytest.raises(BadInput) as refused:
        api_keys.load([FULL_KEY], str(twice), set())
    assert str(refused.value) == f"{twice}:1: the same key as feature_server.api_keys[0]; give each key once"
