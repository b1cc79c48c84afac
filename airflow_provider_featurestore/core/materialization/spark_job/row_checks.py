"""Checks on the transformation's output rows, before either store is written.

Two kinds share one vocabulary of row predicates (`violation`): the output check every chunk
passes (declared columns with their types; keys and event times never null, failed inline as
the rows are written, at no extra pass), and the quality checks a spec declares (`checks:`),
all measured in ONE aggregation over the chunk's rows (one Spark action, however many checks).
A check kind is one entry in `_VIOLATIONS` (or min_rows, which counts rows, not violations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_featurestore.core.column_types import TYPES
from airflow_provider_featurestore.core.config import FeatureSetSpec
from airflow_provider_featurestore.core.config.checks import (
    AcceptedValuesCheck,
    MinRowsCheck,
    NotNullCheck,
    QualityCheck,
    RangeCheck,
    UniqueCheck,
    checked_columns,
)
from airflow_provider_featurestore.core.materialization.spark_job.transformation import (
    TransformationOutputError,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def output_source(spec: FeatureSetSpec) -> str:
    """Who produced the rows, as errors name it: the transformation, or the source taken as is."""
    return f"transformation {spec.transformation}" if spec.transformation else f"source {spec.source.path}"


def check_output(frame: DataFrame, spec: FeatureSetSpec) -> DataFrame:
    """Every index column, the timestamp and every feature present with its declared type;
    the result holds exactly those columns, in that order."""
    actual = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    declared = [*spec.index_columns, *spec.features]
    where = output_source(spec)
    for column in [*declared, None]:
        name = column.name if column else spec.timestamp_column
        wanted = TYPES[column.type].spark if column else "timestamp"
        if name not in actual:
            raise TransformationOutputError(
                f"{where} output has no column {name!r} declared in {spec.spec_path} (columns: {', '.join(actual)})"
            )
        got = actual[name]
        if got != wanted and not (column is None and got == "timestamp_ntz"):
            raise TransformationOutputError(
                f"{where} output column {name!r} is {got}, declared {column.type if column else 'timestamp'} "
                f"in {spec.spec_path}: cast it in the transformation"
            )
    names = [c.name for c in spec.index_columns] + [spec.timestamp_column] + [c.name for c in spec.features]
    frame = frame.select(
        *[_not_null(n, where) for n in names[: len(spec.index_columns) + 1]],
        *[f"`{n}`" for n in names[len(spec.index_columns) + 1 :]],
    )
    if actual[spec.timestamp_column] == "timestamp_ntz":
        frame = frame.withColumn(spec.timestamp_column, frame[spec.timestamp_column].cast("timestamp"))
    return frame


def _not_null(name: str, where: str) -> Column:
    """Column `name`, failing the query that reads a null in it: a row without its entity key or
    event time cannot be stored in either store. Checked as the rows are written, so a chunk
    with such rows fails whole (its commit never happens) at no extra pass over the data."""
    from pyspark.sql import functions as F  # noqa: N812

    column = F.col(f"`{name}`")
    message = f"{where} output has a null in {name!r}: filter or fill those rows in the transformation"
    return F.when(_null_in((name,)), F.raise_error(F.lit(message))).otherwise(column).alias(name)


def _null_in(columns: tuple[str, ...]) -> Column:
    """A row with a null in any of `columns`."""
    from pyspark.sql import functions as F  # noqa: N812

    predicate = F.col(f"`{columns[0]}`").isNull()
    for name in columns[1:]:
        predicate = predicate | F.col(f"`{name}`").isNull()
    return predicate


# ---- quality checks: one aggregation over the chunk's rows ---------------------------------

EXAMPLES = 5  # example values a violated check reports, at most


class QualityCheckFailed(ValueError):
    """An `error` check found violating rows: the chunk writes neither store."""


@dataclass
class CheckOutcome:
    """What one check found in one chunk: the figures a job record keeps."""

    check: QualityCheck
    violations: int
    examples: list[str] = field(default_factory=list)
    rows: int = 0

    @property
    def passed(self) -> bool:
        return self.violations == 0

    def to_json(self) -> dict[str, Any]:
        named = checked_columns(self.check)
        where: dict[str, Any] = {}
        if isinstance(self.check, RangeCheck | AcceptedValuesCheck):
            where["column"] = named[0]
        elif named:
            where["columns"] = list(named)
        return {
            "check": self.check.check,
            **where,
            "severity": self.check.severity,
            "violations": self.violations,
            "passed": self.passed,
            "examples": self.examples,
        }

    def describe(self) -> str:
        """`not_null on amount: 12 of 2,000 rows (e.g. ...)`, as a job's error names it."""
        named = ", ".join(checked_columns(self.check))
        what = f"{self.check.check} on {named}" if named else self.check.check
        if isinstance(self.check, MinRowsCheck):
            return f"{what}: {self.rows:,} row(s), fewer than {self.check.count:,}"
        shown = f" (e.g. {'; '.join(self.examples)})" if self.examples else ""
        return f"{what}: {self.violations:,} of {self.rows:,} row(s) violate it{shown}"


