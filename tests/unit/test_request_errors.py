"""Request errors in our words: pydantic's errors as one line naming the field, the two-key
header check, and the transfer codings a head lists."""

from __future__ import annotations

import pytest

from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.request_errors import describe
from airflow_provider_featurestore.core.serving.auth import TwoKeys, presented_key
from airflow_provider_featurestore.core.serving.protocol import _transfer_codings
from airflow_provider_featurestore.core.serving.request import parse_body

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (None, "null"),
        (True, "true"),
        (1, "the number 1"),
        (2.5, "the number 2.5"),
        ("A1", "the string 'A1'"),
        ("x" * 100, "the string '" + "x" * 38 + "..."),
        ([1], "a list"),
        ({"a": 1}, "an object"),
    ],
)
def test_describe_says_what_was_given_in_json_terms(value: object, said: str) -> None:
    assert describe(value) == said


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[]", "body: expected a JSON object with features, entities, event_timestamps, got a list"),
        (b'{"entities": []}', "features: is required: a list of feature refs ('feature_set:feature')"),
        (b'{"features": ["a:b", 7], "entities": []}', "features[1]: expected a feature ref string"),
        (b'{"features": ["a:b"], "entities": [1]}', "entities[0]: expected an object of index column values"),
        (
            b'{"features": ["a:b"], "entities": [], "event_timestamps": 1}',
            "event_timestamps: expected true or false, got the number 1",
        ),
        (b'{"features": ["a:b"], "entities": [{}, {}, {}]}', "entities: 3 given; at most 2 per request"),
        (
            b'{"features": ["a:b"], "entities": [], "x": 1}',
            "x: unknown field (fields: features, entities, event_timestamps)",
        ),
    ],
)
def test_a_bad_body_is_one_line_naming_the_field(body: bytes, detail: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_body(body, max_entities=2)
    assert str(refused.value).startswith(detail), str(refused.value)


def test_a_good_body_is_strictly_typed() -> None:
    parsed = parse_body(b'{"features": ["a:b"], "entities": [{"id": 1}], "event_timestamps": true}')
    assert (parsed.features, parsed.entities, parsed.event_timestamps) == (["a:b"], [{"id": 1}], True)


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ([(b"x-api-key", b"k1")], b"k1"),
        ([(b"authorization", b"Bearer k1")], b"k1"),
        ([(b"authorization", b"Bearer k1"), (b"x-api-key", b"k1")], b"k1"),  # the same key twice
        ([(b"authorization", b"Basic dXNlcg=="), (b"x-api-key", b"k1")], b"k1"),  # Basic carries no key
        ([], None),
    ],
)
def test_the_key_a_request_carries(headers: list[tuple[bytes, bytes]], key: bytes | None) -> None:
    assert presented_key(headers) == key


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-api-key", b"k1"), (b"x-api-key", b"k1")],
        [(b"authorization", b"Bearer k1"), (b"authorization", b"Bearer k2")],
        [(b"authorization", b"Bearer k1"), (b"x-api-key", b"k2")],
    ],
)
def test_two_keys_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(TwoKeys):
        presented_key(headers)


def test_transfer_codings_across_headers() -> None:
    assert _transfer_codings([(b"host", b"x")]) is None
    assert _transfer_codings([(b"transfer-encoding", b"chunked")]) == [b"chunked"]
    assert _transfer_codings([(b"transfer-encoding", b"GZIP , chunked")]) == [b"gzip", b"chunked"]
    assert _transfer_codings([(b"transfer-encoding", b"gzip"), (b"transfer-encoding", b"chunked")]) == [
        b"gzip",
        b"chunked",
    ]
