"""Property tests of what strangers can hand the feature server: raw HTTP over a socket, and any
JSON document as a body, both against a running keyed server (the spec loader's are in
tests/unit/test_spec_fuzz.py).

The property is the contract's: bad input is refused with a 4xx naming the field, never a
500 or a hang; the server still answers afterwards. Each test runs 150 examples (a few
seconds to ~20 s on 2 cores).
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_serve import Server
from test_serve_security import FULL_KEY, KEY_ENV, ROUTE, SCOPED_KEY, keyed_example

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---- the running server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz-server")
    patch = pytest.MonkeyPatch()
    patch.setenv(KEY_ENV, FULL_KEY)
    running = Server(keyed_example(root / "fraud"), root / "serve.log")
    yield running
    try:
        assert running.stop() == 0, running.output()
    finally:
        patch.undo()
    assert "Traceback" not in running.output(), running.output()


def assert_still_answers(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as probe:
        probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert probe.recv(100).startswith(b"HTTP/1.1 200 "), "the server stopped answering"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
GOOD_REFS = ["accounts:credit_limit", "accounts:v1:is_premium", "transactions:transaction_7d_count"]
refs = st.one_of(
    st.sampled_from(GOOD_REFS),
    st.sampled_from(
        ["accounts:nope", "nope:x", "accounts:v2:credit_limit", "accounts:v0:credit_limit", ":", "accounts:"]
        + [" accounts:credit_limit", "accounts:v1:credit_limit"]
    ),
    st.text(max_size=40),
)
account_ids = st.one_of(st.text(max_size=12), json_values)
entities = st.one_of(
    st.fixed_dictionaries({"accountID": account_ids}),
    st.dictionaries(
        st.sampled_from(["accountID", "other", ""]) | st.text(max_size=8), json_values, max_size=3
    ),
)
well_formed = st.fixed_dictionaries(
    {
        "features": st.lists(st.sampled_from(GOOD_REFS), min_size=1, unique=True)
        | st.lists(refs, max_size=4),
        "entities": st.lists(entities, max_size=5),
    },
    optional={"event_timestamps": st.booleans() | json_values},
)
bodies = st.one_of(
    well_formed,
    st.fixed_dictionaries(
        {},
        optional={
            "features": json_values | st.lists(refs, max_size=4),
            "entities": json_values | st.lists(entities | json_values, max_size=5),
            "event_timestamps": json_values,
            "padding": json_values,
        },
    ),
    json_values,
)
FIELD = re.compile(r"(body|features|entities|event_timestamps)\b")


@FUZZ
@given(document=bodies, key=st.sampled_from([FULL_KEY, SCOPED_KEY]))
def test_any_json_body_is_answered_200_or_4xx_naming_the_field(
    server: Server, document: Any, key: str
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", ROUTE, json.dumps(document), {"X-API-Key": key})
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    event(f"answered {response.status}")
    assert response.status in (200, 400, 403), (response.status, answer, document)
    if response.status == 200:
        assert isinstance(answer["results"], list) and len(answer["results"]) == len(document["entities"])
    else:
        detail = answer["detail"]
        assert set(answer) == {"detail"} and "\n" not in detail and len(detail) <= 500, answer
        assert FIELD.match(detail), (detail, document)


token = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@%/", min_size=0, max_size=30
)
header_lines = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(
                ["Content-Length", "Transfer-Encoding", "X-API-Key", "Authorization", "Expect", "Connection"]
            ),
            token
            | st.sampled_from(["chunked", "100-continue", "close", "-1", "99999999999999999999", "Bearer "]),
        ),
        st.tuples(token, token),
        st.just(("X-API-Key", FULL_KEY)),
        st.just(("Authorization", f"Bearer {SCOPED_KEY}")),
    ),
    max_size=5,
)
chunked_bodies = st.lists(
    st.tuples(
        st.sampled_from(["", "0", "1", "5", "ff", "-1", "zz", "1;ext=1", "ffffffffffffffffff"]),
        st.binary(max_size=8),
    ),
    max_size=4,
).map(lambda chunks: b"".join(size.encode() + b"\r\n" + data + b"\r\n" for size, data in chunks))


def request_bytes(
    method: str, target: str, version: str, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    head = f"{method} {target} {version}\r\nHost: fuzz\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode() + b"\r\n" + body


structured = st.tuples(  # each part well formed about half the time, so that many requests are
    st.one_of(
        st.sampled_from(["GET", "POST"]),
        st.sampled_from(["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW", "post", ""]),
    ),
    st.one_of(
        st.sampled_from([ROUTE, "/health", "/openapi.json"]),
        st.sampled_from(["*", "", ROUTE + "?x=1", "/%00", "//..", "/health/"]) | token,
    ),
    st.one_of(st.just("HTTP/1.1"), st.sampled_from(["HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "http/1.1"])),
    header_lines,
    st.one_of(st.binary(max_size=300), json_values.map(lambda d: json.dumps(d).encode()), chunked_bodies),
).map(lambda parts: request_bytes(*parts))
raw_requests = st.one_of(structured, st.binary(max_size=400))
# 501: a Transfer-Encoding other than plain chunked (RFC 9112 6.1), never an error of ours
ANSWERS = {200, 400, 401, 403, 404, 405, 408, 411, 413, 415, 422, 431, 501, 505}


@FUZZ
@given(raw=raw_requests)
def test_any_raw_request_gets_a_4xx_or_200_never_a_500(server: Server, raw: bytes) -> None:
    """Sent whole, then the write side shut: an answer of ANSWERS, or a close without one (a
    head cut short); never a 500, never no answer within 10 s."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        try:
            connection.sendall(raw)
            connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = b""
        try:
            while chunk := connection.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"no answer within 10 s to {raw!r}")
    event(f"answered {reply[9:12].decode(errors='replace') or 'nothing'}")
    assert not reply or reply.startswith(b"HTTP/1.1 "), (reply[:200], raw)
    for status_line in re.findall(rb"HTTP/1\.1 \d{3}[^\r\n]*", reply):  # pipelined: every answer
        assert int(status_line.split()[1]) in ANSWERS, (status_line, raw)
    assert_still_answers(server)
