"""The HTTP feature server: `featurestore serve`, live feature values over JSON for models.

`POST /get-online-features` takes `{"features": ["transactions:transaction_7d_count", ...],
"entities": [{"accountID": "A1"}, ...], "event_timestamps": false}` and answers
`{"results": [...]}`: exactly what `FeatureStore.get_online_features` returns, one object per
entity in the order given, timestamps as ISO-8601 UTC ending in `Z`, dates `YYYY-MM-DD`, and
non-finite floats as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (as protobuf's JSON
mapping does; JSON has no such numbers). `GET /health` answers 200 `{"status": "ok"}` when
Redis answers a PING, else 503. `GET /metrics` is the Prometheus scrape (metrics.py).

With API keys configured (`feature_server` in featurestore.yaml, api_keys.py), every route but
`/health` needs one (auth.py), as `Authorization: Bearer <key>` or `X-API-Key: <key>`: 401
without a valid key, 400 for two of them, 403 when the key may not read a feature set the
request names. `/openapi.json` needs one too, and names only the feature sets of its key
(openapi.py).

Errors are `{"detail": "<one line naming the field>"}`: 400 for a bad request (the body's
pydantic model, request.py; the refs; an entity's index value, worded by the online reader),
409 when a requested feature set's online store is disabled (`featurestore disable-online`;
noticed within `online_reader.DISABLED_MAX_AGE` seconds, the interval table is never read per
request), 408 for a body not received within `body_timeout`, 413 for a body over the size
limit (counted as it arrives, so a chunked upload is cut off there too), 503 when Redis cannot
be reached. Request heads are bounded by protocol.py. One `FeatureStore` per process serves
every request through its `OnlineReader` (online_reader.py): its Redis connection pool and
online layouts are reused, so a lookup costs one pipelined round trip plus decoding.

Lookups run on a small executor of their own (8 threads), not on the event loop and not on
Starlette's 40-thread pool: a Redis that stops answering cannot stall the event loop (nor
`/health`), and the work, which holds the GIL but for the Redis wait, is not spread over
dozens of threads that hand the GIL to each other (benchmarks/README.md: with the 40-thread
pool, 1-entity throughput was about half). Eight, not two: each thread has at most one Redis
round trip under way, so while a backfill's write scripts slow Redis down, two threads capped
the server at 2 / round trip and requests queued for seconds (serve_vs_feast.py).

This module is core-level: FastAPI, Starlette, anyio and uvicorn only, never Airflow.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from airflow_provider_featurestore.core.config import CONFIG_ENV
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.online import OnlineStoreUnavailable
from airflow_provider_featurestore.core.online_reader import OnlineDisabled
from airflow_provider_featurestore.core.serving import api_keys, metrics
from airflow_provider_featurestore.core.serving.auth import RequireKey, scope_denied
from airflow_provider_featurestore.core.serving.openapi import add_scoped_openapi
from airflow_provider_featurestore.core.serving.protocol import GuardedHttpToolsProtocol
from airflow_provider_featurestore.core.serving.request import MAX_ENTITIES, parse_body

LOOKUP_PATH = "/get-online-features"
MAX_BODY_BYTES = 16 * 1024 * 1024  # request body
HEALTH_TIMEOUT = 5.0  # seconds a PING may take before /health says 503
MAX_CONNECTIONS = 1000  # open connections (and running requests) before uvicorn answers 503
LOOKUP_THREADS = 8  # threads running lookups (Redis round trip, decoding, JSON encoding)
JSON_TYPE = "application/json"

log = logging.getLogger(__name__)


def create_app(
    store: FeatureStore,
    *,
    max_entities: int = MAX_ENTITIES,
    max_body_bytes: int = MAX_BODY_BYTES,
    lookup_threads: int = LOOKUP_THREADS,
    close_store: bool = False,
    keys: api_keys.ApiKeys | None = None,
) -> FastAPI:
    """The feature server's ASGI app over one feature store, kept open for the app's life
    (and closed when the app shuts down with `close_store`); `keys` default to the config's.

    Raises BadInput when the configured API keys cannot be read."""
    config = store.config
    keys = api_keys.from_config(config) if keys is None else keys
    body_timeout = config.feature_server.body_timeout
    served = ", ".join(f"{spec.name} v{spec.version}" for spec in config.feature_sets) or "none"
    executor = ThreadPoolExecutor(lookup_threads, thread_name_prefix="featurestore-lookup")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("serving project %s: %s", config.project, served)
        yield
        executor.shutdown(wait=False, cancel_futures=True)
        if close_store:
            store.close()

    app = FastAPI(
        title=f"featurestore {config.project}",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # add_scoped_openapi: its description names only the key's feature sets
        redirect_slashes=False,  # /health/ is a 404 (or a 401), not a 307 to a route
        lifespan=lifespan,
    )
    app.state.store = store
    app.add_middleware(RequireKey, keys=keys)
    measured = metrics.install(app, store, keys)  # after RequireKey: its refusals are counted too
    reader = store.online
    reader.store()  # made here, before any thread can race to make it (connects on first use)
    reader.disabled.get()  # the interval table read at start-up, not by the first request

    def lookup(features: list[str], entities: list[Any], event_timestamps: bool) -> Response:
        """The blocking part of a request, run on the lookup executor: Redis, then JSON encoding."""
        measured.observe_lookup(len(entities), len(features))
        try:
            results = reader.read(features, entities, event_timestamps=event_timestamps, argument="entities")
        except OnlineDisabled as exc:
            return _error(409, _one_line(str(exc)))
        except BadInput as exc:
            return _error(400, _one_line(str(exc)))
        except OnlineStoreUnavailable as exc:
            return _error(503, _one_line(str(exc)))
        except Exception as exc:  # noqa: BLE001 - one JSON line instead of a bare 500 page
            log.exception("get-online-features failed")
            return _error(500, f"internal error: {type(exc).__name__}: {_one_line(str(exc))}")
        return Response(_encode({"results": results}), media_type=JSON_TYPE)

    async def get_online_features(request: Request) -> Response:
        try:
            body = await _read_body(request, max_body_bytes, body_timeout)
        except _Refused as refused:
            return refused.response
        try:
            parsed = parse_body(body, max_entities)
        except BadInput as exc:
            return _error(400, _one_line(str(exc)))
        denied = scope_denied(request.scope.get("state", {}).get("api_key"), parsed.features)
        if denied is not None:
            return _error(403, _one_line(f"features: this API key may not read feature set {denied!r}"))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            executor, lookup, parsed.features, parsed.entities, parsed.event_timestamps
        )

    app.router.routes.append(Route(LOOKUP_PATH, _PlainEndpoint(get_online_features), methods=["POST"]))

    @app.get("/health")
    async def health() -> Response:
        online = reader.store()
        try:
            with anyio.fail_after(HEALTH_TIMEOUT):
                await anyio.to_thread.run_sync(online.ping, abandon_on_cancel=True)
        except OnlineStoreUnavailable as exc:
            return _error(503, _one_line(str(exc)))
        except TimeoutError:
            return _error(503, f"the online store did not answer PING within {HEALTH_TIMEOUT:g} s")
        return Response(b'{"status":"ok"}', media_type=JSON_TYPE)

    add_scoped_openapi(
        app, [(spec.name, spec.version) for spec in config.feature_sets], lookup_path=LOOKUP_PATH
    )
    return app


class _PlainEndpoint:
    """A request handler as a plain ASGI app, which a Starlette `Route` calls as it is: the
    lookup route skips FastAPI's per-request handling (dependency solving, its request/response
    wrappers), about a tenth of a 1-entity lookup's CPU (a py-spy profile under load). The
    route's body is documented by `LookupBody` in the OpenAPI document (openapi.py)."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


