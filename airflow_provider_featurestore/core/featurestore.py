"""`FeatureStore`: one feature store (config, specs, interval table) behind one object.

The CLI, the Airflow operators and user code all go through it, so a backfill request is
validated and planned in exactly one place. Errors in what the caller passed are `BadInput`
naming the argument (`--start` on the command line, `start` in an Airflow form).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from airflow_provider_featurestore.core import consistency, on_demand, purge, source_check
from airflow_provider_featurestore.core import intervals as iv
from airflow_provider_featurestore.core.config import STORES, FeatureSetSpec, FeatureStoreConfig, load_config
from airflow_provider_featurestore.core.config.connections import ConfigConnections
from airflow_provider_featurestore.core.connection_resolver import ConnectionResolver
from airflow_provider_featurestore.core.errors import BadInput, ServiceUnavailable
from airflow_provider_featurestore.core.interval_table import IntervalTable, JobRecord, StreamKey
from airflow_provider_featurestore.core.materialization.engines import Engine, engine_for
from airflow_provider_featurestore.core.materialization.runner import Log, log_to_stderr, run_batches
from airflow_provider_featurestore.core.materialization.spark_job.session_conf import quiet_pandas_warning
from airflow_provider_featurestore.core.online import OnlineLayout, OnlineStore, OnlineStoreUnavailable
from airflow_provider_featurestore.core.online_reader import OnlineReader
from airflow_provider_featurestore.core.pending_time import PendingTime, pending_lines, pending_time
from airflow_provider_featurestore.core.planner import DEFAULT_STATUSES, snap_window
from airflow_provider_featurestore.core.readiness import Readiness, assess
from airflow_provider_featurestore.core.retrieval import RetrievalSpec
from airflow_provider_featurestore.core.source_fingerprint import SourceUnavailable
from airflow_provider_featurestore.core.timeutil import check_feature_time, format_duration, iso, to_epoch


@dataclass(frozen=True)
class BackfillRequest:
    """A validated backfill: one feature set version, a window, the statuses and stores asked."""

    spec: FeatureSetSpec
    start: int
    end: int
    statuses: frozenset[str]
    stores: tuple[str, ...]

    @property
    def key(self) -> StreamKey:
        return StreamKey(self.spec.name, self.spec.version)

    def nothing_to_do(self, pending: Sequence[PendingTime] = ()) -> str:
        """What a backfill that plans no job says; with the window's `pending` time (see
        `pending_time.py`), a line each: which job holds it, until when, how to release it."""
        return (
            f"{self.spec.name} v{self.spec.version}: nothing to do: no time in "
            f"[{iso(self.start)}, {iso(self.end)}) is {' or '.join(sorted(self.statuses))} "
            f"for {','.join(self.stores)}"
        ) + "".join(f"\n  {line}" for line in pending_lines(pending))

    def snapped(self) -> BackfillRequest:
        """The same request over whole chunks: the window widened to the chunk edges (multiples
        of `max_job_window` since the epoch) around it; itself when it is on them already."""
        start, end = snap_window(self.start, self.end, self.spec.materialization.max_job_window)
        return self if (start, end) == (self.start, self.end) else replace(self, start=start, end=end)

    def check_on_chunks(self, prefix: str = "--") -> None:
        """BadInput unless the window starts and ends on chunk edges; the message names the
        window of whole chunks to ask for instead."""
        whole = self.snapped()
        if whole is self:
            return
        spec = self.spec
        bad = "start" if whole.start != self.start else "end"
        raise BadInput(
            f"{prefix}{bad}: [{iso(self.start)}, {iso(self.end)}) is not on the chunk edges of "
            f"{spec.name} v{spec.version} (max_job_window {format_duration(spec.materialization.max_job_window)}): "
            f"ask for [{iso(whole.start)}, {iso(whole.end)})"
        )


def split_list(value: str | Iterable[str] | None) -> list[str] | None:
    """`"a,b"` or `["a", "b"]` -> `["a", "b"]` (blank items dropped); None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


DEFAULT_MAX_JOBS = 10_000
"""The most jobs one backfill plans unless told otherwise: a year of hourly chunks is 8,760."""