def evaluate_checks(
    frame: DataFrame, checks: tuple[QualityCheck, ...], key_columns: tuple[str, ...]
) -> list[CheckOutcome]:
    """Every check's violations from one aggregation (one Spark action); only where a check
    found some, one more query fetches up to 5 examples. `key_columns` (index columns and
    timestamp) show which rows a not_null check caught."""
    predicates = _predicates(checks)
    (figures,) = _count_violations(frame, checks, predicates) or [{"_rows": 0}]
    return _outcomes(frame, checks, key_columns, figures)


def evaluate_checks_by(
    frame: DataFrame, checks: tuple[QualityCheck, ...], key_columns: tuple[str, ...], by: str, groups: int
) -> list[list[CheckOutcome]]:
    """`evaluate_checks` for each of `groups` groups of `frame` (the values 0 .. groups - 1 of
    its column `by`: the chunks of a batch) from one aggregation over all of them; a group's
    examples are fetched from its own rows, only where its checks found violations."""
    from pyspark.sql import functions as F  # noqa: N812

    counted = {row[by]: row for row in _count_violations(frame, checks, _predicates(checks), (by,))}
    return [
        _outcomes(frame.where(F.col(by) == group), checks, key_columns, counted.get(group, {"_rows": 0}))
        for group in range(groups)
    ]


def _predicates(checks: tuple[QualityCheck, ...]) -> dict[int, Column]:
    return {i: _VIOLATIONS[type(c)](c) for i, c in enumerate(checks) if type(c) in _VIOLATIONS}


def _outcomes(
    frame: DataFrame, checks: tuple[QualityCheck, ...], key_columns: tuple[str, ...], figures: dict[str, Any]
) -> list[CheckOutcome]:
    """The outcomes of one group's figures, with examples fetched from `frame` (that group's
    rows) for the checks that found violations."""
    rows = int(figures["_rows"] or 0)
    outcomes = [
        CheckOutcome(check, max(0, check.count - rows), rows=rows)
        if isinstance(check, MinRowsCheck)
        else CheckOutcome(check, int(figures.get(f"_v{i}") or 0), rows=rows)
        for i, check in enumerate(checks)
    ]
    violated = {i: p for i, p in _predicates(checks).items() if not outcomes[i].passed}
    if violated:
        for i, examples in _row_examples(frame, checks, violated, key_columns).items():
            outcomes[i].examples = examples
    for outcome in outcomes:
        if isinstance(outcome.check, UniqueCheck) and not outcome.passed:
            outcome.examples = _duplicate_examples(frame, outcome.check)
    return outcomes


def fail_on_errors(outcomes: list[CheckOutcome], spec: FeatureSetSpec) -> None:
    """Raise QualityCheckFailed naming every violated `error` check; `warn` ones only record."""
    failed = [o for o in outcomes if not o.passed and o.check.severity == "error"]
    if failed:
        raise QualityCheckFailed(
            f"quality check failed: {'; '.join(o.describe() for o in failed)}: nothing of this chunk was "
            f"written; fix the source or the transformation, or set severity: warn in {spec.spec_path}"
        )


