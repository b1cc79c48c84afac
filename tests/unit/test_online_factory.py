"""Building the configured online store from its URL, without a server: the factory picks the
backend by scheme, a store never shows a password, and a pickled store keeps its URL and options
(a Spark executor rebuilds it)."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_featurestore.core.online import OnlineStore, RedisOnlineStore, online_store_for
from airflow_provider_featurestore.core.online.connection import safe_url


def test_redis_urls_build_a_redis_store() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://cache:6380/2", "unix:///tmp/redis.sock?db=1"):
        store = online_store_for(url)
        assert isinstance(store, RedisOnlineStore) and isinstance(store, OnlineStore)
    assert online_store_for("redis://cache:6379/0", ssl=True).safe_url == "rediss://cache:6379/0"


def test_other_schemes_are_refused_without_showing_the_url() -> None:
    with pytest.raises(ValueError, match=r"scheme 'http' is none of redis://, rediss://, unix://") as refused:
        online_store_for("http://user:hunter2@cache:6379")
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisOnlineStore("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="ssl_ca_certs needs TLS"):
        RedisOnlineStore("redis://127.0.0.1:6379/0", ssl_ca_certs="/ca.crt")


def test_passwords_are_never_shown() -> None:
    assert safe_url("redis://:s3cr3t@cache:6379/2") == "redis://cache:6379/2 (password hidden)"
    assert safe_url("rediss://user:pw@[::1]:6380") == "rediss://[::1]:6380/0 (password hidden)"
    assert safe_url("unix://:pw@/run/redis.sock?db=1") == "unix:///run/redis.sock (password hidden)"
    assert safe_url("redis://cache", password="pw") == "redis://cache:6379/0 (password hidden)"
    assert safe_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert "s3cr3t" not in repr(RedisOnlineStore("redis://:s3cr3t@localhost:6379/0"))


def test_a_pickled_store_keeps_its_url_and_options() -> None:
    store = RedisOnlineStore("redis://cache:6379/0", password="pw", ssl=True, cluster=False)
    clone = pickle.loads(pickle.dumps(store))
    assert isinstance(clone, RedisOnlineStore)
    assert (clone._url, clone._options) == ("rediss://cache:6379/0", store._options)
