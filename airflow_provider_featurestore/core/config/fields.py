"""The field types of the config and the specs: what a YAML value may be and what it becomes.

Each type is `Annotated[<runtime type>, validators]`: the model declares its fields with them
once, and pydantic applies them when a file is loaded (never when code builds an object
itself). A check raises ValueError with the text the user reads after the field path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sized
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, ValidationInfo, with_config

from airflow_provider_featurestore.core.column_types import COLUMN_TYPES
from airflow_provider_featurestore.core.config.problems import show
from airflow_provider_featurestore.core.timeutil import check_feature_time, parse_duration, to_epoch

SOURCE_FORMATS = ("parquet", "delta", "csv")
ENGINE_TYPES = ("embedded", "spark-submit", "spark-connect")
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
BASE_DIR = "base_dir"  # the validation context's key: the folder relative paths start from

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRANSFORMATION = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_FEATURE_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:(v[1-9][0-9]*:)?[A-Za-z_][A-Za-z0-9_]*")
ON_DEMAND_MODES = ("pandas", "numpy")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

_S = TypeVar("_S", bound=Sized)

# A file's sections refuse fields they do not declare, like a typo of an optional field.
strict = with_config(ConfigDict(extra="forbid"))


def _accepting(accept: Callable[[str], object], what: str) -> Callable[[Any], Any]:
    """A check passing the strings `accept` takes; anything else "<value> is <what>"."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and accept(value):
            return value
        raise ValueError(f"{show(value)} is {what}")

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], Any]:
    return _accepting(choices.__contains__, f"not one of {', '.join(choices)}")


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[Any], Any]:
    return _accepting(pattern.fullmatch, f"not {what}")


def at_least_one(message: str) -> AfterValidator:
    """A list that must not be empty (index columns, features)."""

    def check(value: _S) -> _S:
        if not len(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _non_empty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _duration(value: Any) -> object:
    """Seconds, or what is no duration at all as it was: the field's own type check names it."""
    if value is None or isinstance(value, dict | list):
        return value  # let pydantic say what type it expected
    return parse_duration(value)


def _positive_duration(value: Any) -> object:
    seconds = _duration(value)
    if isinstance(seconds, int) and seconds <= 0:
        raise ValueError(f"must be longer than 0s, got {show(value)}")
    return seconds


def _timestamp(value: Any) -> int:
    if isinstance(value, int | float):  # `start: 2024` would silently mean 33 minutes after 1970
        raise ValueError(
            f"{show(value)} is not a date: use ISO-8601 such as 2024-01-01 or 2024-01-01T12:00:00Z"
        )
    try:
        return check_feature_time(to_epoch(value))
    except OverflowError as exc:
        raise ValueError(f"{show(value)}: {exc}") from None


def _version(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{show(value)} is not a positive integer")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None or number <= 0:
        raise ValueError(f"{show(value)} is not a positive integer")
    return number


def _schedule(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("@"):
        if text in SCHEDULE_PRESETS:
            return text
        raise ValueError(f"{text!r} is not a supported preset ({', '.join(SCHEDULE_PRESETS)})")
    from croniter import croniter  # only needed here; keeps import time down

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{text!r} is not a cron expression (5 fields: minute hour day month weekday) or a preset"
        )
    return text


def _conf(value: Any) -> Any:
    """Spark conf values are strings; YAML numbers and booleans are written as Spark reads them."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        converted[str(key)] = item
    return converted


def _redis_url(value: Any) -> Any:
    """A redis://, rediss:// or unix:// URL whose port and database are numbers; an error shows
    the value with its password masked."""
    if not isinstance(value, str):
        return value
    shown = show(re.sub(r"(?<=:)[^:@/\s]+(?=@)", "***", value))  # a password, even in a mistyped URL
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{shown} is not a Redis URL (redis://, rediss:// or unix://)")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{shown}: the port is not a number from 1 to 65535")
    database = parts.path.strip("/") if parts.scheme != "unix" else ""
    if database and not database.isdigit():
        raise ValueError(f"{shown}: the database {database!r} is not a number (redis://host:6379/0)")
    return value


def local_path(path: str, base: str) -> str:
    """A local path (`~` expanded) made absolute against `base`."""
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _location(path: str, info: ValidationInfo) -> str:
    """A path relative to the loaded file's folder made absolute; a URI kept, except file://
    made a plain path (Delta and Spark read both; the rest of the code compares plain paths)."""
    if _URI.match(path):
        parts = urlsplit(path)
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            return os.path.normpath(unquote(parts.path))
        return path
    if info.context is None:  # `schema.validate` always passes it
        raise TypeError(f"validating a path needs context={{{BASE_DIR!r}: <folder>}}")
    return local_path(path, info.context[BASE_DIR])


Name = Annotated[str, BeforeValidator(_matching(_NAME, "a valid name ([a-z][a-z0-9_]{0,62})"))]
Identifier = Annotated[
    str, BeforeValidator(_matching(_IDENTIFIER, "a valid column name (letters, digits, _)"))
]
Text = Annotated[str, BeforeValidator(_non_empty)]
Description = Annotated[str, BeforeValidator(lambda value: "" if value is None else value)]
Location = Annotated[str, BeforeValidator(_non_empty), AfterValidator(_location)]
Duration = Annotated[int, BeforeValidator(_duration)]
PositiveDuration = Annotated[int, BeforeValidator(_positive_duration)]
Timestamp = Annotated[int, BeforeValidator(_timestamp)]
Version = Annotated[int, BeforeValidator(_version)]
Schedule = Annotated[str, BeforeValidator(_schedule)]
Conf = Annotated[dict[str, str], BeforeValidator(_conf)]
RedisUrl = Annotated[str, BeforeValidator(_redis_url)]
ColumnType = Annotated[str, BeforeValidator(_one_of(COLUMN_TYPES))]
SourceFormat = Annotated[str, BeforeValidator(_one_of(SOURCE_FORMATS))]
EngineType = Annotated[str, BeforeValidator(_one_of(ENGINE_TYPES))]
FeatureRefText = Annotated[
    str,
    BeforeValidator(_matching(_FEATURE_REF, "a feature ref (feature_set:feature or feature_set:v2:feature)")),
]
OnDemandMode = Annotated[str, BeforeValidator(_one_of(ON_DEMAND_MODES))]
TransformationRef = Annotated[str, BeforeValidator(_matching(_TRANSFORMATION, "of the form module:function"))]
