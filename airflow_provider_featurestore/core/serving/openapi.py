"""`GET /openapi.json` of the feature server, worded for the key that asks.

FastAPI builds one document for every caller, and ours describes the feature sets served: a key
scoped to `accounts` would learn that `transactions` exists. Here the document's paths and
schemas are built once; its description is made per request from the key's scope (every
feature set served without keys, or for a key of no scope).

Core-level: FastAPI only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from airflow_provider_featurestore.core.serving.api_keys import ApiKey
from airflow_provider_featurestore.core.serving.request import LookupBody


def add_scoped_openapi(
    app: FastAPI, served: Sequence[tuple[str, int]], *, lookup_path: str, path: str = "/openapi.json"
) -> None:
    """Serve `path` (the app made with `openapi_url=None`) naming only the `served` feature set
    versions (name, version) the request's key may read. The lookup route at `lookup_path` is a
    plain ASGI route (server.py), so its operation is described here, its body by `LookupBody`."""
    built: dict[str, Any] = {}

    @app.get(path, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        if not built:
            built.update(get_openapi(title=app.title, version=app.version, routes=app.routes))
            built.setdefault("paths", {})[lookup_path] = {"post": _lookup_operation()}
        key: ApiKey | None = request.scope.get("state", {}).get("api_key")
        names = [f"{name} v{version}" for name, version in served if key is None or key.may_read(name)]
        info = {**built["info"], "description": f"Live feature values of {', '.join(names) or 'none'}."}
        return JSONResponse({**built, "info": info})


def _lookup_operation() -> dict[str, Any]:
    """The OpenAPI operation of `POST /get-online-features`."""
    return {
        "summary": "Live feature values of the entities given",
        "operationId": "get_online_features",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LookupBody.model_json_schema()}},
        },
        "responses": {
            "200": {"description": '{"results": [one object per entity, in the order given]}'},
            "400": {"description": "a bad request: the field at fault in `detail`"},
            "401": {"description": "no valid API key"},
            "403": {"description": "the key may not read a feature set named"},
            "409": {"description": "a feature set's online store is disabled"},
            "503": {"description": "the online store cannot be reached"},
        },
    }
