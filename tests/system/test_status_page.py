"""The status page plugin in a running Airflow: its JSON API (every endpoint, refused for anonymous
and unauthorised users), its backfill action, and the page itself in headless Chromium.

The feature store's interval table holds all four statuses, each made for real:
- Complete: a backfill of days 1-3 run by Airflow (its jobs carry Airflow ids, so the page links
  to their task logs);
- Incomplete: a CLI backfill of day 5 while the online store's Redis is unreachable (offline
  Complete, online Incomplete, the job failed with Redis's error);
- Pending: a claim of day 7 whose jobs were never run (what queued jobs look like);
- None: the gaps between (days 3-5 and 6), requested but never materialized.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import StreamKey
from airflow_provider_featurestore.core.planner import snap_window
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.airflow_runs import PRINT_RESULT, run_script  # noqa: E402
from support.browser import ARTIFACTS, launch, open_status_page, sign_in  # noqa: E402
from support.deployment import DAG_ID, ROOT, Deployment, day, fraud_deployment  # noqa: E402
from support.intervals_view import statuses as interval_view  # noqa: E402

PG_URL = os.environ.get("FEATURESTORE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))
USERS = {"viewer": "viewer", "nobody": ""}  # a Viewer, and a user Airflow signs in but grants nothing
COLOURS = {  # the page's CSS colours, as the browser computes them
    "Complete": "rgb(45, 164, 78)",
    "Incomplete": "rgb(207, 34, 46)",
    "Pending": "rgb(9, 105, 218)",
    "None": "rgb(140, 149, 159)",
}
# What the interval table holds for transactions v1 once the module's fixture has run.
EXPECTED = {
    "offline": [(1, 3, "Complete"), (3, 5, "None"), (5, 6, "Complete"), (6, 7, "None"), (7, 8, "Pending")],
    "online": [(1, 3, "Complete"), (3, 5, "None"), (5, 6, "Incomplete"), (6, 7, "None"), (7, 8, "Pending")],
}


def with_freshness_sla(root: Path) -> None:
    """transactions gets a 5d freshness SLA: offline (Complete up to day 6) is within it, online
    (up to day 3) is late; accounts has none. It also gets two quality checks, one that passes and
    one `warn` check that every day's rows violate, for the job list's Checks column."""
    spec = root / "featuresets" / "transactions.yaml"
    text = spec.read_text().replace("materialization:\n", "materialization:\n  freshness: 5d\n")
    text += "checks:\n  - {check: not_null, columns: [transaction_amount_7d_sum]}\n"
    text += "  - {check: min_rows, count: 1000000, severity: warn}\n"
    spec.write_text(text)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("status_page")
    with fraud_deployment(base, PG_URL, REDIS_URL, users=USERS, prepare=with_freshness_sla) as d:
        run_id = d.backfill("transactions", day(1), day(3))
        run = d.airflow.wait_for_run(DAG_ID, run_id)
        assert run["state"] == "success", d.explain(run_id)
        failed = subprocess.run(
            [FEATURESTORE, "backfill", "transactions", "--start", iso(day(5)), "--end", iso(day(6))]
            + ["--config", str(d.config)],
            env={**os.environ, "FEATURESTORE_REDIS_URL": "redis://127.0.0.1:1/0"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert failed.returncode == 1, failed.stderr
        store = d.store()
        try:
            store.claim(store.backfill_request("transactions", day(7), day(8)))
        finally:
            store.close()
        got = d.statuses("transactions")
        for name, expected in EXPECTED.items():
            assert got[name] == [(iso(day(a)), iso(day(b)), s) for a, b, s in expected], got
        yield d


def get(d: Deployment, path: str, user: str | None = "admin", **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {d.airflow.token(user)}"} if user else {}
    return requests.get(
        f"{d.airflow.base_url}/featurestore{path}",
        headers=headers,
        timeout=30,
        allow_redirects=False,
        **kwargs,
    )


def post(d: Deployment, path: str, body: dict, user: str | None = "admin") -> requests.Response:
    headers = {"Authorization": f"Bearer {d.airflow.token(user)}"} if user else {}
    return requests.post(f"{d.airflow.base_url}/featurestore{path}", json=body, headers=headers, timeout=60)


def cli_json(d: Deployment, *args: str) -> object:
    done = subprocess.run(
        [FEATURESTORE, *args, "--json", "--config", str(d.config)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def backfill_runs(d: Deployment) -> list[str]:
    runs = d.airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]
    return sorted(run["dag_run_id"] for run in runs)


READS = [
    "/",
    "/static/status.js",
    "/api/feature-sets",
    "/api/intervals?feature_set=transactions",
    "/api/jobs?feature_set=transactions",
    "/api/timeline?feature_set=transactions",
    "/api/freshness",
    "/api/backfill-dag",
    "/api/stores",
    "/api/grid?feature_set=transactions",
    "/static/grid.js",
]
A_BACKFILL = {"feature_set": "accounts", "start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}


# ---- access -----------------------------------------------------------------------------------


def test_anonymous_requests_are_refused(deployment: Deployment) -> None:
    d = deployment
    before = backfill_runs(d)
    for path in READS[1:]:
        response = get(d, path, user=None)
        assert response.status_code == 401, (path, response.text)
        assert "featurestore" not in response.text and "Complete" not in response.text
    page = get(d, "/", user=None)  # a person: sent to Airflow's login, back here afterwards
    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login?next="), page.headers
    assert "featurestore" in requests.utils.unquote(page.headers["location"])
    forged = requests.get(
        f"{d.airflow.base_url}/featurestore/api/feature-sets",
        headers={"Authorization": "Bearer " + d.airflow.token("admin")[:-4] + "AAAA"},
        timeout=30,
    )
    assert forged.status_code in (401, 403), forged.text
    assert post(d, "/api/backfill", A_BACKFILL, user=None).status_code == 401
    assert backfill_runs(d) == before


def test_a_user_without_read_access_is_refused_everything(deployment: Deployment) -> None:
    d = deployment
    for path in READS:
        response = get(d, path, user="nobody")
        assert response.status_code == 403, (path, response.text)
        assert "Complete" not in response.text
    assert "ask an Airflow admin" in get(d, "/", user="nobody").text
    before = backfill_runs(d)
    assert post(d, "/api/backfill", A_BACKFILL, user="nobody").status_code == 403
    assert backfill_runs(d) == before


def test_a_viewer_reads_everything_but_may_not_trigger_a_backfill(deployment: Deployment) -> None:
    d = deployment
    for path in READS:
        assert get(d, path, user="viewer").status_code == 200, path
    assert get(d, "/api/feature-sets", user="viewer").json()["can_trigger"] is False
    assert get(d, "/api/feature-sets").json()["can_trigger"] is True
    before = backfill_runs(d)
    refused = post(d, "/api/backfill", A_BACKFILL, user="viewer")
    assert refused.status_code == 403, refused.text
    assert backfill_runs(d) == before


# ---- the JSON API -----------------------------------------------------------------------------


def test_intervals_and_jobs_are_the_cli_documents(deployment: Deployment) -> None:
    d = deployment
    assert get(d, "/api/intervals?feature_set=transactions").json() == cli_json(
        d, "intervals", "transactions"
    )
    assert get(d, "/api/intervals?feature_set=transactions&store=online").json() == cli_json(
        d, "intervals", "transactions", "--store", "online"
    )
    jobs = get(d, "/api/jobs?feature_set=transactions").json()
    assert jobs == cli_json(d, "jobs", "transactions")
    assert get(d, "/api/jobs?feature_set=transactions&limit=2").json() == jobs[:2]
    by_airflow = [j for j in jobs if j["airflow"]]
    assert len(by_airflow) == 2 and all(j["airflow"]["map_index"] >= 0 for j in by_airflow)
    in_day_5 = get(d, f"/api/jobs?feature_set=transactions&start={iso(day(5))}&end={iso(day(6))}").json()
    assert [(j["start"], j["state"]) for j in in_day_5] == [(iso(day(5)), "failed")]
    # The exception itself, first (the online write's marker is set by the job's driver, so the
    # unreachable Redis is found there, before any Python worker writes a row).
    assert in_day_5[0]["error"].startswith(
        "OnlineStoreUnavailable: cannot reach the online store at redis://127.0.0.1:1/0"
    ), in_day_5[0]["error"]


def test_freshness_is_the_status_document(deployment: Deployment) -> None:
    d = deployment
    served = get(d, "/api/freshness").json()
    done = subprocess.run(
        [FEATURESTORE, "status", "--json", "--config", str(d.config)], capture_output=True, text=True
    )
    assert done.returncode == 3, done.stderr  # transactions online is late
    printed = json.loads(done.stdout)
    for row in served + printed:
        row["lag_s"] = None if row["lag_s"] is None else row["lag_s"] // 60  # a second may pass
    assert served == printed
    state = {(r["feature_set"], r["store"]): (r["state"], r["complete_until"]) for r in served}
    assert state == {
        ("accounts", "offline"): ("no_sla", None),
        ("accounts", "online"): ("no_sla", None),
        ("transactions", "offline"): ("ok", iso(day(6))),
        ("transactions", "online"): ("late", iso(day(3))),
    }
    one = get(d, "/api/freshness?feature_set=transactions&version=1").json()
    assert [(r["feature_set"], r["store"]) for r in one] == [
        ("transactions", "offline"),
        ("transactions", "online"),
    ]
    refused = get(d, "/api/freshness?feature_set=nope")
    assert refused.status_code == 400 and refused.json()["detail"].startswith(
        "feature_set: feature set 'nope'"
    )


def test_the_timeline_shows_every_interval_and_aggregates_when_zoomed_out(deployment: Deployment) -> None:
    d = deployment
    document = get(d, "/api/timeline?feature_set=transactions&buckets=1000").json()
    assert (document["start"], document["end"]) == (iso(day(1)), iso(day(8)))
    store = d.store()
    try:
        for name, expected in EXPECTED.items():
            bars = document["stores"][name]["bars"]
            assert [(b["start"], b["end"], b["status"]) for b in bars] == [
                (iso(day(a)), iso(day(b)), s) for a, b, s in expected
            ]
            stored = store.table.segments(StreamKey("transactions", 1), name)
            for bar in bars:  # the job that set a bar, when one did (for the hover)
                meeting = [s for s in stored if iso(s.start) < bar["end"] and bar["start"] < iso(s.end)]
                jobs = {s.job_id for s in meeting}
                assert bar["job_id"] == (jobs.pop() if len(jobs) == 1 else None), (bar, meeting)
                assert ("segment" in bar) == (len(meeting) == 1)
        assert document["stores"]["offline"]["freshness"] == iso(day(6))
        assert document["stores"]["online"]["freshness"] == iso(day(3))
    finally:
        store.close()
    (whole,) = get(d, "/api/timeline?feature_set=transactions&buckets=1").json()["stores"]["online"]["bars"]
    assert whole["status"] == "Mixed" and whole["intervals"] == 6  # stored: one per Airflow job
    assert whole["seconds"] == {
        "Complete": 2 * 86400,
        "Incomplete": 86400,
        "Pending": 86400,
        "None": 3 * 86400,
    }
    zoomed = get(d, f"/api/timeline?feature_set=transactions&start={iso(day(4))}&end={iso(day(6))}").json()
    assert [(b["start"], b["status"]) for b in zoomed["stores"]["online"]["bars"]] == [
        (iso(day(4)), "None"),
        (iso(day(5)), "Incomplete"),
    ]
    assert zoomed["stores"]["online"]["bars"][0]["segment"] == {"start": iso(day(3)), "end": iso(day(5))}


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/api/timeline?feature_set=nope", "feature set 'nope' not found"),
        ("/api/timeline?feature_set=transactions&version=7", "no version 7"),
        ("/api/timeline?feature_set=transactions&start=2024-01-02&end=2024-01-01", "end:"),
        ("/api/timeline?feature_set=transactions&start=yesterday", "start:"),
        ("/api/timeline?feature_set=transactions&buckets=0", "buckets:"),
        ("/api/timeline", "feature_set:"),
        ("/api/intervals?feature_set=transactions&store=attic", "store:"),
        ("/api/jobs?feature_set=transactions&limit=0", "limit:"),
        ("/api/jobs?feature_set=transactions&start=2024-01-01", "start, end"),
    ],
)
def test_bad_requests_get_400_naming_the_parameter(deployment: Deployment, path: str, named: str) -> None:
    response = get(deployment, path)
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]


def test_the_backfill_action_triggers_the_dag_as_the_signed_in_user(deployment: Deployment) -> None:
    d = deployment
    before = backfill_runs(d)
    bad = post(d, "/api/backfill", {**A_BACKFILL, "end": "2019-12-31T00:00:00Z"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("end:"), bad.text
    unknown = post(d, "/api/backfill", {**A_BACKFILL, "feature_set": "nope"})
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]
    assert backfill_runs(d) == before

    body = {"feature_set": "accounts", "start": iso(day(1)), "end": iso(day(2)), "stores": ["offline"]}
    answer = post(d, "/api/backfill", body)
    assert answer.status_code == 201, answer.text
    triggered = answer.json()
    assert triggered["planned_jobs"] == 1 and triggered["dag_paused"] is False
    assert len(backfill_runs(d)) == len(before) + 1
    assert triggered["url"] == f"/dags/{DAG_ID}/runs/{triggered['dag_run_id']}"
    run = d.airflow.wait_for_run(DAG_ID, triggered["dag_run_id"])
    assert run["state"] == "success", d.explain(triggered["dag_run_id"])
    assert run["conf"] == {
        "feature_set": "accounts",
        "version": 1,
        "start": iso(day(1)),
        "end": iso(day(2)),
        "data_status": ["Incomplete", "None"],
        "stores": ["offline"],
    }
    assert run["triggering_user_name"] == "admin" and run["run_type"] == "manual"
    assert interval_view(d.config, "accounts")["offline"] == [(iso(day(1)), iso(day(2)), "Complete")]


def interval_state(d: Deployment) -> tuple[object, list[tuple[str, str]]]:
    """Every status of both feature sets and every job record (id, state): what a dry run must
    leave alone."""
    return (
        {name: d.statuses(name) for name in ("transactions", "accounts")},
        sorted((j.id, j.state) for name in ("transactions", "accounts") for j in d.jobs(name)),
    )


def test_a_dry_run_returns_the_planned_jobs_and_claims_and_triggers_nothing(deployment: Deployment) -> None:
    d = deployment
    runs, state = backfill_runs(d), interval_state(d)
    # Days 2-6: day 2 Complete, days 3-4 None in both stores, day 5 Incomplete online only.
    body = {"feature_set": "transactions", "start": iso(day(2)), "end": iso(day(6))}
    answer = post(d, "/api/backfill/dry-run", body)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["planned_jobs"] == 3 and plan["snapped"] is False and plan["nothing_to_do"] is None
    assert (plan["start"], plan["end"]) == (iso(day(2)), iso(day(6)))
    assert plan["jobs"] == [
        {"start": iso(day(3)), "end": iso(day(4)), "stores": ["offline", "online"]},
        {"start": iso(day(4)), "end": iso(day(5)), "stores": ["offline", "online"]},
        {"start": iso(day(5)), "end": iso(day(6)), "stores": ["online"]},
    ]
    assert plan["dag"] == {"dag_id": DAG_ID, "exists": True, "is_paused": False}
    # The CLI's dry run plans the same jobs.
    cli = cli_json(d, "backfill", "transactions", "--start", iso(day(2)), "--end", iso(day(6)), "--dry-run")
    assert cli == plan["jobs"]
    assert backfill_runs(d) == runs
    assert interval_state(d) == state  # no status changed, no job recorded
    assert post(d, "/api/backfill/dry-run", body, user="viewer").status_code == 403
    assert post(d, "/api/backfill/dry-run", body, user=None).status_code == 401


def test_a_range_with_nothing_to_do_is_refused_and_no_run_is_created(deployment: Deployment) -> None:
    d = deployment
    runs, state = backfill_runs(d), interval_state(d)
    complete = {"feature_set": "transactions", "start": iso(day(1)), "end": iso(day(3))}
    plan = post(d, "/api/backfill/dry-run", complete).json()
    assert plan["planned_jobs"] == 0 and plan["jobs"] == []
    refused = post(d, "/api/backfill", complete)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        f"transactions v1: nothing to do: no time in [{iso(day(1))}, {iso(day(3))}) is Incomplete or None "
        "for offline,online: no run triggered"
    )
    assert plan["nothing_to_do"] + ": no run triggered" == refused.json()["detail"]
    pending = post(
        d, "/api/backfill", {"feature_set": "transactions", "start": iso(day(7)), "end": iso(day(8))}
    )
    assert (
        pending.status_code == 409 and "nothing to do" in pending.json()["detail"]
    )  # Pending is never taken
    assert backfill_runs(d) == runs
    assert interval_state(d) == state


def test_a_range_of_more_than_max_jobs_is_refused_naming_the_count(deployment: Deployment) -> None:
    d = deployment
    runs, state = backfill_runs(d), interval_state(d)
    decades = {"feature_set": "accounts", "start": "1950-01-01T00:00:00Z", "end": "1990-01-01T00:00:00Z"}
    for path in ("/api/backfill/dry-run", "/api/backfill"):
        refused = post(d, path, decades)
        assert refused.status_code == 400, refused.text
        assert refused.json()["detail"] == (
            "the backfill of accounts v1 [1950-01-01T00:00:00Z, 1990-01-01T00:00:00Z) would plan 14,610 jobs, "
            "more than the 10,000 allowed (max_jobs): narrow the window, or allow 14,610 jobs"
        )
    three = {"feature_set": "transactions", "start": iso(day(2)), "end": iso(day(6)), "max_jobs": 2}
    refused = post(d, "/api/backfill", three)
    assert (
        refused.status_code == 400
        and "would plan 3 jobs, more than the 2 allowed" in refused.json()["detail"]
    )
    assert post(d, "/api/backfill", {**three, "max_jobs": 0}).json()["detail"].startswith("max_jobs:")
    assert post(d, "/api/backfill/dry-run", {**three, "max_jobs": 3}).json()["planned_jobs"] == 3  # allowed
    assert backfill_runs(d) == runs
    assert interval_state(d) == state


def test_snapping_widens_a_window_to_whole_chunks_like_the_planner() -> None:
    hour, day_s = 3600, 86400
    monday = to_epoch("2024-01-01")  # chunks are multiples of max_job_window since the epoch
    assert snap_window(monday + 23 * hour + 16 * 60 + 48, monday + day_s + 43 * 60 + 12, day_s) == (
        monday,
        monday + 2 * day_s,
    )
    assert snap_window(monday, monday + day_s, day_s) == (monday, monday + day_s)  # on the grid: unchanged
    assert snap_window(monday + 90, monday + hour + 1, hour) == (monday, monday + 2 * hour)
    week = 7 * day_s  # the epoch was a Thursday: so are the edges of 7d chunks, as the planner cuts them
    start, end = snap_window(monday, monday + day_s, week)
    assert (start, end) == (to_epoch("2023-12-28"), to_epoch("2024-01-04"))
    with pytest.raises(ValueError):
        snap_window(monday, monday, day_s)


def test_an_off_grid_range_is_snapped_by_the_dry_run_and_refused_by_the_trigger(
    deployment: Deployment,
) -> None:
    d = deployment
    runs, state = backfill_runs(d), interval_state(d)
    start, end = day(3) - 43 * 60 - 12, day(4) + 43 * 60 + 12  # as dragged: 23:16:48Z -> 00:43:12Z
    assert iso(start).endswith("T23:16:48Z") and iso(end).endswith("T00:43:12Z")
    body = {"feature_set": "transactions", "start": iso(start), "end": iso(end)}
    plan = post(d, "/api/backfill/dry-run", body).json()
    assert (plan["start"], plan["end"]) == (iso(day(2)), iso(day(5)))  # whole days around it
    assert plan["requested"] == {"start": iso(start), "end": iso(end)} and plan["snapped"] is True
    assert plan["max_job_window"] == 86400 and plan["planned_jobs"] == 2  # days 3 and 4 (day 2 is Complete)
    refused = post(d, "/api/backfill", body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"] == (
        f"start: [{iso(start)}, {iso(end)}) is not on the chunk edges of transactions v1 (max_job_window 1d): "
        f"ask for [{iso(day(2))}, {iso(day(5))})"
    )
    assert backfill_runs(d) == runs
    assert interval_state(d) == state
    store = FeatureStore(str(d.config), check_transformations=False)
    try:  # the core's check, as the API makes it
        request = store.backfill_request("transactions", day(2), day(5), prefix="")
        request.check_on_chunks(prefix="")
        with pytest.raises(BadInput, match="^end: "):
            store.backfill_request("transactions", day(2), day(5) - 1, prefix="").check_on_chunks(prefix="")
    finally:
        store.close()


def test_the_backfill_dag_state_and_who_may_unpause_it(deployment: Deployment) -> None:
    d = deployment
    admin = get(d, "/api/backfill-dag").json()
    assert admin == {
        "dag_id": DAG_ID,
        "exists": True,
        "is_paused": False,
        "can_trigger": True,
        "can_unpause": True,
    }
    viewer = get(d, "/api/backfill-dag", user="viewer").json()
    assert viewer["can_trigger"] is False and viewer["can_unpause"] is False
    d.airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
    try:
        assert get(d, "/api/backfill-dag", user="viewer").json()["is_paused"] is True
        for user, code in (("viewer", 403), ("nobody", 403), (None, 401)):
            refused = requests.post(
                f"{d.airflow.base_url}/featurestore/api/backfill-dag/unpause",
                headers={"Authorization": f"Bearer {d.airflow.token(user)}"} if user else {},
                timeout=30,
            )
            assert refused.status_code == code, (user, refused.text)
        assert d.airflow.api("GET", f"/dags/{DAG_ID}")["is_paused"] is True
        unpaused = requests.post(
            f"{d.airflow.base_url}/featurestore/api/backfill-dag/unpause",
            headers={"Authorization": f"Bearer {d.airflow.token('admin')}"},
            timeout=30,
        )
        assert unpaused.status_code == 200 and unpaused.json()["is_paused"] is False, unpaused.text
        assert d.airflow.api("GET", f"/dags/{DAG_ID}")["is_paused"] is False
        events = d.airflow.api("GET", "/eventLogs", params={"dag_id": DAG_ID, "event": "patch_dag"})
        assert any(
            e["owner"] == "admin" and "featurestore status page" in (e["extra"] or "")
            for e in events["event_logs"]
        ), events
    finally:
        d.airflow.unpause(DAG_ID)


# ---- the page in a real browser ---------------------------------------------------------------


def test_the_trigger_form_draws_data_status_and_stores_as_multi_selects(deployment: Deployment) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = deployment
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            sign_in(d, page)
            page.get_by_role("button", name="Browse").wait_for()
            page.goto(f"{d.airflow.base_url}/dags/{DAG_ID}")
            page.get_by_role("button", name="Trigger").first.click()
            form = page.locator("[role=dialog][data-state=open]")
            expect(form.get_by_text("Run Parameters")).to_be_visible(timeout=30_000)
            for name, chosen, offered in (
                ("data_status", ["None", "Incomplete"], ["Pending", "Complete"]),
                ("stores", ["offline", "online"], []),
            ):
                widget = form.locator(f"#element_{name}")
                expect(widget).to_be_visible()
                assert form.locator(f"textarea[name=element_{name}], textarea#element_{name}").count() == 0
                combo = widget.get_by_role("combobox")
                assert combo.get_attribute("aria-label") == "Select one or multiple values"
                chips = widget.locator("[aria-label^='Remove ']")
                assert [c.get_attribute("aria-label") for c in chips.all()] == [f"Remove {v}" for v in chosen]
                values = form.locator(f"input[type=hidden][name=element_{name}]")
                assert [v.get_attribute("value") for v in values.all()] == chosen  # what the form submits
                combo.click()  # the menu offers the options not chosen yet
                options = page.get_by_role("option")
                if offered:
                    expect(options.first).to_be_visible()
                assert [o.inner_text() for o in options.all()] == offered, name
                # A click elsewhere closes the menu (Escape would close the whole dialog, Tab would
                # choose the option under the cursor).
                form.get_by_text(f"Trigger Dag - {DAG_ID}").click()
                expect(options).to_have_count(0)
                assert [c.get_attribute("aria-label") for c in chips.all()] == [f"Remove {v}" for v in chosen]
            form.locator("#element_stores").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "backfill-form.png"), full_page=True)
        finally:
            browser.close()


def test_the_page_warns_when_the_backfill_dag_is_paused_and_an_admin_unpauses_it(
    deployment: Deployment,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = deployment
    d.airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                viewer = browser.new_page(viewport={"width": 1400, "height": 900})
                sign_in(d, viewer, "viewer")
                frame = open_status_page(viewer)
                warning = frame.locator("#dag-state")
                expect(warning).to_contain_text(f"The DAG {DAG_ID} is paused in Airflow", timeout=30_000)
                expect(warning).to_contain_text("Ask an Airflow user who may edit it to unpause it")
                assert warning.get_by_role("button").count() == 0  # a viewer may not
                viewer.close()

                page = browser.new_page(viewport={"width": 1400, "height": 900})
                sign_in(d, page)
                frame = open_status_page(page)
                frame.locator("#feature-set").select_option("transactions:1")
                warning = frame.locator("#dag-state")
                expect(warning).to_contain_text(
                    f"The DAG {DAG_ID} is paused in Airflow: a backfill triggered here waits, queued, until it "
                    "is unpaused.",
                    timeout=30_000,
                )
                expect(frame.locator(".store[data-store=online] .bar").first).to_be_visible(timeout=30_000)
                page.screenshot(path=str(ARTIFACTS / "status-page-paused.png"))
                warning.get_by_role("button", name=f"Unpause {DAG_ID}").click()
                expect(warning).to_be_hidden(timeout=30_000)
                assert d.airflow.api("GET", f"/dags/{DAG_ID}")["is_paused"] is False
            finally:
                browser.close()
    finally:
        d.airflow.unpause(DAG_ID)


def test_the_page_in_chromium(deployment: Deployment) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = deployment
    jobs = get(d, "/api/jobs?feature_set=transactions").json()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            sign_in(d, page)
            # The navigation entry: Browse -> Feature store opens the page inside the Airflow UI.
            frame = open_status_page(page)
            frame.locator("#feature-set").select_option("transactions:1")
            expect(frame.locator(".store[data-store=online] .bar").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)

            for store, expected in EXPECTED.items():
                track = frame.locator(f".store[data-store={store}] .track")
                box = track.bounding_box()
                bars = track.locator(".bar")
                assert bars.count() == len(expected)
                span = day(8) - day(1)
                for index, (a, b, status) in enumerate(expected):
                    bar = bars.nth(index)
                    assert bar.get_attribute("data-status") == status
                    fill = bar.evaluate("node => getComputedStyle(node).fill")
                    assert fill == COLOURS[status], (store, status, fill)
                    drawn = bar.bounding_box()
                    left = box["x"] + box["width"] * (day(a) - day(1)) / span
                    width = box["width"] * (day(b) - day(a)) / span
                    assert abs(drawn["x"] - left) < 2 and abs(drawn["width"] - width) < 2, (
                        store,
                        index,
                        drawn,
                    )
            assert frame.locator(".store[data-store=offline] .freshness").get_attribute(
                "data-freshness"
            ) == iso(day(6))
            # The freshness overview: every feature set version and store, late red and ok green.
            rows = frame.locator("#freshness-table tbody tr")
            expect(rows).to_have_count(4)
            for store, sla_state, colour in (("offline", "ok", "Complete"), ("online", "late", "Incomplete")):
                cell = frame.locator(
                    f"#freshness-table tr[data-feature-set=transactions][data-store={store}] .sla-{sla_state}"
                )
                expect(cell).to_have_text(sla_state)
                assert cell.evaluate("node => getComputedStyle(node).color") == COLOURS[colour]
                badge = frame.locator(f".store[data-store={store}] .sla")
                assert badge.get_attribute("data-state") == sla_state and "SLA 5d" in badge.inner_text()
            assert frame.locator("#freshness-table tr[data-feature-set=accounts] .sla-no_sla").count() == 2

            failed = next(j for j in jobs if j["state"] == "failed")
            frame.locator(".store[data-store=online] .bar[data-status=Incomplete]").hover()
            tooltip = frame.locator("#tooltip")
            expect(tooltip).to_be_visible()
            text = tooltip.inner_text()
            assert "Incomplete" in text and iso(day(5)) in text and iso(day(6)) in text
            assert failed["id"] in text

            # Drag across the None gap of days 3-5, starting and ending a little off the day edges
            # (as a hand does): the selection snaps to whole days, the backfill chunks.
            track = frame.locator(".store[data-store=offline] .track").bounding_box()
            span = day(8) - day(1)

            def at(t: int) -> float:
                return track["x"] + track["width"] * (t - day(1)) / span

            page.mouse.move(at(day(3)) - 6, track["y"] + 10)
            page.mouse.down()
            page.mouse.move(at(day(4)), track["y"] + 10, steps=5)
            page.mouse.move(at(day(5)) + 6, track["y"] + 10, steps=5)
            page.mouse.up()
            expect(frame.locator("#selection")).to_be_visible()
            expect(frame.locator("#selection-range")).to_have_text(f"{iso(day(3))} → {iso(day(5))} (2d)")
            frame.locator("#selection-backfill").click()
            dialog = frame.locator("#backfill-dialog")
            expect(dialog).to_be_visible()
            for field, wanted in (("start", day(3)), ("end", day(5))):
                assert dialog.locator(f"input[name={field}]").input_value() == iso(wanted), field  # ISO, UTC
            # The dry run first: the jobs it would plan, nothing triggered yet.
            expect(dialog.locator("#bf-plan")).to_have_text(
                f"2 job(s) would be planned now for {iso(day(3))} → {iso(day(5))}.", timeout=30_000
            )
            # A window typed off the grid is widened to whole chunks before anything is triggered.
            dialog.locator("input[name=end]").fill(iso(day(5) - 3600))
            dialog.locator("input[name=end]").dispatch_event("change")
            expect(dialog.locator("#bf-plan")).to_have_text(
                f"2 job(s) would be planned now for {iso(day(3))} → {iso(day(5))} (widened to whole 1d chunks).",
                timeout=30_000,
            )
            expect(dialog.locator("#bf-submit")).to_be_enabled()
            dialog.locator("#bf-submit").click()
            expect(dialog.locator("#bf-message")).to_contain_text("Triggered", timeout=30_000)
            link = dialog.locator("#bf-run-link")
            expect(link).to_be_visible()
            run = d.airflow.wait_for_run(DAG_ID, link.inner_text())
            assert run["state"] == "success", d.explain(run["dag_run_id"])
            assert run["conf"]["start"] == iso(day(3)) and run["conf"]["end"] == iso(day(5))
            assert run["triggering_user_name"] == "admin"
            for store, intervals in d.statuses("transactions").items():
                assert any(
                    a <= iso(day(3)) and iso(day(5)) <= b and status == "Complete"
                    for a, b, status in intervals
                ), (store, intervals)
            dialog.locator("#bf-cancel").click()

            ran = next(j for j in jobs if j["airflow"] and j["start"] == iso(day(1)))
            row = frame.locator(f"#jobs tr[data-job='{ran['id']}']")
            expect(row).to_contain_text("succeeded")
            short = 1_000_000 - ran["rows_written"]["offline"]
            warned = row.locator(".checks .check-warned")
            expect(warned).to_have_text(f"min_rows: warned ({short:,})")
            assert warned.evaluate("node => getComputedStyle(node).color") == "rgb(138, 90, 0)"
            expect(row.locator(".checks .check-passed")).to_have_text("1 passed")
            row.locator("a.log-link").click()  # the Airflow UI around the page goes to the task's log
            airflow = ran["airflow"]
            task_page = (
                f"/dags/{DAG_ID}/runs/{airflow['run_id']}/tasks/materialize/mapped/{airflow['map_index']}"
            )
            page.wait_for_function(
                "wanted => decodeURIComponent(location.pathname).includes(wanted)",
                arg=task_page,
                timeout=30_000,
            )
            expect(page.get_by_text(f"[{ran['start']}, {ran['end']})").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "status-page-log.png"))
        finally:
            browser.close()


# ---- the grid, the view in the address, refreshing, the DAG tab, several stores, cancel --------
# (last in the module: they add accounts time the tests above compare exactly)

SCREENSHOTS = Path(os.environ.get("FEATURESTORE_TEST_SCREENSHOTS", ARTIFACTS))


def status_at(intervals: list[tuple[str, str, str]], at: str) -> str:
    """The status of the time `at` (ISO) in one store's `interval_view`; None off the axis."""
    return next((status for a, b, status in intervals if a <= at < b), "None")


