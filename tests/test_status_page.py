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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_featurestore.interval_table import StreamKey
from airflow_provider_featurestore.timeutil import iso, to_epoch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deployment import DAG_ID, ROOT, Deployment, day, fraud_deployment  # noqa: E402
from intervals_view import statuses as interval_view  # noqa: E402

PG_URL = os.environ.get("FEATURESTORE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("FEATURESTORE_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("FEATURESTORE_TEST_ARTIFACTS", ROOT / "test-artifacts"))
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


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("status_page")
    with fraud_deployment(base, PG_URL, REDIS_URL, users=USERS) as d:
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
    # The worker's exception first (the Python worker's traceback follows it).
    assert in_day_5[0]["error"].startswith(
        "airflow_provider_featurestore.online.OnlineStoreUnavailable: cannot reach the online store at "
        "redis://127.0.0.1:1/0"
    ), in_day_5[0]["error"]


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
    pending = post(
        d, "/api/backfill", {"feature_set": "transactions", "start": iso(day(7)), "end": iso(day(8))}
    )
    assert pending.status_code == 201 and pending.json()["planned_jobs"] == 0  # time already Pending
    assert len(backfill_runs(d)) == len(before) + 1
    done = d.airflow.wait_for_run(DAG_ID, pending.json()["dag_run_id"])
    assert done["state"] == "success", d.explain(done["dag_run_id"])

    body = {"feature_set": "accounts", "start": iso(day(1)), "end": iso(day(2)), "stores": ["offline"]}
    answer = post(d, "/api/backfill", body)
    assert answer.status_code == 201, answer.text
    triggered = answer.json()
    assert triggered["planned_jobs"] == 1
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


# ---- the page in a real browser ---------------------------------------------------------------


def test_the_page_in_chromium(deployment: Deployment) -> None:
    from playwright.sync_api import expect, sync_playwright

    d = deployment
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/services.sh (it installs Debian's chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    jobs = get(d, "/api/jobs?feature_set=transactions").json()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{d.airflow.base_url}/")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(d.airflow.passwords["admin"])
            page.get_by_role("button", name="Sign in").click()
            # The navigation entry: Browse -> Feature store opens the page inside the Airflow UI.
            page.get_by_role("button", name="Browse").click()
            page.get_by_role("menuitem", name="Feature store").click()
            page.wait_for_url(re.compile(r"/plugin/featurestore$"))
            frame = page.frame_locator("iframe")
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

            failed = next(j for j in jobs if j["state"] == "failed")
            frame.locator(".store[data-store=online] .bar[data-status=Incomplete]").hover()
            tooltip = frame.locator("#tooltip")
            expect(tooltip).to_be_visible()
            text = tooltip.inner_text()
            assert "Incomplete" in text and iso(day(5)) in text and iso(day(6)) in text
            assert failed["id"] in text

            # Drag across the None gap of days 3-5, then backfill it from the dialog.
            track = frame.locator(".store[data-store=offline] .track").bounding_box()
            span = day(8) - day(1)

            def at(t: int) -> float:
                return track["x"] + track["width"] * (t - day(1)) / span

            page.mouse.move(at(day(3)) + 1, track["y"] + 10)
            page.mouse.down()
            page.mouse.move(at(day(4)), track["y"] + 10, steps=5)
            page.mouse.move(at(day(5)) - 1, track["y"] + 10, steps=5)
            page.mouse.up()
            expect(frame.locator("#selection")).to_be_visible()
            frame.locator("#selection-backfill").click()
            dialog = frame.locator("#backfill-dialog")
            expect(dialog).to_be_visible()
            pixel = span / track["width"]
            for field, wanted in (("start", day(3)), ("end", day(5))):
                value = dialog.locator(f"input[name={field}]").input_value()  # the selection, to the second
                assert abs(to_epoch(value + "Z") - wanted) <= 2 * pixel, (field, value)
                dialog.locator(f"input[name={field}]").fill(iso(wanted)[:-1])
            dialog.locator("#bf-submit").click()
            link = dialog.locator("#bf-run-link")
            expect(link).to_be_visible(timeout=30_000)
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