def _count_violations(
    frame: DataFrame,
    checks: tuple[QualityCheck, ...],
    predicates: dict[int, Column],
    by: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """`_rows` and `_v<i>` (violating rows of check i), per group of the `by` columns (one row
    without them), in one action. The first unique check is a hash aggregation by its columns
    (rows in groups of more than one violate it), with the row checks' counts summed inside it;
    a further unique check adds a window count (rare: measured on Sail, a window costs twice the
    hash aggregation)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    uniques = [i for i, c in enumerate(checks) if isinstance(c, UniqueCheck)]
    flags = {f"_v{i}": F.when(p, 1).otherwise(0) for i, p in predicates.items()}
    for i in uniques[1:]:
        columns = [*by, *checks[i].columns]  # type: ignore[union-attr]
        flags[f"_v{i}"] = F.when(F.count(F.lit(1)).over(Window.partitionBy(*columns)) > 1, 1).otherwise(0)
    if not uniques:
        sums = [F.sum(flag).alias(name) for name, flag in flags.items()]
        grouped = frame.groupBy(*by) if by else frame
        return [row.asDict() for row in grouped.agg(F.count(F.lit(1)).alias("_rows"), *sums).collect()]
    first = checks[uniques[0]]
    keys = [*by, *[f"`{c}`" for c in first.columns]]  # type: ignore[union-attr]
    groups = frame.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("_n"), *[F.sum(flag).alias(name) for name, flag in flags.items()]
    )
    duplicated = F.sum(F.when(F.col("_n") > 1, F.col("_n")).otherwise(0)).alias(f"_v{uniques[0]}")
    sums = [F.sum(F.col(name)).alias(name) for name in flags]
    grouped = groups.groupBy(*by) if by else groups
    return [row.asDict() for row in grouped.agg(F.sum("_n").alias("_rows"), duplicated, *sums).collect()]


def _row_examples(
    frame: DataFrame,
    checks: tuple[QualityCheck, ...],
    violated: dict[int, Column],
    key_columns: tuple[str, ...],
) -> dict[int, list[str]]:
    """Up to 5 distinct examples per violated row check, in one query of bounded memory: the
    least value in each of 5 hash buckets."""
    from pyspark.sql import functions as F  # noqa: N812

    aggregates = []
    for i, predicate in violated.items():
        shown = _example(frame, checks[i], key_columns)
        bucket = F.pmod(F.xxhash64(shown), F.lit(EXAMPLES))
        aggregates += [
            F.min(F.when(predicate & (bucket == j), shown)).alias(f"_e{i}_{j}") for j in range(EXAMPLES)
        ]
    row = frame.agg(*aggregates).collect()[0].asDict()
    return {i: sorted({row[f"_e{i}_{j}"] for j in range(EXAMPLES)} - {None}) for i in violated}


def _duplicate_examples(frame: DataFrame, check: UniqueCheck) -> list[str]:
    """Up to 5 of the duplicated keys."""
    from pyspark.sql import functions as F  # noqa: N812

    groups = frame.groupBy(*[F.col(f"`{c}`") for c in check.columns]).count().where("count > 1")
    shown = _example(frame, check, ())
    return sorted(row[0] for row in groups.select(shown).limit(EXAMPLES).collect())


def _out_of_range(check: Any) -> Column:
    from pyspark.sql import functions as F  # noqa: N812

    column = F.col(f"`{check.column}`")
    outside = F.isnan(column)
    if check.min is not None:
        outside = outside | (column < F.lit(check.min))
    if check.max is not None:
        outside = outside | (column > F.lit(check.max))
    return column.isNotNull() & outside


def _not_accepted(check: Any) -> Column:
    from pyspark.sql import functions as F  # noqa: N812

    column = F.col(f"`{check.column}`")
    return column.isNotNull() & ~column.isin(list(check.values))


_VIOLATIONS: dict[type, Any] = {
    NotNullCheck: lambda check: _null_in(tuple(check.columns)),
    RangeCheck: _out_of_range,
    AcceptedValuesCheck: _not_accepted,
}


def _example(frame: DataFrame, check: QualityCheck, key_columns: tuple[str, ...]) -> Column:
    """How a violating row is shown: its value for a one-column check, its key for not_null,
    the named columns' values for unique (`accountID=A1, timestamp=2024-01-01T00:00:00Z`)."""
    from pyspark.sql import functions as F  # noqa: N812

    named = key_columns if isinstance(check, NotNullCheck) else checked_columns(check)
    if isinstance(check, RangeCheck | AcceptedValuesCheck):
        return F.col(f"`{named[0]}`").cast("string")
    parts = [F.concat(F.lit(f"{c}="), F.coalesce(_text(frame, c), F.lit("null"))) for c in named]
    return F.concat_ws(", ", *parts)


def _text(frame: DataFrame, name: str) -> Column:
    from pyspark.sql import functions as F  # noqa: N812

    column = F.col(f"`{name}`")
    if dict(frame.dtypes).get(name) == "timestamp":
        return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss'Z'")
    return column.cast("string")
