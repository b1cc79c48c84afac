"""The feature server's key check: an ASGI middleware in front of every route but `/health`.

A key is checked from the request headers alone, before a byte of the body is read, so a
stranger costs the server one hash and a 401 (sent with `Connection: close`: the rest of its
upload is never read). A key scoped to some feature sets is checked against the feature sets a
request names (`scope_denied`), by the refs' spelling, before they are resolved: a stranger to
a feature set learns neither its features nor whether it exists.

Core-level: plain ASGI, no Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from airflow_provider_featurestore.core.serving.api_keys import ApiKey, ApiKeys

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})
MISSING = "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
INVALID = "the API key is not valid"


class RequireKey:
    """With keys configured, every HTTP route but OPEN_PATHS needs a valid key: 401 otherwise.
    The key found is left in `scope["state"]["api_key"]` for the routes' scope checks."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.required or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = presented_key(scope["headers"])
        key = None if presented is None else self.keys.find(presented)
        if key is None:
            await _unauthorized(send, MISSING if presented is None else INVALID)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)


def presented_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries, as sent: `Authorization: Bearer <key>` or `X-API-Key: <key>`
    (uvicorn gives header names in lower case)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.strip()
    return None


def scope_denied(key: ApiKey | None, refs: Sequence[str]) -> str | None:
    """The first feature set named by `refs` ('feature_set:feature', 'feature_set:v2:feature')
    that `key` may not read; None when it may read them all (or no key is in play)."""
    if key is None or key.feature_sets is None:
        return None
    for ref in refs:
        name = ref.strip().split(":", 1)[0]
        if not key.may_read(name):
            return name
    return None


async def _unauthorized(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="featurestore"'),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
