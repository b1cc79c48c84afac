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
HEADER_NAMES = {b"authorization": "Authorization", b"x-api-key": "X-API-Key"}


class TwoKeys(ValueError):
    """A request carries two key headers: which one counts would be a guess (a proxy may have
    added one), so it is refused, 400."""


class RequireKey:
    """With keys configured, every HTTP route but OPEN_PATHS needs a valid key: 401 otherwise.
    The key found is left in `scope["state"]["api_key"]` for the routes' scope checks."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.required or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            presented = presented_key(scope["headers"])
        except TwoKeys as exc:
            await _refuse(send, 400, str(exc))
            return
        key = None if presented is None else self.keys.find(presented)
        if key is None:
            await _refuse(send, 401, MISSING if presented is None else INVALID)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)


def presented_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries, as sent: `Authorization: Bearer <key>` or `X-API-Key: <key>`
    (uvicorn gives header names in lower case). TwoKeys for two headers of one name, or two
    different keys in the two headers."""
    keys: dict[bytes, bytes | None] = {}
    for name, value in headers:
        if name not in HEADER_NAMES:
            continue
        if name in keys:
            raise TwoKeys(f"two {HEADER_NAMES[name]} headers: send the API key once")
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            keys[name] = token.strip() if scheme.lower() == b"bearer" and token.strip() else None
        else:
            keys[name] = value.strip() or None
    given = {key for key in keys.values() if key is not None}
    if len(given) > 1:
        raise TwoKeys("Authorization and X-API-Key carry different keys: send the API key once")
    return given.pop() if given else None


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


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="featurestore"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
