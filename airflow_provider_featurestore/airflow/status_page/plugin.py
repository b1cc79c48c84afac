"""The Airflow plugin (entry point `airflow.plugins`): the status page's FastAPI app, mounted by
Airflow's API server at `/featurestore`, its entry in the UI's navigation (Browse), which shows
the page inside the Airflow UI, and a tab on every DAG's page (Airflow 3.1+: `destination`
"dag"): Airflow fills in `{DAG_ID}`, and the page shows the feature set (or feature store) a
materialization DAG belongs to.

The two views need different `url_route`s: the UI finds a view by its route alone, and syncs
the browser's address with the page's view only for a nav view (`/plugin/featurestore/...`).

The app module is imported only when the API server asks for the app, so the scheduler, the
DAG processor and the workers, which load plugins too, never import FastAPI routes or touch the
feature store.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/featurestore"
NAV_ROUTE = "featurestore"
DAG_TAB_ROUTE = "featurestore-dag"


class _LazyApp:
    """An ASGI app that imports and builds the real one on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from airflow_provider_featurestore.airflow.status_page.app import app

            self._app = app
        await self._app(scope, receive, send)


class FeatureStorePlugin(AirflowPlugin):
    name = "featurestore"
    fastapi_apps = [
        {"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "Feature store status"},
    ]
    external_views = [
        {
            "name": "Feature store",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": NAV_ROUTE,
        },
        {
            "name": "Feature store",
            "href": f"{URL_PREFIX}/?dag_id={{DAG_ID}}",
            "destination": "dag",
            "url_route": DAG_TAB_ROUTE,
        },
    ]
