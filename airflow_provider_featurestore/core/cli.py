"""`featurestore`: the command line of a feature store.

Exit status 0 on success, 1 when a job failed or a store cannot be reached, 2 on bad input (one
line on stderr naming the file, field or argument at fault; nothing written), 3 when `status`
finds a feature set late (its freshness SLA breached), 130 when interrupted. No traceback unless `--verbose` is given or FEATURESTORE_DEBUG is set. `--json` prints one JSON document on
stdout and nothing else there; progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from airflow_provider_featurestore.core import __version__, freshness, metrics_textfile
from airflow_provider_featurestore.core.config import STORES, FeatureSetSpec, load_config
from airflow_provider_featurestore.core.config.location import locate_config
from airflow_provider_featurestore.core.consistency import CheckReport
from airflow_provider_featurestore.core.errors import BadInput, ServiceUnavailable, redact_credentials
from airflow_provider_featurestore.core.featurestore import DEFAULT_MAX_JOBS, BackfillRequest, FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord, JobState, StreamKey
from airflow_provider_featurestore.core.intervals import STATUSES
from airflow_provider_featurestore.core.materialization.runner import abandon_live_jobs
from airflow_provider_featurestore.core.planner import DEFAULT_STATUSES
from airflow_provider_featurestore.core.report import axis, feature_set_row, intervals_document, jobs_document
from airflow_provider_featurestore.core.serving import api_keys
from airflow_provider_featurestore.core.timeline import legend, stream_timeline, text_bar
from airflow_provider_featurestore.core.timeutil import format_duration, human_duration, iso

EXIT_OK, EXIT_JOB_FAILED, EXIT_BAD_INPUT, EXIT_LATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit 2) instead of usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    # Parents of the subcommands are _Parser too: a subcommand's `parents` share its parser class.
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        help="featurestore.yaml (default: the Airflow Variable featurestore_config where Airflow is "
        "installed, else $FEATURESTORE_CONFIG, else ./featurestore.yaml)",
    )
    common.add_argument(
        "--verbose", action="store_true", help="print the traceback of an error (or set FEATURESTORE_DEBUG=1)"
    )
    listing = _Parser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    versioned = _Parser(add_help=False)
    versioned.add_argument("name", help="feature set name")
    versioned.add_argument("--version", type=_positive_int, help="feature set version (default: the latest)")

    parser = _Parser(prog="featurestore", description="Materialize ML feature sets and inspect their status.")
    parser.add_argument("-V", action="version", version=f"featurestore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("validate", parents=[common], help="check the config and every feature set spec")
    commands.add_parser("list", parents=[common, listing], help="feature sets, versions and enabled stores")

    backfill = commands.add_parser(
        "backfill",
        parents=[common, listing, versioned],
        help="materialize a window (one job per data interval chunk)",
    )
    backfill.add_argument("--start", required=True, help="window start, ISO-8601 UTC (inclusive)")
    backfill.add_argument("--end", required=True, help="window end, ISO-8601 UTC (exclusive)")
    backfill.add_argument(
        "--status",
        default=",".join(DEFAULT_STATUSES),
        help=f"data statuses to fill (default: {','.join(DEFAULT_STATUSES)})",
    )
    backfill.add_argument("--store", help="stores to write: offline,online (default: every enabled store)")
    backfill.add_argument(
        "--dry-run", action="store_true", help="print the jobs it would submit, submit nothing"
    )
    backfill.add_argument(
        "--max-jobs",
        type=_positive_int,
        default=DEFAULT_MAX_JOBS,
        help=f"refuse a plan of more jobs than this (default {DEFAULT_MAX_JOBS:,})",
    )
    backfill.add_argument(
        "--metrics-textfile",
        metavar="PATH",
        help="at the end, write the run's figures to PATH (*.prom) for node_exporter's textfile collector",
    )

    intervals = commands.add_parser(
        "intervals", parents=[common, listing, versioned], help="the data intervals per store"
    )
    intervals.add_argument("--store", choices=STORES, help="only this store")

    get_online = commands.add_parser(
        "get-online", parents=[common, listing, versioned], help="the live online feature values of entities"
    )
    get_online.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="COL=VALUE[,COL=VALUE]",
        help="an entity key (repeatable)",
    )
    get_online.add_argument("--features", help="only these features: f1,f2 (default: all)")
    commands.add_parser(
        "disable-online",
        parents=[common, versioned],
        help="stop online materialization: statuses None, keys purged",
    )
    commands.add_parser("enable-online", parents=[common, versioned], help="resume online materialization")

    jobs = commands.add_parser(
        "jobs", parents=[common, listing, versioned], help="materialization job records, newest first"
    )
    jobs.add_argument("--limit", type=_positive_int, help="at most this many jobs")

    _purge_parser(commands, [common, listing, versioned])
    cancel = commands.add_parser(
        "cancel",
        parents=[common, listing, versioned],
        help="cancel queued and running jobs: their Pending time turns Incomplete at once",
    )
    which = cancel.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", metavar="ID", help="this job (`featurestore jobs NAME` lists the ids)")
    which.add_argument("--run", metavar="AIRFLOW_RUN_ID", help="the jobs this Airflow DAG run claimed")
    which.add_argument("--all", action="store_true", dest="all_jobs", help="every live job of NAME")

    check = commands.add_parser(
        "check",
        parents=[common, listing, versioned],
        help="find Complete time the stores lost (deleted Delta commits, a flushed Redis); mark it Incomplete",
    )
    check.add_argument(
        "--sources",
        action="store_true",
        help="instead: find Complete time whose source files were added, changed or removed since it was read",
    )
    check.add_argument("--dry-run", action="store_true", help="with --sources: report only, mark nothing")

    status = commands.add_parser(
        "status",
        parents=[common, listing],
        help="freshness per feature set version and store against its SLA (exit 3 when one is late)",
    )
    status.add_argument("name", nargs="?", help="only this feature set (default: every one)")
    status.add_argument("--version", type=_positive_int, help="only this version (default: every one)")

    serve = commands.add_parser(
        "serve", parents=[common], help="the HTTP feature server: POST /get-online-features, GET /health"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=6566, help="TCP port (default: 6566)")
    serve.add_argument("--workers", type=_positive_int, default=1, help="worker processes (default: 1)")
    serve.add_argument("--access-log", action="store_true", help="log every request (default: off)")
    api_key = commands.add_parser(
        "api-key",
        parents=[common],
        help="print a new feature server API key on stdout, and its line for feature_server.api_key_file",
    )
    api_key.add_argument(
        "--feature-sets", metavar="A,B", help="the only feature sets it may read (default: every one)"
    )
    api_key.add_argument(
        "--metrics",
        action="store_true",
        help="it may read GET /metrics (scope @metrics); alone: /metrics and no feature set",
    )
    return parser


def _purge_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    purge = commands.add_parser(
        "purge", parents=parents, help="delete entities' rows (Delta) and keys (online): erasure requests"
    )
    purge.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="COL=VALUE[,COL=VALUE]",
        help="an entity key, every index column (repeatable)",
    )
    purge.add_argument("--all-versions", action="store_true", help="every version of the feature set")
    purge.add_argument(
        "--vacuum",
        action="store_true",
        help="then VACUUM the Delta table: older versions lose the files holding the rows (no time travel back)",
    )
    purge.add_argument(
        "--retention-hours",
        type=int,
        default=0,
        help="with --vacuum: keep files removed less than this long ago (default 0: the purged rows go now)",
    )


def cmd_purge(store: FeatureStore, args: argparse.Namespace) -> int:
    spec = store.spec(args.name, args.version)
    keys = [parse_key(text, spec) for text in args.key]
    if args.retention_hours != 0 and not args.vacuum:
        raise BadInput("--retention-hours: only with --vacuum")
    report = store.purge(
        args.name,
        keys,
        version=args.version,
        all_versions=args.all_versions,
        vacuum=args.vacuum,
        retention_hours=args.retention_hours,
    )
    if args.json:
        _print_json(report.to_json())
    else:
        print("\n".join(report.lines()))
    return EXIT_OK


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer from 1 to {MAX_INT}") from None
    if not 1 <= value <= MAX_INT:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer from 1 to {MAX_INT}")
    return value


MAX_INT = 2**31 - 1  # what every interval table database stores in an integer column


# ---- commands -------------------------------------------------------------------------------


def cmd_validate(store: FeatureStore, args: argparse.Namespace) -> int:
    config = store.config
    keys = api_keys.from_config(config)
    listed = [f"{s.name} v{s.version}" for s in config.feature_sets]
    listed += [f"{s.name} v{s.version} (on-demand)" for s in config.on_demand]
    names = ", ".join(listed) or "none"
    named_by = "" if args.config_named_by == "--config" else f" (named by {args.config_named_by})"
    print(
        f"{config.config_path}{named_by}: valid; project {config.project}; {len(listed)} feature set(s): {names}"
        + (f"; feature server: {len(keys)} API key(s)" if keys.required else "")
    )
    return EXIT_OK


def cmd_api_key(args: argparse.Namespace) -> int:
    """A new API key on stdout (alone, for `KEY=$(featurestore api-key)`), and its line for
    feature_server.api_key_file on stderr (alone: `2>> keys.txt`). Needs no config; with --config given, the feature
    set names are checked against it."""
    names: list[str] = []
    if args.feature_sets is not None:
        known = None
        if args.config is not None:
            known = api_keys.known_names(load_config(args.config, check_transformations=False))
        names = sorted(api_keys.check_names(args.feature_sets.split(","), known, "--feature-sets"))
    key = api_keys.new_key()
    made = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
    print(key)
    # a line of the key file as it is, comment included: `2>> keys.txt` appends it
    print(
        f"{api_keys.hash_line(key, names, metrics=args.metrics)}  # featurestore api-key, {made}",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_list(store: FeatureStore, args: argparse.Namespace) -> int:
    rows = [feature_set_row(spec) for spec in store.config.feature_sets]
    if args.json:
        _print_json(rows)
    else:
        _print_table(
            ["NAME", "VERSION", "OFFLINE", "ONLINE", "SCHEDULE"],
            [
                [r["name"], r["version"], _yes(r["offline"]), _yes(r["online"]), r["schedule"] or "-"]
                for r in rows
            ],
        )
    return EXIT_OK


def cmd_backfill(store: FeatureStore, args: argparse.Namespace) -> int:
    textfile = metrics_textfile.checked_path(args.metrics_textfile) if args.metrics_textfile else None
    request = store.backfill_request(
        args.name, args.start, args.end, version=args.version, statuses=args.status, stores=args.store
    )
    if args.dry_run:
        planned = store.claim(request, dry_run=True, max_jobs=args.max_jobs)
        if args.json:
            _print_json(
                [{"start": iso(j.start), "end": iso(j.end), "stores": list(j.stores)} for j in planned]
            )
        else:
            spec = request.spec
            print(
                f"{spec.name} v{spec.version}: {len(planned)} job(s) would be submitted for "
                f"[{iso(request.start)}, {iso(request.end)}) with status in "
                f"{','.join(s for s in STATUSES if s in request.statuses)}"
            )
            _print_table(
                ["START", "END", "STORES", "READS"],
                [[iso(j.start), iso(j.end), ",".join(j.stores), j.reads] for j in planned],
            )
        return EXIT_OK
    try:
        with _terminate_as_interrupt(), metrics_textfile.recorded(recording(store, request, textfile)) as rec:
            done = store.backfill(request, max_jobs=args.max_jobs, on_claim=rec.on_claim if rec else None)
    except KeyboardInterrupt:
        _INTERRUPTED.set()
        print("featurestore backfill: interrupted; the jobs not finished are Incomplete", file=sys.stderr)
        return EXIT_JOB_FAILED
    if args.json:
        _print_json([r.to_json() for r in done])
    return EXIT_OK if all(r.state == JobState.SUCCEEDED for r in done) else EXIT_JOB_FAILED


def recording(
    store: FeatureStore, request: BackfillRequest, path: Path | None
) -> metrics_textfile.Recording | None:
    """What `--metrics-textfile` records of this backfill (None: not asked)."""
    if path is None:
        return None
    spec = request.spec
    return metrics_textfile.Recording(path, store.table, spec.name, spec.version, request.stores)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM (a `kill`, a stopping container or service manager) end a backfill
    within seconds: the interrupt unwinds the backfill, which records its unfinished jobs as
    Incomplete. An engine call can swallow that for minutes (pyspark answers an interrupt with
    a blocking request to a server still running the query), so a watchdog then records them
    itself after STOP_GRACE_SECONDS and ends the process."""

    def watchdog() -> None:
        time.sleep(STOP_GRACE_SECONDS)
        abandon_live_jobs(f"interrupted: the engine did not stop within {STOP_GRACE_SECONDS:.0f} s")
        print("featurestore backfill: interrupted; the jobs not finished are Incomplete", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_JOB_FAILED)

    def interrupt(signum: int, _frame: object) -> None:
        _INTERRUPTED.set()
        if not any(t.name == "featurestore-stop-watchdog" for t in threading.enumerate()):
            threading.Thread(target=watchdog, name="featurestore-stop-watchdog", daemon=True).start()
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


