"""OpenLineage names (namespace, name) of what a materialization reads and writes.

Files and object stores follow OpenLineage's naming spec (https://openlineage.io/docs/spec/naming):
a local path is `file` + the absolute path; `s3://bucket/key` is `s3://bucket` + `key` (s3a and
s3n too); `gs://`, `abfss://`, `wasbs://` likewise; `hdfs://host:port/path` keeps the path's
leading slash, as the spec's URI `hdfs://{host}:{port}{path}` does. The spec names no Redis
datasets: ours is `redis://host:port/db` + `<project>:<feature set>:v<version>` (the key prefix
without its colon). A namespace never carries a user or password.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Object stores whose dataset name is the object key: no leading slash (as Airflow's own
# Amazon and Google providers name them).
_S3_SCHEMES = ("s3", "s3a", "s3n")
_KEY_SCHEMES = (*_S3_SCHEMES, "gs", "gcs")
# Azure's authority is `container@account...`: the part before the @ is the container, not a user.
_AZURE_SCHEMES = ("abfs", "abfss", "wasb", "wasbs")
_DEFAULT_REDIS_PORT = 6379


def location_dataset(location: str) -> tuple[str, str]:
    """(namespace, name) of a path or URI as the config holds it (a local path is absolute)."""
    parts = urlsplit(location)
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (or a Windows drive letter)
        return "file", location
    scheme = parts.scheme.lower()
    path = parts.path or "/"
    if scheme == "file":
        host = parts.hostname or ""
        return (f"file://{host}" if host else "file"), path
    if scheme in _KEY_SCHEMES:
        namespace = "s3" if scheme in _S3_SCHEMES else "gs"
        return f"{namespace}://{parts.hostname}", path.lstrip("/") or "/"
    if scheme in _AZURE_SCHEMES:
        return f"{scheme}://{parts.netloc}", path.lstrip("/") or "/"
    return f"{scheme}://{_host_port(parts.hostname, parts.port)}", path


def redis_dataset(url: str, key_prefix: str) -> tuple[str, str]:
    """(namespace, name) of a feature set version in Redis: `redis://host:port/db` (TLS or not:
    one store, one namespace; no password) and the key prefix without its trailing colon."""
    parts = urlsplit(url)
    if parts.scheme == "unix":  # redis over a socket: unix:///path/redis.sock?db=N
        db = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair).get("db", "0")
        namespace = f"redis+unix://{parts.path}/{db}"
    else:
        db = parts.path.strip("/") or "0"
        namespace = (
            f"redis://{_host_port(parts.hostname or 'localhost', parts.port or _DEFAULT_REDIS_PORT)}/{db}"
        )
    return namespace, key_prefix.rstrip(":")


def _host_port(host: str | None, port: int | None) -> str:
    return f"{host or ''}:{port}" if port else (host or "")