class FeatureStore:
    """A feature store loaded from its `featurestore.yaml`."""

    def __init__(
        self,
        config: str | FeatureStoreConfig | None = None,
        *,
        check_transformations: bool = True,
        resolver: ConnectionResolver | None = None,
    ) -> None:
        """`resolver` turns the config's Airflow conn_ids into URLs (default: the installed one)."""
        # Before the specs' transformations (user code) first import pyspark: a filter set at
        # import time does not last under Airflow, whose DAG parse restores the filters after.
        quiet_pandas_warning()
        if isinstance(config, FeatureStoreConfig):
            self.config = config
        else:
            self.config = load_config(config, check_transformations=check_transformations)
        self.connections = ConfigConnections(self.config, resolver)

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @cached_property
    def table(self) -> IntervalTable:
        """The interval table, opened (and created) on first use."""
        return IntervalTable(self.connections.interval_table_url, lease_seconds=self.config.lease_seconds)

    def close(self) -> None:
        if "table" in self.__dict__:
            self.table.close()
        if "online" in self.__dict__:
            self.online.close()

    def spec(self, name: str, version: int | None = None) -> FeatureSetSpec:
        return self.config.get(name, version)

    # ---- backfill ----------------------------------------------------------------------------

    def backfill_request(
        self,
        name: str,
        start: object,
        end: object,
        *,
        version: int | None = None,
        statuses: str | Iterable[str] | None = None,
        stores: str | Iterable[str] | None = None,
        prefix: str = "--",
        clip_to_source_start: bool = False,
    ) -> BackfillRequest:
        """Check a backfill's arguments; `prefix` is how the caller spells argument names.

        A window starting before the spec's `source.start` is refused, nothing claimed; with
        `clip_to_source_start` (a scheduled run, whose window the schedule chose) it is cut to
        start there instead, and a window wholly before it is empty (plans nothing)."""
        spec = self.spec(name, version)
        disabled = self.table.disabled_stores(StreamKey(spec.name, spec.version))
        start_s, end_s = _window_args(start, end, prefix)
        first = spec.source.start
        if clip_to_source_start and first is not None:
            start_s = min(max(start_s, first), end_s)  # a window wholly before it plans nothing
        else:
            _check_source_start(spec, start_s, prefix)
        return BackfillRequest(
            spec=spec,
            start=start_s,
            end=end_s,
            statuses=parse_statuses(statuses, f"{prefix}status"),
            stores=parse_stores(spec, stores, f"{prefix}store", disabled=disabled),
        )

    def claim(
        self,
        request: BackfillRequest,
        *,
        dry_run: bool = False,
        airflow: Mapping[str, object] | None = None,
        max_jobs: int | None = DEFAULT_MAX_JOBS,
        check: bool = True,
        sources: bool = False,
        log: Log = log_to_stderr,
    ) -> list[JobRecord]:
        """Claim the request's matching time as Pending and return the queued jobs.

        With `dry_run` the plan is computed in a transaction that is rolled back. A plan of more
        than `max_jobs` jobs (None: no limit) is refused with its size, nothing claimed.
        With `check`, the consistency check reads the stores asked (and offline, whose Complete
        time an online job may read) first: Complete time a store lost becomes Incomplete in the
        claim's own transaction (so a refused claim or a dry run changes nothing, and the plan
        includes it: a backfill of the default statuses redoes it). A store it cannot reach is
        not checked (`log` says so); the jobs meet it themselves. With `sources` (a scheduled
        DAG's plan), the source check's findings (`source_check.py`: Complete time whose source
        changed) join them the same way; a source that cannot be listed is logged and skipped.
        """
        spec = request.spec
        lost: consistency.Findings = {}
        marked: list[tuple[str, iv.Segment]] = []
        if check:
            report, lost = consistency.inspect(self, spec, {*request.stores, "offline"}, strict=False)
            for name, why in report.skipped.items():
                if name in request.stores and not why.startswith("disabled"):
                    log(f"{spec.name} v{spec.version}: {name} not checked for lost data: {why}")
        if sources:
            try:
                changed = source_check.inspect_sources(self, spec)[1]
            except ServiceUnavailable as exc:
                log(f"{spec.name} v{spec.version}: source not checked for changes: {exc}")
                changed = {}
            for name, reasons in changed.items():  # a job both checks found keeps the lost one
                lost[name] = {**reasons, **lost.get(name, {})}
        records = self.table.claim(
            request.key,
            request.start,
            request.end,
            request.statuses,
            request.stores,
            request.spec.materialization.max_job_window,
            airflow=airflow,
            dry_run=dry_run,
            max_jobs=max_jobs,
            lost=lost,
            marked=marked,
        )
        for name, seg in marked:
            state = "is lost (the backfill would redo it)" if dry_run else "was Complete, now Incomplete"
            log(
                f"{spec.name} v{spec.version} {name} [{iso(seg.start)}, {iso(seg.end)}) {state}: "
                f"{lost[name][seg.job_id]}"
            )
        return records

    def check(
        self,
        name: str,
        version: int | None = None,
        *,
        stores: Iterable[str] | None = None,
        strict: bool = True,
    ) -> consistency.CheckReport:
        """The consistency check of one feature set version (see `consistency.py`): Complete time
        whose data a store lost (a deleted Delta commit or table, a Redis that lost its keys)
        becomes Incomplete, the reason in its job's error. `strict`: a store that cannot be
        reached raises ServiceUnavailable, and nothing changes."""
        spec = self.spec(name, version)
        report, findings = consistency.inspect(self, spec, stores, strict=strict)
        return consistency.mark_lost(self, spec, report, findings)

    def check_all(self) -> list[consistency.CheckReport]:
        """The consistency check of every feature set version (the monitor's first task): a store
        that cannot be reached is skipped and named in its report's `unreachable`, while the other
        stores are still checked."""
        return [self.check(spec.name, spec.version, strict=False) for spec in self.config.feature_sets]

    def check_sources(
        self, name: str, version: int | None = None, *, dry_run: bool = False
    ) -> source_check.SourceCheckReport:
        """The source check of one feature set version (see `source_check.py`): Complete time
        whose source files were added, changed or removed since its job read them becomes
        Incomplete in both stores, "source changed: FILE(S)" in its job's error; with `dry_run`
        only reported. Lists the source (no data read, no Spark); SourceUnavailable when it
        cannot be listed, and nothing changes."""
        spec = self.spec(name, version)
        report, findings = source_check.inspect_sources(self, spec)
        report.dry_run = dry_run
        if dry_run:
            source_check.would_mark(self, spec, report, findings)
            return report
        consistency.mark_lost(self, spec, report, findings)
        return report

    def check_all_sources(self) -> list[source_check.SourceCheckReport]:
        """The source check of every feature set version (the monitor's second check): a source
        that cannot be listed marks nothing and is named in its report's `unreachable`."""
        reports = []
        for spec in self.config.feature_sets:
            try:
                reports.append(self.check_sources(spec.name, spec.version))
            except SourceUnavailable as exc:
                report = source_check.SourceCheckReport(spec.name, spec.version, source=spec.source.path)
                report.skipped["source"] = str(exc)
                report.unreachable.append("source")
                reports.append(report)
        return reports

    def backfill(
        self,
        request: BackfillRequest,
        *,
        engine: Engine | None = None,
        log: Log = log_to_stderr,
        max_jobs: int | None = DEFAULT_MAX_JOBS,
        on_claim: Callable[[list[JobRecord]], None] | None = None,
    ) -> list[JobRecord]:
        """Claim the request's time and run its jobs on the configured engine, a batch per run.
        `on_claim` learns the claimed jobs before they run (what `--metrics-textfile` counts at
        the end, also when the run is interrupted)."""
        records = self.claim(request, max_jobs=max_jobs, log=log)
        if on_claim is not None:
            on_claim(records)
        spec = request.spec
        window = f"[{iso(request.start)}, {iso(request.end)})"
        pending = pending_time(
            self.table, request.key, request.start, request.end, request.stores, mine=[r.id for r in records]
        )
        if not records:
            log(request.nothing_to_do(pending))
            return []
        log(f"{spec.name} v{spec.version}: {len(records)} job(s) for {window}")
        if pending:  # not planned: another job holds it
            log(
                f"{spec.name} v{spec.version}: skipped, held by live jobs:"
                + "".join(f"\n  {line}" for line in pending_lines(pending))
            )
        own_engine = engine is None
        engine = engine or engine_for(self.config, self.connections)
        try:
            return run_batches(self, records, engine, log=log)
        finally:
            if own_engine:
                engine.close()

    # ---- cancel ------------------------------------------------------------------------------

    def cancel(
        self,
        name: str,
        *,
        job_id: str | None = None,
        run_id: str | None = None,
        all_jobs: bool = False,
        version: int | None = None,
        reason: str = "by featurestore cancel",
    ) -> list[JobRecord]:
        """Cancel live jobs of feature set `name` (of `version`, else of every version): one job,
        the jobs an Airflow run claimed, or all of them. Their Pending time turns Incomplete at
        once, error "cancelled: <reason>"; what they committed stays Complete; a process running
        one stops at its next chunk. Returns the jobs cancelled ([] when none was live). BadInput:
        not exactly one selector, an unknown job id or one of another feature set, a run that
        claimed no job of it."""
        if sum((job_id is not None, run_id is not None, bool(all_jobs))) != 1:
            raise BadInput("cancel: give exactly one of --job ID, --run AIRFLOW_RUN_ID or --all")
        spec = self.spec(name, version)  # BadInput for an unknown name or version
        version = None if version is None else spec.version
        if job_id is not None:
            chosen = [self._job_of(spec.name, version, job_id)]
        else:
            chosen = self.table.live_jobs(spec.name, version)
            if run_id is not None:
                chosen = [r for r in chosen if (r.airflow or {}).get("run_id") == run_id]
                if not chosen:
                    self._check_run(spec.name, version, run_id)
        return self.table.cancel_jobs([r.id for r in chosen], f"cancelled: {reason}")

    def _job_of(self, name: str, version: int | None, job_id: str) -> JobRecord:
        """The record of `job_id`, which must be a job of that feature set (and version)."""
        record = self.table.jobs_by_id([job_id]).get(job_id)
        if record is None:
            raise BadInput(f"--job: no job {job_id!r}: `featurestore jobs {name}` lists the job ids")
        if record.feature_set != name or (version is not None and record.version != version):
            raise BadInput(
                f"--job: job {job_id} is a job of {record.feature_set} v{record.version}, not of {name}"
                + ("" if version is None else f" v{version}")
            )
        return record

    def _check_run(self, name: str, version: int | None, run_id: str) -> None:
        """BadInput unless some job of that feature set was claimed by Airflow run `run_id`
        (asked only when none of its jobs is live: then the history is read)."""
        history = self.table.jobs(feature_set=name)
        if not any(
            (r.airflow or {}).get("run_id") == run_id for r in history if version in (None, r.version)
        ):
            raise BadInput(f"--run: no job of {name} was claimed by Airflow run {run_id!r}")

    # ---- the online store (online_reader.py) ----------------------------------------------

    @cached_property
    def online(self) -> OnlineReader:
        """The online reader: every read of live values, its kept-open store and caches."""
        return OnlineReader(self.config, self.connections, lambda: self.table)

    def online_layout(self, spec: FeatureSetSpec) -> OnlineLayout:
        return self.online.layout(spec)

    def online_store(self) -> OnlineStore:
        """A new client of the online store; the caller closes it."""
        return self.online.connect()

    def get_online(
        self,
        name: str,
        keys: list[dict[str, object]],
        *,
        version: int | None = None,
        features: str | Iterable[str] | None = None,
    ) -> list[dict[str, object]]:
        """The live feature values of each entity of one feature set version (`get-online`), in
        the order given; None where there is none. OnlineDisabled when its online store is."""
        spec = self.spec(name, version)
        wanted = split_list(features) or list(spec.feature_names)
        for feature in wanted:
            if feature not in spec.feature_names:
                raise BadInput(
                    f"--features: {spec.name} v{spec.version} has no feature {feature!r} "
                    f"(features: {', '.join(spec.feature_names)})"
                )
        refs = [f"{spec.name}:v{spec.version}:{feature}" for feature in wanted]
        return self.online.read(refs, keys, argument="--key")

    def get_online_features(
        self,
        features: Iterable[str] | RetrievalSpec,
        entity_rows: Sequence[Mapping[str, object]],
        *,
        event_timestamps: bool = False,
    ) -> list[dict[str, object]]:
        """Live feature values for serving, one dict per entity row in the order given.

        `features` are refs (`"transactions:transaction_7d_count"`, `"accounts:v2:credit_limit"`)
        or a `RetrievalSpec`, across any number of feature sets: every lookup goes to Redis in one
        pipelined round trip. Each dict holds the row's index columns and one entry per feature
        (named by the feature, or `<feature_set>__<feature>` where two requested sets share the
        name), in its declared type; None where the entity has no live value (never written, or
        expired). With `event_timestamps`, `<feature_set>__event_timestamp` (aware UTC datetime,
        or None) says how fresh each feature set's values are. OnlineDisabled (a BadInput) when
        a requested feature set's online store is disabled (read every few seconds at most).
        On-demand features are computed from their looked-up inputs and the rows' request fields
        (see `on_demand.py`).
        """
        return self.online.read(features, entity_rows, event_timestamps=event_timestamps)

    def get_historical_features(
        self,
        observations: Any,
        features: Iterable[str] | RetrievalSpec,
        *,
        timestamp_column: str | None = None,
        spark: Any = None,
    ) -> Any:
        """Point-in-time correct training data, as a Spark DataFrame.

        For each observation (a Spark or pandas DataFrame holding the requested feature sets'
        index columns and a timestamp), every requested feature comes from the latest feature
        row of its entity with event time <= the observation's time and, when the feature set
        sets `temporal_join_lookback`, > that time minus the lookback; None where there is none.
        The result has the observation columns plus one column per feature (named as in
        `get_online_features`), in the observations' order. Reads the offline Delta tables on
        the configured engine's session (or `spark`). On-demand features are computed after the
        join from their inputs and the observations' request columns (see `on_demand.py`).
        """
        from airflow_provider_featurestore.core.historical import point_in_time_join

        plan = on_demand.plan(self.config, features)
        groups = plan.groups
        session = spark if spark is not None else self._spark()
        tables = {(g.spec.name, g.spec.version): self.config.offline_table_path(g.spec) for g in groups}
        return point_in_time_join(session, observations, groups, tables, timestamp_column, plan.apply_spark)

    def _spark(self) -> Any:
        """The configured engine's Spark session: Sail in this process, or the Spark Connect
        server; with spark-submit, the active session of this driver."""
        engine = engine_for(self.config, self.connections)
        session = getattr(engine, "session", None)
        if session is not None:
            return session()
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is None:
            raise BadInput(
                f"{self.config.config_path}: engine: spark-submit has no session in this process; "
                "pass spark= (a session with Delta) or run where one is active"
            )
        return active

    def set_online(self, name: str, *, version: int | None = None, enabled: bool) -> int:
        """Switch online materialization of a feature set version on or off.

        Off: no backfill writes online, its statuses go back to None and its keys are purged
        from Redis (nothing stale is served). On: the next backfill fills it, reading the
        offline table where that is Complete. Returns the number of keys purged.
        """
        spec = self.spec(name, version)
        if not spec.materialization.online:
            raise BadInput(f"{spec.spec_path}: materialization.online: is false; enable it in the spec first")
        key = StreamKey(spec.name, spec.version)
        if enabled:
            self.table.set_disabled(key, "online", False)
            self.online.disabled.invalidate()
            return 0
        # Redis first: when it cannot be reached nothing changes (the keys would stay served
        # while the statuses said None). Then no backfill may write online, the keys go, and
        # the statuses say None.
        store = self.online_store()
        try:
            store.ping()
            self.table.set_disabled(key, "online", True)
            try:
                layout = self.online_layout(spec)
                marker = store.has_marker(layout)  # purged too, but not an entity's key
                purged = max(0, store.purge(layout) - int(marker))
            except OnlineStoreUnavailable as exc:
                raise OnlineStoreUnavailable(
                    f"{exc}; online is disabled but some keys may remain: run disable-online again "
                    "once the online store is back"
                ) from None
        finally:
            store.close()
        self.table.reset_store(key, "online")
        self.online.disabled.invalidate()
        return purged

    # ---- entity purge ------------------------------------------------------------------------

    def purge(
        self,
        name: str,
        keys: Sequence[Mapping[str, object]],
        *,
        version: int | None = None,
        all_versions: bool = False,
        vacuum: bool = False,
        retention_hours: int = 0,
    ) -> purge.PurgeReport:
        """Delete these entities (index column -> value each) from the Delta table and the online
        store of the latest version, `version` or every version, and record it (see `purge.py`).
        Refused (BadInput, nothing deleted) while the feature set has Pending time."""
        return purge.purge(
            self,
            name,
            keys,
            version=version,
            all_versions=all_versions,
            vacuum=vacuum,
            retention_hours=retention_hours,
        )

    # ---- inspection --------------------------------------------------------------------------

    def intervals(
        self, name: str, version: int | None = None, stores: Iterable[str] | None = None
    ) -> dict[str, list[iv.Interval]]:
        """Data intervals per store (every store by default), covering all time ever requested."""
        spec = self.spec(name, version)
        return self.table.intervals(StreamKey(spec.name, spec.version), tuple(stores or STORES))

    def readiness(
        self,
        name: str,
        start: object,
        end: object,
        *,
        version: int | None = None,
        stores: str | Iterable[str] | None = None,
        prefix: str = "--",
    ) -> Readiness:
        """The statuses of `[start, end)` of a feature set version (the latest by default) in
        `stores` (default: every store it enables and nobody disabled), read from the interval
        table; `readiness.py` decides. BadInput naming the argument (`prefix` + name) when one
        is bad: an unknown feature set, version or store, an unparseable time, an empty window,
        a window starting before the spec's `source.start` (it could never be Complete)."""
        spec = self.spec(name, version)
        key = StreamKey(spec.name, spec.version)
        start_s, end_s = _window_args(start, end, prefix)
        _check_source_start(spec, start_s, prefix)  # time before it is never materialized
        chosen = parse_stores(spec, stores, f"{prefix}stores", disabled=self.table.disabled_stores(key))
        found = {s: iv.coalesce(self.table.segments(key, s, start_s, end_s)) for s in chosen}
        return assess(spec.name, spec.version, start_s, end_s, found)

    def jobs(
        self,
        name: str,
        version: int | None = None,
        limit: int | None = None,
        overlapping: tuple[int, int] | None = None,
    ) -> list[JobRecord]:
        """Job records of one feature set version (the latest by default), newest first."""
        spec = self.spec(name, version)
        return self.table.jobs(StreamKey(spec.name, spec.version), limit=limit, overlapping=overlapping)


