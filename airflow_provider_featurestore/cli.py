"""`featurestore`: the command line of a feature store.

Exit status 0 on success, 1 when a job failed, 2 on bad input (one line on stderr naming the
file, field or argument at fault; nothing written). `--json` prints one JSON document on
stdout and nothing else there; progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .config import STORES, FeatureSetSpec
from .errors import BadInput
from .featurestore import FeatureStore
from .interval_table import JobRecord, StreamKey
from .intervals import STATUSES
from .report import axis, feature_set_row, intervals_document, jobs_document
from .timeline import legend, stream_timeline, text_bar
from .timeutil import format_duration, iso

EXIT_OK, EXIT_JOB_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit 2) instead of usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", help="featurestore.yaml (default: $FEATURESTORE_CONFIG, else ./featurestore.yaml)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    versioned = argparse.ArgumentParser(add_help=False)
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
        "--status", default="None,Incomplete", help="data statuses to fill (default: None,Incomplete)"
    )
    backfill.add_argument("--store", help="stores to write: offline,online (default: every enabled store)")
    backfill.add_argument(
        "--dry-run", action="store_true", help="print the jobs it would submit, submit nothing"
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

    serve = commands.add_parser(
        "serve", parents=[common], help="the HTTP feature server: POST /get-online-features, GET /health"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=6566, help="TCP port (default: 6566)")
    serve.add_argument("--workers", type=_positive_int, default=1, help="worker processes (default: 1)")
    serve.add_argument("--access-log", action="store_true", help="log every request (default: off)")
    return parser


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
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


# ---- commands -------------------------------------------------------------------------------


def cmd_validate(store: FeatureStore, _args: argparse.Namespace) -> int:
    config = store.config
    names = ", ".join(f"{s.name} v{s.version}" for s in config.feature_sets) or "none"
    print(
        f"{config.config_path}: valid; project {config.project}; {len(config.feature_sets)} feature set(s): {names}"
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
    request = store.backfill_request(
        args.name, args.start, args.end, version=args.version, statuses=args.status, stores=args.store
    )
    if args.dry_run:
        planned = store.claim(request, dry_run=True)
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
        done = store.backfill(request)
    except KeyboardInterrupt:
        print("featurestore backfill: interrupted; the jobs not finished are Incomplete", file=sys.stderr)
        return EXIT_JOB_FAILED
    if args.json:
        _print_json([r.to_json() for r in done])
    return EXIT_OK if all(r.state == "succeeded" for r in done) else EXIT_JOB_FAILED


def cmd_get_online(store: FeatureStore, args: argparse.Namespace) -> int:
    spec = store.spec(args.name, args.version)
    keys = [parse_key(text, spec) for text in args.key]
    rows = store.get_online(args.name, keys, version=args.version, features=args.features)
    if args.json:
        _print_json(rows)
    else:
        header = list(rows[0]) if rows else []
        _print_table(header, [["-" if r[h] is None else r[h] for h in header] for r in rows])
    return EXIT_OK


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
            ["ID", "START", "END", "STORES", "STATE", "ROWS READ", "ROWS WRITTEN", "ERROR"],
            [
                [
                    r.id,
                    iso(r.start),
                    iso(r.end),
                    ",".join(r.stores),
                    r.state,
                    _count(r.rows_read),
                    _written(r),
                    (r.error or "")[:60],
                ]
                for r in records
            ],
        )
    return EXIT_OK


def cmd_serve(store: FeatureStore, args: argparse.Namespace) -> int:
    from .serving import serve

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


def _written(record: JobRecord) -> str:
    return " ".join(f"{store}={n:,}" for store, n in record.rows_written.items()) or "-"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `featurestore` console script."""
    args = _build_parser().parse_args(argv)
    try:
        store = FeatureStore(args.config)
        try:
            return COMMANDS[args.command](store, args)
        finally:
            store.close()
    except BadInput as exc:
        print(f"featurestore {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