class _Refused(Exception):
    """A request refused while its body was read; `response` says why."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, counted as it arrives: over `limit` bytes (declared or received) is a 413 at
    once, without reading the rest; not all received within `timeout` seconds a 408."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _Refused(_error(413, f"body: {int(length):,} bytes; at most {limit:,} per request", close=True))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):  # anyio's cancel scope costs more per request
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(
                        _error(
                            413, f"body: more than {limit:,} bytes; at most {limit:,} per request", close=True
                        )
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(_error(408, f"body: not received within {timeout:g} s", close=True)) from None
    except ClientDisconnect:  # nobody is left to read the answer; it only ends the request
        raise _Refused(_error(400, "body: the client went away before sending it all", close=True)) from None
    return b"".join(chunks)


def app_from_env() -> FastAPI:
    """The app of one worker process of `featurestore serve --workers N`, and a uvicorn factory
    (`uvicorn --factory airflow_provider_featurestore.serving:app_from_env`): its own
    FeatureStore over $FEATURESTORE_CONFIG (else ./featurestore.yaml)."""
    store = FeatureStore(os.environ.get(CONFIG_ENV), check_transformations=False)  # the parent's file
    # a spawned worker: the parent's protocol settings are not inherited
    GuardedHttpToolsProtocol.configure(header_timeout=store.config.feature_server.header_timeout)
    return create_app(store, close_store=True)


def serve(
    store: FeatureStore,
    *,
    host: str = "127.0.0.1",
    port: int = 6566,
    workers: int = 1,
    access_log: bool = False,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Serve until interrupted (SIGINT/SIGTERM); returns the exit status (1: it did not start).

    Raises BadInput when the online store is not configured or host:port cannot be listened on.
    """
    import uvicorn

    online = store.online_store()  # BadInput when online_store is not configured
    redis_shown = online.safe_url
    online.close()
    keys = api_keys.from_config(store.config)  # BadInput here, before listening
    warning = exposure_warning(host, port, keys, store.config.config_path)
    if warning is not None:  # before the listen check: said even when that fails
        (announce or _stderr)(f"featurestore serve: {warning}")
    _check_listen(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    served = ", ".join(f"{spec.name} v{spec.version}" for spec in store.config.feature_sets) or "none"
    (announce or _stderr)(
        f"featurestore serve: http://{shown_host}:{port} serving project {store.config.project} "
        f"({served}) from {redis_shown}; {workers} worker(s); POST /get-online-features, GET /health, GET /metrics; "
        + (f"{len(keys)} API key(s) required" if keys.required else "no API keys")
    )
    settings = store.config.feature_server
    GuardedHttpToolsProtocol.configure(header_timeout=settings.header_timeout)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": access_log,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
        "http": GuardedHttpToolsProtocol,
        "ws": "none",  # no WebSocket routes: an Upgrade is never handed to a WebSocket library
        "limit_concurrency": MAX_CONNECTIONS,
    }
    try:
        if workers > 1:
            os.environ[CONFIG_ENV] = store.config.config_path
            with metrics.multiprocess_dir():  # the workers' counts, summed by every scrape
                uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
        else:
            uvicorn.run(create_app(store, keys=keys), **options)
    except SystemExit as exc:  # uvicorn exits 3 when the app or the socket failed at start-up
        return 0 if exc.code in (0, None) else 1
    return 0


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def _one_line(message: str, limit: int = 500) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(status: int, detail: str, *, close: bool = False) -> Response:
    """The error document; `close` ends the connection after it (the client may still be
    sending a body nobody will read)."""
    headers = {"Connection": "close"} if close else None
    return Response(json.dumps({"detail": detail}), status_code=status, media_type=JSON_TYPE, headers=headers)