def _window_args(start: object, end: object, prefix: str) -> tuple[int, int]:
    """`[start, end)` in epoch seconds; BadInput naming the argument when a time does not parse
    or the window is empty."""
    start_s = _time_arg(f"{prefix}start", start)
    end_s = _time_arg(f"{prefix}end", end)
    if start_s >= end_s:
        raise BadInput(
            f"{prefix}end: {iso(end_s)} is not after {prefix}start {iso(start_s)}: a window is [start, end)"
        )
    return start_s, end_s


def _check_source_start(spec: FeatureSetSpec, start: int, prefix: str) -> None:
    """BadInput when a window starts before the spec's `source.start`: no job ever reads there."""
    first = spec.source.start
    if first is not None and start < first:
        raise BadInput(
            f"{prefix}start: {iso(start)} is before source.start {iso(first)} of "
            f"{spec.name} v{spec.version} ({spec.spec_path}): the source has no data before it; "
            f"start at {iso(first)} or later"
        )


def _time_arg(name: str, value: object) -> int:
    if value is None or value == "":
        raise BadInput(f"{name}: is required (ISO-8601, e.g. 2024-01-01 or 2024-01-01T12:00:00Z)")
    try:
        return check_feature_time(to_epoch(value))
    except (ValueError, OverflowError) as exc:
        raise BadInput(f"{name}: {exc}") from None


