"""The freshness rows' logic without a database: the judgement, the lag, the repair window and
the log line, the selection of feature set versions, and durations as people read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_featurestore.core.config import load_config
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.freshness import LATE, NO_SLA, OK, Freshness, judge, select
from airflow_provider_featurestore.core.timeutil import human_duration, iso

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud" / "featurestore.yaml"
DAY = 86400
NOW = 1_800_000_000


def row(complete_until: int | None, sla_s: int | None, store: str = "offline") -> Freshness:
    return Freshness("transactions", 1, store, NOW, complete_until, sla_s, 0, 0)


@pytest.mark.parametrize(
    ("lag", "sla", "state"),
    [(None, None, NO_SLA), (10**9, None, NO_SLA), (None, DAY, LATE), (DAY, DAY, OK), (DAY + 1, DAY, LATE),
     (-60, DAY, OK), (0, 1, OK)],
)  # fmt: skip
def test_judge(lag: int | None, sla: int | None, state: str) -> None:
    assert judge(lag, sla) == state


def test_the_lag_is_now_minus_complete_until() -> None:
    assert row(NOW - 3 * DAY, 2 * DAY).lag_s == 3 * DAY
    assert row(None, 2 * DAY).lag_s is None
    assert row(NOW - 3 * DAY, 2 * DAY).to_json() == {
        "feature_set": "transactions",
        "version": 1,
        "store": "offline",
        "complete_until": iso(NOW - 3 * DAY),
        "lag_s": 3 * DAY,
        "sla_s": 2 * DAY,
        "state": "late",
        "incomplete_intervals": 0,
        "failed_jobs_24h": 0,
    }


def test_the_repair_runs_from_complete_until_or_one_sla_back_to_now() -> None:
    assert row(NOW - 3 * DAY, 2 * DAY).repair_window() == (NOW - 3 * DAY, NOW)
    assert row(None, 2 * DAY).repair_window() == (NOW - 2 * DAY, NOW)
    assert row(NOW - DAY, 2 * DAY).repair_window() is None  # not late
    assert row(None, None).repair_window() is None
    assert row(NOW - 3 * DAY, 2 * DAY, "online").repair_command() == (
        f"featurestore backfill transactions --version 1 --store online --start {iso(NOW - 3 * DAY)} --end {iso(NOW)}"
    )


def test_the_log_line_names_the_store_how_late_and_the_repair() -> None:
    late = row(NOW - 3 * DAY - 7200, 2 * DAY).describe()
    assert late.startswith("transactions v1 offline: late: Complete until ")
    assert "3d 2h behind (266400 s)" in late and "SLA 2d (172800 s)" in late
    assert "late by 1d 2h (93600 s)" in late
    assert late.endswith(f"repair: featurestore backfill transactions --version 1 --store offline "
                         f"--start {iso(NOW - 3 * DAY - 7200)} --end {iso(NOW)}")  # fmt: skip
    assert row(None, DAY).describe().startswith("transactions v1 offline: late: nothing Complete yet, SLA 1d")
    assert row(NOW - 60, DAY).describe() == (
        f"transactions v1 offline: ok: Complete until {iso(NOW - 60)}, 1m 0s behind (60 s), within the SLA 1d (86400 s)"
    )
    assert row(NOW - 60, None).describe().startswith("transactions v1 offline: no SLA: Complete until")


def test_select_names_the_argument_at_fault() -> None:
    config = load_config(str(EXAMPLE), check_transformations=False)
    assert [(s.name, s.version) for s in select(config, None, None)] == [("accounts", 1), ("transactions", 1)]
    assert [(s.name, s.version) for s in select(config, "accounts", 1)] == [("accounts", 1)]
    with pytest.raises(
        BadInput, match=r"^NAME: feature set 'nope' not found; known: accounts, transactions$"
    ):
        select(config, "nope", None)
    with pytest.raises(BadInput, match=r"^version: feature set 'accounts' has no version 2; versions: 1$"):
        select(config, "accounts", 2, version_arg="version")
    with pytest.raises(BadInput, match=r"^--version: give the feature set's name too$"):
        select(config, None, 1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m 0s"),
        (3661, "1h 1m"),
        (86400, "1d 0h"),
        (266400, "3d 2h"),
        (-90, "-1m 30s"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text