def test_the_grid_lists_each_interval_with_its_job_reasons_and_airflow_ids(deployment: Deployment) -> None:
    d = deployment
    document = get(d, "/api/grid?feature_set=transactions").json()
    views = d.statuses("transactions")
    assert (document["start"], document["end"]) == (iso(day(1)), iso(day(8)))
    assert [r["start"] for r in document["rows"]] == sorted(
        (r["start"] for r in document["rows"]), reverse=True
    )
    for row in document["rows"]:  # each row's statuses are the stored ones
        for store in ("offline", "online"):
            assert row["stores"][store]["status"] == status_at(views[store], row["start"]), (store, row)
    by_start = {row["start"]: row for row in document["rows"]}
    (failed,) = by_start[iso(day(5))]["job_ids"]
    # Failed, its lookback reaching before the first source day, the min_rows warn check violated.
    assert document["jobs"][failed]["state"] == "failed"
    assert document["jobs"][failed]["reasons"] == ["failed", "partial lookback", "checks warned"]
    (queued,) = by_start[iso(day(7))]["job_ids"]
    assert document["jobs"][queued]["state"] == "queued" and by_start[iso(day(6))]["job_ids"] == []
    (ran,) = by_start[iso(day(1))]["job_ids"]
    airflow = document["jobs"][ran]["airflow"]
    assert airflow["dag_id"] == DAG_ID and airflow["task_id"] == "materialize" and airflow["map_index"] >= 0
    assert airflow["run_id"] in document["runs"]
    assert document["jobs"][ran]["reasons"] == ["partial lookback", "checks warned"]

    pending = get(d, "/api/grid?feature_set=transactions&status=Pending").json()
    assert [r["start"] for r in pending["rows"]] == [iso(day(7))]
    one_run = get(d, "/api/grid", params={"feature_set": "transactions", "run_id": airflow["run_id"]}).json()
    assert one_run["rows"] and all(
        one_run["jobs"][j]["airflow"]["run_id"] == airflow["run_id"]
        for r in one_run["rows"]
        for j in r["job_ids"]
    )
    online = get(
        d, f"/api/grid?feature_set=transactions&stores=online&start={iso(day(5))}&end={iso(day(6))}"
    ).json()
    assert [list(r["stores"]) for r in online["rows"]] == [["online"]]
    for path, named in (("&status=Late", "status:"), ("&stores=attic", "stores:"), ("&limit=0", "limit:")):
        refused = get(d, "/api/grid?feature_set=transactions" + path)
        assert refused.status_code == 400 and refused.json()["detail"].startswith(named), refused.text