def parse_statuses(value: str | Iterable[str] | None, name: str = "--status") -> frozenset[str]:
    """The data statuses a backfill takes; default None and Incomplete; Pending is refused."""
    items = split_list(value)
    if not items:
        return frozenset(DEFAULT_STATUSES)
    for item in items:
        if item not in iv.STATUSES:
            raise BadInput(f"{name}: {item!r} is not one of {', '.join(iv.STATUSES)}")
        if item == iv.PENDING:
            raise BadInput(
                f"{name}: Pending time belongs to a running job and is never backfilled; "
                "a job that died turns Incomplete when its lease expires"
            )
    return frozenset(items)


def parse_stores(
    spec: FeatureSetSpec,
    value: str | Iterable[str] | None,
    name: str = "--store",
    *,
    disabled: Iterable[str] = (),
) -> tuple[str, ...]:
    """The stores a backfill writes: default every store the spec enables and nobody disabled."""
    items = split_list(value)
    switched_off = set(disabled)
    enabled = tuple(s for s in spec.enabled_stores() if s not in switched_off)
    if not items:
        if not enabled:
            raise BadInput(
                f"{name}: every store of {spec.name} v{spec.version} is disabled (featurestore enable-online)"
            )
        return enabled
    for item in items:
        if item not in STORES:
            raise BadInput(f"{name}: {item!r} is not one of {', '.join(STORES)}")
        if item in switched_off:
            raise BadInput(
                f"{name}: {item} materialization of {spec.name} v{spec.version} is disabled; "
                f"run featurestore enable-online {spec.name} first"
            )
        if item not in spec.enabled_stores():
            raise BadInput(
                f"{name}: the {item} store is not enabled for {spec.name} v{spec.version} "
                f"(set materialization.{item}: true in {spec.spec_path})"
            )
    return tuple(store for store in STORES if store in items)