STOP_GRACE_SECONDS = 5.0


def cmd_get_online(store: FeatureStore, args: argparse.Namespace) -> int:
    spec = store.spec(args.name, args.version)
    keys = [parse_key(text, spec) for text in args.key]
    rows = store.get_online(args.name, keys, version=args.version, features=args.features)
    if args.json:
        _print_json(rows)
    else:
        header = list(rows[0]) if rows else []
        _print_table(header, [[_readable(r[h]) for h in header] for r in rows])
    return EXIT_OK


def _readable(value: object) -> object:
    """A cell as a person reads it: `-` for none, doubles to 10 significant digits (the
    stored value, `2149.459999999999`, stays exact in --json)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.10g}"
    return value


def parse_key(text: str, spec: FeatureSetSpec) -> dict[str, object]:
    """`accountID=A1` (or `a=1,b=2` for several index columns) -> typed index values."""
    values: dict[str, object] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        column = next((c for c in spec.index_columns if c.name == name.strip()), None)
        if not sep or column is None:
            raise BadInput(f"--key: {text!r}: use {','.join(c.name + '=VALUE' for c in spec.index_columns)}")
        try:
            values[column.name] = int(value) if column.type in ("int", "long") else value
        except ValueError:
            raise BadInput(f"--key: {column.name}={value!r} is not an integer ({column.type})") from None
    missing = [c.name for c in spec.index_columns if c.name not in values]
    if missing:
        raise BadInput(f"--key: {text!r} has no value for {', '.join(missing)}")
    return values


def cmd_disable_online(store: FeatureStore, args: argparse.Namespace) -> int:
    purged = store.set_online(args.name, version=args.version, enabled=False)
    spec = store.spec(args.name, args.version)
    print(
        f"{spec.name} v{spec.version}: online materialization disabled; statuses reset to None, {purged:,} keys purged"
    )
    return EXIT_OK


def cmd_enable_online(store: FeatureStore, args: argparse.Namespace) -> int:
    store.set_online(args.name, version=args.version, enabled=True)
    spec = store.spec(args.name, args.version)
    print(
        f"{spec.name} v{spec.version}: online materialization enabled; backfill to fill it "
        "(Complete offline time is read from the offline table)"
    )
    return EXIT_OK


def cmd_intervals(store: FeatureStore, args: argparse.Namespace) -> int:
    spec = store.spec(args.name, args.version)
    names = [args.store] if args.store else list(STORES)
    by_store = store.intervals(spec.name, spec.version, names)
    rows = [(name, item) for name in STORES if name in by_store for item in by_store[name]]
    if args.json:
        _print_json(intervals_document(by_store))
    elif not rows:
        print("no time requested yet: run a backfill", file=sys.stderr)
    else:
        _print_timelines(store, spec, [name for name in names if by_store.get(name)])
        _print_table(
            ["STORE", "START", "END", "STATUS", "LENGTH"],
            [[s, iso(i.start), iso(i.end), i.status, format_duration(i.end - i.start)] for s, i in rows],
        )
    return EXIT_OK


def _print_timelines(store: FeatureStore, spec: FeatureSetSpec, names: list[str]) -> None:
    """One bar per store over the whole axis, then the legend and a blank line."""
    whole = axis(store, spec, names)
    if whole is None:
        return
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    label = max(len(name) for name in names)
    columns = max(20, min(100, shutil.get_terminal_size().columns - label - 4))
    start, end = whole
    head, tail = iso(start), iso(end)
    print(" " * (label + 2) + head + tail.rjust(columns - len(head)))
    key = StreamKey(spec.name, spec.version)
    for name in names:
        bars = stream_timeline(store.table, key, name, start, end, columns)
        print(f"{name.ljust(label)} |{text_bar(bars, start, end, columns, colour=colour)}|")
    print(" " * (label + 2) + legend(colour=colour) + "\n")


def cmd_jobs(store: FeatureStore, args: argparse.Namespace) -> int:
    records = store.jobs(args.name, args.version, args.limit)
    if args.json:
        _print_json(jobs_document(records))
    elif not records:
        print("no jobs yet", file=sys.stderr)
    else:
        _print_table(
            [
                "ID",
                "START",
                "END",
                "STORES",
                "STATE",
                "ROWS READ",
                "ROWS WRITTEN",
                "SOURCE",
                "CHECKS",
                "ERROR",
            ],
            [
                [
                    r.id,
                    iso(r.start),
                    iso(r.end),
                    ",".join(r.stores),
                    r.state,
                    _count(r.rows_read),
                    _written(r),
                    _coverage(r),
                    _checks(r),
                    (r.error or "")[:60],
                ]
                for r in records
            ],
        )
    return EXIT_OK


def cmd_cancel(store: FeatureStore, args: argparse.Namespace) -> int:
    """One line per job cancelled (its window, stores and the state it was in), then a summary;
    nothing live to cancel is no error (exit 0)."""
    cancelled = store.cancel(
        args.name, job_id=args.job, run_id=args.run, all_jobs=args.all_jobs, version=args.version
    )
    if args.json:
        _print_json(jobs_document(cancelled))
        return EXIT_OK
    if not cancelled:
        print(f"{args.name}: nothing to cancel: no job selected is queued or running")
        return EXIT_OK
    for r in cancelled:
        was = JobState.QUEUED if r.started_at is None else JobState.RUNNING
        print(
            f"cancelled {r.id}: {r.feature_set} v{r.version} [{iso(r.start)}, {iso(r.end)}) "
            f"{','.join(r.stores)} (was {was})"
        )
    print(
        f"{len(cancelled)} job(s) cancelled: their Pending time is Incomplete (what they committed stays "
        "Complete); a backfill running them stops at its next chunk; the next backfill redoes that time"
    )
    return EXIT_OK


def cmd_check(store: FeatureStore, args: argparse.Namespace) -> int:
    """Exit 0 when every store holds its Complete time (with --sources: no Complete time's source
    changed), 1 when such time was found and marked Incomplete (with --dry-run: would be), or a
    store or the source could not be reached (then nothing changed)."""
    if args.dry_run and not args.sources:
        raise BadInput(
            "--dry-run: only with --sources (a backfill --dry-run shows what the lost-state check finds)"
        )
    if args.sources:
        sources = store.check_sources(args.name, args.version, dry_run=args.dry_run)
        if not args.json:
            spec = f"{sources.feature_set} v{sources.version}"
            print(
                f"{spec} source: {sources.source}: {sources.files:,} file(s), {sources.ranges_read:,} read for their "
                f"time range; {sources.chunks_checked:,} Complete chunk(s) checked"
                + (f", {sources.chunks_unrecorded:,} recorded no source" if sources.chunks_unrecorded else "")
            )
        report: CheckReport = sources
        clean, found = "no Complete time's source changed", "interval(s) whose source changed"
    else:
        report = store.check(args.name, args.version)
        clean, found = "no loss found in what was verified above", "lost interval(s)"
    if args.json:
        _print_json(report.to_json())
        return EXIT_OK if report.consistent else EXIT_JOB_FAILED
    return _print_check(report, clean, found, dry_run=args.dry_run)


def _print_check(report: CheckReport, clean: str, found: str, *, dry_run: bool) -> int:
    """A check's report as text; its exit status."""
    title = f"{report.feature_set} v{report.version}"
    for name, what in report.checked.items():
        print(f"{title} {name}: {what}")
    for name, why in report.skipped.items():
        print(f"{title} {name}: not checked: {why}")
    if report.consistent:
        print(f"{title}: {clean}")
        return EXIT_OK
    now = "would be Incomplete" if dry_run else "Incomplete"
    _print_table(
        ["STORE", "START", "END", "JOB", "NOW"],
        [[x.store, iso(x.start), iso(x.end), x.job_id or "-", now] for x in report.lost],
    )
    for reason in dict.fromkeys(x.reason for x in report.lost):  # each once, in order (also in jobs)
        print(f"  {reason}")
    start, end = min(x.start for x in report.lost), max(x.end for x in report.lost)
    print(
        f"{title}: {len(report.lost)} {found} {'would be ' if dry_run else ''}marked Incomplete; "
        f"repair: featurestore backfill {report.feature_set} --version {report.version} "
        f"--start {iso(start)} --end {iso(end)}"
    )
    return EXIT_JOB_FAILED


