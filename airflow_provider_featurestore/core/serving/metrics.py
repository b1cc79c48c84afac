"""The feature server's Prometheus metrics: `GET /metrics`, through prometheus-client.

What is measured, and where:
- every HTTP request, by an ASGI middleware outside the key check (so 401s are counted too):
  `featurestore_http_requests_total{route,code}`, `featurestore_http_request_duration_seconds
  {route}` and, for an error status, `featurestore_http_errors_total{route,kind}`. `route` is
  the route's template, never the raw path: any path the app has no route for is `other`, so a
  scan of random paths cannot grow the label set;
- per lookup, `featurestore_lookup_entities` and `featurestore_lookup_features` (histograms),
  observed by the route (`ServerMetrics.observe_lookup`), and the Redis round trip of the
  pipelined HMGETs, `featurestore_redis_round_trip_seconds`, observed by the online store
  through its `round_trip_observer` (the online layer knows nothing of the server);
- `featurestore_feature_freshness_seconds`, by freshness_gauge.py at scrape time.

Who may read it (`scrape_refusal`): with API keys configured, a key of the `@metrics` scope or
a key that reads every feature set; without keys, loopback clients only.

With `featurestore serve --workers N`, prometheus-client's multiprocess mode: the parent makes
a temporary PROMETHEUS_MULTIPROC_DIR before the workers start (`multiprocess_dir`), every worker
writes its counts there, and a scrape answered by any worker sums them all.

The hot path pays a dict lookup per request for its label children (cached by route and
status), a few increments and two clock reads. Core-level: no Airflow.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.serving.api_keys import ApiKeys
from airflow_provider_featurestore.core.serving.auth import ASGIApp, Receive, Scope, Send
from airflow_provider_featurestore.core.serving.freshness_gauge import FreshnessCollector

PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER_ROUTE = "other"  # every path the app has no route for
# 100 us .. 10 s: a lookup of one entity takes a few hundred microseconds
LATENCY_BUCKETS = (
    0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
ENTITY_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
FEATURE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# The kind of error an HTTP status says; the server's statuses are chosen by exception type
# (BadInput 400, OnlineStoreUnavailable 503, a disabled store 409, ...), never by message text.
ERROR_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "disabled",
    413: "too_large",
    422: "bad_request",
    431: "too_large",
    500: "internal",
    501: "not_implemented",
    503: "unavailable",
    504: "timeout",
}
LOOPBACK_ONLY = (
    "/metrics: only loopback clients may read it while no API keys are configured; configure "
    "feature_server keys and scrape with a key of the @metrics scope (featurestore api-key --metrics)"
)
NOT_IN_SCOPE = "/metrics: this API key may not read it; scrape with a key of the @metrics scope (featurestore api-key --metrics)"


def error_kind(status: int) -> str | None:
    """The `kind` label of an error status; None for a success or a redirect."""
    if status < 400:
        return None
    return ERROR_KINDS.get(status, "client_error" if status < 500 else "server_error")


class ServerMetrics:
    """The instruments of one feature server process, with their label children cached."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "featurestore_http_requests",
            "HTTP requests answered, by route template and status code.",
            ["route", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "featurestore_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "featurestore_http_errors",
            "HTTP requests answered with an error, by route template and kind of error.",
            ["route", "kind"],
            registry=registry,
        )
        self.entities = Histogram(
            "featurestore_lookup_entities",
            "Entities per /get-online-features request that reached the lookup.",
            buckets=ENTITY_BUCKETS,
            registry=registry,
        )
        self.features = Histogram(
            "featurestore_lookup_features",
            "Feature references per /get-online-features request that reached the lookup.",
            buckets=FEATURE_BUCKETS,
            registry=registry,
        )
        self.redis = Histogram(
            "featurestore_redis_round_trip_seconds",
            "Round trip of a lookup's pipelined HMGETs to Redis (sent to every reply read).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def record(self, route: str, status: int, seconds: float) -> None:
        """One answered request."""
        children = self._children.get((route, status))
        if children is None:
            kind = error_kind(status)
            children = (
                self.requests.labels(route, str(status)),
                self.duration.labels(route),
                None if kind is None else self.errors.labels(route, kind),
            )
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        if children[2] is not None:
            children[2].inc()

    def observe_lookup(self, entities: int, features: int) -> None:
        """The size of one lookup request."""
        self.entities.observe(entities)
        self.features.observe(features)


class MetricsMiddleware:
    """Counts and times every HTTP request; the outermost middleware, so refusals count too."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, routes: Sequence[Any]) -> None:
        self.app, self.metrics = app, metrics
        # built on the first request, when every route exists; no route has path parameters yet,
        # a route with them is named by its template (scope["route"]) once it matched
        self.static = frozenset(path for route in routes if "{" not in (path := getattr(route, "path", "{")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            self.metrics.record(self._route(scope), status, time.perf_counter() - started)
            raise
        self.metrics.record(self._route(scope), status, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        template = getattr(scope.get("route"), "path", None)
        if isinstance(template, str):
            return template
        path = scope["path"]
        return path if path in self.static else OTHER_ROUTE


def install(app: FastAPI, store: FeatureStore, keys: ApiKeys) -> ServerMetrics:
    """Adds `GET /metrics` and the counting middleware to `app` (call after every other
    middleware, so it is the outermost), and has the online store report its round trips."""
    disable_created_metrics()  # `_created` series: noise, and absent in multiprocess mode
    multiprocess = MULTIPROC_ENV in os.environ or MULTIPROC_ENV.lower() in os.environ
    live = CollectorRegistry()
    metrics = ServerMetrics(live)
    exposed = CollectorRegistry() if multiprocess else live
    if multiprocess:
        MultiProcessCollector(exposed)
    exposed.register(FreshnessCollector(store))
    store.online.store().round_trip_observer = metrics.redis.observe
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app.router.routes)

    @app.get(PATH, include_in_schema=False)
    def scrape(request: Request) -> Response:  # a thread: reading the interval table blocks
        refusal = scrape_refusal(request.scope, keys)
        if refusal is not None:
            return Response(json.dumps({"detail": refusal}), status_code=403, media_type="application/json")
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(exposed), media_type=content_type)

    return metrics


def scrape_refusal(scope: Scope, keys: ApiKeys) -> str | None:
    """Why this request may not read /metrics, or None. With keys configured the key check
    has already refused a request without a valid key (401); here the key's scope decides.
    Without keys, only a loopback client may read it (behind a proxy on this machine, uvicorn
    takes the client from the proxy's X-Forwarded-For)."""
    if keys.required:
        key = scope.get("state", {}).get("api_key")
        return None if key is not None and key.may_scrape else NOT_IN_SCOPE
    client = scope.get("client")
    return None if client and is_loopback_address(client[0]) else LOOPBACK_ONLY


def is_loopback_address(text: str) -> bool:
    """Whether `text` is a loopback IP address (an IPv4-mapped IPv6 one too); a name is not."""
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A fresh PROMETHEUS_MULTIPROC_DIR for the workers `featurestore serve --workers N` starts
    (they inherit the environment): made before they start, removed when they have stopped.
    A directory given by the environment is replaced: counts left in it by an earlier server
    would be summed into this one's."""
    before = {name: os.environ.get(name) for name in (MULTIPROC_ENV, MULTIPROC_ENV.lower())}
    path = tempfile.mkdtemp(prefix="featurestore-metrics-")
    os.environ.pop(MULTIPROC_ENV.lower(), None)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        for name, value in before.items():
            _restore(name, value)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
