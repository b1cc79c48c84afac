"""`FeatureStore`: one feature store (config, specs, interval table) behind one object.

The CLI, the Airflow operators and user code all go through it, so a backfill request is
validated and planned in exactly one place. Errors in what the caller passed are `BadInput`
naming the argument (`--start` on the command line, `start` in an Airflow form).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from . import intervals as iv
from .config import STORES, FeatureSetSpec, FeatureStoreConfig, load_config
from .connections import interval_table_url, redis_url
from .engines import Engine, engine_for
from .errors import BadInput
from .interval_table import IntervalTable, JobRecord, StreamKey
from .online import OnlineLayout, OnlineStore
from .planner import DEFAULT_STATUSES
from .runner import Log, log_to_stderr, run_jobs
from .timeutil import iso, to_epoch


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


def split_list(value: str | Iterable[str] | None) -> list[str] | None:
    """`"a,b"` or `["a", "b"]` -> `["a", "b"]` (blank items dropped); None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


class FeatureStore:
    """A feature store loaded from its `featurestore.yaml`."""

    def __init__(
        self, config: str | FeatureStoreConfig | None = None, *, check_transformations: bool = True
    ) -> None:
        if isinstance(config, FeatureStoreConfig):
            self.config = config
        else:
            self.config = load_config(config, check_transformations=check_transformations)

    @cached_property
    def table(self) -> IntervalTable:
        """The interval table, opened (and created) on first use."""
        return IntervalTable(interval_table_url(self.config), lease_seconds=self.config.lease_seconds)

    def close(self) -> None:
        if "table" in self.__dict__:
            self.table.close()

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
    ) -> BackfillRequest:
        """Check a backfill's arguments; `prefix` is how the caller spells argument names."""
        spec = self.spec(name, version)
        disabled = self.table.disabled_stores(StreamKey(spec.name, spec.version))
        start_s = _time_arg(f"{prefix}start", start)
        end_s = _time_arg(f"{prefix}end", end)
        if start_s >= end_s:
            raise BadInput(
                f"{prefix}end: {iso(end_s)} is not after {prefix}start {iso(start_s)}: a window is [start, end)"
            )
        return BackfillRequest(
            spec=spec,
            start=start_s,
            end=end_s,
            statuses=parse_statuses(statuses, f"{prefix}status"),
            stores=parse_stores(spec, stores, f"{prefix}store", disabled=disabled),
        )

    def claim(
        self, request: BackfillRequest, *, dry_run: bool = False, airflow: Mapping[str, object] | None = None
    ) -> list[JobRecord]:
        """Claim the request's matching time as Pending and return the queued jobs.

        With `dry_run` the plan is computed in a transaction that is rolled back.
        """
        return self.table.claim(
            request.key,
            request.start,
            request.end,
            request.statuses,
            request.stores,
            request.spec.materialization.max_job_window,
            airflow=airflow,
            dry_run=dry_run,
        )

    def backfill(
        self, request: BackfillRequest, *, engine: Engine | None = None, log: Log = log_to_stderr
    ) -> list[JobRecord]:
        """Claim the request's time and run its jobs one by one on the configured engine."""
        records = self.claim(request)
        spec = request.spec
        window = f"[{iso(request.start)}, {iso(request.end)})"
        if not records:
            log(
                f"{spec.name} v{spec.version}: nothing to do: no time in {window} is "
                f"{' or '.join(sorted(request.statuses))} for {','.join(request.stores)}"
            )
            return []
        log(f"{spec.name} v{spec.version}: {len(records)} job(s) for {window}")
        own_engine = engine is None
        engine = engine or engine_for(self.config)
        try:
            return run_jobs(self, records, engine, log=log)
        finally:
            if own_engine:
                engine.close()

    # ---- the online store --------------------------------------------------------------------

    def online_layout(self, spec: FeatureSetSpec) -> OnlineLayout:
        return OnlineLayout.from_spec(self.config, spec)

    def online_store(self) -> OnlineStore:
        url = redis_url(self.config)
        if not url:
            raise BadInput(f"{self.config.config_path}: online_store: not configured")
        return OnlineStore(url)

    def get_online(
        self,
        name: str,
        keys: list[dict[str, object]],
        *,
        version: int | None = None,
        features: str | Iterable[str] | None = None,
    ) -> list[dict[str, object]]:
        """The live feature values of each entity, in the order given; None where there is none."""
        spec = self.spec(name, version)
        wanted = split_list(features) or list(spec.feature_names)
        for feature in wanted:
            if feature not in spec.feature_names:
                raise BadInput(
                    f"--features: {spec.name} v{spec.version} has no feature {feature!r} "
                    f"(features: {', '.join(spec.feature_names)})"
                )
        store = self.online_store()
        try:
            values = store.get(self.online_layout(spec), keys, wanted)
        finally:
            store.close()
        return [{**key, **(found or dict.fromkeys(wanted))} for key, found in zip(keys, values, strict=True)]

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
        self.table.set_disabled(key, "online", not enabled)
        if enabled:
            return 0
        self.table.reset_store(key, "online")
        store = self.online_store()
        try:
            return store.purge(self.online_layout(spec))
        finally:
            store.close()

    # ---- inspection --------------------------------------------------------------------------

    def intervals(
        self, name: str, version: int | None = None, stores: Iterable[str] | None = None
    ) -> dict[str, list[iv.Interval]]:
        """Data intervals per store (every store by default), covering all time ever requested."""
        spec = self.spec(name, version)
        return self.table.intervals(StreamKey(spec.name, spec.version), tuple(stores or STORES))

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


def _time_arg(name: str, value: object) -> int:
    if value is None or value == "":
        raise BadInput(f"{name}: is required (ISO-8601, e.g. 2024-01-01 or 2024-01-01T12:00:00Z)")
    try:
        return to_epoch(value)
    except ValueError as exc:
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
