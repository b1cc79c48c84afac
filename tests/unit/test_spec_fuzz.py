"""Property tests of the spec loader with what strangers can hand us: any file at all as a spec,
and the fraud example's valid spec with one field broken.

The property is the contract's: bad input is refused with one line naming the file or field,
as BadInput (the CLI's exit 2), never another exception or a hang. Each property runs 150
examples (a few seconds on 2 cores).
"""

from __future__ import annotations

import copy
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from airflow_provider_featurestore.core.config import load_config
from airflow_provider_featurestore.core.errors import BadInput

EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "examples" / "fraud" / "featuresets" / "accounts.yaml"
VALID = yaml.safe_load(EXAMPLE_SPEC.read_text())
# An online store so that the example spec (online: true) is valid as it is; never connected.
CONFIG = (
    "project: fuzz\nfeature_sets: featuresets\noffline_store: {path: offline}\n"
    "online_store: {redis_url: 'redis://127.0.0.1:1/0'}\n"
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["", "1d", "0s", "-1h", "2024-02-30", "9999-12-31", "string", "long", "a:b", "${NOPE}", "$$"]
        + ["accountID", "timestamp", "credit_limit", "@daily", "*/5 * * * *", "s3a://b/p", "x" * 70]
    ),
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


def dotted(path: tuple[Any, ...]) -> str:
    """A path as the loader names a field: `features[1].type`."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


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


def load_spec_text(root: Path, text: str | bytes) -> str | None:
    """Write a store whose only spec is `text` and load it: None when it loads, else the
    BadInput's message after the spec's path, which must lead it (one line, no traceback).
    Any other exception fails the test."""
    (root / "featuresets").mkdir(parents=True, exist_ok=True)
    (root / "featurestore.yaml").write_text(CONFIG)
    spec = root / "featuresets" / "fuzzed.yaml"
    spec.write_bytes(text.encode() if isinstance(text, str) else text)
    try:
        load_config(str(root / "featurestore.yaml"), check_transformations=False)
    except BadInput as exc:
        message = str(exc)
        assert "\n" not in message and "Traceback" not in message, message
        assert message.startswith(f"{spec}: "), message
        return message[len(f"{spec}: ") :]
    return None


def test_the_unbroken_spec_loads(tmp_path: Path) -> None:
    assert load_spec_text(tmp_path / "store", yaml.safe_dump(VALID)) is None


@FUZZ
@given(path=st.sampled_from(SPEC_PATHS), value=values, delete=st.booleans())
def test_a_spec_with_one_field_broken_is_loaded_or_refused_naming_that_field(
    tmp_path: Path, path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    """A refusal names the broken field, a field inside it or around it, or, for a clash of
    two fields (a column name used twice), names the other and mentions the broken one."""
    message = load_spec_text(tmp_path / "store", yaml.safe_dump(broken(path, value, delete)))
    event("loaded" if message is None else "refused")
    if message is None:
        return
    field, named = dotted(path), message.split(": ", 1)[0]
    assert named.startswith(field) or field.startswith(named) or field in message, (field, message)


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


def test_a_spec_nested_100000_deep_is_refused_in_one_line(tmp_path: Path) -> None:
    """Outside hypothesis: each such file costs the YAML parser about 2 s."""
    text = "name: " + "[" * 100_000 + "]" * 100_000
    assert load_spec_text(tmp_path / "store", text) == "invalid YAML: nested too deeply"
