"""Checks every answer of the two feature servers in `serve_vs_feast.py` against the rows the
data generator wrote, whatever the JSON shape of the server.

Ours answers `{"results": [{"entity_id": 7, "f0": ..., "f9": ...}, ...]}`, one object per
entity; Feast `{"metadata": {"feature_names": ["entity_id", "f0", ...]}, "results": [{"values":
[...], "statuses": [...], ...}, ...]}`, one column per name. Both are turned into the same
thing, the requested entities in order with their 10 values each, and compared exactly (the
values are doubles written by the generator and printed as shortest round-trip text by both).

While a backfill overwrites the entities, an entity may be answered from its previous row or
from its new one, but all its features from the same row: an answer that mixes the two is a
half-written entity, counted apart. Identical bodies answered for the same request are checked
once (the load generator hands each distinct answer over once, with its count).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OK, WRONG, MIXED, MALFORMED = "ok", "wrong values", "half-written entity", "malformed answer"


@dataclass(frozen=True)
class Verdict:
    """One distinct answer's check: `kind` OK or the first problem, and how many of its
    entities came from the newer rows."""

    kind: str
    newer: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == OK


class Expected:
    """The stored rows: `older[e]` is entity e's 10 values before a backfill, `newer[e]` after
    (None when no backfill runs: only `older` is right)."""

    def __init__(self, older: np.ndarray, newer: np.ndarray | None = None) -> None:
        self.older, self.newer = older, newer

    def check(self, entities: Sequence[int], got_entities: Sequence[Any], values: np.ndarray) -> Verdict:
        """`values[k]` answered for `entities[k]` (the server echoed `got_entities`)."""
        if list(got_entities) != list(entities):
            return Verdict(
                MALFORMED, detail=f"entities {list(got_entities)[:3]}... for {list(entities)[:3]}..."
            )
        if values.shape != (len(entities), self.older.shape[1]):
            return Verdict(MALFORMED, detail=f"values of shape {values.shape}")
        index = np.asarray(entities, dtype=np.int64)
        same_old = values == self.older[index]
        if self.newer is None:
            whole_old = same_old.all(axis=1)
            if whole_old.all():
                return Verdict(OK)
            k = int(np.argmin(whole_old))
            return Verdict(WRONG, detail=f"entity {entities[k]}: {values[k].tolist()}")
        same_new = values == self.newer[index]
        whole = same_old.all(axis=1) | same_new.all(axis=1)
        if whole.all():
            return Verdict(OK, newer=int(same_new.all(axis=1).sum()))
        k = int(np.argmin(whole))
        kind = MIXED if (same_old[k] | same_new[k]).all() else WRONG
        return Verdict(kind, detail=f"entity {entities[k]}: {values[k].tolist()}")


def ours_values(document: Any, entity: str, features: Sequence[str]) -> tuple[list[Any], np.ndarray]:
    """Our answer -> (the entities it names, their values): one object per entity."""
    results = document["results"]
    entities = [item[entity] for item in results]
    values = np.array([[_number(item[name]) for name in features] for item in results], dtype=np.float64)
    return entities, values.reshape(len(results), len(features))


def feast_values(document: Any, entity: str, features: Sequence[str]) -> tuple[list[Any], np.ndarray]:
    """Feast's answer -> (the entities it names, their values): one column per name, each
    feature's statuses all PRESENT."""
    names = document["metadata"]["feature_names"]
    columns = dict(zip(names, document["results"], strict=True))
    for name in features:
        statuses = set(columns[name].get("statuses", []))
        if statuses - {"PRESENT"}:
            raise ValueError(f"{name}: statuses {sorted(statuses)}")
    entities = list(columns[entity]["values"])
    values = np.array([[_number(v) for v in columns[name]["values"]] for name in features], dtype=np.float64)
    return entities, values.reshape(len(features), len(entities)).T


def _number(value: Any) -> float:
    if type(value) is not float and type(value) is not int:
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def check_answer(
    expected: Expected,
    shape: str,
    body: bytes,
    entities: Sequence[int],
    entity: str,
    features: Sequence[str],
) -> Verdict:
    """One answer's verdict; `shape` is "ours" or "feast"."""
    reader = ours_values if shape == "ours" else feast_values
    try:
        got, values = reader(json.loads(body), entity, features)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return Verdict(MALFORMED, detail=f"{type(exc).__name__}: {exc}; body {body[:120]!r}")
    return expected.check(entities, got, values)
