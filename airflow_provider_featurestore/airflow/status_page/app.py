"""The status page and its JSON API: a FastAPI app that Airflow's API server mounts at
`/featurestore` (see `plugin.py`).

Airflow authenticates none of a plugin's routes by itself, so every route here depends on
Airflow's own security dependencies: the signed-in user (JWT cookie of the UI, or a bearer
token) must be allowed to read the backfill DAG to see anything, and to create runs of it to
trigger a backfill. An anonymous browser is sent to Airflow's login page; an API client gets
401, a user without the right 403.

The data comes from `report`, the same documents as `featurestore intervals/jobs --json`, and
from `freshness`, the rows of `featurestore status --json`; the backfill action plans with the
core (`FeatureStore.claim(dry_run=True)`, the chunk edges of `BackfillRequest.snapped`), and
`backfill_dag` holds what it asks of Airflow (pausing, unpausing, triggering).
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from airflow_provider_featurestore.airflow.dag_ids import BACKFILL_DAG_ID
from airflow_provider_featurestore.airflow.hooks.connections import AirflowConnections
from airflow_provider_featurestore.airflow.status_page import backfill_dag
from airflow_provider_featurestore.airflow.status_page.access import (
    can_trigger,
    can_unpause,
    requires_read,
    requires_trigger,
    requires_unpause,
)
from airflow_provider_featurestore.core import freshness, report
from airflow_provider_featurestore.core.config import STORES
from airflow_provider_featurestore.core.config.location import ConfigLocation, locate_config
from airflow_provider_featurestore.core.errors import BadInput, ConfigError
from airflow_provider_featurestore.core.featurestore import DEFAULT_MAX_JOBS, BackfillRequest, FeatureStore
from airflow_provider_featurestore.core.interval_table import JobRecord
from airflow_provider_featurestore.core.planner import DEFAULT_STATUSES
from airflow_provider_featurestore.core.timeline import MAX_BUCKETS
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

STATIC = Path(__file__).with_name("static")
STATIC_FILES = ("status.js", "status.css")
MAX_JOBS = 1000
DRY_RUN_JOBS_SHOWN = 100
MAX_INT = 2**31 - 1
_CONNECTIONS = AirflowConnections()


@lru_cache(maxsize=1)
def config_location() -> ConfigLocation:
    """The config the DAGs load (the Airflow Variable featurestore_config, else
    $FEATURESTORE_CONFIG), found once per API server process."""
    return locate_config(resolver=_CONNECTIONS)


@lru_cache(maxsize=1)
def _store_for(path: str) -> FeatureStore:
    return FeatureStore(path, check_transformations=False, resolver=_CONNECTIONS)


def feature_store() -> FeatureStore:
    """The feature store of `config_location`, loaded once."""
    try:
        return _store_for(config_location().path)
    except (BadInput, ConfigError) as exc:
        raise HTTPException(503, f"the feature store config does not load: {exc}") from None


StoreDep = Annotated[FeatureStore, Depends(feature_store)]


def _time(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return to_epoch(value)
    except ValueError as exc:
        raise BadInput(f"{name}: {exc}") from None


class BackfillBody(BaseModel):
    """The backfill DAG's form, as the page posts it."""

    feature_set: str
    version: int | None = Field(default=None, ge=1)
    start: str
    end: str
    data_status: list[str] = Field(default_factory=lambda: list(DEFAULT_STATUSES))
    stores: list[str] | None = None
    max_jobs: int | None = Field(default=None, ge=1, le=MAX_INT)  # None: the CLI's default


def _request(store: FeatureStore, body: BackfillBody) -> BackfillRequest:
    """The body checked as the DAG's plan task checks its form."""
    return store.backfill_request(
        body.feature_set,
        body.start,
        body.end,
        version=body.version,
        statuses=body.data_status,
        stores=body.stores,
        prefix="",
    )


def _dry_run(store: FeatureStore, checked: BackfillRequest, body: BackfillBody) -> list[JobRecord]:
    """The jobs the request would plan now: the core's dry run, which claims nothing and refuses
    more than `max_jobs` jobs (default: the CLI's)."""
    return store.claim(checked, dry_run=True, max_jobs=body.max_jobs or DEFAULT_MAX_JOBS)


