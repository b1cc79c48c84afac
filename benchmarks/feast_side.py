"""The Feast side of `vs_feast.py`, run with the Feast virtual environment's Python (Feast is
not installed beside our package). Every mode is one fresh process that prints one result
line (`workload.emit`); `write_repo` is called by the parent to lay out the Feast repo.

  feast_side.py materialize REPO START END          time FeatureStore.materialize(START, END)
  feast_side.py verify REPO ENTITIES                values of those entities (get_online_features)
  feast_side.py lookups REPO OPTIONS_JSON           p50/p99 of get_online_features beside a bare HMGET

Only numpy, pyarrow and redis (Feast's own dependencies) are imported from `workload`.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import datetime

from workload import ENTITY, TIMESTAMP, bare_hmget, emit, percentiles_ms

FEATURE_VIEW = "tenday"
TTL_DAYS = 3650  # nothing expires: the data is from 2025, and our side has no TTL either


def write_repo(folder: str, source: str, redis_host_port: str, db: int, features: list[str]) -> str:
    """feature_store.yaml (Redis online store in its own database, the file offline store, a
    local registry) and repo.py (a FileSource over the parquet, an Entity with an int64 join
    key, one FeatureView of the float64 features). Returns the repo folder."""
    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    with open(os.path.join(folder, "feature_store.yaml"), "w", encoding="utf-8") as handle:
        handle.write(
            "project: tenday\n"
            "registry: data/registry.db\n"
            "provider: local\n"
            "online_store:\n"
            "  type: redis\n"
            f'  connection_string: "{redis_host_port},db={db}"\n'
            "offline_store:\n"
            "  type: file\n"
            "entity_key_serialization_version: 3\n"
        )
    fields = "\n".join(f'        Field(name="{name}", dtype=Float64),' for name in features)
    with open(os.path.join(folder, "repo.py"), "w", encoding="utf-8") as handle:
        handle.write(
            "from datetime import timedelta\n\n"
            "from feast import Entity, FeatureView, Field, FileSource, ValueType\n"
            "from feast.types import Float64, Int64\n\n"
            f'source = FileSource(name="tenday_source", path="{source}", timestamp_field="{TIMESTAMP}")\n'
            f'entity = Entity(name="entity", join_keys=["{ENTITY}"], value_type=ValueType.INT64)\n'
            "view = FeatureView(\n"
            f'    name="{FEATURE_VIEW}",\n'
            "    entities=[entity],\n"
            f"    ttl=timedelta(days={TTL_DAYS}),\n"
            "    schema=[\n"
            f'        Field(name="{ENTITY}", dtype=Int64),\n'
            f"{fields}\n"
            "    ],\n"
            "    online=True,\n"
            "    source=source,\n"
            ")\n"
        )
    return folder


def _store(repo: str):  # type: ignore[no-untyped-def]
    from feast import FeatureStore

    return FeatureStore(repo_path=repo)


def materialize(repo: str, start: str, end: str) -> None:
    began = time.perf_counter()
    import feast
    from feast import FeatureStore

    imported = time.perf_counter() - began
    began = time.perf_counter()
    store = FeatureStore(repo_path=repo)
    opened = time.perf_counter() - began
    begin, finish = datetime.fromisoformat(start), datetime.fromisoformat(end)
    began = time.perf_counter()
    store.materialize(start_date=begin, end_date=finish)
    call = time.perf_counter() - began
    emit({"call_s": call, "open_s": opened, "import_s": imported, "feast": feast.__version__})


def _refs(features: list[str]) -> list[str]:
    return [f"{FEATURE_VIEW}:{name}" for name in features]


def verify(repo: str, entities: list[int], features: list[str]) -> None:
    """Each entity's values and event time (whole seconds: Feast's to_dict gives no more)."""
    store = _store(repo)
    rows = [{ENTITY: entity} for entity in entities]
    got = store.get_online_features(features=_refs(features), entity_rows=rows).to_dict(
        include_event_timestamps=True
    )
    emit({"call_s": 0.0, "values": got})


def lookups(repo: str, options: dict) -> None:  # type: ignore[type-arg]
    """Feast's get_online_features(...).to_dict() and the bare pipelined HMGET of our keys,
    alternating call by call on the same random entities, in this one process."""
    import redis

    store = _store(repo)
    refs = _refs(options["features"])
    fields = ["_event_time", *options["features"]]
    client = redis.Redis.from_url(options["bare_url"])
    prefix = options["bare_prefix"]
    rng = random.Random(options["seed"])
    clock = time.perf_counter
    out: dict[str, dict[str, list[float]]] = {}
    for batch, iterations in options["cases"]:
        feast_s: list[float] = []
        bare_s: list[float] = []
        warm_up = max(20, iterations // 10)
        for i in range(warm_up + iterations):
            entities = rng.sample(range(options["entities"]), batch)
            rows = [{ENTITY: entity} for entity in entities]
            started = clock()
            got = store.get_online_features(features=refs, entity_rows=rows).to_dict()
            middle = clock()
            bare = bare_hmget(client, prefix, fields, entities)
            ended = clock()
            if i < warm_up:
                mine = [[got[name][k] for name in options["features"]] for k in range(batch)]
                if mine != bare:
                    raise SystemExit(f"Feast and the bare HMGET of our keys disagree for {entities[:3]}...")
                continue
            feast_s.append(middle - started)
            bare_s.append(ended - middle)
        out[str(batch)] = {"feast": percentiles_ms(feast_s), "bare": percentiles_ms(bare_s)}
    emit({"call_s": 0.0, "lookups": out, "redis_py": redis.__version__})


def main(argv: list[str]) -> int:
    mode, repo, *rest = argv
    if mode == "materialize":
        materialize(repo, rest[0], rest[1])
    elif mode == "verify":
        options = json.loads(rest[0])
        verify(repo, options["entities"], options["features"])
    elif mode == "lookups":
        lookups(repo, json.loads(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("FEAST_USAGE", "False")  # no usage telemetry (and no network)
    sys.exit(main(sys.argv[1:]))