def cmd_status(store: FeatureStore, args: argparse.Namespace) -> int:
    """Exit 3 when a store of a feature set version is late (its freshness SLA breached)."""
    specs = freshness.select(store.config, args.name, args.version)
    rows = freshness.assess(store.table, specs)
    if args.json:
        _print_json([row.to_json() for row in rows])
    else:
        _print_table(
            ["NAME", "VERSION", "STORE", "COMPLETE UNTIL", "LAG", "SLA", "STATE", "INCOMPLETE", "FAILED 24H"],
            [
                [
                    r.feature_set,
                    r.version,
                    r.store,
                    "-" if r.complete_until is None else iso(r.complete_until),
                    "-" if r.lag_s is None else human_duration(r.lag_s),
                    "-" if r.sla_s is None else format_duration(r.sla_s),
                    r.state,
                    r.incomplete_intervals,
                    r.failed_jobs_24h,
                ]
                for r in rows
            ],
        )
        for row in rows:
            if row.late:
                print(f"  {row.describe()}")
    return EXIT_LATE if freshness.any_late(rows) else EXIT_OK


def cmd_serve(store: FeatureStore, args: argparse.Namespace) -> int:
    from airflow_provider_featurestore.core.serving.server import serve

    return serve(store, host=args.host, port=args.port, workers=args.workers, access_log=args.access_log)