def test_the_store_is_named_by_its_project_and_its_dags(deployment: Deployment) -> None:
    d = deployment
    listing = get(d, "/api/stores").json()
    assert listing["several"] is False
    (store,) = listing["stores"]
    assert store["project"] == d.project and store["backfill_dag_id"] == DAG_ID
    assert store["dags"] == {
        DAG_ID: None,
        "featurestore_monitor": None,
        "featurestore_materialize__accounts": "accounts",
        "featurestore_materialize__transactions": "transactions",
    }
    assert get(d, f"/api/feature-sets?project={d.project}").json()["project"] == d.project
    unknown = get(d, "/api/feature-sets?project=nope")
    assert unknown.status_code == 400 and unknown.json()["detail"].startswith(
        "project: no feature store 'nope'"
    )
    assert get(d, "/api/feature-sets").json()["editable_dags"] == list(store["dags"])
    assert get(d, "/api/feature-sets", user="viewer").json()["editable_dags"] == []


SEVERAL_STORES = """
import json, os
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import _AuthManagerState
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.security import get_user

ALLOWED = json.loads(os.environ["ALLOWED"])  # method -> the DAG ids the user may use so

class PerDag(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None):
        return details is not None and details.id in ALLOWED.get(method, [])

_AuthManagerState.instance = PerDag()
from airflow_provider_featurestore.airflow.status_page.app import app
app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="alice", role="viewer")
client = TestClient(app)
result = {}
for path in json.loads(os.environ["PATHS"]):
    response = client.get(path)
    result[path] = [response.status_code, response.json() if path.startswith("/api") else response.text[:300]]
response = client.post("/api/cancel?project=" + os.environ["FIRST"], json={"feature_set": "accounts", "job_id": "x"})
result["cancel"] = [response.status_code, response.json()]
"""


