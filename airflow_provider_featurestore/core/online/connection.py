"""Opening a Redis (or Redis Cluster) client from a URL, and its failures in words that never
show a password.

The first lookup of a serving process opens the connection, so what redis-py and the socket
module would import on that path is imported here, at import time (a first lookup imports
nothing: see tests/integration/test_online_keys.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from redis import exceptions as rexc
from redis.cluster import RedisCluster

from airflow_provider_featurestore.core.online.protocol import OnlineStoreUnavailable

# redis-py 7.1+ reads its own version from the package metadata for every new connection
# (CLIENT SETINFO LIB-VER) unless given it: importlib.metadata and the email parser imported
# on the first lookup of a process (6-7 ms), then about 1 ms per connection. The same name
# and version, given once here; older redis-py read it once at import and take no argument.
try:
    from redis.driver_info import DriverInfo

    _DRIVER: dict[str, Any] = {"driver_info": DriverInfo(name="redis-py", lib_version=redis.__version__)}
except ImportError:  # pragma: no cover - redis-py before 7.1
    _DRIVER = {}
# The first connection's `socket.getaddrinfo` encodes the host name with the idna codec, which
# imports `encodings.idna`, `stringprep` and `unicodedata` (2 ms) on the lookup path; done here.
"localhost".encode("idna")


@dataclass(frozen=True)
class RedisOptions:
    """How to reach the server beyond its URL (kept, with the URL, when a store is pickled)."""

    cluster: bool | None = None  # None: ask the server (`INFO cluster`)
    password: str | None = None
    ssl: bool | None = None
    ssl_ca_certs: str | None = None


def open_client(url: str, options: RedisOptions) -> redis.Redis | RedisCluster:
    """A client of the server at `url`: a RedisCluster when asked, or when the server says it
    runs in cluster mode; connection failures are redis-py's (see `unavailable`)."""
    kwargs: dict[str, Any] = {"socket_connect_timeout": 10, "socket_timeout": 120, **_DRIVER}
    if options.password is not None:
        kwargs["password"] = options.password
    if options.ssl_ca_certs is not None:
        kwargs["ssl_ca_certs"] = options.ssl_ca_certs
    cluster = options.cluster
    if cluster is None:
        single = redis.Redis.from_url(url, **kwargs)
        try:
            cluster = str(single.info("cluster").get("cluster_enabled", 0)) == "1"
        except rexc.ResponseError:  # INFO renamed or forbidden: not a cluster we can manage
            cluster = False
        if not cluster:
            return single
        single.close()
    if cluster:
        if url.startswith("unix://"):
            raise ValueError("Redis Cluster needs a redis:// or rediss:// URL, not unix://")
        client = RedisCluster.from_url(url, **kwargs)
        client.ping()
        return client
    return redis.Redis.from_url(url, **kwargs)


def safe_url(url: str, password: str | None = None) -> str:
    """The URL without user, password or query; says `(password hidden)` when there was one."""
    parts = urlsplit(url)
    hidden = bool(parts.password or password or "password=" in parts.query)
    if parts.scheme == "unix":
        shown = f"unix://{parts.path}"
    else:
        host = parts.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        shown = f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path or '/0'}"
    return shown + (" (password hidden)" if hidden else "")


@contextlib.contextmanager
def unavailable(url: str, password: str | None) -> Iterator[None]:
    """Turn failures to reach or log in to Redis into OnlineStoreUnavailable, passwords scrubbed."""
    try:
        yield
    except rexc.InvalidResponse as exc:  # something answers there, in another protocol
        raise OnlineStoreUnavailable(
            f"the server at {safe_url(url, password)} does not speak Redis ({exc}); "
            "fix online_store.redis_url"
        ) from None
    except (rexc.ConnectionError, rexc.TimeoutError, rexc.RedisClusterException) as exc:
        if isinstance(exc, rexc.RedisClusterException) and type(exc) is not rexc.RedisClusterException:
            raise  # a usage error of the cluster client, not an unreachable cluster
        reason = str(exc) or type(exc).__name__
        for secret in (urlsplit(url).password, password):
            if secret:
                reason = reason.replace(secret, "***")
        refused = isinstance(exc, rexc.AuthenticationError) or "authenticat" in reason.lower()
        raise OnlineStoreUnavailable(
            f"{'the online store refused us' if refused else 'cannot reach the online store'} at "
            f"{safe_url(url, password)}: {reason}; "
            + (
                "give its password in online_store.redis_url (redis://:PASSWORD@host:port/db)"
                if refused
                else "start Redis or fix online_store.redis_url"
            )
        ) from None
