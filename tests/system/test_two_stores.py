"""Two feature stores in one running Airflow (`api-server`, `scheduler`, `dag-processor`,
`triggerer`): two private copies of the fraud example with projects of their own, both named by
the Variable `featurestore_config` as a JSON list.

Both sets of DAGs parse (each id prefixed by its project), a backfill triggered on each store's
own backfill DAG materializes into that store alone, and the status page lists both stores and
answers every request for the store its `project` names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis
import requests
from deltalake import DeltaTable

from airflow_provider_featurestore.core.timeutil import iso, to_epoch

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # the support package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.browser import ARTIFACTS, launch, open_status_page, sign_in  # noqa: E402
from support.deployment import Deployment, day, fraud_deployments  # noqa: E402

PG_URL = os.environ.get("FEATURESTORE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Each store's backfill of transactions: one day for the first, the two days after a gap for the
# second, so each store's data and records show whose backfill landed there.
WINDOWS = [(day(1), day(2)), (day(3), day(5))]
ROWS_PER_DAY = 300  # the source data's transactions per day


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Deployment, str]]]:
    """Both stores, each after a backfill of its window through its own backfill DAG (its run id)."""
    base = tmp_path_factory.mktemp("two_stores")
    with fraud_deployments(base, PG_URL, REDIS_URL, 2) as deployments:
        runs = [d.backfill("transactions", *w) for d, w in zip(deployments, WINDOWS, strict=True)]
        for d, run_id in zip(deployments, runs, strict=True):
            run = d.airflow.wait_for_run(d.dag_id, run_id)
            assert run["state"] == "success", d.explain(run_id)
        yield list(zip(deployments, runs, strict=True))


def dag_ids(d: Deployment) -> set[str]:
    """The DAG ids one store of the fraud example must have (two feature sets with a schedule)."""
    return (
        {d.dag_id}
        | {f"{d.prefix}featurestore_materialize__{name}" for name in ("accounts", "transactions")}
        | {f"{d.prefix}featurestore_monitor"}
    )


def offline_days(d: Deployment, name: str) -> dict[int, int]:
    """Rows per source day in the store's offline Delta table of `name` v1 (none: {})."""
    path = d.root / "data" / "offline" / name / "v1"
    if not path.exists():
        return {}
    times = DeltaTable(str(path)).to_pandas(columns=["timestamp"])["timestamp"]
    days = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(days=1) * 86400
    return {int(k): int(v) for k, v in days.value_counts().sort_index().items()}


def page(d: Deployment, path: str) -> requests.Response:
    return requests.get(
        f"{d.airflow.base_url}/featurestore{path}",
        headers={"Authorization": f"Bearer {d.airflow.token()}"},
        timeout=30,
    )


def test_both_sets_of_dags_parse_in_the_dag_processor(stores: list[tuple[Deployment, str]]) -> None:
    airflow = stores[0][0].airflow
    expected = set().union(*(dag_ids(d) for d, _ in stores))

    def all_parsed() -> set[str] | None:
        found = {dag["dag_id"] for dag in airflow.api("GET", "/dags", params={"limit": 100})["dags"]}
        return found if expected <= found else None

    listed = airflow.wait(all_parsed, 120, f"not every DAG of both stores was parsed: {sorted(expected)}")
    assert listed == expected  # no unprefixed ids: several stores never build the plain ones
    errors = airflow.api("GET", "/importErrors")
    assert errors["total_entries"] == 0, errors


def test_a_backfill_on_each_stores_dag_materializes_into_that_store_alone(
    stores: list[tuple[Deployment, str]],
) -> None:
    for (d, run_id), (start, end) in zip(stores, WINDOWS, strict=True):
        jobs = d.jobs("transactions")
        assert jobs and all(j.state == "succeeded" for j in jobs), [j.to_json() for j in jobs]
        assert {(j.airflow or {}).get("dag_id") for j in jobs} == {d.dag_id}
        assert {(j.airflow or {}).get("run_id") for j in jobs} == {run_id}
        assert sorted((j.start, j.end) for j in jobs) == [(t, t + 86400) for t in range(start, end, 86400)]
        assert d.jobs("accounts") == []  # nobody backfilled accounts, in either store
        for store in ("offline", "online"):
            assert d.statuses("transactions")[store] == [(iso(start), iso(end), "Complete")]
        # Exactly its own days' rows in its Delta table: the other store's backfill wrote nothing here.
        assert offline_days(d, "transactions") == dict.fromkeys(range(start, end, 86400), ROWS_PER_DAY)
        client = redis.Redis.from_url(REDIS_URL)
        try:
            assert next(client.scan_iter(f"{d.project}:transactions:v1:*", count=1000), None) is not None
        finally:
            client.close()


