"""API keys of the feature server: who may read which feature sets.

Keys come from `feature_server` in featurestore.yaml: `api_keys` (the keys themselves, usually
`${ENV}` references, so the file holds no secret) and `api_key_file` (a file of key hashes, one
per line: `sha256:<64 hex digits>` and optionally the feature sets that key may read,
comma-separated; `#` starts a comment). Only SHA-256 digests are kept in memory; a presented
key is hashed and looked up, so comparing never depends on how much of a key matched.

A key given in `api_keys` may read every feature set; a line of the file without feature sets
likewise. The scope `@metrics` in a line lets its key read `GET /metrics` (metrics.py); `@` marks
it as no feature set name can be. `featurestore api-key` prints a new key and its line for the file.

This module is core-level: no Airflow, no web framework.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from airflow_provider_featurestore.core.config import FeatureStoreConfig
from airflow_provider_featurestore.core.errors import BadInput

PREFIX = "sha256:"
METRICS_SCOPE = "@metrics"
_LINE = re.compile(r"sha256:([0-9a-fA-F]{64})(?:\s+(\S+))?")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_KEY = re.compile(r"[!-~]+")  # printable ASCII, no spaces: what an HTTP header carries as is
MIN_KEY_CHARS = 16
MAX_FILE_BYTES = 16 * 1024 * 1024  # a key file larger than this is not a key file


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: its digest, the feature sets it may read (None: every one) and
    whether it has the `@metrics` scope."""

    digest: bytes
    feature_sets: frozenset[str] | None
    origin: str  # where it was configured, for messages: "api_keys[0]", "keys.txt:3"
    metrics: bool = False

    def may_read(self, feature_set: str) -> bool:
        return self.feature_sets is None or feature_set in self.feature_sets

    @property
    def may_scrape(self) -> bool:
        """`GET /metrics`: with the `@metrics` scope, or as a key that reads everything."""
        return self.metrics or self.feature_sets is None


