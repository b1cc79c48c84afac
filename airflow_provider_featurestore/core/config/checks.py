"""The quality checks a spec declares (`checks:`), one dataclass per kind, told apart by `check`.

Each is evaluated by the job on the transformation's output of a chunk, before either store is
written (core/materialization/spark_job/quality.py). `severity: error` fails the chunk when
rows violate the check; `warn` lets it commit and records the figures. Which columns a check
may name (an index column, the timestamp or a declared feature) is checked by the loader,
which knows the spec's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from airflow_provider_featurestore.core.config.fields import Identifier, at_least_one, strict
from airflow_provider_featurestore.core.config.problems import show

SEVERITIES = ("error", "warn")


def _severity(value: object) -> object:
    if value not in SEVERITIES:
        raise ValueError(f"{show(value)} is not one of {', '.join(SEVERITIES)}")
    return value


def _count(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{show(value)} is not a positive integer")
    return value


Severity = Annotated[str, BeforeValidator(_severity)]
Columns = Annotated[tuple[Identifier, ...], at_least_one("name at least one column")]


def _number(value: object) -> object:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"{show(value)} is not a number")
    return value


Bound = Annotated[float | None, BeforeValidator(_number)]
Value = str | int | float


@strict
@dataclass(frozen=True)
class NotNullCheck:
    """No null in any of `columns`."""

    check: Literal["not_null"]
    columns: Columns
    severity: Severity = "error"


@strict
@dataclass(frozen=True)
class UniqueCheck:
    """No two rows share their values of `columns` (e.g. the index columns and the timestamp)."""

    check: Literal["unique"]
    columns: Columns
    severity: Severity = "error"


def _some_bound(check: RangeCheck) -> RangeCheck:
    if check.min is None and check.max is None:
        raise ValueError("give min, max or both")
    if check.min is not None and check.max is not None and check.min > check.max:
        raise ValueError(f"min {check.min:g} is above max {check.max:g}")
    return check


@strict
@dataclass(frozen=True)
class RangeCheck:
    """Every non-null value of a numeric `column` within `[min, max]` (either may be left out)."""

    check: Literal["range"]
    column: Identifier
    min: Bound = None
    max: Bound = None
    severity: Severity = "error"


@strict
@dataclass(frozen=True)
class AcceptedValuesCheck:
    """Every non-null value of `column` is one of `values`."""

    check: Literal["accepted_values"]
    column: Identifier
    values: Annotated[tuple[Value, ...], at_least_one("list at least one accepted value")]
    severity: Severity = "error"


@strict
@dataclass(frozen=True)
class MinRowsCheck:
    """The chunk produces at least `count` rows."""

    check: Literal["min_rows"]
    count: Annotated[int, BeforeValidator(_count)]
    severity: Severity = "error"


QualityCheck = Annotated[
    NotNullCheck
    | UniqueCheck
    | Annotated[RangeCheck, AfterValidator(_some_bound)]
    | AcceptedValuesCheck
    | MinRowsCheck,
    Field(discriminator="check"),
]
CHECK_KINDS = ("not_null", "unique", "range", "accepted_values", "min_rows")


def checked_columns(check: object) -> tuple[str, ...]:
    """The columns a check names (none for min_rows)."""
    if isinstance(check, NotNullCheck | UniqueCheck):
        return tuple(check.columns)
    if isinstance(check, RangeCheck | AcceptedValuesCheck):
        return (check.column,)
    return ()
