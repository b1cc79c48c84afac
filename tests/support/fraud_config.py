"""The fraud example's config as the config tests edit it: a private copy without data."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fraud import EXAMPLE


def fraud_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the example (without data), as the working directory; the
    transformations it imports are forgotten afterwards. A test module's fixture yields from it."""
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    monkeypatch.chdir(root)
    monkeypatch.delenv("FEATURESTORE_REDIS_URL", raising=False)
    monkeypatch.delenv("FEATURESTORE_CONFIG", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield root
    for name in [m for m in sys.modules if m == "transforms" or m.startswith("transforms.")]:
        del sys.modules[name]


def edit(path: str, old: str, new: str) -> None:
    """Replace the first `old` in the file at `path` (which must hold it) by `new`."""
    text = Path(path).read_text()
    assert old in text, f"{old!r} not in {path}"
    Path(path).write_text(text.replace(old, new, 1))
