"""A request's bad values worded in our terms: where (`entities[3].accountID`), what was
expected, what was given; one line.

Two users: the feature server's request model (`serving/request.py`) and the status page's
JSON API turn a pydantic `ValidationError` into that line with `validation_line`, and the
online reader (`online_reader.py`) words an entity's bad index value with `describe`. pydantic's
own wording ("Input should be a valid string") and Arrow's ("Expected bytes, got a 'int'
object") never reach a user. Errors are classified by pydantic's error type, never by text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_featurestore.core.config.problems import field_path

# pydantic error types -> what was expected, when the caller names nothing better
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "list_type": "a list",
}


_INDEX = re.compile(r"\[\d+\]")


def describe(value: object) -> str:
    """What a caller gave, in JSON's terms: `the number 1`, `the string 'A1'`, `null`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value!r:.40}"
    if isinstance(value, str):
        text = repr(value)
        return f"the string {text if len(text) <= 42 else text[:39] + '...'}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def validation_line(
    errors: Sequence[Mapping[str, Any]],
    *,
    expected: Mapping[str, str] | None = None,
    fields: Sequence[str] = (),
    skip: int = 0,
    root: str = "request",
) -> str:
    """The first of pydantic's `errors` (`ValidationError.errors()`) as `<field>: <problem>`.

    `expected` names what a field holds (`"features"`, `"features[]"` for any item) where the
    error type alone would say too little; `fields` are the allowed fields an unknown one is
    told of; `skip` drops the location's first parts (FastAPI's `body`/`query`); `root` names a
    problem of the whole document."""
    first = errors[0]
    loc = tuple(first["loc"])[skip:]
    where = field_path(loc) or root
    kind, ctx = first["type"], first.get("ctx") or {}
    wanted = _expected_for(loc, expected or {}) or _EXPECTED.get(kind)
    if kind == "missing":
        return f"{where}: is required" + (f": {wanted}" if wanted else "")
    if kind == "extra_forbidden":
        return f"{where}: unknown field" + (f" (fields: {', '.join(fields)})" if fields else "")
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return f"{where}: {ctx['error']}"
    if kind in _EXPECTED:
        return f"{where}: expected {wanted}, got {describe(first.get('input'))}"
    return f"{where}: {first['msg']}"


def _expected_for(loc: tuple[Any, ...], expected: Mapping[str, str]) -> str | None:
    """The caller's description of the field at `loc`: by its path, else with indexes as `[]`."""
    path = field_path(loc)
    return expected.get(path, expected.get(_INDEX.sub("[]", path)))