# ---------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------


def _encode(document: object) -> bytes:
    """Compact JSON; datetimes ISO-8601 UTC with `Z`; non-finite floats as strings."""
    try:
        text = json.dumps(document, default=_json_default, allow_nan=False, separators=(",", ":"))
    except ValueError:  # NaN or +-inf somewhere: rare, so only then walk the document
        text = json.dumps(_finite(document), default=_json_default, allow_nan=False, separators=(",", ":"))
    return text.encode()


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_finite(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------
# Start-up
# ---------------------------------------------------------------------------------------


def exposure_warning(host: str, port: int, keys: api_keys.ApiKeys, config_path: str) -> str | None:
    """The warning for a server without keys that other machines may reach; None on loopback
    or with keys."""
    if keys.required or _loopback(host):
        return None
    return (
        f"WARNING: --host {host} is beyond loopback and no API keys are configured: anyone who can "
        f"reach port {port} reads every feature. Set feature_server.api_keys or api_key_file in "
        f"{config_path} (featurestore api-key makes one)"
    )


def _loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback address (reachable from this machine only)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def _check_listen(host: str, port: int) -> None:
    """BadInput naming --host/--port when host:port cannot be listened on (in use, no such
    address), before uvicorn tries and exits with a log line of its own."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BadInput(f"--host: cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise BadInput(f"--port: cannot listen on {host}:{port}: {exc.strerror}") from None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