class ApiKeys:
    """The keys a feature server accepts; `required` is False when none are configured."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_digest = {key.digest: key for key in keys}

    @property
    def required(self) -> bool:
        return bool(self._by_digest)

    def __len__(self) -> int:
        return len(self._by_digest)

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(self._by_digest.values())

    def find(self, presented: str | bytes) -> ApiKey | None:
        """The configured key equal to `presented` (a header value as sent), or None."""
        return self._by_digest.get(digest(presented))


def digest(key: str | bytes) -> bytes:
    """SHA-256 of a key; keys are printable ASCII, so a header's bytes hash as the key does."""
    return hashlib.sha256(key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")).digest()


def hash_line(key: str, feature_sets: Iterable[str] = (), *, metrics: bool = False) -> str:
    """The `api_key_file` line of a key."""
    names = ",".join([*feature_sets, *([METRICS_SCOPE] if metrics else [])])
    return f"{PREFIX}{digest(key).hex()}" + (f" {names}" if names else "")


def new_key() -> str:
    """A new random key: 256 bits, URL-safe, recognisable by its prefix in a leak scan."""
    return "fsk_" + secrets.token_urlsafe(32)


def from_config(config: FeatureStoreConfig) -> ApiKeys:
    """The keys the feature server of `config` requires (none configured: an open server)."""
    settings = config.feature_server
    keys = load(settings.api_keys, settings.api_key_file, known_names(config), config_path=config.config_path)
    for key in keys:
        _check_on_demand_scope(key, config)
    return keys


def known_names(config: FeatureStoreConfig) -> set[str]:
    """The names a key's scope may give: every feature set, materialized or on-demand."""
    return {spec.name for spec in config.feature_sets} | {spec.name for spec in config.on_demand}


def _check_on_demand_scope(key: ApiKey, config: FeatureStoreConfig) -> None:
    """BadInput for a key scoped to an on-demand set but not to the sets it reads: its outputs
    would reveal their values (amount / average gives the average)."""
    for spec in config.on_demand:
        if key.feature_sets is None or spec.name not in key.feature_sets:
            continue
        inputs = sorted({ref.split(":", 1)[0] for ref in spec.inputs.features} - key.feature_sets)
        if inputs:
            raise BadInput(
                f"{key.origin}: {spec.name} is computed from {', '.join(inputs)}, which this key may not "
                f"read; add {', '.join(inputs)} to its scope or leave {spec.name} out"
            )


def load(
    api_keys: Iterable[str],
    api_key_file: str | None,
    known_feature_sets: Iterable[str],
    *,
    config_path: str | None = None,
) -> ApiKeys:
    """The keys of a `feature_server` section; BadInput naming the entry (after `config_path`)
    or the key file's line at fault.

    An `api_keys` entry that substituted to nothing (`${KEY:-}` with KEY unset), and a key file
    holding no key when it is the only source, are refused rather than skipped: a server that
    silently lost its only key would be open to anyone.
    """
    known = set(known_feature_sets)
    section = f"{config_path}: feature_server" if config_path else "feature_server"
    keys: list[ApiKey] = []
    for number, key in enumerate(api_keys):
        where = f"{section}.api_keys[{number}]"
        if not key.strip():
            raise BadInput(f"{where}: is empty (is the environment variable it names set?)")
        if not _KEY.fullmatch(key):
            raise BadInput(
                f"{where}: a key is printable ASCII without spaces (featurestore api-key makes one)"
            )
        if len(key) < MIN_KEY_CHARS:
            raise BadInput(
                f"{where}: a key of {len(key)} characters is too easy to guess; use {MIN_KEY_CHARS} or more"
            )
        keys.append(ApiKey(digest(key), None, where))
    if api_key_file is not None:
        from_file = _read_file(api_key_file, known, f"{section}.api_key_file")
        if not from_file and not keys:  # a server meant to be closed would be open to anyone
            raise BadInput(f"{api_key_file}: holds no key (featurestore api-key prints a key and its line)")
        keys += from_file
    first: dict[bytes, str] = {}
    for entry in keys:
        if entry.digest in first:
            raise BadInput(f"{entry.origin}: the same key as {first[entry.digest]}; give each key once")
        first[entry.digest] = entry.origin
    return ApiKeys(keys)


def check_names(names: Iterable[str], known: set[str] | None, where: str) -> frozenset[str]:
    """The feature set names of a key's scope; BadInput naming `where` for a bad or unknown one
    (`known` None: only the spelling is checked)."""
    names = list(names)
    if not names:
        raise BadInput(f"{where}: no feature set names")
    for name in names:
        if name.startswith("@"):
            raise BadInput(f"{where}: {name!r} is not a scope; the one scope is {METRICS_SCOPE}")
        if not _NAME.fullmatch(name):
            raise BadInput(f"{where}: {name!r} is not a feature set name")
        if known is not None and name not in known:
            raise BadInput(f"{where}: no feature set {name!r}; known: {', '.join(sorted(known)) or '(none)'}")
    return frozenset(names)


def _read_file(path: str, known: set[str], field: str) -> list[ApiKey]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"{field}: cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise BadInput(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB; not a file of key hashes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(
            f"{path}: not UTF-8 text; expected lines of 'sha256:<hex> [feature_set,...]'"
        ) from None
    keys: list[ApiKey] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        where = f"{path}:{number}"
        found = _LINE.fullmatch(content)
        if found is None:
            raise BadInput(
                f"{where}: expected 'sha256:<64 hex digits> [feature_set,...]' "
                "(featurestore api-key prints a key and its line)"
            )
        names = [] if found.group(2) is None else found.group(2).split(",")
        metrics = METRICS_SCOPE in names
        names = [name for name in names if name != METRICS_SCOPE]
        scope = check_names(names, known, where) if names else (frozenset() if metrics else None)
        keys.append(ApiKey(bytes.fromhex(found.group(1)), scope, where, metrics))
    return keys
