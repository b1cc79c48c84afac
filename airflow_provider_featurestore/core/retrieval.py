"""Feature retrieval: which features a model reads, and how their values come back.

- A *feature ref* names one feature: `"transactions:transaction_7d_count"` (the latest version)
  or `"transactions:v2:transaction_7d_count"` (a pinned one).
- A *retrieval spec* is the list of refs a model was trained on: a small YAML file saved beside
  the model and read back for online lookup and for the next training set.
- `resolve` groups refs by feature set version and names each output column: the feature's
  own name, or `<feature_set>__<feature>` where two requested feature sets share that name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from airflow_provider_featurestore.core.config import FeatureSetSpec, FeatureStoreConfig
from airflow_provider_featurestore.core.errors import BadInput

_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(?:v([1-9][0-9]*):)?([A-Za-z_][A-Za-z0-9_]*)$")
SPEC_KIND = "featurestore/retrieval-spec"


@dataclass(frozen=True)
class FeatureRef:
    feature_set: str
    feature: str
    version: int | None = None  # None: the latest version

    @classmethod
    def parse(cls, text: object) -> FeatureRef:
        match = _REF.match(str(text).strip()) if isinstance(text, str) else None
        if match is None:
            raise BadInput(
                f"features: {text!r} is not a feature ref: use 'feature_set:feature' or "
                "'feature_set:v2:feature'"
            )
        name, version, feature = match.groups()
        return cls(name, feature, int(version) if version else None)

    def __str__(self) -> str:
        version = f"v{self.version}:" if self.version is not None else ""
        return f"{self.feature_set}:{version}{self.feature}"


@dataclass
class FeatureGroup:
    """The requested features of one feature set version, with their output column names."""

    spec: FeatureSetSpec
    features: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # output name of each feature, same order

    @property
    def event_time_column(self) -> str:
        return f"{self.spec.name}__event_timestamp"


def resolve(config: FeatureStoreConfig, features: Iterable[str] | RetrievalSpec) -> list[FeatureGroup]:
    """Feature refs -> one group per feature set version, in the order first requested.

    Raises BadInput naming the ref for an unknown feature set, version or feature, a duplicate
    ref, or two versions of one feature set (their columns could not be told apart).
    """
    refs_text = features.features if isinstance(features, RetrievalSpec) else features
    if isinstance(refs_text, str):
        raise BadInput("features: give a list of feature refs, not one string")
    refs = [FeatureRef.parse(text) for text in refs_text]
    if not refs:
        raise BadInput("features: no feature refs given")
    groups: dict[tuple[str, int], FeatureGroup] = {}
    seen: set[tuple[str, int, str]] = set()
    for ref in refs:
        try:
            spec = config.get(ref.feature_set, ref.version)
        except BadInput as exc:
            raise BadInput(f"features: {ref}: {exc}") from None
        if ref.feature not in spec.feature_names:
            raise BadInput(
                f"features: {ref}: {spec.name} v{spec.version} has no feature {ref.feature!r} "
                f"(features: {', '.join(spec.feature_names)})"
            )
        if (spec.name, spec.version, ref.feature) in seen:
            raise BadInput(f"features: {ref} is requested twice")
        seen.add((spec.name, spec.version, ref.feature))
        groups.setdefault((spec.name, spec.version), FeatureGroup(spec)).features.append(ref.feature)
    names = [spec_name for spec_name, _version in groups]
    twice = {name for name in names if names.count(name) > 1}
    if twice:
        raise BadInput(f"features: two versions of {', '.join(sorted(twice))} in one request")
    counts: dict[str, int] = {}
    for group in groups.values():
        for feature in group.features:
            counts[feature] = counts.get(feature, 0) + 1
    for group in groups.values():
        group.columns = [f if counts[f] == 1 else f"{group.spec.name}__{f}" for f in group.features]
    return list(groups.values())


def index_columns(groups: Sequence[FeatureGroup]) -> list[str]:
    """Every index column the requested feature sets need, in order of first appearance."""
    names: list[str] = []
    for group in groups:
        names += [name for name in group.spec.index_names if name not in names]
    return names


@dataclass(frozen=True)
class RetrievalSpec:
    """The feature refs a model reads, kept beside the model (`retrieval_spec.yaml`)."""

    features: tuple[str, ...]

    def __post_init__(self) -> None:
        for text in self.features:
            FeatureRef.parse(text)

    @classmethod
    def load(cls, path: str | Path) -> RetrievalSpec:
        """Read a spec file; a folder means its `retrieval_spec.yaml`."""
        file = Path(path)
        if file.is_dir():
            file = file / "retrieval_spec.yaml"
        try:
            document = yaml.safe_load(file.read_text())
        except OSError as exc:
            raise BadInput(f"{file}: cannot read the retrieval spec: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise BadInput(f"{file}: not YAML: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("features"), list):
            raise BadInput(f"{file}: features: a retrieval spec needs a list of feature refs")
        try:
            return cls(tuple(str(item) for item in document["features"]))
        except BadInput as exc:
            raise BadInput(f"{file}: {exc}") from None

    def save(self, path: str | Path) -> Path:
        """Write the spec; a folder means its `retrieval_spec.yaml`. Returns the file."""
        file = Path(path)
        if file.is_dir():
            file = file / "retrieval_spec.yaml"
        file.write_text(yaml.safe_dump({"kind": SPEC_KIND, "features": list(self.features)}, sort_keys=False))
        return file
