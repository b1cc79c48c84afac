"""Time on the interval axis: whole UTC seconds since the epoch.

Every window and interval is a half-open range of integer seconds. Inputs with sub-second
parts are truncated (not rounded); naive inputs are UTC; a bare date means its midnight UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int:
    """`90s`, `15m`, `12h`, `7d` -> seconds. Raises ValueError with a readable message."""
    text = str(value).strip()
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use an integer and one of s m h d (90s, 15m, 12h, 7d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of a duration (`86400` -> `1d`)."""
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def human_duration(seconds: int) -> str:
    """A duration as a person reads it at a glance: its two largest units (`3d 4h`, `5m 12s`),
    rounded down; `-` before a negative one."""
    if seconds < 0:
        return "-" + human_duration(-seconds)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        elif parts:
            parts.append(f"0{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)


def to_epoch(value: object) -> int:
    """A timestamp (ISO-8601 text, datetime, date, or epoch seconds) -> whole UTC seconds.

    Sub-second parts are truncated towards the past; naive values are taken as UTC.
    Raises ValueError naming the value when it cannot be read.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return delta.days * 86400 + delta.seconds
    if isinstance(value, date):
        return to_epoch(datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        text = value.strip()
        try:
            return to_epoch(datetime.fromisoformat(text))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a timestamp: use ISO-8601 such as 2024-01-01 or 2024-01-01T12:00:00Z")


# Feature time a store keeps: engines and Parquet readers disagree before 1900 (calendar
# rebasing) and far-future windows only plan jobs that read nothing.
EARLIEST, LATEST = -2_208_988_800, 7_258_118_400  # 1900-01-01, 2200-01-01 (exclusive)


def check_feature_time(epoch: int) -> int:
    """`epoch` when it lies in [1900-01-01, 2200-01-01); else ValueError saying the range."""
    if not EARLIEST <= epoch < LATEST:
        raise ValueError(
            f"{iso(epoch) if -62135596800 <= epoch < 253402300800 else epoch} is outside "
            "the feature time a store keeps, 1900-01-01 to 2200-01-01"
        )
    return epoch


def to_datetime(epoch: int) -> datetime:
    """Whole UTC seconds -> an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)


def iso(epoch: int) -> str:
    """Whole UTC seconds -> `2024-01-01T00:00:00Z`."""
    return to_datetime(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_epoch() -> int:
    """The current time in whole UTC seconds."""
    return to_epoch(datetime.now(UTC))
