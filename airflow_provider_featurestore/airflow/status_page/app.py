"""The status page and its JSON API: a FastAPI app that Airflow's API server mounts at
`/featurestore` (see `plugin.py`).

Airflow authenticates none of a plugin's routes by itself, so every route here depends on
Airflow's own security dependencies (`access.py`): the signed-in user (JWT cookie of the UI, or a
bearer token) must be allowed to read the backfill DAG of the feature store asked for (its
`project`, `stores.py`) to see anything, to create runs of it to trigger a backfill, and to edit
the DAG that ran a job to cancel it. An anonymous browser is sent to Airflow's login page; an API
client gets 401, a user without the right 403.

The routes live in `data_routes` (the read-only documents), `backfill_routes` (the backfill
action) and `cancel` (the cancel action); this module serves the page and its static files.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from airflow_provider_featurestore.airflow.status_page import backfill_routes, cancel, data_routes
from airflow_provider_featurestore.airflow.status_page.access import requires_any_read, requires_read
from airflow_provider_featurestore.airflow.status_page.data_routes import EntryDep
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.request_errors import validation_line

STATIC = Path(__file__).with_name("static")
STATIC_FILES = ("view.js", "grid.js", "status.js", "status.css")


def create_app() -> FastAPI:
    app = FastAPI(
        title="Feature store status",
        description="The interval timeline, grid, job list, backfill and cancel actions of feature stores.",
    )
    _handlers(app)
    app.include_router(data_routes.index)
    app.include_router(data_routes.router)
    app.include_router(backfill_routes.router)
    app.include_router(cancel.router)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(requires_read)])
    def page(request: Request, entry: EntryDep) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        airflow_root = root.rsplit("/", 1)[0]
        store = entry.loaded()
        text = (STATIC / "index.html").read_text()
        text = text.replace("{{PROJECT}}", html.escape(store.config.project))
        location = entry.location  # which config, and what named it: on hovering the project
        text = text.replace("{{CONFIG}}", html.escape(f"{location.path} (named by {location.source})"))
        text = text.replace("{{ROOT}}", html.escape(root, quote=True))
        text = text.replace("{{AIRFLOW_ROOT}}", html.escape(airflow_root, quote=True))
        return HTMLResponse(text, headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}", dependencies=[Depends(requires_any_read)])
    def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(BadInput)
    async def bad_input(_request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_line(exc.errors(), skip=1)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        """For the page itself, a person rather than a client: the login page, or why not."""
        if request.url.path.rstrip("/") != request.scope.get("root_path", "").rstrip("/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 401:
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), 303)
        message = str(exc.detail)
        if exc.status_code == 403:
            entry = getattr(request.state, "featurestore_entry", None)
            dag = f"the DAG {entry.backfill_dag_id}" if entry is not None else "its backfill DAG"
            message = (
                "Your Airflow user may not read the feature store's DAGs: ask an Airflow admin for read "
                f"access to {dag}."
            )
        return HTMLResponse(
            f"<!doctype html><title>Feature store</title><p>{html.escape(message)}</p>", exc.status_code
        )


app = create_app()
