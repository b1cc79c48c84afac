"""Validating a file's mapping against the model: featurestore.yaml's shape, and pydantic's
errors reworded as the one line a user reads.

The model's dataclasses (model.py) are the schema: pydantic validates a mapping into them
directly (a TypeAdapter per class), so no field is declared twice. featurestore.yaml's store
sections are declared here because the model flattens them into FeatureStoreConfig.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from airflow_provider_featurestore.core.config.checks import CHECK_KINDS
from airflow_provider_featurestore.core.config.fields import (
    BASE_DIR,
    Location,
    Name,
    PositiveDuration,
    RedisUrl,
    Text,
)
from airflow_provider_featurestore.core.config.model import (
    SET_BY_LOADER,
    EngineConfig,
    FeatureServerConfig,
    MonitorConfig,
    strict,
)
from airflow_provider_featurestore.core.config.problems import config_error, field_path, kind, show

DEFAULT_INTERVAL_TABLE_URL = "sqlite:///data/intervals.db"

_T = TypeVar("_T")


@strict
@dataclass(frozen=True)
class OfflineStore:
    path: Location


@strict
@dataclass(frozen=True)
class OnlineStore:
    """Exactly one of the two (the loader checks): a URL, or an Airflow connection to Redis."""

    redis_url: RedisUrl | None = None
    conn_id: Text | None = None


@strict
@dataclass(frozen=True)
class IntervalTable:
    url: Text = DEFAULT_INTERVAL_TABLE_URL  # a relative SQLite file: the loader makes it absolute
    conn_id: Text | None = None  # an Airflow connection to the database; wins over url
    lease: PositiveDuration = 600


@strict
@dataclass(frozen=True, kw_only=True)
class ConfigFile:
    """featurestore.yaml as written."""

    project: Name
    feature_sets: Text = "featuresets"
    offline_store: OfflineStore
    online_store: OnlineStore | None = None
    interval_table: IntervalTable = field(default_factory=IntervalTable)
    engine: EngineConfig = field(default_factory=EngineConfig)
    feature_server: FeatureServerConfig = field(default_factory=FeatureServerConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)


def validate(cls: type[_T], raw: dict[str, Any], path: str, base_dir: str, **set_by_loader: Any) -> _T:
    """`raw` (a file's mapping) as a `cls`, its relative paths made absolute against `base_dir`
    and its SET_BY_LOADER fields given `set_by_loader`; a file that names one of those is refused
    like any unknown field. Raises the ConfigError of the first problem, counting the others."""
    written = {key: value for key, value in raw.items() if key not in set_by_loader}
    errors: list[Any] = [
        {"type": "extra_forbidden", "loc": (key,), "input": raw[key]} for key in raw if key in set_by_loader
    ]
    try:
        value = _adapter(cls).validate_python({**written, **set_by_loader}, context={BASE_DIR: base_dir})
    except ValidationError as exc:
        errors[:0] = exc.errors(include_url=False)  # pydantic reports unknown fields last, too
    if not errors:
        return value
    first = errors[0]
    message = _translate(first, cls)
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    raise config_error(path, field_path(_without_tags(first["loc"])) or None, message)


def _without_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A location without the tag pydantic puts after a list index of a tagged union
    (`checks[0].range.min` is `checks[0].min` in the file)."""
    return tuple(
        part for i, part in enumerate(loc) if not (part in CHECK_KINDS and i and isinstance(loc[i - 1], int))
    )


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[_T]) -> TypeAdapter[_T]:
    """One TypeAdapter per class, built on first use: building one compiles its validator."""
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "dataclass_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _translate(error: Any, root: type) -> str:
    """A pydantic error -> the short text a user reads after the field path."""
    kind_, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind_ == "missing":
        return "required field is missing"
    if kind_ in ("extra_forbidden", "unexpected_keyword_argument"):
        allowed = _allowed_fields(root, error["loc"])
        return f"unknown field (allowed: {', '.join(allowed)})" if allowed else "unknown field"
    if kind_ == "union_tag_invalid":
        return f"unknown check {show(ctx.get('tag'))} (one of: {', '.join(CHECK_KINDS)})"
    if kind_ == "union_tag_not_found":
        return f"no 'check:' given (one of: {', '.join(CHECK_KINDS)})"
    if kind_ == "value_error" and "error" in ctx:
        return str(ctx["error"])
    expected = _EXPECTED.get(kind_)
    if expected == "a string" and isinstance(value, bool | int | float):
        return (
            f"expected a string, got {value!r} (YAML read it as a {type(value).__name__}; put it in quotes)"
        )
    if expected:
        return f"expected {expected}, got {kind(value)}"
    return str(error["msg"])


def _allowed_fields(root: type, loc: tuple[Any, ...]) -> list[str]:
    """The fields a file may write in the section that holds the unknown field at `loc`."""
    current: Any = root
    for part in loc[:-1]:
        current = _unwrap(current)
        if dataclasses.is_dataclass(current) and isinstance(part, str):
            hints = typing.get_type_hints(current, include_extras=True)
            if part not in hints:
                return []
            current = hints[part]
        elif typing.get_origin(current) in (list, tuple) and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if dataclasses.is_dataclass(current):
        return [each.name for each in dataclasses.fields(current) if each.metadata != SET_BY_LOADER]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `X | None` to reach the dataclass or container type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            classes = [arg for arg in options if dataclasses.is_dataclass(arg)]
            annotation = (classes or options)[0]
        else:
            return annotation