def _conf(checked: BackfillRequest, body: BackfillBody) -> dict[str, Any]:
    """The backfill DAG's params for a checked request."""
    conf = {
        "feature_set": checked.spec.name,
        "version": checked.spec.version,
        "start": iso(checked.start),
        "end": iso(checked.end),
        "data_status": sorted(checked.statuses),
        "stores": list(checked.stores),
    }
    if body.max_jobs is not None:
        conf["max_jobs"] = body.max_jobs
    return conf


def create_app() -> FastAPI:
    app = FastAPI(
        title="Feature store status",
        description="The interval timeline, job list and backfill action of a feature store.",
    )

    @app.exception_handler(BadInput)
    async def bad_input(_request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return JSONResponse({"detail": f"{where}: {first['msg']}"}, status_code=400)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        """For the page itself, a person rather than a client: the login page, or why not."""
        if request.url.path.rstrip("/") != request.scope.get("root_path", "").rstrip("/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 401:
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), 303)
        message = (
            "Your Airflow user may not read the feature store's DAGs: ask an Airflow admin for read "
            f"access to the DAG {BACKFILL_DAG_ID}."
            if exc.status_code == 403
            else str(exc.detail)
        )
        return HTMLResponse(
            f"<!doctype html><title>Feature store</title><p>{html.escape(message)}</p>", exc.status_code
        )

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(requires_read)])
    def page(request: Request, store: StoreDep) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        airflow_root = root.rsplit("/", 1)[0]
        text = (STATIC / "index.html").read_text()
        text = text.replace("{{PROJECT}}", html.escape(store.config.project))
        location = config_location()  # which config, and what named it: on hovering the project
        text = text.replace("{{CONFIG}}", html.escape(f"{location.path} (named by {location.source})"))
        text = text.replace("{{ROOT}}", html.escape(root, quote=True))
        text = text.replace("{{AIRFLOW_ROOT}}", html.escape(airflow_root, quote=True))
        return HTMLResponse(text, headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}", dependencies=[Depends(requires_read)])
    def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    @app.get("/api/feature-sets", dependencies=[Depends(requires_read)])
    def feature_sets(store: StoreDep, trigger: Annotated[bool, Depends(can_trigger)]) -> dict[str, Any]:
        """Every feature set version with its stores' extents and freshness."""
        location = config_location()
        return {
            "project": store.config.project,
            "config": {"path": location.path, "named_by": location.source},
            "backfill_dag_id": BACKFILL_DAG_ID,
            "can_trigger": trigger,
            "feature_sets": report.overview(store),
        }

    @app.get("/api/freshness", dependencies=[Depends(requires_read)])
    def freshness_rows(
        store: StoreDep,
        feature_set: str | None = None,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> list[dict[str, object]]:
        """Exactly `featurestore status [NAME] [--version N] --json`: per feature set version and
        store, its Complete time's lag against its freshness SLA."""
        specs = freshness.select(
            store.config, feature_set, version, name_arg="feature_set", version_arg="version"
        )
        return [row.to_json() for row in freshness.assess(store.table, specs)]

    @app.get("/api/intervals", dependencies=[Depends(requires_read)])
    def intervals(
        store: StoreDep,
        feature_set: str,
        version: Annotated[int | None, Query(ge=1)] = None,
        store_name: Annotated[str | None, Query(alias="store")] = None,
    ) -> list[dict]:
        """Exactly `featurestore intervals NAME --json`."""
        if store_name is not None and store_name not in STORES:
            raise BadInput(f"store: {store_name!r} is not one of {', '.join(STORES)}")
        by_store = store.intervals(feature_set, version, [store_name] if store_name else None)
        return report.intervals_document(by_store)

    @app.get("/api/jobs", dependencies=[Depends(requires_read)])
    def jobs(
        store: StoreDep,
        feature_set: str,
        version: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int | None, Query(ge=1, le=MAX_JOBS)] = None,
        start: str | None = None,
        end: str | None = None,
    ) -> list[dict]:
        """Exactly `featurestore jobs NAME --json`; with start and end, only the jobs meeting them."""
        window = _window(start, end)
        return report.jobs_document(store.jobs(feature_set, version, limit, overlapping=window))

    @app.get("/api/timeline", dependencies=[Depends(requires_read)])
    def timeline(
        store: StoreDep,
        feature_set: str,
        version: Annotated[int | None, Query(ge=1)] = None,
        start: str | None = None,
        end: str | None = None,
        buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 1000,
    ) -> dict[str, Any]:
        """Per enabled store, the bars of `[start, end)` (default: the whole axis) in at most
        `buckets` buckets, and the store's freshness."""
        spec = store.spec(feature_set, version)
        return report.timeline_document(
            store, spec, spec.enabled_stores(), _time("start", start), _time("end", end), buckets
        )

    @app.get("/api/backfill-dag", dependencies=[Depends(requires_read)])
    def backfill_dag_state(
        trigger: Annotated[bool, Depends(can_trigger)], unpause: Annotated[bool, Depends(can_unpause)]
    ) -> dict[str, Any]:
        """Whether the backfill DAG is parsed and paused (a paused DAG's runs wait, queued), and
        what the signed-in user may do with it."""
        return {**backfill_dag.dag_state(), "can_trigger": trigger, "can_unpause": unpause}

    @app.post("/api/backfill-dag/unpause", dependencies=[Depends(requires_unpause)])
    def unpause_backfill_dag(request: Request) -> dict[str, Any]:
        """Unpause the backfill DAG as the signed-in user (who must be allowed to edit it)."""
        return backfill_dag.unpause(request.state.featurestore_user.get_name())

    @app.post("/api/backfill/dry-run", dependencies=[Depends(requires_trigger)])
    def backfill_dry_run(body: BackfillBody, store: StoreDep) -> dict[str, Any]:
        """What `POST /api/backfill` would do: the window widened to whole chunks and the jobs
        planned over it now. Nothing is claimed and nothing is triggered."""
        checked = _request(store, body).snapped()
        planned = _dry_run(store, checked, body)
        requested_start, requested_end = to_epoch(body.start), to_epoch(body.end)
        return {
            **_conf(checked, body),
            "requested": {"start": iso(requested_start), "end": iso(requested_end)},
            "snapped": (checked.start, checked.end) != (requested_start, requested_end),
            "max_job_window": checked.spec.materialization.max_job_window,
            "planned_jobs": len(planned),
            "jobs": [
                {"start": iso(j.start), "end": iso(j.end), "stores": list(j.stores)}
                for j in planned[:DRY_RUN_JOBS_SHOWN]
            ],
            "nothing_to_do": checked.nothing_to_do() if not planned else None,
            "dag": backfill_dag.dag_state(),
        }

    @app.post("/api/backfill", status_code=201, dependencies=[Depends(requires_trigger)])
    def backfill(request: Request, body: BackfillBody, store: StoreDep) -> dict[str, Any]:
        """Trigger the backfill DAG as the signed-in user, after checking the form like the DAG's
        plan task would: a bad form, a window off the chunk edges, more than `max_jobs` jobs or
        nothing to do is refused here, and nothing is triggered."""
        checked = _request(store, body)
        checked.check_on_chunks(prefix="")
        planned = _dry_run(store, checked, body)
        if not planned:
            raise HTTPException(409, f"{checked.nothing_to_do()}: no run triggered")
        conf = _conf(checked, body)
        run_id = backfill_dag.trigger(request.state.featurestore_user.get_name(), conf)
        root = request.scope.get("root_path", "").rstrip("/").rsplit("/", 1)[0]
        return {
            "dag_id": BACKFILL_DAG_ID,
            "dag_run_id": run_id,
            "conf": conf,
            "planned_jobs": len(planned),
            "dag_paused": bool(backfill_dag.dag_state()["is_paused"]),
            "url": f"{root}/dags/{BACKFILL_DAG_ID}/runs/{run_id}",
        }

    return app


def _window(start: str | None, end: str | None) -> tuple[int, int] | None:
    start_s, end_s = _time("start", start), _time("end", end)
    if (start_s is None) != (end_s is None):
        raise BadInput("start, end: give both or neither")
    if start_s is None or end_s is None:
        return None
    if end_s <= start_s:
        raise BadInput(f"end: {iso(end_s)} is not after start {iso(start_s)}")
    return start_s, end_s


app = create_app()