def test_several_stores_each_named_by_its_project_with_access_per_store(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Two configs in the Variable (a JSON list): the page lists the stores the user may read, each
    with its own prefixed DAG ids, and checks each request against its own store's DAG. Airflow's
    SimpleAuthManager grants by role, not per DAG, so this test's auth manager grants per DAG id
    (the one fake here); the rest is real: the app, Airflow's security dependencies, the
    deployment's metadata database, both feature stores' interval tables."""
    d = deployment
    second = tmp_path / "second"
    shutil.copytree(ROOT / "examples" / "fraud", second, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (second / "data").mkdir()
    config = second / "featurestore.yaml"
    config.write_text(config.read_text().replace("project: fraud", "project: second"))
    first = d.project
    allowed = {"GET": [f"second__{DAG_ID}"], "PUT": [f"second__{DAG_ID}"]}
    paths = [
        "/api/stores",
        "/api/feature-sets?project=second",
        f"/api/feature-sets?project={first}",
        f"/api/grid?project={first}&feature_set=transactions",
        "/api/grid?project=second&feature_set=transactions",
        "/?dag_id=second__featurestore_materialize__accounts",
        f"/?dag_id={first}__featurestore_backfill",
        "/static/status.js",
    ]
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(d.airflow.home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": d.airflow.sql_alchemy_conn,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "",
        "AIRFLOW_VAR_FEATURESTORE_CONFIG": json.dumps([str(d.config), str(config)]),
        "ALLOWED": json.dumps(allowed),
        "PATHS": json.dumps(paths),
        "FIRST": first,
    }
    result, output = run_script(env, SEVERAL_STORES + PRINT_RESULT, timeout=180)
    code = {path: result[path][0] for path in paths}
    assert code == {
        "/api/stores": 200,
        "/api/feature-sets?project=second": 200,
        f"/api/feature-sets?project={first}": 403,
        f"/api/grid?project={first}&feature_set=transactions": 403,
        "/api/grid?project=second&feature_set=transactions": 200,
        "/?dag_id=second__featurestore_materialize__accounts": 200,
        f"/?dag_id={first}__featurestore_backfill": 403,
        "/static/status.js": 200,
    }, output[-3000:]
    listing = result["/api/stores"][1]
    assert listing["several"] is True
    assert [s["project"] for s in listing["stores"]] == ["second"]  # only the store it may read
    assert listing["stores"][0]["dags"]["second__featurestore_materialize__accounts"] == "accounts"
    second_sets = result["/api/feature-sets?project=second"][1]
    assert second_sets["backfill_dag_id"] == f"second__{DAG_ID}"
    assert second_sets["editable_dags"] == [f"second__{DAG_ID}"]
    assert "Feature store · second" in result["/?dag_id=second__featurestore_materialize__accounts"][1]
    assert result["cancel"][0] == 403  # no read access to the first store's DAG


def test_cancel_needs_edit_rights_on_the_dag_and_is_in_the_audit_log(deployment: Deployment) -> None:
    d = deployment
    store = d.store()
    try:
        (job,) = store.claim(store.backfill_request("accounts", day(8), day(9), stores=["offline"]))
    finally:
        store.close()
    body = {"feature_set": "accounts", "job_id": job.id}
    for user, code in (("viewer", 403), ("nobody", 403), (None, 401)):
        refused = post(d, "/api/cancel", body, user=user)
        assert refused.status_code == code, (user, refused.text)
    assert next(j for j in d.jobs("accounts") if j.id == job.id).state == "queued"
    for wrong, code, detail in (
        ({"feature_set": "accounts"}, 400, "give job_id or run_id"),
        ({"feature_set": "accounts", "job_id": "nope"}, 404, "job nope: no job of accounts"),
        ({"feature_set": "accounts", "run_id": "nope"}, 404, "Airflow run nope: no job of accounts"),
    ):
        answer = post(d, "/api/cancel", wrong)
        assert answer.status_code == code and detail in answer.json()["detail"], answer.text

    done = post(d, "/api/cancel", body)
    assert done.status_code == 200, done.text
    assert done.json() == {"feature_set": "accounts", "cancelled": [job.id], "dag_ids": [DAG_ID]}
    record = next(j for j in d.jobs("accounts") if j.id == job.id)
    assert record.state == "cancelled" and record.error == "cancelled: from the status page by admin"
    assert status_at(d.statuses("accounts")["offline"], iso(day(8))) == "Incomplete"
    events = d.airflow.api("GET", "/eventLogs", params={"event": "featurestore.cancel"})["event_logs"]
    (event,) = [e for e in events if job.id in (e["extra"] or "")]
    assert event["owner"] == "admin" and event["dag_id"] == DAG_ID
    assert json.loads(event["extra"])["jobs"] == [job.id]
    again = post(d, "/api/cancel", body)
    assert again.status_code == 409 and "nothing to cancel, its jobs are cancelled" in again.json()["detail"]
    grid = get(d, f"/api/grid?feature_set=accounts&start={iso(day(8))}&end={iso(day(9))}").json()
    assert grid["jobs"][job.id]["reasons"][0] == "cancelled"


def test_the_dag_tab_is_an_external_view_of_every_dag(deployment: Deployment) -> None:
    d = deployment
    plugins = d.airflow.api("GET", "/plugins")["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "featurestore"]
    views = {view["destination"]: view for view in ours["external_views"]}
    assert views["nav"]["url_route"] == "featurestore" and views["nav"]["href"] == "/featurestore/"
    assert views["dag"]["url_route"] == "featurestore-dag"
    assert views["dag"]["href"] == "/featurestore/?dag_id={DAG_ID}"


def grid_row(frame, start: int):  # type: ignore[no-untyped-def]
    return frame.locator(f"#grid tr[data-start='{iso(start)}']").first


def test_the_grid_and_the_view_in_the_address_in_chromium(deployment: Deployment) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = deployment
    jobs = get(d, "/api/jobs?feature_set=transactions").json()
    ran = next(j for j in jobs if j["airflow"] and j["start"] == iso(day(1)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            sign_in(d, page)
            frame = open_status_page(page)
            frame.locator("#feature-set").select_option("transactions:1")
            expect(grid_row(frame, day(5)).locator("td.status[data-store=online]")).to_have_attribute(
                "data-status", "Incomplete", timeout=30_000
            )
            # The legend: every data status, "never requested" included, and every job state.
            legend = frame.locator("#legend [data-status]")
            assert [e.get_attribute("data-status") for e in legend.all()] == [
                "Complete", "Incomplete", "Pending", "None", "never requested", "Mixed",
            ]  # fmt: skip
            expect(frame.locator("#legend .job-states b")).to_have_text(
                ["queued", "running", "succeeded", "failed", "cancelled"]
            )
            # The grid: states, reasons, jobs; day 7 is Pending, so the page refreshes itself.
            failed = grid_row(frame, day(5))
            expect(failed.locator(".state")).to_have_text("failed")
            expect(failed.locator(".reason")).to_have_text(["failed", "partial lookback", "checks warned"])
            expect(grid_row(frame, day(7)).locator(".state")).to_have_text("queued")
            expect(grid_row(frame, day(6))).to_contain_text("never materialized")
            expect(frame.locator("body")).to_have_attribute("data-refreshing", "on")
            expect(frame.locator("#refresh-state")).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "status-page-overview.png"), full_page=True)

            # From/To in ISO, like everything else; what is not ISO is refused, saying so.
            assert frame.locator("#range-start").input_value() == iso(day(1))
            assert frame.locator("#range-end").input_value() == iso(day(8))
            frame.locator("#range-start").fill("11/24/2026, 12:00:00 AM")
            frame.locator("#range-apply").click()
            expect(frame.locator("#error")).to_have_text(
                'From: "11/24/2026, 12:00:00 AM" is not a time in UTC such as 2026-11-24T00:00:00Z (or 2026-11-24)'
            )
            frame.locator("#range-start").fill(iso(day(1)))
            frame.locator("#range-end").fill(iso(day(6)))
            frame.locator("#range-apply").click()
            expect(frame.locator("#grid-scope")).to_contain_text(f"in {iso(day(1))} → {iso(day(6))}")

            # Filters, and the whole view in the address of the Airflow UI: a reload keeps it.
            frame.locator("#grid-status input[value=Incomplete]").check()
            expect(frame.locator("#grid tbody tr")).to_have_count(1)
            page.wait_for_function("() => location.search.includes('status=Incomplete')")
            for part in (
                "fs=transactions",
                "v=1",
                f"start={iso(day(1))}",
                f"end={iso(day(6))}",
                f"project={d.project}",
            ):
                assert part in page.url, (part, page.url)
            page.reload()
            frame = page.frame_locator("iframe")
            expect(frame.locator("#grid tbody tr")).to_have_count(1, timeout=30_000)
            expect(grid_row(frame, day(5))).to_be_visible()
            expect(frame.locator("#grid-status input[value=Incomplete]")).to_be_checked()
            assert frame.locator("#feature-set").input_value() == "transactions:1"
            assert frame.locator("#range-end").input_value() == iso(day(6))
            frame.locator("#grid-clear").click()
            frame.locator("#grid-run").select_option(ran["airflow"]["run_id"])
            expect(frame.locator("#grid tbody tr")).to_have_count(2)  # days 1 and 2: one run, two tasks
            frame.locator("#grid-clear").click()
            shown = get(d, f"/api/grid?feature_set=transactions&start={iso(day(1))}&end={iso(day(6))}").json()
            lines = sum(max(1, len(row["job_ids"])) for row in shown["rows"])  # a line per job
            expect(frame.locator("#grid tbody tr")).to_have_count(lines)
            page.screenshot(path=str(SCREENSHOTS / "status-page-grid.png"), full_page=True)

            # A click on the timeline reaches the interval's row, its job and its Airflow log.
            track = frame.locator(".store[data-store=offline] .track").bounding_box()
            x = track["x"] + track["width"] * 0.5 / 5  # the middle of day 1 of days 1-6
            page.mouse.click(x, track["y"] + 10)
            row = frame.locator("#grid tr.highlight")
            expect(row).to_have_attribute("data-job", ran["id"])
            expect(row).to_be_in_viewport()
            page.wait_for_function(f"() => location.search.includes('job={ran['id']}')")
            log = row.locator("a.log-link")
            href = log.get_attribute("href")
            airflow = ran["airflow"]
            task_page = (
                f"/dags/{DAG_ID}/runs/{airflow['run_id']}/tasks/materialize/mapped/{airflow['map_index']}"
            )
            assert requests.utils.unquote(href).startswith(task_page), href
            assert requests.get(d.airflow.base_url + href, timeout=30).status_code == 200  # a route of the UI
            run_href = row.locator("a.run-link").get_attribute("href")
            assert requests.utils.unquote(run_href) == f"/dags/{DAG_ID}/runs/{airflow['run_id']}"
            log.click()
            page.wait_for_function(
                "wanted => decodeURIComponent(location.pathname).includes(wanted)",
                arg=task_page,
                timeout=30_000,
            )
            expect(page.get_by_text(f"[{ran['start']}, {ran['end']})").first).to_be_visible(timeout=30_000)
            # Back: the page again, with the view and the chosen job.
            page.go_back()
            frame = page.frame_locator("iframe")
            expect(frame.locator("#grid tr.highlight")).to_have_attribute(
                "data-job", ran["id"], timeout=30_000
            )
            assert frame.locator("#range-end").input_value() == iso(day(6))
            # Another feature set is a step of its own: Back returns to the one before.
            frame.locator("#feature-set").select_option("accounts:1")
            page.wait_for_function("() => location.search.includes('fs=accounts')")
            page.evaluate("() => history.back()")  # the frame's entry: no load of the UI to wait for
            expect(frame.locator("#feature-set")).to_have_value("transactions:1", timeout=30_000)
            expect(frame.locator("#range-end")).to_have_value(iso(day(6)))
            page.wait_for_function("() => location.search.includes('fs=transactions')")
        finally:
            browser.close()


def test_the_page_refreshes_while_pending_and_stops_after(deployment: Deployment) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = deployment
    store = d.store()
    try:
        (job,) = store.claim(store.backfill_request("accounts", day(9), day(10), stores=["offline"]))
        (doomed,) = store.claim(store.backfill_request("accounts", day(6), day(7), stores=["offline"]))
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                sign_in(d, page)
                frame = open_status_page(page)
                frame.locator("#feature-set").select_option("accounts:1")
                cell = grid_row(frame, day(9)).locator("td.status[data-store=offline]")
                expect(cell).to_have_attribute("data-status", "Pending", timeout=30_000)
                expect(frame.locator("body")).to_have_attribute("data-refreshing", "on")
                # A queued job run by the CLI counts as the backfill DAG's: an admin may cancel it.
                expect(grid_row(frame, day(9)).locator("button.cancel-job")).to_be_visible()
                button = grid_row(frame, day(6)).locator("button.cancel-job")
                button.click()
                expect(button).to_have_text("Really cancel?")  # a second click confirms
                button.click()
                expect(frame.locator("#grid-message")).to_have_text(f"Cancelled 1 job(s): {doomed.id}")
                cancelled = grid_row(frame, day(6))
                expect(cancelled.locator("td.status[data-store=offline]")).to_have_attribute(
                    "data-status", "Incomplete"
                )
                expect(cancelled.locator(".state")).to_have_text("cancelled")
                expect(cancelled.locator(".reason").first).to_have_text("cancelled")
                expect(cancelled.locator("button.cancel-job")).to_have_count(0)
                # The job ends (as a worker would end it): the page shows it by itself, and stops.
                store.table.start_job(job.id)
                store.table.finish_job(job.id, {"offline": True}, rows_read=0, rows_written={"offline": 0})
                expect(cell).to_have_attribute("data-status", "Complete", timeout=30_000)
                expect(frame.locator("body")).to_have_attribute("data-refreshing", "off")
                expect(frame.locator("#refresh-state")).to_be_hidden()
                refreshes = frame.locator("body").get_attribute("data-refreshes")
                assert int(refreshes or 0) >= 1
                page.wait_for_timeout(2 * 4000 + 500)  # two refresh periods: no further refresh
                assert frame.locator("body").get_attribute("data-refreshes") == refreshes
            finally:
                browser.close()
    finally:
        store.close()


def test_the_dag_tab_shows_the_feature_sets_page(deployment: Deployment) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = deployment
    scheduled = "featurestore_materialize__transactions"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            sign_in(d, page)
            page.get_by_role("button", name="Browse").wait_for()
            page.goto(f"{d.airflow.base_url}/dags/{scheduled}")
            page.get_by_role("tab", name="Feature store").or_(
                page.get_by_role("link", name="Feature store")
            ).first.click()
            page.wait_for_url(re.compile(rf"/dags/{scheduled}/plugin/featurestore-dag"))
            frame = page.frame_locator("iframe")
            expect(frame.locator("#dag-context")).to_have_text(
                f"The DAG {scheduled} materializes the feature set transactions of the feature store {d.project}.",
                timeout=30_000,
            )
            assert frame.locator("#feature-set").input_value() == "transactions:1"
            expect(grid_row(frame, day(5))).to_be_visible()
            # The view in the UI's address here too: a reload keeps it.
            frame.locator("#range-start").fill(iso(day(2)))
            frame.locator("#range-end").fill(iso(day(4)))
            frame.locator("#range-apply").click()
            page.wait_for_function(f"() => location.search.includes('end={iso(day(4))}')")
            page.reload()
            frame = page.frame_locator("iframe")
            expect(frame.locator("#grid-scope")).to_contain_text(
                f"in {iso(day(2))} → {iso(day(4))}", timeout=30_000
            )
            expect(frame.locator("#dag-context")).to_contain_text(f"The DAG {scheduled} materializes")
            page.screenshot(path=str(SCREENSHOTS / "status-page-dag-tab.png"), full_page=True)

            page.goto(f"{d.airflow.base_url}/dags/{DAG_ID}/plugin/featurestore-dag")
            frame = page.frame_locator("iframe")
            expect(frame.locator("#dag-context")).to_have_text(
                f"The DAG {DAG_ID} belongs to the feature store {d.project}.", timeout=30_000
            )
        finally:
            browser.close()
