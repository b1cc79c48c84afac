"""Property tests of what strangers can hand us: the spec loader (any YAML at all, and valid specs
with one field broken) and the feature server's request parsing (raw HTTP over a socket, and
any JSON document as a body).

The property is the contract's: bad input is refused with one line naming the file or field,
as BadInput (the CLI's exit 2) or a 4xx, never a traceback, a 500 or a hang; the server still
answers afterwards.
"""

from __future__ import annotations

import copy
import socket
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serve import Server
from test_serve_security import FULL_KEY, KEY_ENV, ROUTE, keyed_example

from airflow_provider_featurestore.config import load_config
from airflow_provider_featurestore.errors import BadInput
from airflow_provider_featurestore.serving import _parse

EXAMPLE_SPEC = Path(__file__).resolve().parent.parent / "examples" / "fraud" / "featuresets" / "accounts.yaml"
VALID = yaml.safe_load(EXAMPLE_SPEC.read_text())
CONFIG = "project: fuzz\nfeature_sets: featuresets\noffline_store: {path: offline}\n"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "1d", "0s", "-1h", "2024-02-30", "9999-12-31", "string", "long", "a:b", "${NOPE}"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a spec document."""
    yield prefix
    if isinstance(document, dict):
        for key, item in document.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(document, list):
        for index, item in enumerate(document):
            yield from paths(item, (*prefix, index))


SPEC_PATHS = [path for path in paths(VALID) if path]


def broken(path: tuple[Any, ...], value: Any, delete: bool) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


def load_spec_text(root: Path, text: str | bytes) -> None:
    """Write a store whose only spec is `text`; load it: a config, or BadInput in one line."""
    (root / "featuresets").mkdir(parents=True, exist_ok=True)
    (root / "featurestore.yaml").write_text(CONFIG)
    spec = root / "featuresets" / "fuzzed.yaml"
    spec.write_bytes(text.encode() if isinstance(text, str) else text)
    try:
        load_config(str(root / "featurestore.yaml"), check_transformations=False)
    except BadInput as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(spec)), message
        assert "Traceback" not in message


@FUZZ
@given(path=st.sampled_from(SPEC_PATHS), value=values, delete=st.booleans())
def test_a_spec_with_one_field_broken_is_loaded_or_refused_in_one_line(
    tmp_path: Path, path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    load_spec_text(tmp_path / "store", yaml.safe_dump(broken(path, value, delete)))


@FUZZ
@given(
    text=st.one_of(
        st.text(alphabet=string.printable + "{}[]:-&*!|>'\"%@`#\u00e9\u4e2d", max_size=300),
        st.binary(max_size=200),
        values.map(lambda document: yaml.safe_dump(document)),
    )
)
def test_any_file_as_a_spec_is_loaded_or_refused_in_one_line(tmp_path: Path, text: str | bytes) -> None:
    load_spec_text(tmp_path / "store", text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "features": json_values | st.lists(st.text(max_size=40), max_size=4),
            "entities": json_values
            | st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=3)),
            "event_timestamps": json_values,
        },
    ),
)


@FUZZ
@given(document=bodies)
def test_any_json_body_parses_or_is_refused_naming_the_field(document: Any) -> None:
    import json

    try:
        _parse(json.dumps(document).encode(), 10_000)
    except BadInput as exc:
        assert str(exc).split(":", 1)[0] in ("body", "features", "entities", "event_timestamps") or str(
            exc
        ).startswith("features["), exc


# ---- raw HTTP against the running server ------------------------------------------------


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


token = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@%/", min_size=0, max_size=30
)
header_lines = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["Content-Length", "Transfer-Encoding", "X-API-Key", "Authorization", "Expect"]),
            token,
        ),
        st.tuples(token, token),
        st.just(("X-API-Key", FULL_KEY)),
    ),
    max_size=5,
)
requests_raw = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW", "post", ""]),
    st.one_of(
        st.sampled_from([ROUTE, "/health", "/openapi.json", "*", "", ROUTE + "?x=1", "/%00", "//.."]), token
    ),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "http/1.1"]),
    header_lines,
    st.one_of(st.binary(max_size=300), json_values.map(lambda d: __import__("json").dumps(d).encode())),
)
ALLOWED = {200, 400, 401, 403, 404, 405, 408, 411, 413, 415, 422, 431, 505}


@FUZZ
@given(raw=requests_raw)
def test_any_raw_request_gets_a_4xx_or_200_never_a_500(server: Server, raw: tuple[Any, ...]) -> None:
    method, target, version, headers, body = raw
    head = f"{method} {target} {version}\r\nHost: fuzz\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        try:
            connection.sendall(head.encode() + b"\r\n" + body)
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
            pytest.fail(f"no answer within 10 s to {head!r}")
    if reply:  # a connection may be closed unanswered only when the head is not HTTP at all
        status_line = reply.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = status_line.split(" ")
        assert status_line.startswith("HTTP/1.1 ") and int(parts[1]) in ALLOWED, (status_line, head)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as probe:
        probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert probe.recv(100).startswith(b"HTTP/1.1 200 "), "the server stopped answering"
