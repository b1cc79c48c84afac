"""Values typed into a form (the backfill DAG's params, rendered by Airflow's templates, where an
empty field arrives as None, "" or "None"): the one place they become the core's arguments."""

from __future__ import annotations

from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import DEFAULT_MAX_JOBS

EMPTY = (None, "", "None")


def _positive_int(name: str, value: object) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]  # any form value; int() says what it accepts
    except (TypeError, ValueError):
        raise BadInput(f"{name}: {value!r} is not a positive integer") from None
    if number < 1:
        raise BadInput(f"{name}: {number} is not a positive integer")
    return number


def version(value: object) -> int | None:
    """A feature set version; empty: None (the latest)."""
    return None if value in EMPTY else _positive_int("version", value)


def max_jobs(value: object) -> int:
    """The most jobs a backfill may plan; empty: the CLI's default (the claim refuses more)."""
    return DEFAULT_MAX_JOBS if value in EMPTY else _positive_int("max_jobs", value)


def flag(name: str, value: object) -> bool:
    """A boolean Param (`force`): a bool, or its JSON/text spelling from a run conf; empty: False."""
    if value in EMPTY or value is False:
        return False
    if value is True or str(value).strip().lower() in ("true", "1", "yes"):
        return True
    if str(value).strip().lower() in ("false", "0", "no"):
        return False
    raise BadInput(f"{name}: {value!r} is not true or false")