COMMANDS: dict[str, Callable[[FeatureStore, argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "list": cmd_list,
    "backfill": cmd_backfill,
    "intervals": cmd_intervals,
    "get-online": cmd_get_online,
    "disable-online": cmd_disable_online,
    "enable-online": cmd_enable_online,
    "jobs": cmd_jobs,
    "check": cmd_check,
    "purge": cmd_purge,
    "cancel": cmd_cancel,
    "status": cmd_status,
    "serve": cmd_serve,
}


# ---- output helpers -------------------------------------------------------------------------


def _print_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _print_table(header: list[str], rows: list[list[object]]) -> None:
    cells = [header] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _coverage(record: JobRecord) -> str:
    """The jobs table's source mark: `partial from T` when the read range was short of source
    data (T: its first row, or `no rows`), `covered`, or `-` (not read from the source)."""
    partial = record.result.get("partial_lookback")
    if partial is None:
        return "-"
    if not partial:
        return "covered"
    return f"partial from {record.result.get('first_source_time') or 'no rows'}"


def _written(record: JobRecord) -> str:
    if record.is_purge:  # an entity purge: what it deleted (`purge.py`)
        done = record.result.get("purge") or {}
        offline, online = done.get("offline") or {}, done.get("online") or {}
        parts = [f"offline={offline.get('rows_deleted', 0):,}"] if offline else []
        parts += [f"online={online.get('keys_deleted', 0):,}"] if online else []
        return f"purge of {done.get('keys', 0)} key(s): deleted " + (" ".join(parts) or "nothing")
    return " ".join(f"{store}={n:,}" for store, n in record.rows_written.items()) or "-"


def _checks(record: JobRecord) -> str:
    """The job's quality checks at a glance: `5 passed`, `not_null failed (12), 4 passed`."""
    checks = record.result.get("checks") or []
    if not checks:
        return "-"
    parts = [
        f"{c['check']} {'failed' if c['severity'] == 'error' else 'warned'} ({c['violations']:,})"
        for c in checks
        if not c["passed"]
    ]
    passed = sum(1 for c in checks if c["passed"])
    return ", ".join([*parts, f"{passed} passed"] if passed else parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `featurestore` console script: the one error path of the console.

    Bad input exits 2, an unreachable store or an unexpected failure 1, an interrupt 130; each
    with one line on stderr, the traceback only with `--verbose` or FEATURESTORE_DEBUG set.
    """
    args = _build_parser().parse_args(argv)
    verbose = args.verbose or os.environ.get("FEATURESTORE_DEBUG", "") not in ("", "0")
    prefix = f"featurestore {args.command}:"
    try:
        if args.command == "api-key":
            return cmd_api_key(args)
        # Only without --config is the Airflow Variable consulted (and Airflow imported). No log
        # line: Airflow's logging would print it on stderr, which holds errors only; `validate` says.
        location = locate_config(args.config, log=None)
        args.config_named_by = location.source  # what `validate` says named the file
        store = FeatureStore(location.path)
        try:
            return COMMANDS[args.command](store, args)
        finally:
            store.close()
    except BadInput as exc:
        return _fail(prefix, str(exc), EXIT_BAD_INPUT, verbose)
    except ServiceUnavailable as exc:
        return _fail(prefix, str(exc), EXIT_JOB_FAILED, verbose)
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say, to anyone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_JOB_FAILED
    except KeyboardInterrupt:
        _INTERRUPTED.set()
        return _fail(prefix, "interrupted", EXIT_INTERRUPTED, verbose)
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen failure: one line, and how to see more
        message = redact_credentials(f"{type(exc).__name__}: {exc}".splitlines()[0])
        hint = "" if verbose else " (run again with --verbose for the traceback)"
        return _fail(prefix, f"unexpected error: {message}{hint}", EXIT_JOB_FAILED, verbose)


_INTERRUPTED = threading.Event()


def interrupted() -> bool:
    """Whether a command of this process was interrupted (its records are written by then)."""
    return _INTERRUPTED.is_set()


def _fail(prefix: str, message: str, status: int, verbose: bool) -> int:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    print(f"{prefix} {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