def test_the_status_page_lists_both_stores_and_answers_for_each(
    stores: list[tuple[Deployment, str]],
) -> None:
    first = stores[0][0]
    listing = page(first, "/api/stores")
    assert listing.status_code == 200, listing.text
    assert listing.json()["several"] is True
    described = {s["project"]: s for s in listing.json()["stores"]}
    assert set(described) == {d.project for d, _ in stores}
    for (d, run_id), (start, end) in zip(stores, WINDOWS, strict=True):
        q = f"project={d.project}"
        assert described[d.project]["backfill_dag_id"] == d.dag_id
        assert set(described[d.project]["dags"]) == dag_ids(d)

        sets = page(d, f"/api/feature-sets?{q}")
        assert sets.status_code == 200, sets.text
        assert sets.json()["project"] == d.project and sets.json()["backfill_dag_id"] == d.dag_id
        extents = {row["name"]: row["stores"]["offline"]["extent"] for row in sets.json()["feature_sets"]}
        assert extents == {"accounts": None, "transactions": {"start": iso(start), "end": iso(end)}}

        timeline = page(d, f"/api/timeline?{q}&feature_set=transactions")
        assert timeline.status_code == 200, timeline.text
        assert timeline.json()["axis"] == {"start": iso(start), "end": iso(end)}

        grid = page(d, f"/api/grid?{q}&feature_set=transactions")
        assert grid.status_code == 200, grid.text
        assert grid.json()["runs"] == [run_id]  # its own run's jobs, not the other store's
        assert {r["dag_id"] for r in (j["airflow"] for j in grid.json()["jobs"].values())} == {d.dag_id}

        freshness = page(d, f"/api/freshness?{q}&feature_set=transactions")
        assert freshness.status_code == 200, freshness.text
        fresh = {row["store"]: row for row in freshness.json()}
        assert set(fresh) == {"offline", "online"}, freshness.json()
        assert all(to_epoch(row["complete_until"]) == end for row in fresh.values()), freshness.json()

        html = page(d, f"/?{q}")
        assert html.status_code == 200, html.text[:500]
        assert f"Feature store · {d.project}" in html.text


def test_the_store_selector_in_chromium_shows_both_stores(stores: list[tuple[Deployment, str]]) -> None:
    from playwright.sync_api import expect, sync_playwright

    first, second = (d for d, _ in stores)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            sign_in(first, page)
            frame = open_status_page(page)
            picker = frame.locator("#project-picker")
            expect(picker).to_be_visible(timeout=30_000)
            options = frame.locator("#project option")
            expect(options).to_have_text([first.project, second.project])
            expect(frame.locator("h1 .project")).to_have_text(first.project)
            frame.locator("#project").select_option(second.project)
            expect(frame.locator("h1 .project")).to_have_text(second.project, timeout=30_000)
            frame.locator("#feature-set").select_option("transactions:1")
            bar = frame.locator(".store[data-store=offline] .bar[data-status=Complete]")
            expect(bar).to_have_count(1, timeout=30_000)
            # The grid lists the second store's own days (newest first), not the first store's.
            rows = frame.locator("#grid tbody tr[data-start]")
            days = [iso(t) for t in range(WINDOWS[1][1] - 86400, WINDOWS[1][0] - 1, -86400)]
            expect(rows).to_have_count(len(days), timeout=30_000)
            assert [rows.nth(i).get_attribute("data-start") for i in range(len(days))] == days
            page.screenshot(path=str(ARTIFACTS / "two-stores.png"), full_page=True)
        finally:
            browser.close()
