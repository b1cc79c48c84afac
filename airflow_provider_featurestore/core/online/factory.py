"""The online store a URL names: the one place that maps a URL scheme to a backend, so callers
depend on `OnlineStore` alone and a new backend is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_featurestore.core.online.protocol import OnlineStore
from airflow_provider_featurestore.core.online.redis_store import SCHEMES as REDIS_SCHEMES
from airflow_provider_featurestore.core.online.redis_store import RedisOnlineStore

BACKENDS: dict[str, Callable[..., OnlineStore]] = dict.fromkeys(REDIS_SCHEMES, RedisOnlineStore)


def online_store_for(url: str, **options: Any) -> OnlineStore:
    """A client of the online store at `url` (connects on first use); `options` are the
    backend's own (for Redis: cluster, password, ssl, ssl_ca_certs)."""
    scheme = urlsplit(url).scheme
    backend = BACKENDS.get(scheme)
    if backend is None:  # the URL itself is not shown: it may hold a password
        known = ", ".join(f"{name}://" for name in BACKENDS)
        raise ValueError(f"not an online store URL: scheme {scheme!r} is none of {known}")
    return backend(url, **options)
